// The `lines` source: records from the lines of files, globs or stdin.
//   source:
//     lines: {paths: ["logs/*.jsonl", "more.jsonl.gz"], format: json}
// Inputs are read in order (globs sorted bytewise), `.gz` decompressed on the fly,
// a resumed run seeks to its checkpoint and skips lines already handled.
// The reading itself (inputs, chunks, their decoding on the lanes) is in
// sources/lines/; this file is the kind: the source, its fields, its builders.
#include <glob.h>

#include <algorithm>
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
#include "run/step_chain.h"
#include "engine/shutdown.h"
#include "sources/lines/chunk_work.h"
#include "sources/lines/csv_decoding.h"
#include "sources/lines/input_reader.h"
#include "sources/lines/limit_budget.h"
#include "sources/lines/line_chunks.h"
#include "sources/lines/open_input.h"
#include "sources/lines/streamed_chunks.h"
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
  if (cfg.raw) return out;  // afetch reads a file named twice twice, as cat would
  // a file matched by two patterns is read once
  std::vector<std::string> unique;
  for (auto& p : out)
    if (std::find(unique.begin(), unique.end(), p) == unique.end()) unique.push_back(std::move(p));
  return unique;
}

class LinesSource final : public Source {
 public:
  LinesSource(RunContext& run, PartStats& stats, std::shared_ptr<const LinesConfig> cfg)
      : run_(run), stats_(stats), cfg_(std::move(cfg)) {
    names_ = resolve_paths(*cfg_);
    // Check everything up front: a missing file fails the run before anything is
    // written. afetch's first inputs stay open (one removed meanwhile is still
    // read, as cat would); beyond those, far fewer descriptors than files.
    constexpr size_t kKeptOpen = 64;
    for (const auto& name : names_) inputs_.push_back(check_input(name, cfg_->raw && inputs_.size() < kKeptOpen));
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
      if (mark && inputs_[i] && inputs_[i]->regular && !gzip_named(names_[i]) && mark->offset > inputs_[i]->size) {
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
      bool sized = inputs_[i] && names_[i] != "-" && inputs_[i]->regular && !gzip_named(names_[i]);
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
    open_input(in);
    const InputMark& mark = marks_[index];
    auto reader = std::make_shared<InputReader>(in, cfg_->max_line, cfg_->chunk, run_.stage.control, budget_);
    if (cfg_->decoder.format == LineFormat::csv)
      reader->csv = std::make_unique<CsvDecoding>(cfg_->decoder, &mark, index, cfg_->max_line, names_[index]);
    uint64_t start = mark.offset;
    if (start > 0) {
      if (reader->csv) read_csv_header(in, reader->csv->decoder, cfg_->max_line);
      seek_input(in, start);
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
