#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "config/config_reader.h"
#include "net/sql_table.h"

namespace aetl {

/// Reads a table sink's `columns:` ({name: TYPE} or a list of names) and `key:`
/// (which must name columns, when they are listed). `is_type` checks a declared
/// type; `examples` ends its message.
void read_columns_and_key(ConfigReader& r, ConfigProblems& problems, bool (*is_type)(std::string_view),
                          std::string_view examples, std::vector<TableColumn>& columns, std::vector<std::string>& key);

}  // namespace aetl
