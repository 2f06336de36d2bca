#include "commands/command_table.h"

#include <vector>

#include "commands/fetch_command.h"
#include "commands/run_command.h"

namespace aetl {

const std::vector<CommandRow>& command_table() {
  static const std::vector<CommandRow> table = {
      {"fetch", "Fetch many URLs concurrently; one JSON line per URL (also installed as afetch)", &setup_fetch_command},
      {"run", "Run a pipeline file: source → stages → sink, with checkpoints", &setup_run_command},
      {"validate", "Check pipeline files (file:line:col for every problem); run nothing", &setup_validate_command},
  };
  return table;
}

}  // namespace aetl
