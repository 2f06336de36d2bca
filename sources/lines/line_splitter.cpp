#include "sources/lines/line_splitter.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>


namespace aetl {

void LineSplitter::drop_bom() {
  if (std::exchange(at_start_, false) && std::string_view(carry_).starts_with(kBom)) carry_.erase(0, kBom.size());
}

void LineSplitter::emit(std::vector<Line>& out, bool at_lf) {
  Line line;
  line.number = ++line_no_;
  line.end_offset = offset_;
  drop_bom();
  if (!skipping_ && !carry_.empty() && carry_.back() == '\r') {
    carry_.pop_back();
    line.crlf = at_lf;
  }
  if (!skipping_ && carry_.size() > max_line_) {  // the one byte of room kept for a CR was not a CR
    carry_.resize(std::min(carry_.size(), kTooLongPrefix));
    skipping_ = true;
  }
  line.too_long = skipping_;
  line.text = std::move(carry_);
  carry_.clear();
  skipping_ = false;
  out.push_back(std::move(line));
}

void LineSplitter::feed(std::string_view chunk, std::vector<Line>& out) {
  while (!chunk.empty()) {
    const void* nl = std::memchr(chunk.data(), '\n', chunk.size());
    size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - chunk.data()) : chunk.size();
    if (!skipping_) {
      if (carry_.size() + take > max_line_ + 1) {  // + 1: room for the CR of a CRLF
        // Keep a short prefix for the error message; drop the rest as it streams by.
        size_t keep = carry_.size() < kTooLongPrefix ? std::min(take, kTooLongPrefix - carry_.size()) : 0;
        carry_.append(chunk.data(), keep);
        carry_.resize(std::min(carry_.size(), kTooLongPrefix));
        carry_.shrink_to_fit();
        skipping_ = true;
      } else {
        // Room for simdjson's padding, so the record can be parsed in place later.
        if (carry_.capacity() < carry_.size() + take + kLinePadding) carry_.reserve(carry_.size() + take + kLinePadding);
        carry_.append(chunk.data(), take);
      }
    }
    offset_ += take;
    chunk.remove_prefix(take);
    if (!nl) break;
    offset_ += 1;
    chunk.remove_prefix(1);
    emit(out, true);
  }
}

void LineSplitter::finish(std::vector<Line>& out) {
  drop_bom();
  if (!carry_.empty() || skipping_) emit(out, false);
}

}  // namespace aetl
