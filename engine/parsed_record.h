#pragma once
// Internal: a record parsed by simdjson's DOM parser while it was checked, so an
// expression can be evaluated from it without parsing the text again. Only the
// decoder and the evaluator include this (simdjson stays out of other headers).
#include <simdjson.h>

namespace aetl::expr {

struct ParsedRecord {
  simdjson::dom::element root;  ///< valid until the parser that made it parses again
};

}  // namespace aetl::expr
