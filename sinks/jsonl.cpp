// The `jsonl` sink: one record per line, to a file or stdout.
//   sink:
//     jsonl: {path: out/errors.jsonl}      # or "-" for stdout
#include <sys/stat.h>

#include <memory>

#include <spdlog/spdlog.h>

#include "engine/blocking_pool.h"
#include "run/checkpoint.h"
#include "run/dead_letter_rewrite.h"
#include "config/kinds.h"
#include "engine/record_decoder.h"
#include "sinks/file/file_output.h"
#include "sinks/jsonl.h"

namespace aetl {
namespace {

struct JsonlConfig {
  std::string path = "-";
  bool append = false;
  bool fsync = true;
};

/// An appended file's last line that lacks its line break is a whole record when
/// it is a JSON object (else it is what a killed run left half-written).
bool is_json_object(std::string_view line) {
  RecordDecoder decoder(DecoderOptions{});
  return decoder.decode(line).kind == Decoded::record;
}

class JsonlFileSink final : public PipelineSink {
 public:
  JsonlFileSink(RunContext& run, const JsonlConfig& cfg)
      : pool_(run.stage.pool), out_(run.stage, cfg.path, cfg.append || run.append_files, cfg.fsync, FileOutputRules{is_json_object, false}) {}

  asio::awaitable<void> open(const Checkpoint* resume, const std::string& key) override {
    auto length = checkpointed_length(resume, key);
    // A dead letter that is another file than the checkpoint's (`aetl replay`
    // rewrote it, or it was moved away) is appended to where it ends.
    auto id = checkpointed_length(resume, std::string(kDeadLetterFileId));
    struct stat st {};
    if (length && id && key == "dead_letter") {
      finish_dead_letter_rewrite(out_.path(), *id);
      bool exists = ::stat(out_.path().c_str(), &st) == 0;
      if (!exists || (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_ino) != *id)) {
        spdlog::info("{}: {} since the last checkpoint: {}", out_.path(),
                     exists ? "another file (saved anew by an editor?)" : "gone",
                     exists ? "appending at its end" : "starting it anew");
        length = exists ? static_cast<uint64_t>(st.st_size) : 0;
      }
    }
    co_await out_.open(length);
  }

  asio::awaitable<bool> write(const Batch& batch, WriteContext&) override {
    // Joined on the pool: the loop thread only moves batches. One buffer for every
    // write (megabytes: mapped and faulted in afresh otherwise).
    const Batch* b = &batch;
    std::string* buffer = &buffer_;
    auto join = [b, buffer]() {
      buffer->clear();
      size_t total = 0;
      for (const auto& r : *b) total += r.data.size() + 1;
      buffer->reserve(total);
      for (const auto& r : *b) {
        *buffer += r.data;
        *buffer += '\n';
      }
      return 0;
    };
    co_await run_blocking(pool_.pool(), join);
    co_return co_await out_.write(buffer_);
  }

  asio::awaitable<void> close() override { co_await out_.close(); }
  std::optional<uint64_t> durable_length() const override { return out_.durable_length(); }
  std::optional<uint64_t> file_id() const override { return out_.file_id(); }
  std::string describe() const override { return "jsonl " + out_.path(); }

 private:
  BlockingPool& pool_;
  FileOutput out_;
  std::string buffer_;  // the write being made; written one at a time
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"", FieldType::string, "", "short form: the path alone", "out/records.jsonl"},
    {"path", FieldType::string, "-", "the file; - is standard output", "out/records.jsonl"},
    {"append", FieldType::boolean, "false", "append to the file (default: a fresh run truncates it)", "true"},
    {"fsync", FieldType::boolean, "true", "fsync each batch before acknowledging it", "false"},
};
const std::string_view kExamples[] = {"out.jsonl", "{path: out.jsonl, append: true, fsync: false}"};
const FieldDefault kCommonDefaults[] = {{"batch.size", "100000"}, {"batch.bytes", "2MiB"}, {"batch.linger", "200ms"}};
}  // namespace
extern const KindFields jsonl_sink_fields{kFields, kExamples, kCommonDefaults};

SinkBuilder parse_jsonl_sink(const ConfigValue& node, ConfigProblems& problems, SinkCommon& common) {
  auto cfg = std::make_shared<JsonlConfig>();
  common.batching.linger = std::chrono::milliseconds(200);
  common.batching.size = 100000;
  common.batching.bytes = 2 << 20;  // 2 MiB per write and fsync: memory stays low
  size_t before = problems.size();
  if (node.is_scalar()) {  // `jsonl: out.jsonl`
    if (auto p = expand_scalar(node, problems, "")) cfg->path = p->text;
  } else if (!node.is_null()) {
    ConfigReader r(node, problems, {kFields, sink_common_fields()});
    if (!r.ok()) return {};
    if (auto p = r.string("path")) cfg->path = p->text;
    if (auto a = r.boolean("append")) cfg->append = *a;
    if (auto f = r.boolean("fsync")) cfg->fsync = *f;
    read_sink_common(r, common);
    r.finish();
  }
  if (problems.size() != before) return {};
  common.file = cfg->path;
  return [cfg](RunContext& run, const SinkIdentity&) -> std::unique_ptr<PipelineSink> {
    return std::make_unique<JsonlFileSink>(run, *cfg);
  };
}

SinkBuilder jsonl_file_sink(std::string path, bool append, bool fsync) {
  auto cfg = std::make_shared<JsonlConfig>();
  cfg->path = std::move(path);
  cfg->append = append;
  cfg->fsync = fsync;
  return [cfg](RunContext& run, const SinkIdentity&) -> std::unique_ptr<PipelineSink> {
    return std::make_unique<JsonlFileSink>(run, *cfg);
  };
}

}  // namespace aetl
