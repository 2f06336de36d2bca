// simdjson_baseline.cpp - the hand-written ceiling for pipeline_bench.sh (E1), and
// the CSV preparer for its sqlite3 .import row (E2).
//
//   g++ -O3 -march=native -std=c++17 -o simdjson_baseline bench/simdjson_baseline.cpp -lsimdjson
//
//   simdjson_baseline [--csv] [--method lines|many] [--batch BYTES] FILE >out
//
// Default (E1): for each JSONL record with status >= 400, write
//   {"id":<id>,"url":<url>,"status":<status>,"country":<user.country>}
// copying the raw JSON tokens of the values (strings keep their escapes), in input
// order. A missing field is written as null (as jq's {id, ...} does).
// --csv (E2 preparation): every record as CSV id,url,status,country, strings
// unescaped and quoted when needed (RFC 4180), for sqlite3 .import --csv.
//
// simdjson 3.0 On-Demand, one pass over each record's fields (status comes after
// id and url, so a lookup by name would scan the record twice; the rest of a
// record is skipped once the status decides). Input is read in 16 MiB blocks,
// output goes through a 1 MiB buffer. Two ways to feed the parser:
//   --method lines  (default) memchr for '\n' and parser.iterate() each line in
//                   place: the block has SIMDJSON_PADDING spare bytes, so no copy.
//   --method many   parser.iterate_many() over all complete lines of a block.
// On the benchmark input (2-core VM, simdjson picks its icelake implementation) both ran about 0.7 s per GiB,
// within run-to-run noise of each other, so the simpler one is the default; the
// other stays selectable to re-check. (iterate_many can run stage 1 on a second
// thread when compiled with -pthread; that is left out: the bench compiles without
// it, and the ceiling is meant to be single-threaded.)
// Invalid JSON ends the run with exit status 2 and a message naming the line.
#include <simdjson.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

using namespace simdjson;

namespace {

// ---------------------------------------------------------------- output
class Out {
 public:
  explicit Out(size_t cap) : buf_(cap) {}
  ~Out() { flush(); }
  void put(std::string_view s) {
    if (s.size() > buf_.size() - len_) {
      flush();
      if (s.size() > buf_.size()) { write_all(s.data(), s.size()); return; }
    }
    std::memcpy(buf_.data() + len_, s.data(), s.size());
    len_ += s.size();
  }
  void put(char c) {
    if (len_ == buf_.size()) flush();
    buf_[len_++] = c;
  }
  void flush() {
    write_all(buf_.data(), len_);
    len_ = 0;
  }

 private:
  static void write_all(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(1, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        std::perror("simdjson_baseline: write");
        std::exit(1);
      }
      p += w;
      n -= size_t(w);
    }
  }
  std::vector<char> buf_;
  size_t len_ = 0;
};

// raw_json_token() includes trailing whitespace up to the next token
std::string_view rtrim(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

void put_csv_field(Out& out, std::string_view s) {
  bool quote = s.find_first_of(",\"\r\n") != std::string_view::npos;
  if (!quote) { out.put(s); return; }
  out.put('"');
  size_t start = 0;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '"') {
      out.put(s.substr(start, i + 1 - start));
      out.put('"');
      start = i + 1;
    }
  }
  out.put(s.substr(start));
  out.put('"');
}

// ---------------------------------------------------------------- per record
struct Stats {
  size_t records = 0;
  size_t written = 0;
};

[[noreturn]] void die(const char* what, error_code e, size_t line) {
  std::fprintf(stderr, "simdjson_baseline: line %zu: %s: %s\n", line, what, error_message(e));
  std::exit(2);
}

template <class Doc>
void process(Doc& doc, bool csv, Out& out, Stats& st, size_t line) {
  ondemand::object obj;
  if (auto e = doc.get_object().get(obj)) die("not an object", e, line);
  st.records++;
  if (csv) {
    // id,url,status,country - every record; values unescaped
    std::string_view id = "", status = "";
    std::string url, country;
    bool have_url = false, have_country = false;
    for (auto field : obj) {
      ondemand::raw_json_string key;
      if (auto e = field.key().get(key)) die("key", e, line);
      ondemand::value v;
      if (auto e = field.value().get(v)) die("value", e, line);
      if (key.unsafe_is_equal("id")) {
        id = v.raw_json_token();
        id = rtrim(id);
        if (id == "null") id = "";
      } else if (key.unsafe_is_equal("url")) {
        // unescape now: the next field reuses the string buffer only after this copy
        std::string_view s;
        ondemand::json_type t;
        if (auto e = v.type().get(t)) die("url", e, line);
        if (t == ondemand::json_type::string) {
          if (auto e = v.get_string().get(s)) die("url", e, line);
          url.assign(s);
          have_url = true;
        }
      } else if (key.unsafe_is_equal("status")) {
        status = v.raw_json_token();
        status = rtrim(status);
        if (status == "null") status = "";
      } else if (key.unsafe_is_equal("user")) {
        ondemand::object user;
        if (v.get_object().get(user) == SUCCESS) {
          for (auto uf : user) {
            ondemand::raw_json_string ukey;
            if (auto e = uf.key().get(ukey)) die("user key", e, line);
            if (ukey.unsafe_is_equal("country")) {
              ondemand::value cv;
              if (auto e = uf.value().get(cv)) die("country", e, line);
              ondemand::json_type t;
              if (auto e = cv.type().get(t)) die("country", e, line);
              if (t == ondemand::json_type::string) {
                std::string_view s;
                if (auto e = cv.get_string().get(s)) die("country", e, line);
                country.assign(s);
                have_country = true;
              }
            }
          }
        }
      }
    }
    out.put(id);
    out.put(',');
    if (have_url) put_csv_field(out, url);
    out.put(',');
    out.put(status);
    out.put(',');
    if (have_country) put_csv_field(out, country);
    out.put('\n');
    st.written++;
    return;
  }

  // E1: status >= 400 -> {"id":..,"url":..,"status":..,"country":..}, raw tokens
  std::string_view id = "null", url = "null", status = "null", country = "null";
  bool have_status = false, keep = false;
  for (auto field : obj) {
    ondemand::raw_json_string key;
    if (auto e = field.key().get(key)) die("key", e, line);
    ondemand::value v;
    if (auto e = field.value().get(v)) die("value", e, line);
    if (key.unsafe_is_equal("id")) {
      id = v.raw_json_token();
    } else if (key.unsafe_is_equal("url")) {
      url = v.raw_json_token();
    } else if (key.unsafe_is_equal("status")) {
      status = v.raw_json_token();
      have_status = true;
      double d;
      // jq orders null < false < true < numbers < strings < arrays < objects
      ondemand::json_type t;
      if (auto e = v.type().get(t)) die("status", e, line);
      if (t == ondemand::json_type::number) {
        if (auto e = v.get_double().get(d)) die("status", e, line);
        keep = d >= 400;
      } else {
        keep = t == ondemand::json_type::string || t == ondemand::json_type::array || t == ondemand::json_type::object;
      }
      if (!keep) return;  // the rest of the record is skipped by the next iterate
    } else if (key.unsafe_is_equal("user")) {
      ondemand::object user;
      if (v.get_object().get(user) == SUCCESS) {
        for (auto uf : user) {
          ondemand::raw_json_string ukey;
          if (auto e = uf.key().get(ukey)) die("user key", e, line);
          if (ukey.unsafe_is_equal("country")) {
            if (auto e = uf.value().raw_json_token().get(country)) die("country", e, line);
          }
        }
      }
    }
  }
  if (!have_status || !keep) return;  // missing status: null >= 400 is false
  out.put("{\"id\":");
  out.put(rtrim(id));
  out.put(",\"url\":");
  out.put(rtrim(url));
  out.put(",\"status\":");
  out.put(rtrim(status));
  out.put(",\"country\":");
  out.put(rtrim(country));
  out.put("}\n");
  st.written++;
}

// ---------------------------------------------------------------- input
class Reader {
 public:
  Reader(int fd, size_t block) : fd_(fd), block_(block), buf_(block + SIMDJSON_PADDING) {}
  // Refill after keeping [keep_from, len) at the front. Returns false at EOF with no data left.
  bool fill(size_t keep_from) {
    size_t keep = len_ - keep_from;
    std::memmove(buf_.data(), buf_.data() + keep_from, keep);
    len_ = keep;
    if (len_ == block_) grow();
    while (len_ < block_ && !eof_) {
      ssize_t r = ::read(fd_, buf_.data() + len_, block_ - len_);
      if (r < 0) {
        if (errno == EINTR) continue;
        std::perror("simdjson_baseline: read");
        std::exit(1);
      }
      if (r == 0) { eof_ = true; break; }
      len_ += size_t(r);
    }
    return len_ > 0;
  }
  void grow() {  // a line longer than a block
    block_ *= 2;
    buf_.resize(block_ + SIMDJSON_PADDING);
  }
  char* data() { return buf_.data(); }
  size_t len() const { return len_; }
  size_t capacity() const { return buf_.size(); }
  bool eof() const { return eof_; }
  // Make the last line of the file end with '\n' (a final line without one).
  void terminate() {
    if (len_ > 0 && buf_[len_ - 1] != '\n') {
      if (len_ + 1 + SIMDJSON_PADDING > buf_.size()) buf_.resize(len_ + 1 + SIMDJSON_PADDING);
      buf_[len_++] = '\n';
    }
  }

 private:
  int fd_;
  size_t block_;
  std::vector<char> buf_;
  size_t len_ = 0;
  bool eof_ = false;
};

bool blank(const char* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return false;
  return true;
}

// End of the complete lines in the block: one past the last '\n' (0 if none).
size_t complete_end(Reader& in) {
  if (in.eof()) in.terminate();
  const char* d = in.data();
  const void* nl = memrchr(d, '\n', in.len());
  return nl ? size_t(static_cast<const char*>(nl) - d) + 1 : 0;
}

void run_lines(Reader& in, bool csv, Out& out, Stats& st) {
  ondemand::parser parser;
  size_t line = 0, consumed = 0;
  while (in.fill(consumed)) {
    size_t end = complete_end(in);
    if (end == 0) {  // no '\n' in a full block: fill() grows it
      if (in.eof()) break;
      consumed = 0;
      continue;
    }
    char* d = in.data();
    size_t pos = 0;
    while (pos < end) {
      const char* nl = static_cast<const char*>(std::memchr(d + pos, '\n', end - pos));
      size_t n = size_t(nl - (d + pos));
      line++;
      if (n > 0 && !blank(d + pos, n)) {
        ondemand::document doc;
        if (auto e = parser.iterate(d + pos, n, in.capacity() - pos).get(doc)) die("parse", e, line);
        process(doc, csv, out, st, line);
      }
      pos += n + 1;
    }
    consumed = end;
    if (in.eof() && end == in.len()) break;
  }
}

void run_many(Reader& in, bool csv, Out& out, Stats& st, size_t batch) {
  ondemand::parser parser;
  size_t line = 0, consumed = 0;  // "line" here counts documents
  while (in.fill(consumed)) {
    size_t end = complete_end(in);
    if (end == 0) {  // no '\n' in a full block: fill() grows it
      if (in.eof()) break;
      consumed = 0;
      continue;
    }
    ondemand::document_stream docs;
    if (auto e = parser.iterate_many(in.data(), end, batch).get(docs)) die("iterate_many", e, line);
    for (auto it = docs.begin(); it != docs.end(); ++it) {
      line++;
      ondemand::document_reference doc;
      if (auto e = (*it).get(doc)) die("parse", e, line);
      process(doc, csv, out, st, line);
    }
    if (docs.truncated_bytes() != 0) {
      std::fprintf(stderr, "simdjson_baseline: %zu bytes of an incomplete document near record %zu\n",
                   docs.truncated_bytes(), line);
      std::exit(2);
    }
    consumed = end;
    if (in.eof() && end == in.len()) break;
  }
}

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: simdjson_baseline [--csv] [--method lines|many] [--batch BYTES] [--stats] FILE|-\n");
  std::exit(64);
}

}  // namespace

int main(int argc, char** argv) {
  bool csv = false, stats = false;
  std::string method = "lines", path;
  size_t batch = 1 << 20;
  size_t block = 16 << 20;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--csv") csv = true;
    else if (a == "--stats") stats = true;
    else if (a == "--method" && i + 1 < argc) method = argv[++i];
    else if (a == "--batch" && i + 1 < argc) batch = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--block" && i + 1 < argc) block = std::strtoull(argv[++i], nullptr, 10);
    else if (!a.empty() && a[0] == '-' && a != "-") usage();
    else path = a;
  }
  if (path.empty() || (method != "lines" && method != "many") || batch < 4096 || block < 4096) usage();
  int fd = path == "-" ? 0 : ::open(path.c_str(), O_RDONLY);
  if (fd < 0) { std::perror(path.c_str()); return 1; }
#ifdef POSIX_FADV_SEQUENTIAL
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  Reader in(fd, block);
  Out out(1 << 20);
  Stats st;
  if (method == "lines") run_lines(in, csv, out, st);
  else run_many(in, csv, out, st, batch);
  out.flush();
  if (stats)
    std::fprintf(stderr, "simdjson_baseline: %s, %s: %zu records, %zu written\n",
                 simdjson::get_active_implementation()->name().c_str(), method.c_str(), st.records, st.written);
  return 0;
}
