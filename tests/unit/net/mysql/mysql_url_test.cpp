#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "net/mysql/mysql_connection.h"
#include "net/mysql/mysql_url.h"

using aetl::mysql::parse_mysql_url;

namespace {
std::string error_of(const std::string& url) {
  std::string error;
  if (parse_mysql_url(url, error)) return "";
  return error;
}
void clear_env() {
  for (const char* v : {"MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_PWD"}) ::unsetenv(v);
}
}  // namespace

TEST_CASE("mysql URLs: user, password, host, port, database, socket", "[mysql]") {
  clear_env();
  std::string error;
  auto u = parse_mysql_url("mysql://etl:p%40ss%3Aw@db.internal:3307/shop", error);
  REQUIRE(u);
  CHECK(u->user == "etl");
  CHECK(u->password == "p@ss:w");
  CHECK(u->host == "db.internal");
  CHECK(u->port == 3307);
  CHECK(u->database == "shop");
  CHECK(u->where() == "db.internal:3307/shop");

  u = parse_mysql_url("mariadb://etl@[::1]:3306/logs", error);
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->port == 3306);
  CHECK_FALSE(u->password);

  u = parse_mysql_url("mysql://root@localhost/db?socket=%2Frun%2Fmysqld%2Fmysqld.sock", error);
  REQUIRE(u);
  CHECK(u->socket == "/run/mysqld/mysqld.sock");
  CHECK(u->where() == "socket /run/mysqld/mysqld.sock/db");
}

TEST_CASE("mysql URLs: a password with an unescaped / ? or @ stays the password", "[mysql]") {
  clear_env();
  std::string error;
  auto u = parse_mysql_url("mysql://app:30/6?S@cr@t@127.0.0.1:3306/aetl", error);
  REQUIRE(u);
  CHECK(u->user == "app");
  CHECK(u->password == "30/6?S@cr@t");
  CHECK(u->host == "127.0.0.1");
  CHECK(u->where() == "127.0.0.1:3306/aetl");
}

TEST_CASE("mysql URLs: what is left out comes from the mariadb client's variables", "[mysql]") {
  clear_env();
  ::setenv("MYSQL_HOST", "10.1.2.3", 1);
  ::setenv("MYSQL_TCP_PORT", "3310", 1);
  ::setenv("MYSQL_PWD", "from-env", 1);
  std::string error;
  auto u = parse_mysql_url("", error);
  REQUIRE(u);
  CHECK(u->host == "10.1.2.3");
  CHECK(u->port == 3310);
  CHECK(u->password == "from-env");
  u = parse_mysql_url("mysql://etl:given@h:3306/d", error);
  REQUIRE(u);
  CHECK(u->password == "given");  // the URL's wins
  CHECK(u->port == 3306);
  clear_env();
}

TEST_CASE("mysql URLs: bad ones say why without quoting the password", "[mysql]") {
  clear_env();
  CHECK(error_of("postgres://u:secret@h/d") == "the url must start with mysql:// or mariadb://");
  CHECK(error_of("mysql://u:secret@h:0/d") == "the url's port is not a number from 1 to 65535");
  CHECK(error_of("mysql://u:se%zzcret@h/d") == "the url's password has a bad % escape");
  CHECK(error_of("mysql://u:secret@h/d?ssl=1") == "the url's parameter 'ssl' is not known (socket is)");
  CHECK(error_of("mysql://u:secret@[::1/d") == "the url's host has no closing ]");
}

TEST_CASE("mysql quoting: string literals and identifiers", "[mysql]") {
  std::string out;
  aetl::mysql::append_quoted(out, std::string("a'b\"c\\d\ne\rf\0g\032h", 15));
  CHECK(out == "'a\\'b\\\"c\\\\d\\ne\\rf\\0g\\Zh'");
  CHECK(aetl::mysql::quote_ident("odd`name") == "`odd``name`");
}
