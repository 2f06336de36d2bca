#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace aetl::mysql {

/// Where and as whom to connect, read from a URL
///   mysql://user:password@host:port/database?socket=/run/mysqld/mysqld.sock
/// (mariadb:// too; user, password and database percent-decoded). What the URL
/// leaves out comes from the variables the mariadb client reads: MYSQL_HOST
/// (else localhost, which Connector/C reaches by its Unix socket), MYSQL_TCP_PORT
/// (else 3306), MYSQL_PWD, and the login name for the user.
struct MysqlUrl {
  std::string user;
  std::optional<std::string> password;
  std::string host;
  unsigned port = 3306;
  std::string database;
  std::string socket;  // a Unix socket path (host is then ignored)
  /// "host:port/database" (or "socket PATH/database"), for messages: no password.
  std::string where() const;
};

/// Parses `url` ("" = everything from the environment). nullopt with `error` set
/// (which never quotes the password) when it cannot be read.
std::optional<MysqlUrl> parse_mysql_url(std::string_view url, std::string& error);

}  // namespace aetl::mysql
