#pragma once
// Included only by translation units that already parse with simdjson.
#include <simdjson.h>

#include <new>

namespace aetl {

/// simdjson reports an allocation that failed as the error MEMALLOC, and may
/// leave the parser half set up: a buffer sized, the next one null, and the next
/// parse then writes through the null one (seen under injected malloc failures).
/// Call this after every parse with a parser that is used again. On MEMALLOC the
/// parser is replaced by a fresh one and std::bad_alloc is thrown, so running out
/// of memory ends the run the way it does everywhere else ("out of memory;
/// stopped", exit 1), never as "invalid JSON", which would dead-letter a good
/// record.
template <class Parser>
void throw_if_out_of_memory(simdjson::error_code e, Parser& parser) {
  if (e != simdjson::MEMALLOC) return;
  parser = Parser{};
  throw std::bad_alloc();
}

}  // namespace aetl
