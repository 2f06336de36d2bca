#include "run/replay.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "engine/json_memory.h"
#include "engine/json_writer.h"
#include "engine/setup_error.h"
#include "run/checkpoint.h"
#include "run/dead_letter_rewrite.h"
#include "run/pipeline_runner.h"
#include "run/memory_source.h"
#include "run/run_lock.h"
#include "run/state_store.h"  // default_state_path

namespace aetl {
namespace {

namespace fs = std::filesystem;

/// One line of a dead-letter file.
struct Entry {
  size_t number = 0;       ///< its line in the file, 1-based
  std::string text;        ///< the line as it stands
  std::string error, stage, input;
  int64_t line = 0;
  int64_t attempts = 0;
  std::string record;      ///< JSON (record_is_json) or the text of a line that was not JSON
  bool record_is_json = true;
  // Where it replays from:
  bool replayable = false;
  size_t start = 0;        ///< the first stage it goes through (stages.size(): straight to the sinks)
  uint32_t routes = 0;     ///< the sinks it goes to (0: as the stages send it)
  bool handled = false;    ///< a replay run handled it (the file loses it, or takes its `again` lines)
  std::vector<std::string> again;  ///< its new dead-letter lines, if it failed again
};

/// Parses one dead-letter line; `why` says what is wrong with it.
bool parse_entry(simdjson::dom::parser& parser, const std::string& line, Entry& e, std::string& why) {
  simdjson::dom::element root;
  simdjson::padded_string padded(line);
  auto err = parse_or_throw(parser, [&] { return parser.parse(padded).get(root); });
  if (err || !root.is_object()) {
    why = "not a JSON object";
    return false;
  }
  auto text_of = [&](const char* key, std::string& out) {
    std::string_view v;
    if (root[key].get(v) != simdjson::SUCCESS) {
      why = std::string("no \"") + key + "\" string";
      return false;
    }
    out = std::string(v);
    return true;
  };
  if (!text_of("error", e.error) || !text_of("stage", e.stage)) return false;
  std::string_view input;
  if (root["input"].get(input) == simdjson::SUCCESS) e.input = std::string(input);
  int64_t n = 0;
  if (root["line"].get(n) == simdjson::SUCCESS) e.line = n;
  if (root["attempts"].get(n) == simdjson::SUCCESS) e.attempts = n;
  simdjson::dom::element rec;
  if (root["record"].get(rec) != simdjson::SUCCESS) {
    why = "no \"record\"";
    return false;
  }
  std::string_view s;
  if (rec.get(s) == simdjson::SUCCESS) {
    e.record = std::string(s);
    e.record_is_json = false;
  } else {
    e.record = simdjson::minify(rec);
  }
  return true;
}

/// The line to write back for an entry that failed again: its new error, stage
/// and record, where it first came from, and all its attempts.
std::string rewritten(const Entry& original, const Entry& again) {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("error").string(again.error);
  w.key("stage").string(again.stage);
  w.key("input").string(original.input);
  w.key("line").number(original.line);
  w.key("attempts").number(original.attempts + again.attempts);
  w.key("record");
  if (again.record_is_json) w.raw(again.record);
  else w.string(again.record);
  w.end_object();
  return out;
}

/// Writes `text` to a new file at `tmp`, fsync'd; returns its inode.
uint64_t write_synced(const std::string& tmp, const std::string& text) {
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw SetupError(tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw SetupError(tmp + ": " + std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  struct stat st {};
  if (::fsync(fd) != 0 || ::fstat(fd, &st) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw SetupError(tmp + ": cannot write it to disk");
  }
  return static_cast<uint64_t>(st.st_ino);
}

/// Renames `tmp` over `path`, and makes the rename durable.
void rename_over(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw SetupError(path + ": cannot replace it: " + std::strerror(e));
  }
  std::string dir = fs::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

/// The work directories of replays that were killed (their process is gone).
void remove_dead_replays_work() {
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(fs::temp_directory_path(ec), ec)) {
    std::string name = d.path().filename().string();
    if (name.rfind("aetl-replay-", 0) != 0) continue;
    long pid = std::strtol(name.c_str() + 12, nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(d.path(), ec);
  }
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec1, ec2;
  return !b.empty() && b != "-" && fs::weakly_canonical(a, ec1) == fs::weakly_canonical(b, ec2) && !ec1 && !ec2;
}

}  // namespace

ReplayOutcome replay_dead_letters(const Pipeline& spec, const ReplayOptions& options) {
  ReplayOutcome out;
  const std::string& path = options.dead_letter_file;

  // The pipeline holds still meanwhile: a run appending to the file must not interleave.
  std::unique_ptr<RunLock> lock;
  std::string state_path = options.state_path.empty() ? default_state_path(spec.file) : options.state_path;
  if (!spec.source.queue && !options.dry_run) {
    lock = RunLock::for_pipeline(state_path, spec.name, options.wait, "running");
  }

  const bool own = spec.dead_letter && same_file(path, spec.dead_letter->common.file);
  if (own && spec.source.queue && !options.dry_run)
    throw SetupError(path + ": the dead letter of pipeline '" + spec.name +
                     "', whose workers keep it open (it reads a queue): stop them, move the file aside (mv), and "
                     "replay the moved file");
  // Where the pipeline stands: the lengths of its file sinks and dead letter.
  std::optional<Checkpoint> standing;
  if (!spec.source.queue && !options.dry_run) {
    try {
      standing = saved_checkpoint(spec, options.run, state_path);
    } catch (const SetupError&) {
      throw;
    } catch (const std::exception& e) {
      throw SetupError(state_path + ": " + e.what());
    }
  }
  const std::string tmp_path = dead_letter_rewrite_path(path);
  {
    auto id = own && standing ? standing->sink_lengths.find(std::string(kDeadLetterFileId))
                              : std::map<std::string, uint64_t>::const_iterator{};
    if (own && standing && id != standing->sink_lengths.end()) finish_dead_letter_rewrite(path, id->second);
    else if (!options.dry_run) ::unlink(tmp_path.c_str());  // a rewrite never committed
  }

  std::ifstream in(path, std::ios::binary);
  if (!in) throw SetupError(path + ": " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  std::string content = buf.str();
  // The pipeline's own dead letter: only what its checkpoint covers (a killed
  // run's uncommitted tail is cut by its next run, and kept as it is here).
  size_t committed = content.size();
  if (own && standing)
    if (auto it = standing->sink_lengths.find("dead_letter"); it != standing->sink_lengths.end()) {
      auto id = standing->sink_lengths.find(std::string(kDeadLetterFileId));
      if (id == standing->sink_lengths.end())
        throw SetupError(path + ": the pipeline's checkpoint was written by an older aetl, which did not record "
                                "the file's identity: run the pipeline once, then replay");
      // The checkpoint's length is of the file it knew: a file replaced since
      // (an editor's save) is taken whole.
      struct stat st {};
      bool same = ::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_ino) == id->second;
      size_t length = static_cast<size_t>(it->second);
      if (same && length < content.size()) {
        if (length > 0 && content[length - 1] != '\n')
          throw SetupError(path + ": changed in place since the pipeline's last checkpoint (its " +
                           std::to_string(length) +
                           " bytes there do not end a line): save the file under another name and move it over");
        committed = length;
      }
    }
  if (committed < content.size())
    spdlog::info("{}: its last {} byte{} are not in the pipeline's checkpoint (a run was killed): left out; "
                 "the pipeline's next run writes those entries again",
                 path, content.size() - committed, content.size() - committed == 1 ? "" : "s");

  // The entries, and where each replays from.
  std::vector<Entry> entries;
  simdjson::dom::parser parser;
  std::map<std::string, size_t> stage_at;
  for (size_t i = 0; i < spec.stages.size(); ++i) stage_at[spec.stages[i].label] = i;
  size_t at = 0, number = 0;
  while (at < committed) {
    size_t nl = content.find('\n', at);
    size_t end = nl == std::string::npos || nl >= committed ? committed : nl;
    std::string line = content.substr(at, end - at);
    at = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    Entry e;
    e.number = number;
    e.text = line;
    std::string why;
    if (!parse_entry(parser, line, e, why))
      throw SetupError(path + ":" + std::to_string(number) + ": not a dead-letter entry: " + why);
    std::string sink_name = e.stage.rfind("sink ", 0) == 0 ? e.stage.substr(5) : "";
    if (auto s = stage_at.find(e.stage); s != stage_at.end()) {
      e.replayable = e.record_is_json;
      e.start = s->second;
    } else if (!sink_name.empty()) {
      for (size_t k = 0; k < spec.sinks.size(); ++k)
        if ((spec.sinks.size() == 1 && spec.sinks[k].kind == sink_name) || spec.sinks[k].name == sink_name) {
          e.replayable = e.record_is_json;
          e.start = spec.stages.size();
          e.routes = spec.sinks.size() == 1 ? 0 : 1u << k;
        }
    } else if (e.stage == spec.source.kind) {
      e.start = 0;
      e.replayable = true;
      if (!e.record_is_json) {  // a bad input line: replayed once it is a JSON object (mended by hand)
        simdjson::dom::element root;
        simdjson::padded_string padded(e.record);
        auto err = parse_or_throw(parser, [&] { return parser.parse(padded).get(root); });
        e.replayable = !err && root.is_object();
        if (e.replayable) e.record_is_json = true;
      }
    }
    if (!e.replayable) ++out.kept;
    entries.push_back(std::move(e));
  }
  out.entries = entries.size();
  std::unordered_map<size_t, size_t> by_number;  // an entry's line in the file → its index
  for (size_t i = 0; i < entries.size(); ++i) by_number[entries[i].number] = i;

  // One replay run per starting point, each with a dead letter of its own.
  remove_dead_replays_work();
  std::string work_template = (fs::temp_directory_path() / fmt::format("aetl-replay-{}-XXXXXX", ::getpid())).string();
  if (!::mkdtemp(work_template.data())) throw SetupError(work_template + ": " + std::strerror(errno));
  fs::path work = work_template;
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{work};
  std::map<std::pair<size_t, uint32_t>, std::vector<size_t>> groups;
  for (size_t i = 0; i < entries.size(); ++i)
    if (entries[i].replayable) groups[{entries[i].start, entries[i].routes}].push_back(i);
  bool all_ran = true;
  size_t group_no = 0;
  // The pipeline's file sinks: continued from what its checkpoint covers (a killed
  // run's tail cut, as its next run would), and their new lengths recorded in it.
  std::map<std::string, uint64_t> file_lengths;
  if (standing)
    for (const auto& [key, length] : standing->sink_lengths)
      if (key.rfind("dead_letter", 0) != 0) file_lengths[key] = length;
  const auto lengths_before = file_lengths;
  for (const auto& [where, members] : groups) {
    ++group_no;
    Batch records;
    for (size_t i : members) {
      Record r;
      r.data = entries[i].record;
      r.pos = Position{0, entries[i].number, 0};
      r.routes = entries[i].routes;
      records.push_back(std::move(r));
    }
    const Entry& first = entries[members.front()];
    if (!options.quiet)
      spdlog::info("{}: replaying {} entr{} {}", path, members.size(), members.size() == 1 ? "y" : "ies",
                 where.first < spec.stages.size() ? "from " + spec.stages[where.first].label
                 : first.stage.rfind("sink ", 0) == 0 ? "into " + first.stage
                                                      : std::string("into the sinks"));
    Pipeline p = spec;
    p.name = spec.name + " (replay)";  // what exactly-once sinks keep for a replay stays apart from the pipeline's
    p.schedule = {};
    p.source = Pipeline::SourcePart{};
    p.source.kind = "dead letter";
    auto shared = std::make_shared<Batch>(std::move(records));
    p.source.build = [shared, path](RunContext& run) -> std::unique_ptr<Source> {
      return std::make_unique<MemorySource>(run, path, std::move(*shared));
    };
    p.stages.assign(spec.stages.begin() + static_cast<std::ptrdiff_t>(where.first), spec.stages.end());
    std::string again_path = (work / fmt::format("again-{}.jsonl", group_no)).string();
    if (options.dry_run) {
      for (auto& sink : p.sinks) {
        Pipeline::SinkPart o = options.jsonl_sink("-");
        o.name = sink.name;
        o.kind = sink.kind;
        sink = std::move(o);
      }
    }
    p.dead_letter = options.jsonl_sink(again_path);
    p.dead_letter->name = "dead_letter";
    RunOptions ro = options.run;
    ro.state_path = (work / fmt::format("state-{}.sqlite", group_no)).string();
    ro.from_start = true;
    ro.state_in_summary = false;
    ro.append_files = true;
    ro.file_lengths = file_lengths;
    ro.dry_run = options.dry_run;
    RunOutcome r = run_pipeline_spec(p, ro);
    out.run.failed = out.run.failed || r.failed;
    out.run.interrupted = out.run.interrupted || r.interrupted;
    out.run.taken_over = out.run.taken_over || r.taken_over;
    out.run.closed_early = out.run.closed_early || r.closed_early;
    const bool ran = !(r.failed || r.interrupted || r.taken_over || r.closed_early);
    // The entries the run handled (written, or sent to its dead letter): every one
    // of a run that ended; of one that stopped early, those its checkpoint covers
    // (the rest stay as they were, to be replayed again).
    // Its checkpoint also has the lengths the pipeline's file sinks have now.
    std::optional<Checkpoint> cp;
    if (!options.dry_run) {
      try {
        cp = saved_checkpoint(p, ro, ro.state_path);
      } catch (const std::exception& e) {  // the file and the pipeline's checkpoint are left as they were
        throw SetupError(path + ": what the replay handled cannot be read (" + e.what() +
                         "): the file is left as it was");
      }
    }
    if (cp)
      for (const auto& [key, length] : cp->sink_lengths)
        if (key.rfind("dead_letter", 0) != 0) file_lengths[key] = length;
    const InputMark* mark = cp ? cp->find(path) : nullptr;
    for (size_t i : members)
      entries[i].handled = ran || (mark && mark->is_done(entries[i].number));
    // The entries that failed again, by the line they came from.
    std::ifstream again(again_path, std::ios::binary);
    std::string line;
    while (std::getline(again, line)) {
      if (line.empty()) continue;
      Entry a;
      std::string why;
      if (!parse_entry(parser, line, a, why) || a.line < 1) continue;
      auto it = by_number.find(static_cast<size_t>(a.line));
      if (it == by_number.end() || !entries[it->second].handled) continue;
      entries[it->second].again.push_back(rewritten(entries[it->second], a));
      if (options.dry_run) std::fprintf(stderr, "%s\n", entries[it->second].again.back().c_str());
    }
    if (!ran) {
      all_ran = false;
      break;
    }
  }
  out.complete = all_ran;

  std::string text;
  bool changed = false;
  for (const auto& e : entries) {
    if (!e.replayable || !e.handled) {
      text += e.text + "\n";
      continue;
    }
    changed = true;
    if (e.again.empty()) {
      ++out.succeeded;
      continue;
    }
    ++out.failed_again;
    for (const auto& l : e.again) text += l + "\n";
  }
  out.replayed = out.succeeded + out.failed_again;
  for (const auto& e : entries) out.left += e.replayable && !e.handled;
  if (options.dry_run || !changed) return out;

  // The new file beside the old; the pipeline's checkpoint told (the commit);
  // then the new file over the old (dead_letter_rewrite.h).
  uint64_t inode = write_synced(tmp_path, text);
  if (standing && (file_lengths != lengths_before || own)) {
    try {
      amend_checkpoint(spec, options.run, state_path, [&](Checkpoint& c) {
        for (const auto& [key, length] : file_lengths) c.sink_lengths[key] = length;
        if (own) {
          c.sink_lengths["dead_letter"] = text.size();
          c.sink_lengths[std::string(kDeadLetterFileId)] = inode;
        }
      });
    } catch (...) {
      ::unlink(tmp_path.c_str());
      throw;
    }
  }
  rename_over(tmp_path, path);
  out.rewritten = true;
  return out;
}

}  // namespace aetl
