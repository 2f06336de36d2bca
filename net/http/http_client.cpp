#include "net/http/http_client.h"

#include <curl/curl.h>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

#include "net/http/curl_multi.h"

namespace aetl {
namespace {

std::string http_version_name(long v) {
  switch (v) {
    case CURL_HTTP_VERSION_1_0: return "1.0";
    case CURL_HTTP_VERSION_1_1: return "1.1";
    case CURL_HTTP_VERSION_2_0: return "2";
    case CURL_HTTP_VERSION_3: return "3";
    default: return "";
  }
}

bool is_connect_error(CURLcode c) {
  return c == CURLE_COULDNT_RESOLVE_HOST || c == CURLE_COULDNT_RESOLVE_PROXY || c == CURLE_COULDNT_CONNECT;
}

}  // namespace

/// One attempt in flight; lives in the frame of the perform() coroutine.
class HttpClient::Transfer final : public CurlTransferOwner {
 public:
  Transfer(HttpClient& client, CURL* easy, BodyConsumer* body)
      : client_(client), easy_(easy), body_(body), done_signal_(client.io_, asio::steady_timer::time_point::max()) {}

  ~Transfer() override {
    *alive_ = false;
    // A frame destroyed while its transfer runs (the loop torn down mid-run).
    if (!finished_) {
      client_.multi_->remove(easy_);
      aborted_ = true;
      finish();
    }
    if (headers_) curl_slist_free_all(headers_);
  }

  void transfer_done(CURLcode result) override {
    result_ = result;
    finish();
  }

  void abort() {
    if (finished_) return;
    client_.multi_->remove(easy_);
    aborted_ = true;
    finish();
  }

  /// Unpauses after the body consumer caught up. curl may hand over the data it
  /// kept right inside curl_easy_pause; if our write callback refuses it (too
  /// large, consumer failed) the error only shows up here, so it ends the transfer.
  void resume() {
    pause_wanted_ = false;
    if (finished_) return;
    CURLcode rc = curl_easy_pause(easy_, CURLPAUSE_CONT);
    if (rc != CURLE_OK && !finished_) {
      client_.multi_->remove(easy_);
      result_ = rc;
      finish();
    }
  }

  /// Pauses receiving once the write callback has returned (see accepted_pause);
  /// a resume() before then cancels it.
  void request_pause() {
    if (pause_wanted_) return;
    pause_wanted_ = true;
    asio::post(client_.io_, [this, alive = alive_] {
      if (!*alive || !pause_wanted_ || finished_) return;
      pause_wanted_ = false;
      curl_easy_pause(easy_, CURLPAUSE_RECV);
    });
  }

  /// No exception may cross libcurl's C frames (it would leave the multi handle
  /// inside a callback for good): one that escapes the consumer fails the transfer.
  static size_t on_write(char* data, size_t size, size_t n, void* userp) noexcept {
    try {
      return on_write_unguarded(data, size, n, userp);
    } catch (...) {
      static_cast<Transfer*>(userp)->consumer_failed_ = true;
      return 0;  // CURLE_WRITE_ERROR
    }
  }

  static size_t on_write_unguarded(char* data, size_t size, size_t n, void* userp) {
    auto* self = static_cast<Transfer*>(userp);
    size_t len = size * n;
    if (self->max_bytes_ > 0 && self->bytes_ + static_cast<int64_t>(len) > self->max_bytes_) {
      self->too_large_ = true;
      return 0;  // CURLE_WRITE_ERROR
    }
    if (self->body_) {
      switch (self->body_->on_data(std::string_view(data, len))) {
        case BodyConsumer::Verdict::accepted: break;
        case BodyConsumer::Verdict::accepted_pause:
          self->request_pause();
          break;
        case BodyConsumer::Verdict::pause: return CURL_WRITEFUNC_PAUSE;
        case BodyConsumer::Verdict::fail:
          self->consumer_failed_ = true;
          return 0;
      }
    }
    self->bytes_ += static_cast<int64_t>(len);
    return len;
  }

  asio::awaitable<void> wait() {
    asio::error_code ec;
    while (!finished_) {
      co_await done_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!finished_) {
        // Our coroutine was cancelled from outside: the transfer must not outlive us.
        abort();
      }
    }
  }

  HttpClient& client_;
  CURL* easy_;
  BodyConsumer* body_;
  curl_slist* headers_ = nullptr;
  asio::steady_timer done_signal_;
  CURLcode result_ = CURLE_OK;
  int64_t bytes_ = 0;
  bool finished_ = false;
  bool aborted_ = false;
  bool too_large_ = false;
  int64_t max_bytes_ = 0;  // 0: no limit
  bool consumer_failed_ = false;
  bool pause_wanted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed (posted pauses)
  size_t index_ = 0;  // position in client_.active_

 private:
  void finish() {
    finished_ = true;
    auto& active = client_.active_;
    active[index_] = active.back();
    active[index_]->index_ = index_;
    active.pop_back();
    done_signal_.cancel();
  }
};

HttpClient::HttpClient(asio::io_context& io, HttpClientOptions options)
    : io_(io), options_(std::move(options)), multi_(std::make_unique<CurlMulti>(io, options_.connection_cache)) {}

HttpClient::~HttpClient() {
  abort_all();
  for (void* e : free_easy_) curl_easy_cleanup(static_cast<CURL*>(e));
}

size_t HttpClient::in_flight() const { return active_.size(); }

void* HttpClient::take_easy() {
  if (!free_easy_.empty()) {
    void* e = free_easy_.back();
    free_easy_.pop_back();
    return e;
  }
  CURL* easy = curl_easy_init();
  if (easy) configure_easy(easy);
  return easy;
}

// Handles are reused without curl_easy_reset: a reset would also drop the receive
// buffer, which libcurl then reallocates for every request. Options that are the
// same for every request are set once here; perform() sets all the others each time.
void HttpClient::configure_easy(void* handle) {
  CURL* easy = static_cast<CURL*>(handle);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, options_.follow_redirects ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, options_.max_redirects);
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");  // every encoding this libcurl supports
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
  if (options_.timeout_ms > 0) curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, options_.timeout_ms);
  if (options_.low_speed_time_s > 0) {
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_limit);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, options_.low_speed_time_s);
  }
  if (options_.insecure) {
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!options_.cacert.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options_.cacert.c_str());
  if (!options_.user_agent.empty()) curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 128L * 1024);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Transfer::on_write);
  multi_->configure(easy);
}

void HttpClient::give_back_easy(void* easy) { free_easy_.push_back(easy); }

void HttpClient::abort_all() {
  while (!active_.empty()) active_.back()->abort();
}

asio::awaitable<HttpResponse> HttpClient::perform(const HttpRequest& request, BodyConsumer* body) {
  CURL* easy = static_cast<CURL*>(take_easy());
  HttpResponse response;
  if (!easy) {
    response.curl_code = CURLE_OUT_OF_MEMORY;
    response.error = "curl_easy_init failed";
    co_return response;
  }
  Transfer t(*this, easy, body);
  t.max_bytes_ = request.max_bytes >= 0 ? request.max_bytes : options_.max_bytes;
  // per request, as easy handles are reused
  curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(t.max_bytes_));
  curl_easy_setopt(easy, CURLOPT_FAILONERROR, request.fail_on_error ? 1L : 0L);
  char error_buffer[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(easy, CURLOPT_PIPEWAIT, request.url.compare(0, 8, "https://") == 0 ? 1L : 0L);
  // Method and body: back to a plain GET first, the handle may have sent anything before.
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, nullptr);  // drop the last request's body pointer
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(-1));
  curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);           // GET again (also clears NOBODY)
  curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, nullptr);
  if (request.body) {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body->size()));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body->data());
  }
  if (request.method == "HEAD")
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  else if (request.method != (request.body ? "POST" : "GET"))
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  for (const auto& h : request.headers) t.headers_ = curl_slist_append(t.headers_, h.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t.headers_);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
  if (body) {
    body->begin();
    body->set_resume([&t] { t.resume(); });
  }

  try {
    multi_->add(easy, &t);
  } catch (...) {
    t.finished_ = true;  // never started: nothing to remove or unlist
    if (body) body->set_resume(nullptr);
    give_back_easy(easy);
    throw;
  }
  t.index_ = active_.size();
  active_.push_back(&t);
  co_await t.wait();
  if (body) body->set_resume(nullptr);

  response.aborted = t.aborted_;
  response.curl_code = t.aborted_ ? CURLE_ABORTED_BY_CALLBACK : t.result_;
  response.bytes = t.bytes_;
  if ((t.too_large_ || t.consumer_failed_) && response.curl_code == CURLE_OK)
    response.curl_code = CURLE_WRITE_ERROR;  // refused data always fails the transfer
  response.too_large = t.too_large_ || t.result_ == CURLE_FILESIZE_EXCEEDED;
  if (response.curl_code != CURLE_OK) {
    if (response.too_large)
      response.error = "body larger than --max-bytes (" + std::to_string(t.max_bytes_) + " bytes)";
    else if (t.consumer_failed_ && body)
      response.error = body->failure_message();
    else
      response.error = error_buffer[0] ? error_buffer : curl_easy_strerror(static_cast<CURLcode>(response.curl_code));
    response.timed_out = t.result_ == CURLE_OPERATION_TIMEDOUT;
    response.connect_failed = is_connect_error(t.result_);
  }
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  response.status = status;
  char* final_url = nullptr;
  if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &final_url) == CURLE_OK && final_url)
    response.final_url = final_url;
  char* content_type = nullptr;
  if (curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK && content_type)
    response.content_type = content_type;
  long version = 0;
  curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
  response.http_version = http_version_name(version);
  curl_off_t total = 0, connect = 0, ttfb = 0, retry_after = -1;
  curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total);
  curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect);
  curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &ttfb);
  if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && status != 0)
    response.retry_after_s = retry_after > 0 ? retry_after : -1;  // 0 also means: no header
  if (request.want_link && status != 0) {
    curl_header* h = nullptr;
    for (size_t i = 0; curl_easy_header(easy, "Link", i, CURLH_HEADER, -1, &h) == CURLHE_OK; ++i)
      response.link += (response.link.empty() ? "" : ", ") + std::string(h->value);
  }
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, nullptr);  // t.headers_ is freed with t
  response.total_ms = total / 1000.0;
  response.connect_ms = connect / 1000.0;
  response.ttfb_ms = ttfb / 1000.0;
  give_back_easy(easy);
  co_return response;
}

}  // namespace aetl
