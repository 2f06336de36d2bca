#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace aetl {

class RecordDecoder;

/// What becomes of a binary WebSocket message.
enum class BinaryMessages {
  base64,  ///< {"binary": "<base64>"}
  text,    ///< read as a text message (bytes that are not UTF-8 escaped as \udcXX)
  skip,    ///< dropped (counted)
};

/// Turns WebSocket messages into records (JSON objects, one line each):
///  - a text message holding a JSON object is that object (line breaks between
///    its tokens removed, bytes that are not UTF-8 escaped);
///  - any other text (not JSON, a JSON array or scalar, nothing) is {"message": "the text"};
///  - a binary message as `binary` says.
/// With a `time_field`, each record gets the receive time in it as its first key
/// (UTC, ISO 8601, microseconds: "2026-12-07T15:22:13.123456Z"), unless the
/// message's object has a top-level key of that name already (it is kept as sent).
class MessageRecords {
 public:
  MessageRecords(std::string time_field, BinaryMessages binary);
  ~MessageRecords();
  /// Writes the record of one message to `out` (replacing it). False: skipped.
  bool make(std::string_view data, bool binary, std::chrono::system_clock::time_point received, std::string& out);

 private:
  void time_text(std::chrono::system_clock::time_point at);

  std::string time_field_;  // as a JSON key with its quotes, or empty
  BinaryMessages binary_;
  std::unique_ptr<RecordDecoder> decoder_;
  std::string time_;        // "\"2026-...Z\""
  long long second_ = -1;   // the second time_ was made for (its prefix is reused within it)
};

}  // namespace aetl
