// The `lines` source: records from the lines of files, globs or stdin.
//   source:
//     lines: {paths: ["logs/*.jsonl", "more.jsonl.gz"], format: json}
// Inputs are read in order (globs sorted bytewise), `.gz` decompressed on the fly,
// a resumed run seeks to its checkpoint and skips lines already handled.
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <spdlog/spdlog.h>

#include "cli/errors.h"
#include "pipeline/blocking_pool.h"
#include "pipeline/checkpoint.h"
#include "pipeline/http/http_client.h"
#include "pipeline/http/url_check.h"
#include "pipeline/run/wakeup.h"
#include "pipeline/task_group.h"
#include "pipeline/kinds.h"
#include "pipeline/run/dead_letters.h"
#include "pipeline/run/pool_stage.h"
#include "pipeline/shutdown.h"
#include "pipeline/sources/line_reader.h"
#include "pipeline/sources/record_decoder.h"

namespace aetl {
namespace {

struct LinesConfig {
  std::vector<std::string> paths;
  std::vector<std::string> urls;
  DecoderOptions decoder;
  size_t max_line = 16 << 20;
  bool allow_empty = false;
  size_t chunk = 256 * 1024;
};

bool has_glob_chars(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

/// Expands globs (sorted bytewise, so runs are deterministic) and checks inputs.
std::vector<std::string> resolve_paths(const LinesConfig& cfg) {
  std::vector<std::string> out;
  for (const auto& p : cfg.paths) {
    if (p == "-" || !has_glob_chars(p)) {
      out.push_back(p);
      continue;
    }
    glob_t g{};
    int rc = ::glob(p.c_str(), GLOB_NOSORT, nullptr, &g);
    std::vector<std::string> hits;
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) hits.emplace_back(g.gl_pathv[i]);
    ::globfree(&g);
    if (rc == GLOB_NOSPACE || rc == GLOB_ABORTED) throw UsageError(p + ": cannot expand the pattern");
    if (hits.empty() && !cfg.allow_empty)
      throw UsageError(p + ": no files match (set allow_empty: true if that is normal)");
    std::sort(hits.begin(), hits.end());
    out.insert(out.end(), hits.begin(), hits.end());
  }
  // a file matched by two patterns is read once
  std::vector<std::string> unique;
  for (auto& p : out)
    if (std::find(unique.begin(), unique.end(), p) == unique.end()) unique.push_back(std::move(p));
  if (std::count(unique.begin(), unique.end(), "-") > 1) throw UsageError("-: standard input named more than once");
  return unique;
}

bool ends_with(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

/// One input being read: raw bytes from a file or stdin, or decompressed bytes.
struct OpenInput {
  std::string name;
  int fd = -1;
  gzFile gz = nullptr;
  bool regular = false;
  uint64_t size = 0;
  ~OpenInput() {
    if (gz) gzclose(gz);  // closes fd too
    else if (fd > STDIN_FILENO) ::close(fd);
  }
};

/// A chunk read on the pool: >0 bytes, 0 end, -1 stopped; throws on errors.
ssize_t read_chunk(OpenInput& in, char* buf, size_t size, const RunControl& control) {
  if (in.gz) {
    int n = gzread(in.gz, buf, static_cast<unsigned>(size));
    if (n < 0) {
      int errnum = 0;
      const char* msg = gzerror(in.gz, &errnum);
      throw std::runtime_error(in.name + ": " + (errnum == Z_ERRNO ? std::strerror(errno) : msg));
    }
    return n;
  }
  for (;;) {
    if (!in.regular) {
      pollfd p{in.fd, POLLIN, 0};
      int r = ::poll(&p, 1, 100);
      if (r < 0 && errno != EINTR) throw std::runtime_error(in.name + ": " + std::strerror(errno));
      if (control.stopping()) return -1;
      if (r <= 0) continue;
    }
    ssize_t got = ::read(in.fd, buf, size);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) throw std::runtime_error(in.name + ": read error: " + std::strerror(errno));
    return got;
  }
}

/// What a pool job made of one chunk.
struct ChunkResult {
  ssize_t got = 0;
  Batch records;
  std::vector<Position> handled;  // blank lines, the header: nothing to do
  std::vector<FailedRecord> failed;
  uint64_t lines = 0;
};

/// Turns split lines into records, dead letters and handled positions. Shared by
/// file reads (on the pool) and streamed HTTP bodies (on the loop).
struct LineDecoding {
  LineDecoding(DecoderOptions options, const InputMark* m, uint32_t i, size_t ml)
      : decoder(options), mark(m), index(i), max_line(ml) {}
  RecordDecoder decoder;
  const InputMark* mark;
  uint32_t index;
  size_t max_line;
  uint64_t first_line = 0;  // CSV: the first line of the record being assembled
  bool raw = false;         // json/text: lines pass raw; the decode stage converts them in parallel

  void process(std::vector<Line>& lines, ChunkResult& result) {
    if (raw) {
      result.records.reserve(result.records.size() + lines.size());
      for (auto& line : lines) {
        Position pos{index, line.number, line.end_offset};
        if (mark->is_done(pos.line)) continue;  // a resumed run did it already
        if (line.too_long) {
          result.failed.push_back({Record{std::move(line.text), pos, Outcome::input_error, {}}, "lines",
                                   "line longer than max_line (" + std::to_string(max_line) + " bytes)", 1, false});
          continue;
        }
        Record r;
        r.data = std::move(line.text);
        r.pos = pos;
        result.records.push_back(std::move(r));
      }
      result.lines += lines.size();
      return;
    }
    result.records.reserve(result.records.size() + lines.size());
    for (auto& line : lines) {
      Position pos{index, line.number, line.end_offset};
      bool first = first_line == 0;
      if (first) first_line = line.number;
      Position rec_pos{index, first_line, line.end_offset};
      // A CSV record spanning lines carries its first line; the others are handled with it.
      if (!first) result.handled.push_back(pos);
      if (line.too_long) {
        first_line = 0;
        if (mark->is_done(rec_pos.line)) continue;
        result.failed.push_back({Record{std::move(line.text), rec_pos, Outcome::input_error, {}}, "lines",
                                 "line longer than max_line (" + std::to_string(max_line) + " bytes)", 1, false});
        continue;
      }
      Decoded d = decoder.decode(line.text);
      if (d.kind == Decoded::more) continue;
      first_line = 0;
      if (mark->is_done(rec_pos.line)) continue;  // a resumed run did it already
      if (d.kind == Decoded::skip) {
        result.handled.push_back(rec_pos);
      } else if (d.kind == Decoded::error) {
        result.failed.push_back(
            {Record{std::move(line.text), rec_pos, Outcome::input_error, {}}, "lines", d.data, 1, false});
      } else {
        Record r;
        r.data = std::move(d.data);
        r.pos = rec_pos;
        result.records.push_back(std::move(r));
      }
    }
    result.lines += lines.size();
  }

  /// The end of the input: a CSV record still open is an error.
  void finish(ChunkResult& result) {
    if (!decoder.pending()) return;
    result.failed.push_back({Record{"", Position{index, first_line, 0}, Outcome::input_error, {}}, "lines",
                             "the input ends inside a quoted CSV field", 1, false});
  }
};

/// Streams an HTTP body through the line splitter without holding it: when enough
/// records wait to be sent downstream, the transfer is paused until they are.
class StreamedLines final : public BodyConsumer {
 public:
  StreamedLines(LineDecoding& decoding, size_t max_line, Wakeup& wake, const RunControl& control)
      : decoding_(decoding), splitter_(max_line), wake_(wake), control_(control) {}

  Verdict on_data(std::string_view chunk) override {
    if (control_.stopping()) return Verdict::fail;  // ends the transfer: the run is stopping
    if (ready_.records.size() >= kHighWater) {
      paused_ = true;
      return Verdict::pause;  // curl hands the same chunk again on resume
    }
    std::vector<Line> lines;
    splitter_.feed(chunk, lines);
    decoding_.process(lines, ready_);
    bytes_ += chunk.size();
    wake_.notify();
    return Verdict::accepted;
  }
  std::string failure_message() const override { return "stopped"; }

  void finish() {
    std::vector<Line> lines;
    splitter_.finish(lines);
    decoding_.process(lines, ready_);
    decoding_.finish(ready_);
  }
  ChunkResult take() {
    ChunkResult r = std::move(ready_);
    ready_ = ChunkResult{};
    return r;
  }
  bool has_ready() const { return !ready_.records.empty() || !ready_.failed.empty() || !ready_.handled.empty(); }
  void resume_if_paused() {
    if (!paused_) return;
    paused_ = false;
    resume();
  }
  uint64_t bytes() const { return bytes_; }

 private:
  static constexpr size_t kHighWater = 4096;
  LineDecoding& decoding_;
  LineSplitter splitter_;
  Wakeup& wake_;
  const RunControl& control_;
  ChunkResult ready_;
  bool paused_ = false;
  uint64_t bytes_ = 0;
};

/// Turns raw json/text lines into records on the pool, a few batches at once
/// (checking JSON is the costly part of reading).
class LineDecodeStage final : public PoolStage {
 public:
  LineDecodeStage(RunContext& run, PartStats& stats, const DecoderOptions& options) : PoolStage(run, stats) {
    for (size_t i = 0; i < lanes(); ++i) decoders_.push_back(std::make_unique<RecordDecoder>(options));
  }

 protected:
  void process(size_t lane, Batch& in, StageOutput& out) override {
    RecordDecoder& d = *decoders_[lane];
    out.out.reserve(in.size());
    for (auto& r : in) {
      Decoded x = d.decode(r.data, r.data.capacity() - r.data.size() >= 64);
      if (x.kind == Decoded::record) {
        if (x.data.empty()) {  // json: the line as it is, trimmed in place
          std::string_view t = d.last_trimmed();
          if (t.size() != r.data.size()) r.data = std::string(t);
        } else {
          r.data = std::move(x.data);
        }
        out.out.push_back(std::move(r));
      } else if (x.kind == Decoded::skip) {
        out.dropped.push_back(r.pos);
      } else {
        out.failed.push_back({std::move(r), "lines", x.data, 1, false});
      }
    }
  }

 private:
  std::vector<std::unique_ptr<RecordDecoder>> decoders_;
};

class LinesSource final : public Source {
 public:
  LinesSource(RunContext& run, PartStats& stats, std::shared_ptr<const LinesConfig> cfg)
      : run_(run), stats_(stats), cfg_(std::move(cfg)) {
    names_ = resolve_paths(*cfg_);
    // Open everything up front: a missing file fails the run before anything is written.
    for (const auto& name : names_) inputs_.push_back(open_input(name));
    for (const auto& url : cfg_->urls) {
      names_.push_back(url);
      inputs_.push_back(nullptr);  // fetched when its turn comes
    }
    run_.stage.input_names = names_;
    if (cfg_->decoder.format != LineFormat::csv)
      run_.source_stages.push_back(
          std::make_unique<LineDecodeStage>(run_, run_.add_part("lines decode"), cfg_->decoder));
    for (uint32_t i = 0; i < names_.size(); ++i) {
      const InputMark* mark = nullptr;
      if (run_.resume && names_[i] != "-") mark = run_.resume->find(names_[i]);
      if (mark && inputs_[i] && inputs_[i]->regular && !ends_with(names_[i], ".gz") && mark->offset > inputs_[i]->size) {
        spdlog::warn("{}: shorter than at the last checkpoint ({} < {} bytes): reading it from the start",
                     names_[i], inputs_[i]->size, mark->offset);
        mark = nullptr;
      }
      run_.tracker.add_input(i, names_[i], mark);
      marks_.push_back(mark ? *mark : InputMark{});
    }
    if (run_.resume)
      for (const auto& m : run_.resume->inputs)
        if (std::find(names_.begin(), names_.end(), m.name) == names_.end()) run_.tracker.carry(m);
  }

  asio::awaitable<void> run(BatchChannel& out) override {
    for (uint32_t i = 0; i < inputs_.size() && !run_.stage.control.stopping() && !limit_reached(); ++i) {
      if (inputs_[i]) co_await read_input(i, out);
      else co_await read_url(i, out);
    }
    co_await send_batch(out, Batch{});
  }

 private:
  bool limit_reached() const { return run_.limit && emitted_ >= run_.limit; }

  /// Checks an input up front (so a missing file fails the run before anything is
  /// written) without keeping it open: a glob may match more files than the
  /// process may have open at once. The file is opened when its turn comes.
  std::unique_ptr<OpenInput> open_input(const std::string& name) {
    auto in = std::make_unique<OpenInput>();
    in->name = name;
    int fd = name == "-" ? STDIN_FILENO : ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw UsageError(name + ": " + std::strerror(errno));
    struct stat st {};
    int rc = ::fstat(fd, &st);
    if (fd != STDIN_FILENO) ::close(fd);
    if (rc == 0) {
      if (S_ISDIR(st.st_mode)) throw UsageError(name + ": is a directory");
      in->regular = S_ISREG(st.st_mode);
      in->size = static_cast<uint64_t>(st.st_size);
    }
    if (ends_with(name, ".gz")) in->regular = true;  // gzread blocks like a file read
    return in;
  }

  /// Opens an input for reading (and closes it with close_input()).
  static void open_now(OpenInput& in) {
    if (in.name == "-") {
      in.fd = STDIN_FILENO;
      return;
    }
    in.fd = ::open(in.name.c_str(), O_RDONLY | O_CLOEXEC);
    if (in.fd < 0) throw std::runtime_error(in.name + ": " + std::strerror(errno));
    if (ends_with(in.name, ".gz")) {
      in.gz = gzdopen(in.fd, "rb");
      if (!in.gz) throw std::runtime_error(in.name + ": cannot read as gzip");
      gzbuffer(in.gz, 256 * 1024);
    }
  }

  static void close_input(OpenInput& in) {
    if (in.gz) gzclose(in.gz);  // closes fd too
    else if (in.fd > STDIN_FILENO) ::close(in.fd);
    in.gz = nullptr;
    in.fd = -1;
  }

  asio::awaitable<void> read_input(uint32_t index, BatchChannel& out) {
    OpenInput& in = *inputs_[index];
    open_now(in);
    struct Closer {
      OpenInput& in;
      ~Closer() { close_input(in); }
    } closer{in};
    const InputMark& mark = marks_[index];
    auto splitter = std::make_shared<LineSplitter>(cfg_->max_line);
    auto decoding = std::make_shared<LineDecoding>(cfg_->decoder, &mark, index, cfg_->max_line);
    decoding->raw = cfg_->decoder.format != LineFormat::csv;
    uint64_t start = mark.offset;
    if (start > 0) {
      if (cfg_->decoder.format == LineFormat::csv) read_csv_header(in, decoding->decoder);
      if (in.gz) {
        if (gzseek(in.gz, static_cast<z_off_t>(start), SEEK_SET) < 0)
          throw std::runtime_error(in.name + ": cannot skip to the checkpoint");
      } else if (::lseek(in.fd, static_cast<off_t>(start), SEEK_SET) < 0) {
        throw std::runtime_error(in.name + ": cannot seek to the checkpoint: " + std::strerror(errno));
      }
      splitter->start_at(mark.line, start);
    }
    auto buffer = std::make_shared<std::string>(cfg_->chunk, '\0');
    const RunControl& control = run_.stage.control;
    bool done = false;
    while (!done && !control.stopping() && !limit_reached()) {
      auto result = std::make_shared<ChunkResult>();
      // The whole chunk is read, split and decoded on the pool.
      auto job = [&in, buffer, splitter, decoding, result, &control]() {
        ssize_t n = read_chunk(in, buffer->data(), buffer->size(), control);
        result->got = n;
        std::vector<Line> lines;
        if (n > 0) splitter->feed(std::string_view(buffer->data(), static_cast<size_t>(n)), lines);
        else if (n == 0) splitter->finish(lines);
        decoding->process(lines, *result);
        if (n == 0) decoding->finish(*result);
      };
      co_await run_blocking(run_.stage.pool.pool(), job);
      if (result->got <= 0) done = true;
      if (result->got < 0) break;
      co_await deliver(*result, out);
    }
  }

  /// Hands one chunk's results on: acks, dead letters, records (up to --limit).
  asio::awaitable<void> deliver(ChunkResult& result, BatchChannel& out) {
    if (run_.limit && emitted_ + result.records.size() > run_.limit)
      result.records.resize(run_.limit - emitted_);  // the rest is left for the next run
    for (const auto& pos : result.handled) run_.tracker.ack(pos);
    for (auto& f : result.failed) run_.dead_letters.push(std::move(f));
    stats_.failed += result.failed.size();
    stats_.out += result.records.size();
    stats_.in += result.lines;
    emitted_ += result.records.size();
    co_await run_.dead_letters.wait_room();
    if (!result.records.empty()) co_await send_batch(out, std::move(result.records));
  }

  /// A `url:` input: the body streamed line by line on the loop, paused while the
  /// records already decoded wait for room downstream. Not resumable by offset: a
  /// resumed run downloads again and skips the lines already handled.
  asio::awaitable<void> read_url(uint32_t index, BatchChannel& out) {
    const InputMark& mark = marks_[index];
    LineDecoding decoding(cfg_->decoder, &mark, index, cfg_->max_line);
    decoding.raw = cfg_->decoder.format != LineFormat::csv;
    Wakeup wake(run_.stage.io.get_executor());
    StreamedLines body(decoding, cfg_->max_line, wake, run_.stage.control);
    HttpRequest request;
    request.url = names_[index];
    request.max_bytes = 0;          // streamed, not held: no limit
    request.fail_on_error = true;   // an error page is not input
    HttpResponse response;
    bool finished = false;
    TaskGroup transfer(run_.stage.io.get_executor());
    HttpClient& client = run_.http();
    auto perform = [&]() -> asio::awaitable<void> {
      response = co_await client.perform(request, &body);
      finished = true;
      wake.notify();
    };
    transfer.spawn(perform());
    std::exception_ptr error;
    try {
      for (;;) {
        if (body.has_ready()) {
          ChunkResult r = body.take();
          if (!limit_reached()) co_await deliver(r, out);
          continue;
        }
        if (finished) break;
        body.resume_if_paused();
        co_await wake.wait();
      }
    } catch (...) {
      // The transfer refers to this frame: end it before unwinding.
      error = std::current_exception();
      run_.stage.control.request_abort();
    }
    co_await transfer.wait_all();
    if (error) std::rethrow_exception(error);
    if (run_.stage.control.stopping()) co_return;
    bool ok = response.curl_code == 0 && response.status >= 200 && response.status <= 299;
    if (!ok)
      throw UsageError(names_[index] + ": " + (response.status >= 400 ? "HTTP " + std::to_string(response.status)
                                                                      : response.curl_code ? response.error
                                                                                           : "HTTP " + std::to_string(response.status)));
    body.finish();
    ChunkResult last = body.take();
    co_await deliver(last, out);
  }

  /// A resumed CSV read needs the header row from the start of the file.
  void read_csv_header(OpenInput& in, RecordDecoder& decoder) {
    std::string buf(64 * 1024, '\0');
    LineSplitter splitter(cfg_->max_line);
    std::vector<Line> lines;
    int fd = in.gz ? -1 : in.fd;
    uint64_t at = 0;
    while (!decoder.has_header()) {
      ssize_t n = 0;
      if (in.gz) {
        n = gzread(in.gz, buf.data(), static_cast<unsigned>(buf.size()));
      } else {
        n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(at));
        if (n > 0) at += static_cast<uint64_t>(n);
      }
      if (n <= 0) break;
      splitter.feed(std::string_view(buf.data(), static_cast<size_t>(n)), lines);
      for (auto& l : lines) {
        Decoded d = decoder.decode(l.text);
        if (decoder.has_header()) break;
        (void)d;
      }
      lines.clear();
    }
    if (in.gz) gzrewind(in.gz);
  }

  RunContext& run_;
  PartStats& stats_;
  std::shared_ptr<const LinesConfig> cfg_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<OpenInput>> inputs_;
  std::vector<InputMark> marks_;
  uint64_t emitted_ = 0;
};

}  // namespace

SourceBuilder parse_lines_source(const ConfigValue& node, ConfigProblems& problems) {
  ConfigReader r(node, problems, "source 'lines'");
  if (!r.ok()) return {};
  auto cfg = std::make_shared<LinesConfig>();
  size_t before = problems.size();
  const ConfigValue* url_node = node.find("url");
  if (auto urls = r.string_list("url")) {
    for (auto& u : *urls) {
      std::string why;
      if (!check_url(u.text, why)) problems.add(u.where, "url: " + (u.secret ? std::string("bad URL") : why));
      cfg->urls.push_back(u.text);
    }
  }
  if (auto paths = r.string_list("paths", url_node == nullptr)) {
    for (auto& p : *paths) {
      if (p.text.empty()) problems.add(p.where, "paths: an empty path");
      cfg->paths.push_back(p.text);
    }
    if (paths->empty()) problems.add(r.where(), "paths: the list is empty");
  }
  if (auto f = r.choice("format", {"json", "text", "csv"}))
    cfg->decoder.format = *f == "json" ? LineFormat::json : *f == "text" ? LineFormat::text : LineFormat::csv;
  if (auto v = r.boolean("validate")) cfg->decoder.validate = *v;
  if (auto d = r.string("delimiter")) {
    if (d->text.size() != 1 || d->text[0] == '"' || d->text[0] == '\n') problems.add(d->where, "delimiter must be one character (not a quote)");
    else cfg->decoder.delimiter = d->text[0];
  }
  if (auto v = r.boolean("infer_types")) cfg->decoder.infer_types = *v;
  if (auto n = r.size("max_line")) {
    if (*n < 1) problems.add(r.where(), "max_line must be at least 1 byte");
    else cfg->max_line = static_cast<size_t>(*n);
  }
  if (auto v = r.boolean("allow_empty")) cfg->allow_empty = *v;
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run) -> std::unique_ptr<Source> {
    return std::make_unique<LinesSource>(run, run.add_part("lines"), cfg);
  };
}

}  // namespace aetl
