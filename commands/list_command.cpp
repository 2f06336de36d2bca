#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "commands/explain_command.h"
#include "config/kinds.h"

namespace aetl {
namespace {

template <class Kind>
void print_group(std::string& out, const char* title, const std::vector<Kind>& table) {
  out += title;
  out += ":\n";
  for (const auto& k : table) {
    std::string line = "  " + std::string(k.key);
    line.resize(std::max<size_t>(line.size() + 2, 14), ' ');
    out += line + std::string(k.summary) + "\n";
  }
}

}  // namespace

std::function<ExitCode()> setup_list_command(CLI::App&) {
  return []() -> ExitCode {
    std::string out;
    print_group(out, "sources", source_kinds());
    print_group(out, "stages", stage_kinds());
    print_group(out, "sinks", sink_kinds());
    out += "\n`aetl explain KIND` prints a kind's fields; `aetl explain pipeline` the top-level keys.\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return ExitCode::ok;
  };
}

}  // namespace aetl
