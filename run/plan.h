#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "run/pipeline.h"

namespace aetl {

/// Where each step of a pipeline runs, decided from what the parts declare,
/// before anything is built. Record steps (filter, select, set) next to each
/// other run as one chain, each record through all of them in one pool job; the
/// chain right behind a source that runs steps runs inside the source's lanes
/// (records then cross no thread between reading and the steps, and only those
/// that come out are copied); a sink's row step (its encoding of a record) ends
/// the chain in front of the sink, else the sink encodes rows as it writes.
struct Plan {
  /// One unit the runner builds: a chain of record steps (stages `first`..`last`,
  /// indices into Pipeline::stages) or one stage of its own (first == last).
  struct Unit {
    size_t first = 0;
    size_t last = 0;
    bool chain = false;
  };
  std::vector<size_t> in_source;  ///< stages whose steps run in the source's lanes, in order
  std::vector<Unit> units;        ///< the rest, in order, each a part of its own
  enum class RowStep { at_sink, in_source, in_last_chain };
  RowStep row_step = RowStep::at_sink;  ///< where the main sink's rows are made

  /// The plan as lines for a person (`aetl validate --explain`).
  std::vector<std::string> describe(const Pipeline& p) const;
};

Plan make_plan(const Pipeline& p);

}  // namespace aetl
