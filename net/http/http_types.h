#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// Plain data types of the HTTP client, free of curl and Asio headers.
namespace aetl {

struct HttpRequest {
  std::string url;
  std::string method = "GET";
  std::vector<std::string> headers;  ///< "Name: value", already checked for CR/LF/NUL
  std::optional<std::string> body;
  int64_t max_bytes = -1;  ///< body limit for this request; -1: the client's, 0: none
  bool fail_on_error = false;  ///< a status >= 400 fails before any of its body is delivered
  bool want_link = false;      ///< fill HttpResponse::link
};

/// Settings shared by every request of a run.
struct HttpClientOptions {
  long connect_timeout_ms = 10'000;
  long timeout_ms = 0;             ///< whole transfer; 0 = none
  long low_speed_time_s = 30;      ///< abort if slower than low_speed_limit for this long; 0 = off
  long low_speed_limit = 1;        ///< bytes per second
  bool insecure = false;           ///< skip TLS verification
  std::string cacert;              ///< extra CA bundle file
  std::string user_agent;
  int64_t max_bytes = 0;           ///< body limit after decoding; 0 = none
  long max_redirects = 10;
  bool follow_redirects = true;
  long connection_cache = 64;      ///< idle connections kept for reuse (set at least to the concurrency)
};

/// The outcome of one attempt.
struct HttpResponse {
  int curl_code = 0;         ///< CURLcode; 0 when a response arrived
  std::string error;         ///< empty when curl_code == 0
  long status = 0;
  std::string final_url;
  std::string content_type;
  std::string http_version;  ///< "1.0", "1.1", "2", "3"
  int64_t bytes = 0;         ///< body bytes received (after decoding)
  double total_ms = 0, connect_ms = 0, ttfb_ms = 0;
  int64_t retry_after_s = -1;  ///< from Retry-After (seconds or HTTP-date), -1 if absent
  std::string link;            ///< with HttpRequest::want_link: the last response's Link headers, joined by ", "
  bool too_large = false;      ///< aborted by max_bytes
  bool aborted = false;        ///< cancelled by the run (not an outcome to report)
  bool timed_out = false;
  bool connect_failed = false;  ///< could not resolve or connect (retryable)
};

/// Receives a response body as it streams in, on the loop thread.
class BodyConsumer {
 public:
  enum class Verdict { accepted, accepted_pause, pause, fail };
  virtual ~BodyConsumer() = default;
  /// Called before the body of each attempt (a retry starts over).
  virtual void begin() {}
  /// `accepted_pause` takes the chunk and stops the transfer until resume is called:
  /// the client pauses it outside curl's write callback, so curl holds no data
  /// meanwhile (a paused callback makes curl keep everything it still decodes from
  /// the bytes it read: a compressed body can expand without bound);
  /// `pause` keeps the chunk with curl, which offers it again after resume;
  /// `fail` aborts the transfer (error set by failure_message()).
  virtual Verdict on_data(std::string_view chunk) = 0;
  virtual std::string failure_message() const { return "body consumer failed"; }
  /// Given before the transfer starts: wakes a paused transfer.
  void set_resume(std::function<void()> resume) { resume_ = std::move(resume); }

 protected:
  void resume() {
    if (resume_) resume_();
  }

 private:
  std::function<void()> resume_;
};

}  // namespace aetl
