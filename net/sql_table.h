#pragma once
#include <optional>
#include <string>
#include <utility>
#include <string_view>
#include <vector>


namespace aetl {

/// A column of a table sink (sqlite, postgres): a record's top-level field of the same name.
struct TableColumn {
  std::string name;
  std::string type;  ///< declared SQL type, may be empty
};

/// Quotes an SQL identifier ("my ""odd"" name"): the same rule in SQLite and PostgreSQL.
std::string quote_sql_ident(std::string_view name);

/// A column type as it may stand in CREATE TABLE: words (letters, digits, _), an
/// optional (N) or (N,M), and for PostgreSQL optional [] — nothing that could end
/// the column, start a second one or add a constraint.
bool is_sql_type(std::string_view type, bool arrays);
inline bool is_sqlite_type(std::string_view type) { return is_sql_type(type, false); }
inline bool is_postgres_type(std::string_view type) { return is_sql_type(type, true); }

/// The first two names that SQLite takes for one column (its names ignore ASCII
/// case: "id" and "Id"), or nullopt.
std::optional<std::pair<std::string, std::string>> sqlite_name_clash(const std::vector<TableColumn>& columns);

}  // namespace aetl
