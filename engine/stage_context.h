#pragma once
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "engine/asio.h"

namespace aetl {

class BlockingPool;
class RunControl;

/// What every source, stage and sink of a run shares. Owned by the command.
struct StageContext {
  asio::io_context& io;
  BlockingPool& pool;
  RunControl& control;
  std::vector<std::string> input_names;  ///< by Position::source, for messages
};

}  // namespace aetl
