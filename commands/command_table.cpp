#include "commands/command_table.h"

#include <vector>

#include "commands/fetch_command.h"

namespace aetl {

const std::vector<CommandRow>& command_table() {
  static const std::vector<CommandRow> table = {
      {"fetch", "Fetch many URLs concurrently; one JSON line per URL (also installed as afetch)", &setup_fetch_command},
  };
  return table;
}

}  // namespace aetl
