#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "engine/asio.h"

#include "engine/blocking_pool.h"
#include "stages/fetch/body_store.h"
#include "tests/unit/test_support.h"

using aetl::body_path_segments;
using aetl::BodyConsumer;
using aetl::BodyStore;
using aetl::UrlParts;
using Segments = std::vector<std::string>;
namespace fs = std::filesystem;

namespace {

UrlParts url(std::string scheme, std::string host, std::string port, std::string path, std::string query = "") {
  UrlParts u;
  u.scheme = std::move(scheme);
  u.host = std::move(host);
  u.port = std::move(port);
  u.path = std::move(path);
  u.query = std::move(query);
  return u;
}

bool allowed_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("._~%+=,@-").find(c) != std::string_view::npos;
}

/// The promises every segment list keeps, whatever the URL.
void check_safe(const Segments& segments) {
  REQUIRE_FALSE(segments.empty());
  CHECK(segments.size() >= 2);  // a host and a file name at least
  for (const auto& s : segments) {
    INFO("segment '" << s << "'");
    CHECK_FALSE(s.empty());
    CHECK(s != ".");
    CHECK(s != "..");
    CHECK(s.find('/') == std::string::npos);
    CHECK(s.find('\0') == std::string::npos);
    CHECK(s.size() <= 200);
    CHECK(std::all_of(s.begin(), s.end(), allowed_char));
  }
}

}  // namespace

// ---- body_path_segments ------------------------------------------------------

TEST_CASE("the path for a URL is its host followed by its path segments", "[body_store][segments]") {
  CHECK(body_path_segments(url("https", "example.com", "443", "/a/b.html")) == Segments{"example.com", "a", "b.html"});
  CHECK(body_path_segments(url("http", "example.com", "80", "/data.json")) == Segments{"example.com", "data.json"});
}

TEST_CASE("a default port is left out and any other port is added to the host", "[body_store][segments]") {
  CHECK(body_path_segments(url("http", "h.example", "80", "/x"))[0] == "h.example");
  CHECK(body_path_segments(url("https", "h.example", "443", "/x"))[0] == "h.example");
  CHECK(body_path_segments(url("http", "h.example", "8080", "/x"))[0] == "h.example_8080");
  CHECK(body_path_segments(url("https", "h.example", "80", "/x"))[0] == "h.example_80");
  CHECK(body_path_segments(url("http", "h.example", "443", "/x"))[0] == "h.example_443");
}

TEST_CASE("a path ending in '/' gets index.html", "[body_store][segments]") {
  CHECK(body_path_segments(url("https", "example.com", "443", "/")) == Segments{"example.com", "index.html"});
  CHECK(body_path_segments(url("https", "example.com", "443", "")) == Segments{"example.com", "index.html"});
  CHECK(body_path_segments(url("https", "example.com", "443", "/docs/")) ==
        Segments{"example.com", "docs", "index.html"});
}

TEST_CASE("empty path segments are dropped", "[body_store][segments]") {
  CHECK(body_path_segments(url("https", "example.com", "443", "//a///b")) == Segments{"example.com", "a", "b"});
}

TEST_CASE("the query is kept on the file name, %-encoded", "[body_store][segments]") {
  CHECK(body_path_segments(url("https", "example.com", "443", "/search", "q=a b&x=/y")) ==
        Segments{"example.com", "search%3Fq=a%20b%26x=%2Fy"});
  CHECK(body_path_segments(url("https", "example.com", "443", "/dir/", "p=1")) ==
        Segments{"example.com", "dir", "index.html%3Fp=1"});
  // Different queries give different names.
  CHECK(body_path_segments(url("https", "example.com", "443", "/s", "p=1")) !=
        body_path_segments(url("https", "example.com", "443", "/s", "p=2")));
}

TEST_CASE("bytes outside the safe set are %-encoded", "[body_store][segments]") {
  CHECK(body_path_segments(url("https", "example.com", "443", "/caf\xC3\xA9/a:b*c")) ==
        Segments{"example.com", "caf%C3%A9", "a%3Ab%2Ac"});
  CHECK(body_path_segments(url("https", "example.com", "443", "/already%20encoded")) ==
        Segments{"example.com", "already%20encoded"});
  CHECK(body_path_segments(url("https", "example.com", "443", "/back\\slash")) ==
        Segments{"example.com", "back%5Cslash"});
}

TEST_CASE("%2e%2e stays a harmless name", "[body_store][segments]") {
  auto s = body_path_segments(url("https", "example.com", "443", "/%2e%2e/%2E%2E/x"));
  CHECK(s == Segments{"example.com", "%2e%2e", "%2E%2E", "x"});
  check_safe(s);
}

TEST_CASE("no segment is '.' or '..' even if the path holds them", "[body_store][segments]") {
  // check_url removes dot segments, but the function must not rely on it.
  auto s = body_path_segments(url("https", "example.com", "443", "/../../etc/./passwd/.."));
  CHECK(s == Segments{"example.com", "%2E%2E", "%2E%2E", "etc", "%2E", "passwd", "%2E%2E"});
  check_safe(s);
  check_safe(body_path_segments(url("https", "..", "443", "/..")));
  check_safe(body_path_segments(url("https", ".", "443", "/.")));
}

TEST_CASE("no segment contains '/', whatever the host, path or query", "[body_store][segments]") {
  for (const auto& u : {url("http", "a/b", "80", "/x"), url("http", "h", "80", "/x", "a/b/../c"),
                        url("http", "h", "80", "/x", "/"), url("http", "h", "1/2", "/x"),
                        url("http", "[::1]", "8080", "/ok"), url("http", "h", "80", std::string("/nul\0byte", 9))}) {
    check_safe(body_path_segments(u));
  }
}

TEST_CASE("overlong segments are shortened with a hash", "[body_store][segments]") {
  std::string long_a(500, 'a');
  auto s = body_path_segments(url("https", "example.com", "443", "/" + long_a + "/file"));
  check_safe(s);
  REQUIRE(s.size() == 3);
  CHECK(s[1].size() <= 200);
  CHECK(s[1].rfind(std::string(100, 'a'), 0) == 0);
  CHECK(s[1].find('~') != std::string::npos);
  CHECK(s[2] == "file");

  // Two long names that differ only at the end stay different.
  auto t1 = body_path_segments(url("https", "example.com", "443", "/" + long_a + "1"));
  auto t2 = body_path_segments(url("https", "example.com", "443", "/" + long_a + "2"));
  CHECK(t1 != t2);

  // A long query, and a segment that grows past the limit only once encoded.
  check_safe(body_path_segments(url("https", "example.com", "443", "/q", std::string(1000, 'z'))));
  check_safe(body_path_segments(url("https", "example.com", "443", "/" + std::string(150, ' '))));
  check_safe(body_path_segments(url("https", std::string(300, 'h'), "443", "/")));
}

// ---- BodyStore end to end ----------------------------------------------------

namespace {

/// Streams `chunks` into a new body file and commits it under `u`; returns the
/// path relative to DIR. After accepted_pause it waits for the resume.
asio::awaitable<std::string> save(BodyStore& store, UrlParts u, std::vector<std::string> chunks,
                                  std::string owner = {}) {
  auto file = co_await store.open();
  asio::steady_timer wake(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
  file->set_resume([&wake] { wake.cancel(); });
  file->begin();
  for (const auto& chunk : chunks) {
    auto verdict = file->on_data(chunk);
    if (verdict == BodyConsumer::Verdict::accepted) continue;
    if (verdict != BodyConsumer::Verdict::accepted_pause) throw std::runtime_error(file->failure_message());
    wake.expires_at(asio::steady_timer::time_point::max());
    asio::error_code ec;
    co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));  // taken; wait for the disk
  }
  std::string path = co_await file->commit(u, owner);
  co_return path;
}

/// A first attempt that is abandoned with begin(), then a second one.
asio::awaitable<std::string> save_after_retry(BodyStore& store, UrlParts u, std::string first, std::string second) {
  auto file = co_await store.open();
  file->begin();
  if (file->on_data(first) != BodyConsumer::Verdict::accepted) throw std::runtime_error("first attempt refused");
  file->begin();
  if (file->on_data(second) != BodyConsumer::Verdict::accepted) throw std::runtime_error("second attempt refused");
  std::string path = co_await file->commit(u);
  co_return path;
}

asio::awaitable<void> open_and_discard(BodyStore& store, std::string data) {
  auto file = co_await store.open();
  file->begin();
  file->on_data(data);
  co_await file->discard();
}

asio::awaitable<void> open_and_drop(BodyStore& store, std::string data) {
  auto file = co_await store.open();
  file->begin();
  file->on_data(data);
}  // the File is destroyed without commit or discard

/// One output directory with its loop and pool.
struct Fixture {
  aetl::test::TempDir tmp;
  std::string dir = tmp / "out";
  asio::io_context io;
  aetl::BlockingPool pool{2};
  std::unique_ptr<BodyStore> store;

  explicit Fixture(bool durable = false, BodyStore::TempFiles temps = BodyStore::TempFiles::unnamed_if_possible) {
    store = std::make_unique<BodyStore>(dir, io, pool, durable, temps);
  }

  std::string save(const UrlParts& u, std::vector<std::string> chunks, std::string owner = {}) {
    auto f = asio::co_spawn(io, ::save(*store, u, std::move(chunks), std::move(owner)), asio::use_future);
    io.restart();
    io.run();
    return f.get();
  }
  std::string save(const UrlParts& u, std::string body) { return save(u, std::vector<std::string>{std::move(body)}); }

  template <class T>
  T run(asio::awaitable<T> a) {
    auto f = asio::co_spawn(io, std::move(a), asio::use_future);
    io.restart();
    io.run();
    return f.get();
  }

  std::string partial_dir() const { return dir + "/.afetch-partial"; }
  /// No partial file left (the run's own directory for them may exist).
  bool partial_empty() const {
    if (!fs::is_directory(partial_dir())) return false;
    for (auto& e : fs::recursive_directory_iterator(partial_dir()))
      if (!e.is_directory()) return false;
    return true;
  }
};

/// The file tests run with either kind of temporary file.
struct UnnamedTemps {
  static constexpr auto temps = BodyStore::TempFiles::unnamed_if_possible;
};
struct NamedTemps {
  static constexpr auto temps = BodyStore::TempFiles::named;
};

std::vector<std::string> list_tree(const std::string& root) {
  std::vector<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root)) out.push_back(fs::relative(e.path(), root).string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEMPLATE_TEST_CASE("a body is saved under DIR at its URL's path", "[body_store][files]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  auto u = url("https", "example.com", "443", "/a/b.txt");
  CHECK(fx.save(u, "hello") == "example.com/a/b.txt");
  CHECK(aetl::test::read_file(fx.dir + "/example.com/a/b.txt") == "hello");
  CHECK(fx.partial_empty());
}

TEMPLATE_TEST_CASE("saving two bodies for the same URL keeps both: the second gets NAME.1", "[body_store][files]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  auto u = url("https", "example.com", "443", "/a/b.txt");
  CHECK(fx.save(u, "first") == "example.com/a/b.txt");
  CHECK(fx.save(u, "second") == "example.com/a/b.txt.1");
  CHECK(fx.save(u, "third") == "example.com/a/b.txt.2");
  CHECK(aetl::test::read_file(fx.dir + "/example.com/a/b.txt") == "first");
  CHECK(aetl::test::read_file(fx.dir + "/example.com/a/b.txt.1") == "second");
  CHECK(aetl::test::read_file(fx.dir + "/example.com/a/b.txt.2") == "third");
  CHECK(fx.partial_empty());
}

TEMPLATE_TEST_CASE("the partial-file directory is empty afterwards and removed with the store", "[body_store][files]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  fx.save(url("http", "h", "80", "/one"), "1");
  fx.save(url("http", "h", "80", "/two"), std::vector<std::string>{"t", "w", "o"});
  CHECK(fx.partial_empty());
  fx.store.reset();
  fx.pool.join();
  CHECK_FALSE(fs::exists(fx.partial_dir()));
  CHECK(list_tree(fx.dir) == std::vector<std::string>{"h", "h/one", "h/two"});
}

TEMPLATE_TEST_CASE("a symlink planted in DIR pointing outside is not followed", "[body_store][files][security]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  std::string outside = fx.tmp / "outside";
  fs::create_directory(outside);
  // The host directory is a symlink to a directory outside DIR.
  fs::create_directory_symlink(outside, fx.dir + "/example.com");

  std::string rel = fx.save(url("https", "example.com", "443", "/x.txt"), "secret");
  CHECK(fs::is_empty(outside));
  CHECK(rel.find('/') == std::string::npos);  // flattened next to the link, inside DIR
  CHECK(rel == "example.com%2Fx.txt");
  std::string landed = fx.dir + "/" + rel;
  CHECK(fs::is_regular_file(fs::symlink_status(landed)));
  CHECK(fs::canonical(landed).parent_path() == fs::canonical(fx.dir));
  CHECK(aetl::test::read_file(landed) == "secret");
  CHECK(fx.partial_empty());
}

TEMPLATE_TEST_CASE("a symlink planted deeper in DIR is not followed either", "[body_store][files][security]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  std::string outside = fx.tmp / "outside";
  fs::create_directory(outside);
  fs::create_directories(fx.dir + "/example.com");
  fs::create_directory_symlink(outside, fx.dir + "/example.com/sub");

  std::string rel = fx.save(url("https", "example.com", "443", "/sub/deeper/file"), "data");
  CHECK(fs::is_empty(outside));
  CHECK(rel == "example.com/sub%2Fdeeper%2Ffile");
  CHECK(aetl::test::read_file(fx.dir + "/" + rel) == "data");
}

TEMPLATE_TEST_CASE("a symlink planted at the file's own name is neither followed nor replaced", "[body_store][files][security]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  std::string outside = fx.tmp / "outside";
  fs::create_directory(outside);
  fs::create_directories(fx.dir + "/example.com");
  fs::create_symlink(outside + "/target", fx.dir + "/example.com/index.html");  // dangling

  std::string rel = fx.save(url("https", "example.com", "443", "/"), "page");
  CHECK(rel == "example.com/index.html.1");
  CHECK_FALSE(fs::exists(outside + "/target"));
  CHECK(fs::is_symlink(fx.dir + "/example.com/index.html"));
  CHECK(aetl::test::read_file(fx.dir + "/" + rel) == "page");
}

TEMPLATE_TEST_CASE("a file in the way of a directory makes the name flat", "[body_store][files]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  CHECK(fx.save(url("http", "h", "80", "/a"), "file a") == "h/a");
  CHECK(fx.save(url("http", "h", "80", "/a/b"), "file a/b") == "h/a%2Fb");
  CHECK(aetl::test::read_file(fx.dir + "/h/a") == "file a");
  CHECK(aetl::test::read_file(fx.dir + "/h/a%2Fb") == "file a/b");
}

TEMPLATE_TEST_CASE("a large body streamed in many chunks is saved byte for byte", "[body_store][files]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  std::string body;
  for (size_t i = 0; i < 1'500'000; ++i) body.push_back(static_cast<char>((i * 7 + i / 251) & 0xff));
  std::vector<std::string> chunks;
  for (size_t at = 0; at < body.size(); at += 100'000) chunks.push_back(body.substr(at, 100'000));

  std::string rel = fx.save(url("https", "cdn.example", "443", "/big.bin"), chunks);
  CHECK(rel == "cdn.example/big.bin");
  std::string saved = aetl::test::read_file(fx.dir + "/" + rel);
  CHECK(saved.size() == body.size());
  CHECK(saved == body);
  CHECK(fx.partial_empty());
}

TEMPLATE_TEST_CASE("begin() starts the body over for a retry", "[body_store][files]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  std::string first(300'000, 'x');  // big enough to be written before the retry
  std::string rel = fx.run(save_after_retry(*fx.store, url("http", "h", "80", "/r"), first, "second try"));
  CHECK(aetl::test::read_file(fx.dir + "/" + rel) == "second try");
  CHECK(fx.partial_empty());
}

TEMPLATE_TEST_CASE("an empty body is saved as an empty file", "[body_store][files]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  std::string rel = fx.save(url("http", "h", "80", "/empty"), std::vector<std::string>{});
  CHECK(rel == "h/empty");
  CHECK(fs::file_size(fx.dir + "/h/empty") == 0);
}

TEMPLATE_TEST_CASE("a discarded body leaves nothing behind", "[body_store][files]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  fx.run(open_and_discard(*fx.store, "unwanted"));
  CHECK(fx.partial_empty());
  fx.store.reset();
  fx.pool.join();
  CHECK(list_tree(fx.dir).empty());
}

TEMPLATE_TEST_CASE("a body dropped without commit or discard is cleaned up", "[body_store][files]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  fx.run(open_and_drop(*fx.store, "dropped"));
  fx.pool.join();  // the clean-up runs on the pool
  CHECK(fx.partial_empty());
}

TEMPLATE_TEST_CASE("a durable store saves the same way", "[body_store][files]", UnnamedTemps, NamedTemps) {
  Fixture fx(true, TestType::temps);
  auto u = url("https", "example.com", "443", "/d");
  CHECK(fx.save(u, "one") == "example.com/d");
  CHECK(fx.save(u, "two") == "example.com/d.1");
  CHECK(aetl::test::read_file(fx.dir + "/example.com/d.1") == "two");
}

TEST_CASE("an output directory that cannot be created is a usage error", "[body_store]") {
  aetl::test::TempDir tmp;
  aetl::test::write_file(tmp / "file", "x");
  asio::io_context io;
  aetl::BlockingPool pool(1);
  CHECK_THROWS(BodyStore(tmp / "file/sub", io, pool, false));
  CHECK_THROWS(BodyStore(tmp / "file", io, pool, false));
}

TEST_CASE("missing parents of DIR are created, as mkdir -p does", "[body_store]") {
  aetl::test::TempDir tmp;
  asio::io_context io;
  aetl::BlockingPool pool(1);
  BodyStore store(tmp / "a/b/c", io, pool, false);
  CHECK(fs::is_directory(tmp / "a/b/c"));
}

TEMPLATE_TEST_CASE("in a resumable store a request's body replaces the file it left; another request's gets NAME.1",
          "[body_store][files][resume]", UnnamedTemps, NamedTemps) {
  Fixture fx(true, TestType::temps);
  auto u = url("http", "h", "80", "/same");
  CHECK(fx.save(u, {"first"}, "GET http://h/same") == "h/same");
  CHECK(fx.save(u, {"again"}, "GET http://h/same") == "h/same");  // fetched again after a kill
  CHECK(aetl::test::read_file(fx.dir + "/h/same") == "again");
  CHECK(fx.save(u, {"other"}, "GET http://h/same%3F") == "h/same.1");  // same name, another URL
  CHECK(fx.save(u, {"other2"}, "GET http://h/same%3F") == "h/same.1");
  CHECK(aetl::test::read_file(fx.dir + "/h/same") == "again");
  CHECK(aetl::test::read_file(fx.dir + "/h/same.1") == "other2");
  CHECK(list_tree(fx.dir + "/h") == std::vector<std::string>{"same", "same.1"});
  CHECK(fx.partial_empty());
}

TEMPLATE_TEST_CASE("a store that is not resumable never replaces a file, whoever saved it", "[body_store][files][resume]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  auto u = url("http", "h", "80", "/same");
  CHECK(fx.save(u, {"first"}, "GET http://h/same") == "h/same");
  CHECK(fx.save(u, {"again"}, "GET http://h/same") == "h/same.1");
}

TEMPLATE_TEST_CASE("a store cleans the partial files of dead runs and keeps those of live ones", "[body_store][files][resume]", UnnamedTemps, NamedTemps) {
  aetl::test::TempDir tmp;
  std::string partial = tmp / "out/.afetch-partial";
  fs::create_directories(partial + "/run-1-dead");
  fs::create_directories(partial + "/run-2-live");
  aetl::test::write_file(partial + "/run-1-dead/1.part", "left by a kill -9");
  aetl::test::write_file(partial + "/run-2-live/1.part", "still being written");
  aetl::test::write_file(partial + "/999999999-1.part", "older version, process gone");
  std::string mine = partial + "/" + std::to_string(::getpid()) + "-1.part";
  aetl::test::write_file(mine, "older version, process alive");
  int live = ::open((partial + "/run-2-live").c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(live >= 0);
  REQUIRE(::flock(live, LOCK_EX) == 0);  // as its run holds it

  asio::io_context io;
  aetl::BlockingPool pool(1);
  auto store = std::make_unique<BodyStore>(tmp / "out", io, pool, false);
  CHECK_FALSE(fs::exists(partial + "/run-1-dead"));
  CHECK_FALSE(fs::exists(partial + "/999999999-1.part"));
  CHECK(fs::exists(partial + "/run-2-live/1.part"));
  CHECK(fs::exists(mine));
  store.reset();
  CHECK(fs::exists(partial + "/run-2-live/1.part"));
  ::close(live);
}

TEMPLATE_TEST_CASE("a burst of data while a write runs is taken whole, none handed back to curl, and saved in order",
          "[body_store][files]", UnnamedTemps, NamedTemps) {
  // A compressed body decoded from one read arrives with no chance to wait: every
  // chunk must be taken (curl keeps nothing), and the bytes must land in order.
  Fixture fx(false, TestType::temps);
  auto run = [&]() -> asio::awaitable<std::string> {
    auto file = co_await fx.store->open();
    file->set_resume([] {});
    file->begin();
    std::string body;
    for (size_t i = 0; i < 1280; ++i) {  // 20 MiB in 16 KiB pieces, without yielding
      std::string piece(16384, static_cast<char>('a' + i % 26));
      auto verdict = file->on_data(piece);
      if (verdict != BodyConsumer::Verdict::accepted && verdict != BodyConsumer::Verdict::accepted_pause)
        throw std::runtime_error("piece " + std::to_string(i) + " refused");
      body += piece;
    }
    std::string path = co_await file->commit(url("http", "h", "80", "/burst"));
    co_return path == "h/burst" && aetl::test::read_file(fx.dir + "/h/burst") == body ? "same" : "differs";
  };
  CHECK(fx.run<std::string>(run()) == "same");
  CHECK(fx.partial_empty());
}

// ---- out of file descriptors --------------------------------------------------

namespace {

/// Takes every free file descriptor (under a lowered RLIMIT_NOFILE) until release()
/// or destruction, which also restores the limit.
struct FdHog {
  rlimit saved{};
  std::vector<int> fds;
  FdHog() {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    rlimit low = saved;
    if (low.rlim_cur > 512) low.rlim_cur = 512;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    int base = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(base >= 0);
    fds.push_back(base);
    for (;;) {
      int fd = ::fcntl(base, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) break;
      fds.push_back(fd);
    }
    REQUIRE(errno == EMFILE);
  }
  void release() {
    for (int fd : fds) ::close(fd);
    fds.clear();
    ::setrlimit(RLIMIT_NOFILE, &saved);
  }
  ~FdHog() { release(); }
};

std::string pattern(size_t n, size_t seed) {
  std::string s;
  s.reserve(n);
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>((i * 13 + seed + i / 509) & 0xff));
  return s;
}

/// Writes `first` (over one chunk: its write creates the temporary file) while out of
/// descriptors, then `second`, frees them, writes `third` and commits.
asio::awaitable<std::string> save_through_fd_shortage(BodyStore& store, FdHog& hog, UrlParts u, std::string first,
                                                      std::string second, std::string third) {
  auto file = co_await store.open();
  file->begin();
  if (file->on_data(first) != BodyConsumer::Verdict::accepted) throw std::runtime_error("first chunk refused");
  co_await file->settle();  // the create failed with EMFILE: the data is kept
  if (file->failed()) throw std::runtime_error(file->failure_message());
  if (file->on_data(second) != BodyConsumer::Verdict::accepted) throw std::runtime_error("second chunk refused");
  co_await file->settle();  // a second try, out of descriptors still
  if (file->failed()) throw std::runtime_error(file->failure_message());
  hog.release();
  if (file->on_data(third) != BodyConsumer::Verdict::accepted) throw std::runtime_error("third chunk refused");
  std::string path = co_await file->commit(u);
  co_return path;
}

/// Writes `body` (over one chunk) and commits while out of descriptors: commit must
/// throw a transient BodyStoreError naming the temporary file; after the descriptors
/// are freed a second commit saves the whole body.
asio::awaitable<std::string> commit_through_fd_shortage(BodyStore& store, FdHog& hog, UrlParts u, std::string body,
                                                        std::string& first_error) {
  auto file = co_await store.open();
  file->begin();
  if (file->on_data(body) != BodyConsumer::Verdict::accepted) throw std::runtime_error("body refused");
  co_await file->settle();
  try {
    co_await file->commit(u);
    first_error = "commit succeeded while out of descriptors";
  } catch (const aetl::BodyStoreError& e) {
    first_error = e.what();
    if (!e.transient()) first_error = "not transient: " + first_error;
  }
  hog.release();
  std::string path = co_await file->commit(u);
  co_return path;
}

}  // namespace

TEMPLATE_TEST_CASE("a large body whose temporary file cannot be created for want of descriptors is kept and saved later",
          "[body_store][files][emfile]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  std::string first = pattern(300'000, 1), second = pattern(270'000, 2), third = pattern(5'000, 3);
  std::string rel;
  fx.save(url("http", "h", "80", "/warm"), pattern(300'000, 0));  // asio makes its reactor's descriptors lazily
  {
    FdHog hog;
    rel = fx.run(save_through_fd_shortage(*fx.store, hog, url("http", "h", "80", "/big"), first, second, third));
  }
  CHECK(rel == "h/big");
  CHECK(aetl::test::read_file(fx.dir + "/h/big") == first + second + third);
  CHECK(fx.partial_empty());
}

TEMPLATE_TEST_CASE("commit out of descriptors throws a transient error naming the temporary file, and a retry saves the body",
          "[body_store][files][emfile]", UnnamedTemps, NamedTemps) {
  Fixture fx(false, TestType::temps);
  std::string body = pattern(400'000, 7);
  std::string first_error, rel;
  fx.save(url("http", "h", "80", "/warm"), pattern(300'000, 0));  // asio makes its reactor's descriptors lazily
  {
    FdHog hog;
    rel = fx.run(commit_through_fd_shortage(*fx.store, hog, url("http", "h", "80", "/c"), body, first_error));
  }
  INFO(first_error);
  CHECK(first_error.find(fx.dir + "/.afetch-partial/run-") == 0);
  CHECK(first_error.find(".part: Too many open files") != std::string::npos);
  CHECK(rel == "h/c");
  CHECK(aetl::test::read_file(fx.dir + "/h/c") == body);
  CHECK(fx.partial_empty());
}
