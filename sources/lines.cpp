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
#include <atomic>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <memory>

#include <spdlog/spdlog.h>

#include "engine/setup_error.h"
#include "engine/blocking_pool.h"
#include "run/checkpoint.h"
#include "net/http/http_client.h"
#include "net/http/url_check.h"
#include "engine/wakeup.h"
#include "engine/task_group.h"
#include "config/kinds.h"
#include "run/dead_letters.h"
#include "run/ordered_lanes.h"
#include "run/cpu_ticks.h"
#include "run/step_chain.h"
#include "engine/shutdown.h"
#include "sources/lines/line_chunks.h"
#include "sources/lines/line_splitter.h"
#include "engine/record_decoder.h"
#include "sources/lines.h"

namespace aetl {
namespace {

struct LinesConfig {
  std::vector<std::string> paths;
  std::vector<std::string> urls;
  DecoderOptions decoder;
  size_t max_line = 16 << 20;
  bool allow_empty = false;
  size_t chunk = 256 * 1024;  // input read per job: with the channels' batches, what the source holds
  /// afetch's request lines: paths are taken as named (no globs), and each line
  /// that is not blank goes on as it is (not decoded); a line over max_line goes
  /// on as an input_error record holding its first bytes.
  bool raw = false;
};

bool has_glob_chars(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

/// Expands globs (sorted bytewise, so runs are deterministic) and checks inputs.
std::vector<std::string> resolve_paths(const LinesConfig& cfg) {
  std::vector<std::string> out;
  for (const auto& p : cfg.paths) {
    if (p == "-" || cfg.raw || !has_glob_chars(p)) {
      out.push_back(p);
      continue;
    }
    glob_t g{};
    int rc = ::glob(p.c_str(), GLOB_NOSORT, nullptr, &g);
    std::vector<std::string> hits;
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) hits.emplace_back(g.gl_pathv[i]);
    ::globfree(&g);
    if (rc == GLOB_NOSPACE || rc == GLOB_ABORTED) throw SetupError(p + ": cannot expand the pattern");
    if (hits.empty() && !cfg.allow_empty)
      throw SetupError(p + ": no files match (set allow_empty: true if that is normal)");
    std::sort(hits.begin(), hits.end());
    out.insert(out.end(), hits.begin(), hits.end());
  }
  if (std::count(out.begin(), out.end(), "-") > 1) throw SetupError("-: standard input named more than once");
  // a file matched by two patterns is read once
  std::vector<std::string> unique;
  for (auto& p : out)
    if (std::find(unique.begin(), unique.end(), p) == unique.end()) unique.push_back(std::move(p));
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

std::string too_long_message(size_t max_line) {
  return "line longer than max_line (" + std::to_string(max_line) + " bytes)";
}

/// One chunk's way through the source, on a lane: its lines decoded into records
/// (json and text here; csv in input order before), run through the record steps
/// the source adopted, and the survivors copied out. Handed on in input order.
struct InputReader;

struct ChunkWork final : OrderedLanes::Job {
  // Set before the job runs.
  std::shared_ptr<InputReader> reader;  // files: the job reads its own chunk, in ticket order
  uint64_t ticket = 0;
  std::unique_ptr<LineChunk> chunk;  // json/text: the lines to decode
  const InputMark* mark = nullptr;
  uint32_t index = 0;
  size_t max_line = 0;
  bool raw = false;  // request lines: passed on undecoded
  std::vector<std::unique_ptr<RecordDecoder>>* decoders = nullptr;  // one per lane
  const StepChain* steps = nullptr;
  std::vector<StepRecord> records;  // csv: decoded already
  uint64_t lines = 0;               // input lines the chunk covered
  // What the job made.
  uint64_t decoded = 0;             // records the lines made
  std::vector<Position> handled;    // blank lines, the csv header, lines inside a csv record
  std::vector<FailedRecord> failed; // malformed lines
  StageOutput stepped;              // what the steps did
  Batch out;

  void work(size_t lane) override;
  void process(size_t lane) {
    if (raw) {
      if (chunk) pass_raw_lines();
      return;
    }
    if (steps) steps->tally_for(stepped);
    if (chunk) {
      decode_lines(*(*decoders)[lane], lane);  // the steps run as each line is decoded
    } else {
      decoded = records.size();
      if (steps) {
        for (auto& r : records) r.rows = &rows;
        steps->run(lane, records, stepped);
      }
    }
    take_records(records, out, &rows);
    if (chunk) collect_ack_ranges();
    chunk.reset();  // the records pointed into it; freed here, off the loop
  }

  /// json/text: every line of the chunk is handled here except the records that
  /// go on and the failures (acked once the dead letter has them), so the rest
  /// is acked as runs of lines rather than one by one on the loop thread.
  void collect_ack_ranges() {
    std::vector<uint64_t> held;
    held.reserve(out.size() + failed.size() + stepped.failed.size());
    for (const auto& r : out) held.push_back(r.pos.line);
    for (const auto& f : failed) held.push_back(f.record.pos.line);
    for (const auto& f : stepped.failed) held.push_back(f.record.pos.line);
    std::sort(held.begin(), held.end());
    size_t h = 0;
    bool open = false;
    InputMark::Range run;
    for (const auto& ref : chunk->lines) {
      while (h < held.size() && held[h] < ref.number) ++h;
      if (h < held.size() && held[h] == ref.number) {
        if (open) ack_ranges.push_back(run);
        open = false;
        continue;
      }
      if (!open) run.first = ref.number;
      run.last = ref.number;
      run.end_offset = ref.end_offset;
      open = true;
    }
    if (open) ack_ranges.push_back(run);
    handled.clear();
    stepped.dropped.clear();
  }

  std::vector<InputMark::Range> ack_ranges;  // json/text: lines handled in the job

  /// Request lines: every line that is not blank goes on as written.
  void pass_raw_lines() {
    out.reserve(chunk->lines.size());
    for (const auto& ref : chunk->lines) {
      std::string_view line = chunk->text(ref);
      if (!ref.too_long && line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      Record r;
      r.data.assign(line);
      r.pos = Position{index, ref.number, ref.end_offset};
      if (ref.too_long) r.outcome = Outcome::input_error;
      out.push_back(std::move(r));
    }
    decoded = out.size();
    collect_ack_ranges();
    chunk.reset();
  }

  /// Decodes the chunk's lines; each record goes through the steps (if any) at
  /// once, the first reading the parse the check of the line made (no second parse,
  /// no second pass).
  void decode_lines(RecordDecoder& decoder, size_t lane) {
    records.reserve(chunk->lines.size());
    std::string error;
    for (const auto& ref : chunk->lines) {
      Position pos{index, ref.number, ref.end_offset};
      if (mark->is_done(pos.line)) continue;  // a resumed run did it already
      std::string_view line = chunk->text(ref);
      if (ref.too_long) {
        failed.push_back({Record{std::string(line), pos, Outcome::input_error, {}}, "lines", too_long_message(max_line), 1, false});
        continue;
      }
      Decoded d = decoder.decode(line, true);  // the chunk keeps padding after every line
      if (d.kind == Decoded::skip) {
        handled.push_back(pos);
        continue;
      }
      if (d.kind != Decoded::record) {
        failed.push_back({Record{std::string(line), pos, Outcome::input_error, {}}, "lines", std::move(d.data), 1, false});
        continue;
      }
      ++decoded;
      StepRecord r;
      r.pos = pos;
      if (d.data.empty()) {  // json: the line itself, trimmed, in place
        r.text = decoder.last_trimmed();
        r.padded = true;
      } else {
        r.replace(std::move(d.data));
      }
      if (steps) {
        r.parsed = decoder.last_parsed();
        r.rows = &rows;
        if (!steps->run_record(lane, r, stepped, error)) continue;
      }
      records.push_back(std::move(r));
    }
  }

  std::string rows;        // what a sink's row step wrote for the records
  uint64_t job_ticks = 0;  // cpu_ticks() the whole job took (the steps' share of its time)
  double waited = 0;       // seconds spent waiting for the reading turn or for input
};

/// CSV lines become records in input order, as they are cut: a quoted field may
/// span lines, and the header row is state.
struct CsvDecoding {
  CsvDecoding(const DecoderOptions& options, const InputMark* m, uint32_t i, size_t ml, const std::string& n)
      : decoder(options), mark(m), index(i), max_line(ml), name(n) {}
  RecordDecoder decoder;
  const InputMark* mark;
  uint32_t index;
  size_t max_line;
  std::string name;
  uint64_t first_line = 0;  // the first line of the record being assembled

  void decode(const LineChunk& chunk, ChunkWork& work) {
    for (const auto& ref : chunk.lines) {
      Position pos{index, ref.number, ref.end_offset};
      bool first = first_line == 0;
      if (first) first_line = ref.number;
      Position rec_pos{index, first_line, ref.end_offset};
      // A record spanning lines carries its first line; the others are handled with it.
      if (!first) work.handled.push_back(pos);
      std::string_view line = chunk.text(ref);
      if (ref.too_long) {
        first_line = 0;
        if (mark->is_done(rec_pos.line)) continue;
        work.failed.push_back({Record{std::string(line), rec_pos, Outcome::input_error, {}}, "lines", too_long_message(max_line), 1, false});
        continue;
      }
      Decoded d = decoder.decode_csv(line, ref.number, ref.crlf);
      if (d.kind == Decoded::more) continue;
      // Without a header no row can be read right: the input fails, rather than
      // the next row becoming the keys.
      if (d.kind == Decoded::error && !decoder.has_header()) throw std::runtime_error(name + ": the header row: " + d.data);
      first_line = 0;
      if (mark->is_done(rec_pos.line)) continue;  // a resumed run did it already
      if (d.kind == Decoded::skip) {
        work.handled.push_back(rec_pos);
      } else if (d.kind == Decoded::error) {
        work.failed.push_back({Record{std::string(line), rec_pos, Outcome::input_error, {}}, "lines", std::move(d.data), 1, false});
      } else {
        StepRecord r;
        r.pos = rec_pos;
        r.replace(std::move(d.data));
        work.records.push_back(std::move(r));
      }
    }
  }

  /// The end of the input: a record still open is an error.
  void finish(ChunkWork& work) {
    if (!decoder.pending()) return;
    work.failed.push_back({Record{"", Position{index, first_line, 0}, Outcome::input_error, {}}, "lines",
                           "the input ends inside a quoted CSV field", 1, false});
  }
};

/// Lines left to read under --limit (shared by the inputs, which are read one
/// after the other); unlimited when no limit is set.
struct LimitBudget {
  std::atomic<uint64_t> left{std::numeric_limits<uint64_t>::max()};

  /// Keeps the chunk within the budget: lines past it are left for the next run.
  /// Returns false once the budget is spent.
  bool take(LineChunk* chunk, ChunkWork& work, bool csv) {
    uint64_t budget = left.load(std::memory_order_relaxed);
    if (budget == std::numeric_limits<uint64_t>::max()) return true;
    uint64_t taken = 0;
    if (csv) {
      if (work.records.size() > budget) work.records.resize(budget);
      taken = work.records.size();
    } else if (chunk) {
      size_t keep = 0;
      for (; keep < chunk->lines.size() && taken < budget; ++keep) {
        const auto& ref = chunk->lines[keep];
        if (!ref.too_long && !work.mark->is_done(ref.number)) ++taken;
      }
      chunk->lines.resize(keep);
    }
    left.store(budget - taken, std::memory_order_relaxed);
    return budget - taken > 0;
  }
  bool spent() const { return left.load(std::memory_order_relaxed) == 0; }
};

/// The one-at-a-time part of reading a file, done by the lane jobs themselves:
/// the job whose ticket has come reads and cuts the next chunk (csv: decodes it,
/// in order) and then works on it in parallel with the others. No thread hop
/// per chunk, and the reading never waits behind the lanes for a CPU.
struct InputReader {
  InputReader(OpenInput& i, size_t max_line, size_t chunk, const RunControl& c, LimitBudget& b)
      : in(i), splitter(max_line), chunk_size(chunk), control(c), budget(b) {}
  OpenInput& in;
  ChunkSplitter splitter;
  std::unique_ptr<CsvDecoding> csv;
  size_t chunk_size;
  const RunControl& control;
  LimitBudget& budget;
  std::atomic<bool> finished{false};  // read to the end (or stopped, or failed): later tickets read nothing

  std::mutex mu;
  std::condition_variable cv;
  uint64_t turn = 0;

  /// Pool thread: waits for `ticket`'s turn and reads one chunk into `work`.
  void read(uint64_t ticket, ChunkWork& work) {
    std::unique_lock lock(mu);
    auto wait_started = std::chrono::steady_clock::now();
    cv.wait(lock, [&] { return turn == ticket; });
    work.waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_started).count();
    struct Next {  // the next ticket's turn comes however this one ends
      InputReader& r;
      ~Next() {
        ++r.turn;
        r.cv.notify_all();
      }
    } next{*this};
    if (finished.load()) return;
    if (control.stopping()) {  // no more chunks once a stop was asked for
      finished = true;
      return;
    }
    try {
      auto chunk = std::make_unique<LineChunk>();
      splitter.begin(*chunk, chunk_size);
      auto read_started = std::chrono::steady_clock::now();
      ssize_t n = read_chunk(in, chunk->free_space(), chunk->room(), control);
      if (!in.regular)  // a pipe or terminal: the time waiting for input is not work
        work.waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - read_started).count();
      if (n < 0) {  // stopping
        finished = true;
        return;
      }
      chunk->filled += static_cast<size_t>(n);
      splitter.cut(*chunk, n == 0);
      if (csv) {
        csv->decode(*chunk, work);
        if (n == 0) csv->finish(work);
      }
      if (!budget.take(chunk.get(), work, csv != nullptr) || n == 0) finished = true;
      work.lines += chunk->lines.size();
      if (!csv) work.chunk = std::move(chunk);
    } catch (...) {
      finished = true;
      throw;
    }
  }
};

void ChunkWork::work(size_t lane) {
  uint64_t started = cpu_ticks();
  if (reader) reader->read(ticket, *this);
  if (!reader || chunk || !records.empty() || !failed.empty() || !handled.empty()) process(lane);
  job_ticks = cpu_ticks() - started;
}

/// Streams an HTTP body into chunks without holding it: a chunk is cut whenever
/// new data completes a line, and the transfer is paused while enough chunks
/// wait to be worked on.
class StreamedChunks final : public BodyConsumer {
 public:
  StreamedChunks(size_t max_line, Wakeup& wake, const RunControl& control)
      : splitter_(max_line), max_line_(max_line), wake_(wake), control_(control) {}

  Verdict on_data(std::string_view data) override {
    if (control_.stopping()) return Verdict::fail;  // ends the transfer: the run is stopping
    if (ready_bytes_ >= kHighWater) {
      paused_ = true;
      return Verdict::pause;  // curl hands the same data again on resume
    }
    bytes_ += data.size();
    if (!current_) {
      current_ = std::make_unique<LineChunk>();
      splitter_.begin(*current_, std::max(data.size(), kMinChunk));
    }
    if (current_->room() < data.size()) grow(data.size());
    ChunkSplitter::append(*current_, data);
    // Cut when a line is complete (records flow as they arrive), or when an
    // unfinished line outgrows max_line (it is then skipped, not held).
    if (std::memchr(data.data(), '\n', data.size()) || current_->filled > max_line_ + 1) cut(false);
    return Verdict::accepted;
  }
  std::string failure_message() const override { return "stopped"; }

  /// The transfer ended: what is left is the last line.
  void finish() {
    if (!current_) {
      current_ = std::make_unique<LineChunk>();
      splitter_.begin(*current_, 0);
    }
    cut(true);
  }
  std::vector<std::unique_ptr<LineChunk>> take() {
    ready_bytes_ = 0;
    return std::exchange(ready_, {});
  }
  bool has_ready() const { return !ready_.empty(); }
  void resume_if_paused() {
    if (!paused_) return;
    paused_ = false;
    resume();
  }
  uint64_t bytes() const { return bytes_; }

 private:
  static constexpr size_t kMinChunk = 64 * 1024;
  static constexpr size_t kHighWater = 1 << 20;

  void cut(bool at_end) {
    splitter_.cut(*current_, at_end);
    ready_bytes_ += current_->filled;
    ready_.push_back(std::move(current_));
    wake_.notify();
  }
  /// An unfinished line spans calls: the chunk grows (doubling, so each byte is copied O(1) times).
  void grow(size_t more) {
    auto bigger = std::make_unique<LineChunk>();
    size_t want = std::max(current_->capacity * 2, current_->filled + more);
    bigger->buffer = std::make_unique_for_overwrite<char[]>(want + LineChunk::kPadding);
    std::memset(bigger->buffer.get() + want, 0, LineChunk::kPadding);
    bigger->capacity = want;
    std::memcpy(bigger->buffer.get(), current_->buffer.get(), current_->filled);
    bigger->filled = current_->filled;
    current_ = std::move(bigger);
  }

  ChunkSplitter splitter_;
  size_t max_line_;
  Wakeup& wake_;
  const RunControl& control_;
  std::unique_ptr<LineChunk> current_;
  std::vector<std::unique_ptr<LineChunk>> ready_;
  size_t ready_bytes_ = 0;
  bool paused_ = false;
  uint64_t bytes_ = 0;
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
    for (size_t i = 0; i < step_lanes(); ++i) decoders_.push_back(std::make_unique<RecordDecoder>(cfg_->decoder));
    if (run_.limit) budget_.left = run_.limit;
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
    // Percent done and ETA where every input's size is known: plain files, read
    // from where the checkpoint left them.
    run_.input.known = !names_.empty();
    for (uint32_t i = 0; i < names_.size(); ++i) {
      bool sized = inputs_[i] && names_[i] != "-" && inputs_[i]->regular && !ends_with(names_[i], ".gz");
      run_.input.known = run_.input.known && sized;
      if (sized) run_.input.total += inputs_[i]->size;
    }
  }

  bool adopt_steps(const StepChain& steps) override {
    steps_ = steps;
    return true;
  }

  asio::awaitable<void> run(BatchChannel& out) override {
    auto emit = [this, &out](OrderedLanes::Job& job) -> asio::awaitable<void> {
      co_await deliver(static_cast<ChunkWork&>(job), out);
    };
    OrderedLanes lanes(run_.stage.io.get_executor(), run_.stage.pool, step_lanes(), emit);
    std::exception_ptr error;
    try {
      for (uint32_t i = 0; i < inputs_.size() && !run_.stage.control.stopping() && !limit_reached(); ++i) {
        if (inputs_[i]) co_await read_input(i, lanes);
        else co_await read_url(i, lanes);
      }
      co_await lanes.finish();
    } catch (...) {
      error = std::current_exception();
    }
    co_await lanes.wait_idle();  // no job outlives the source
    if (error) std::rethrow_exception(error);
    co_await send_batch(out, Batch{});
  }

 private:
  bool limit_reached() const { return budget_.spent(); }

  /// Closes the inputs read to the end whose jobs have all been handed on.
  void close_finished_inputs() {
    for (size_t i = 0; i < open_inputs_.size();) {
      if (open_inputs_[i].first.use_count() == 1) {
        close_input(*inputs_[open_inputs_[i].second]);
        open_inputs_.erase(open_inputs_.begin() + static_cast<long>(i));
      } else {
        ++i;
      }
    }
  }

  /// Checks an input up front (so a missing file fails the run before anything is
  /// written) without keeping it open: a glob may match more files than the
  /// process may have open at once. The file is opened when its turn comes.
  std::unique_ptr<OpenInput> open_input(const std::string& name) {
    auto in = std::make_unique<OpenInput>();
    in->name = name;
    int fd = name == "-" ? STDIN_FILENO : ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw SetupError(name + ": " + std::strerror(errno));
    struct stat st {};
    int rc = ::fstat(fd, &st);
    if (fd != STDIN_FILENO) ::close(fd);
    if (rc == 0) {
      if (S_ISDIR(st.st_mode)) throw SetupError(name + ": is a directory");
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

  /// A job for one chunk of input `index`.
  std::shared_ptr<ChunkWork> new_work(uint32_t index) {
    auto work = std::make_shared<ChunkWork>();
    work->mark = &marks_[index];
    work->index = index;
    work->max_line = cfg_->max_line;
    work->raw = cfg_->raw;
    work->decoders = &decoders_;
    work->steps = steps_.empty() ? nullptr : &steps_;
    return work;
  }

  /// Hands a chunk cut on the loop (a streamed body) to a lane (json/text are
  /// decoded there; csv was decoded already), keeping to --limit.
  asio::awaitable<void> submit(std::unique_ptr<LineChunk> chunk, std::shared_ptr<ChunkWork> work, OrderedLanes& lanes) {
    bool csv = cfg_->decoder.format == LineFormat::csv;
    budget_.take(chunk.get(), *work, csv);
    work->lines += chunk->lines.size();
    if (!csv) work->chunk = std::move(chunk);
    co_await lanes.submit(std::move(work));
  }

  asio::awaitable<void> read_input(uint32_t index, OrderedLanes& lanes) {
    OpenInput& in = *inputs_[index];
    open_now(in);
    const InputMark& mark = marks_[index];
    auto reader = std::make_shared<InputReader>(in, cfg_->max_line, cfg_->chunk, run_.stage.control, budget_);
    if (cfg_->decoder.format == LineFormat::csv)
      reader->csv = std::make_unique<CsvDecoding>(cfg_->decoder, &mark, index, cfg_->max_line, names_[index]);
    uint64_t start = mark.offset;
    if (start > 0) {
      if (reader->csv) read_csv_header(in, reader->csv->decoder);
      if (in.gz) {
        if (gzseek(in.gz, static_cast<z_off_t>(start), SEEK_SET) < 0)
          throw std::runtime_error(in.name + ": cannot skip to the checkpoint");
      } else if (::lseek(in.fd, static_cast<off_t>(start), SEEK_SET) < 0) {
        throw std::runtime_error(in.name + ": cannot seek to the checkpoint: " + std::strerror(errno));
      }
      reader->splitter.start_at(mark.line, start);
    }
    // Jobs are handed to the lanes until one finds the end; each reads its own chunk.
    uint64_t ticket = 0;
    while (!reader->finished && !run_.stage.control.stopping()) {
      auto work = new_work(index);
      work->reader = reader;
      work->ticket = ticket++;
      co_await lanes.submit(std::move(work));
    }
    // The input is closed once no job reads from it any more.
    open_inputs_.push_back({std::move(reader), index});
    close_finished_inputs();
  }

  /// Hands one chunk's results on: acks, dead letters, counters, records.
  asio::awaitable<void> deliver(ChunkWork& work, BatchChannel& out) {
    if (work.reader) {
      work.reader.reset();
      close_finished_inputs();
    }
    for (const auto& r : work.ack_ranges) run_.tracker.ack_range(work.index, r.first, r.last, r.end_offset);
    for (const auto& pos : work.handled) run_.tracker.ack(pos);
    for (const auto& pos : work.stepped.dropped) run_.tracker.ack(pos);
    stats_.in += work.lines;
    stats_.out += work.decoded;

    stats_.failed += work.failed.size();
    // Waiting for the reading turn (or for stdin) is not work.
    double busy = std::max(0.0, work.busy - work.waited);
    // The steps ran inside the job: their share of its time is theirs.
    double steps_busy = StepChain::share_busy(work.stepped.tally, work.busy, work.job_ticks);
    stats_.busy_seconds += std::max(0.0, busy - steps_busy);
    ++stats_.batches;
    steps_.account(work.stepped.tally);
    for (auto& f : work.failed) run_.dead_letters.push(std::move(f));
    for (auto& f : work.stepped.failed) run_.dead_letters.push(std::move(f));
    co_await run_.dead_letters.wait_room();
    if (!work.out.empty()) co_await send_batch(out, std::move(work.out));
  }

  /// A `url:` input: the body streamed into chunks on the loop, paused while the
  /// chunks already cut wait for a lane. Not resumable by offset: a resumed run
  /// downloads again and skips the lines already handled.
  asio::awaitable<void> read_url(uint32_t index, OrderedLanes& lanes) {
    const InputMark& mark = marks_[index];
    std::unique_ptr<CsvDecoding> csv;
    if (cfg_->decoder.format == LineFormat::csv)
      csv = std::make_unique<CsvDecoding>(cfg_->decoder, &mark, index, cfg_->max_line, names_[index]);
    Wakeup wake(run_.stage.io.get_executor());
    StreamedChunks body(cfg_->max_line, wake, run_.stage.control);
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
    // The body's chunks go to the lanes (csv decoded first, here, in order).
    auto hand_on = [&](std::vector<std::unique_ptr<LineChunk>> chunks, bool last) -> asio::awaitable<void> {
      for (size_t i = 0; i < chunks.size(); ++i) {
        if (limit_reached()) co_return;
        auto work = new_work(index);
        if (csv) {
          csv->decode(*chunks[i], *work);
          if (last && i + 1 == chunks.size()) csv->finish(*work);
        }
        co_await submit(std::move(chunks[i]), std::move(work), lanes);
      }
    };
    std::exception_ptr error;
    try {
      for (;;) {
        if (body.has_ready()) {
          co_await hand_on(body.take(), false);
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
      throw SetupError(names_[index] + ": " + (response.status >= 400 ? "HTTP " + std::to_string(response.status)
                                                                      : response.curl_code ? response.error
                                                                                           : "HTTP " + std::to_string(response.status)));
    body.finish();
    co_await hand_on(body.take(), true);
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
        decoder.decode_csv(l.text, l.number, l.crlf);
        if (decoder.has_header()) break;
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
  std::vector<std::unique_ptr<RecordDecoder>> decoders_;  // json/text, one per lane
  StepChain steps_;  // the record steps right behind the source, run in its jobs
  LimitBudget budget_;
  std::vector<std::pair<std::shared_ptr<InputReader>, uint32_t>> open_inputs_;  // read to the end, jobs still out
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"paths", FieldType::list, "", "files, globs or - (stdin); required unless url is given; .gz is decompressed",
     "[\"logs/*.jsonl\", extra.jsonl.gz]"},
    {"url", FieldType::list, "", "URLs whose bodies are streamed line by line (after the paths)",
     "https://example.com/export.jsonl"},
    {"format", FieldType::choice, "json", "json (JSON Lines), text ({\"line\": ...}) or csv (header row gives the keys)",
     "csv"},
    {"validate", FieldType::boolean, "true", "json: check that each line is a well-formed JSON object", "false"},
    {"delimiter", FieldType::string, ",", "csv: the field separator (one character)", "\";\""},
    {"infer_types", FieldType::boolean, "true", "csv: a field written as a JSON number becomes a number", "false"},
    {"max_line", FieldType::size, "16MiB", "a longer line becomes a dead letter", "1MiB"},
    {"allow_empty", FieldType::boolean, "false", "a glob matching no file is not an error", "true"},
};
const std::string_view kExamples[] = {
    "{paths: [\"in/*.jsonl\"], format: json, validate: true, max_line: 1MiB, allow_empty: true}",
    "{paths: data.csv, format: csv, delimiter: \";\", infer_types: false}",
    "{url: \"https://example.com/export.jsonl\"}",
};
}  // namespace
extern const KindFields lines_source_fields{kFields, kExamples};

SourceBuilder parse_lines_source(const ConfigValue& node, ConfigProblems& problems) {
  ConfigReader r(node, problems, {kFields});
  if (!r.ok()) return {};
  auto cfg = std::make_shared<LinesConfig>();
  size_t before = problems.size();
  const ConfigValue* url_node = node.find("url");
  if (url_node && url_node->is_null()) url_node = nullptr;  // `url:` with nothing after it names no URL
  if (auto urls = r.string_list("url")) {
    for (auto& u : *urls) {
      std::string why;
      if (!check_url(u.text, why)) problems.add(u.where, "url: " + (u.secret ? std::string("bad URL") : why));
      cfg->urls.push_back(u.text);
    }
  }
  if (const ConfigValue* p = node.find("paths"); !url_node && (!p || p->is_null()))
    problems.add(r.where(), "missing required key 'paths' (or url)");
  if (auto paths = r.string_list("paths")) {
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
    if (d->text.size() != 1 || d->text[0] == '"' || d->text[0] == '\n') problems.add(d->where, "delimiter: must be one character (not a quote)");
    else cfg->decoder.delimiter = d->text[0];
  }
  if (auto v = r.boolean("infer_types")) cfg->decoder.infer_types = *v;
  if (auto n = r.size("max_line")) {
    if (*n < 1) problems.add(r.where(), "max_line: must be at least 1 byte");
    else cfg->max_line = static_cast<size_t>(*n);
  }
  if (auto v = r.boolean("allow_empty")) cfg->allow_empty = *v;
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run) -> std::unique_ptr<Source> {
    return std::make_unique<LinesSource>(run, run.add_part("lines"), cfg);
  };
}

SourceBuilder request_lines_source(std::vector<std::string> paths, size_t max_line) {
  auto cfg = std::make_shared<LinesConfig>();
  cfg->paths = paths.empty() ? std::vector<std::string>{"-"} : std::move(paths);
  cfg->max_line = max_line;
  cfg->raw = true;
  return [cfg](RunContext& run) -> std::unique_ptr<Source> {
    return std::make_unique<LinesSource>(run, run.add_part("lines"), cfg);
  };
}

}  // namespace aetl
