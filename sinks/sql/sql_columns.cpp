#include "sinks/sql/sql_columns.h"

#include <algorithm>

namespace aetl {

void read_columns_and_key(ConfigReader& r, ConfigProblems& problems, bool (*is_type)(std::string_view),
                          std::string_view examples, std::vector<TableColumn>& columns, std::vector<std::string>& key) {
  if (const ConfigValue* cols = r.raw("columns")) {
    if (cols->is_mapping()) {
      for (const auto& [k, v] : cols->entries) {
        auto type = expand_scalar(v, problems, "columns." + k.scalar);
        if (!type) continue;
        if (!is_type(type->text))
          problems.add(type->where, "columns." + k.scalar + ": not a column type (examples: " + std::string(examples) + ")");
        columns.push_back({k.scalar, type->text});
      }
    } else if (auto list = r.string_list("columns")) {
      for (auto& c : *list) columns.push_back({c.text, ""});
    }
    if (columns.empty()) problems.add(cols->where, "columns: empty (leave it out to take the first record's fields)");
  }
  if (auto keys = r.string_list("key")) {
    for (auto& k : *keys) {
      key.push_back(k.text);
      if (!columns.empty() &&
          std::none_of(columns.begin(), columns.end(), [&](const TableColumn& c) { return c.name == k.text; }))
        problems.add(k.where, "key: '" + k.text + "' is not one of the columns");
    }
  }
}

}  // namespace aetl
