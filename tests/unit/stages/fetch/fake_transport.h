#pragma once
// A scripted HttpTransport for the fetch policy's tests: no socket, no curl.
#include <algorithm>
#include <chrono>
#include <deque>
#include <list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/asio.h"

#include "net/http/http_transport.h"

namespace aetl::test {

inline HttpResponse status(long code, int64_t retry_after_s = -1) {
  HttpResponse r;
  r.status = code;
  r.retry_after_s = retry_after_s;
  r.final_url = "";
  return r;
}

inline HttpResponse transport_error(int curl_code, std::string message) {
  HttpResponse r;
  r.curl_code = curl_code;
  r.error = std::move(message);
  return r;
}

/// Answers each URL with its scripted responses in turn (200 once they run out).
/// Every attempt suspends at least once, as a transfer would; with `hold` set it
/// suspends until release_all() or abort_all().
class FakeTransport final : public HttpTransport {
 public:
  explicit FakeTransport(asio::io_context& io) : io_(io) {}

  std::map<std::string, std::deque<HttpResponse>> script;
  std::map<std::string, std::string> bodies;  ///< body sent for a URL's 2xx answers
  std::vector<std::string> calls;             ///< URLs in the order attempts started
  bool hold = false;
  size_t in_flight = 0, max_in_flight = 0;
  std::map<std::string, size_t> host_in_flight, host_max_in_flight;

  asio::awaitable<HttpResponse> perform(const HttpRequest& request, BodyConsumer* body) override {
    calls.push_back(request.url);
    std::string host = host_of(request.url);
    ++in_flight;
    max_in_flight = std::max(max_in_flight, in_flight);
    host_max_in_flight[host] = std::max(host_max_in_flight[host], ++host_in_flight[host]);
    bool aborted = false;
    if (hold) {
      auto entry = held_.emplace(held_.end(), request.url, asio::steady_timer(io_, std::chrono::hours(24)));
      asio::error_code ec;
      co_await entry->second.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      held_.erase(entry);
      aborted = aborting_;
    } else {
      co_await asio::post(io_, asio::use_awaitable);
    }
    --in_flight;
    --host_in_flight[host];
    HttpResponse r;
    if (aborted) {
      r.aborted = true;
      r.curl_code = 42;
      co_return r;
    }
    auto& queue = script[request.url];
    if (queue.empty()) {
      r = status(200);
    } else {
      r = queue.front();
      queue.pop_front();
    }
    r.final_url = request.url;
    if (body) {
      body->begin();
      if (r.curl_code == 0 && bodies.count(request.url)) body->on_data(bodies[request.url]);
    }
    co_return r;
  }

  /// Lets every held attempt answer.
  void release_all() {
    for (auto& [url, t] : held_) t.cancel();
  }
  /// Lets the held attempts at `url` answer.
  void release(const std::string& url) {
    for (auto& [u, t] : held_)
      if (u == url) t.cancel();
  }
  /// Ends every held attempt as cancelled (what HttpClient::abort_all does).
  void abort_all() {
    aborting_ = true;
    release_all();
  }
  size_t held() const { return held_.size(); }

  static std::string host_of(const std::string& url) {
    size_t start = url.find("//");
    start = start == std::string::npos ? 0 : start + 2;
    return url.substr(start, url.find('/', start) - start);
  }

 private:
  asio::io_context& io_;
  std::list<std::pair<std::string, asio::steady_timer>> held_;
  bool aborting_ = false;
};

}  // namespace aetl::test
