#pragma once
// Included only by translation units that already parse with simdjson.
#include <simdjson.h>

#include <new>

#include "engine/nothrow_new.h"

namespace aetl {

/// Runs `parse` (a call of `parser` returning a simdjson::error_code) and makes
/// running out of memory inside it an exception. simdjson reports a failed
/// allocation as MEMALLOC, or (the On-Demand parser's string buffer) not at all,
/// and may leave the parser half set up: a later parse then writes through a null
/// buffer. So on MEMALLOC, or when any nothrow allocation on this thread failed
/// during the parse, the parser is replaced by a fresh one and std::bad_alloc is
/// thrown: out of memory ends the run as it does everywhere else ("out of memory;
/// stopped", exit 1), never as "invalid JSON", which would dead-letter a good record.
/// Use it for every parse with a parser that is used again.
template <class Parser, class Parse>
simdjson::error_code parse_or_throw(Parser& parser, Parse&& parse) {
  clear_nothrow_failure();
  simdjson::error_code e = parse();
  if (e == simdjson::MEMALLOC || nothrow_failure()) {
    parser = Parser{};
    throw std::bad_alloc();
  }
  return e;
}

}  // namespace aetl
