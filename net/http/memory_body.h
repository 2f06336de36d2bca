#pragma once
#include <string>
#include <string_view>

#include "net/http/http_types.h"

namespace aetl {

/// Collects a response body in memory (bounded by the request's max_bytes).
class MemoryBody final : public BodyConsumer {
 public:
  void begin() override { data.clear(); }
  Verdict on_data(std::string_view chunk) override {
    data.append(chunk);
    return Verdict::accepted;
  }
  std::string data;
};

}  // namespace aetl
