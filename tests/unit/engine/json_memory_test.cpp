// Out of memory inside simdjson: the parse that fails throws std::bad_alloc, and
// the parser is usable again afterwards (it was left half set up and the next
// parse wrote through a null buffer: a SIGSEGV under injected malloc failures).
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

#include "engine/record_decoder.h"

namespace {
// The n-th nothrow allocation from now fails (simdjson allocates its buffers with
// new (std::nothrow)); -1: none does.
std::atomic<int> fail_in{-1};

void* nothrow_allocate(std::size_t n) noexcept {
  if (fail_in.load() >= 0 && fail_in.fetch_sub(1) == 0) return nullptr;
  return std::malloc(n ? n : 1);
}
}  // namespace

// The default operator delete and delete[] free what malloc returned.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return nothrow_allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return nothrow_allocate(n); }

using namespace aetl;

TEST_CASE("json lines: an allocation that fails inside the parser is out of memory, and the next line parses", "[decoder]") {
  const std::string line = R"({"id": 1, "status": 300, "name": "n1"})";
  int failed = 0;
  for (int n = 0; n < 12; ++n) {
    INFO("allocation " << n << " fails");
    RecordDecoder d({LineFormat::json});
    fail_in = n;
    try {
      auto r = d.decode(line);
      CHECK(r.kind == Decoded::record);  // never "invalid JSON": that would dead-letter a good record
    } catch (const std::bad_alloc&) {
      ++failed;
    }
    fail_in = -1;
    for (int i = 0; i < 3; ++i) {
      auto again = d.decode(line);
      CHECK(again.kind == Decoded::record);
      CHECK(d.last_parsed() != nullptr);
    }
  }
  CHECK(failed > 0);  // the parser did allocate with new (std::nothrow)
}
