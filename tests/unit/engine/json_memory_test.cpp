// Out of memory inside simdjson: the parse that fails throws std::bad_alloc, and
// the parser is usable again afterwards. Before, the decoder's parser was left
// half set up and the next parse wrote through a null buffer, and the
// expression evaluator's On-Demand parser took a failed string-buffer allocation
// for success and wrote through null at once (SIGSEGV under injected malloc
// failures). The allocations fail through engine/nothrow_new's test hook.
#include <catch2/catch.hpp>

#include <new>
#include <string>

#include "engine/nothrow_new.h"
#include "engine/record_decoder.h"
#include "expr/expression.h"

using namespace aetl;

namespace {
struct NoFailureLeft {
  ~NoFailureLeft() { fail_nothrow_allocation_in(-1); }
};
}  // namespace

TEST_CASE("json lines: an allocation that fails inside the parser is out of memory, and the next line parses", "[decoder]") {
  NoFailureLeft reset;
  const std::string line = R"({"id": 1, "status": 300, "name": "n1"})";
  int failed = 0;
  for (int n = 0; n < 12; ++n) {
    INFO("allocation " << n << " fails");
    RecordDecoder d({LineFormat::json});
    fail_nothrow_allocation_in(n);
    try {
      auto r = d.decode(line);
      CHECK(r.kind == Decoded::record);  // never "invalid JSON": that would dead-letter a good record
    } catch (const std::bad_alloc&) {
      ++failed;
    }
    fail_nothrow_allocation_in(-1);
    for (int i = 0; i < 3; ++i) {
      auto again = d.decode(line);
      CHECK(again.kind == Decoded::record);
      CHECK(d.last_parsed() != nullptr);
    }
  }
  CHECK(failed > 0);  // the parser did allocate with new (std::nothrow)
}

TEST_CASE("expressions: an allocation that fails inside the evaluator's parse is out of memory, and the next record binds", "[expr]") {
  NoFailureLeft reset;
  const std::string record = R"({"id": 1, "name": "n\u00411", "tags": ["a", "b"]})";
  int failed = 0;
  for (int n = 0; n < 12; ++n) {
    INFO("allocation " << n << " fails");
    expr::Program p;
    size_t upper = p.add("upper(name)");
    size_t has = p.add("'b' in tags");
    expr::Evaluator e(p);
    std::string err;
    fail_nothrow_allocation_in(n);
    try {
      if (e.bind(record, err)) {
        std::string out;
        e.write_json(upper, out);
        e.test(has);
      } else {
        FAIL_CHECK("bind refused a good record: " << err);
      }
    } catch (const std::bad_alloc&) {
      ++failed;
    }
    fail_nothrow_allocation_in(-1);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(e.bind(record, err));
      std::string out;
      e.write_json(upper, out);
      CHECK(out == "\"NA1\"");
      CHECK(e.test(has));
    }
  }
  CHECK(failed > 0);
}
