#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/config/config_reader.h"

namespace aetl {

/// A column of a table sink (sqlite, postgres): a record's top-level field of the same name.
struct TableColumn {
  std::string name;
  std::string type;  ///< declared SQL type, may be empty
};

/// Quotes an SQL identifier ("my ""odd"" name"): the same rule in SQLite and PostgreSQL.
std::string quote_sql_ident(std::string_view name);

/// Reads a table sink's `columns:` ({name: TYPE} or a list of names) and `key:`
/// (which must name columns, when they are listed). `is_type` checks a declared
/// type; `examples` ends its message.
void read_columns_and_key(ConfigReader& r, ConfigProblems& problems, bool (*is_type)(std::string_view),
                          std::string_view examples, std::vector<TableColumn>& columns, std::vector<std::string>& key);

}  // namespace aetl
