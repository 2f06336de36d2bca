#include "sources/websocket/message_record.h"

#include <openssl/evp.h>

#include <cstring>
#include <ctime>

#include "engine/json_scan.h"
#include "engine/json_writer.h"
#include "engine/record_decoder.h"

namespace aetl {

MessageRecords::MessageRecords(std::string time_field, BinaryMessages binary)
    : binary_(binary), decoder_(std::make_unique<RecordDecoder>(DecoderOptions{})) {
  if (!time_field.empty()) append_json_string(time_field_, time_field);
}

MessageRecords::~MessageRecords() = default;

void MessageRecords::time_text(std::chrono::system_clock::time_point at) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count();
  long long secs = us / 1000000;
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%06dZ\"", static_cast<int>(us % 1000000));
  if (secs != second_) {
    std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[64];
    std::snprintf(text, sizeof text, "\"%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
    time_ = text;
    second_ = secs;
  }
  time_.resize(20);  // "\"YYYY-MM-DDTHH:MM:SS"
  time_ += frac;
}

namespace {

/// True when the object `obj` has the top-level key `key` (with its quotes).
bool has_top_level_key(std::string_view obj, std::string_view key) {
  if (obj.find(key) == std::string_view::npos) return false;  // the common case, cheaply
  std::string_view bare = key.substr(1, key.size() - 2);
  bool found = false;
  for_each_member(obj, 0, [&](const JsonMember& m) {
    if (m.raw_key == bare) found = true;
  });
  return found;
}

}  // namespace

bool MessageRecords::make(std::string_view data, bool binary, std::chrono::system_clock::time_point received,
                          std::string& out) {
  out.clear();
  if (binary && binary_ == BinaryMessages::skip) return false;
  if (!time_field_.empty()) time_text(received);
  auto open_with_time = [&] {
    out += '{';
    if (!time_field_.empty()) {
      out += time_field_;
      out += ':';
      out += time_;
    }
  };
  auto comma = [&] {
    if (out.size() > 1) out += ',';
  };
  if (binary && binary_ == BinaryMessages::base64) {
    open_with_time();
    comma();
    out += "\"binary\":\"";
    size_t at = out.size();
    out.resize(at + 4 * ((data.size() + 2) / 3) + 1);
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at),
                            reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
    out.resize(at + n);
    out += "\"}";
    return true;
  }
  Decoded d = decoder_->decode(data);
  if (d.kind != Decoded::record) {
    open_with_time();
    comma();
    out += "\"message\":";
    append_json_string(out, data);
    out += '}';
    return true;
  }
  std::string_view obj = d.data.empty() ? decoder_->last_trimmed() : std::string_view(d.data);
  bool keep_time = !time_field_.empty() && !has_top_level_key(obj, time_field_);
  out.reserve(obj.size() + (keep_time ? time_field_.size() + time_.size() + 2 : 0) + 64);
  if (keep_time) {
    open_with_time();
    size_t body = json_skip_blanks(obj, 1);
    if (body < obj.size() && obj[body] != '}') out += ',';
    out.append(obj.substr(1));
  } else {
    out.append(obj);
  }
  // JSON strings hold no raw line breaks: any in the text stand between tokens.
  if (std::memchr(out.data(), '\n', out.size()) || std::memchr(out.data(), '\r', out.size()))
    std::erase_if(out, [](char c) { return c == '\n' || c == '\r'; });
  return true;
}

}  // namespace aetl
