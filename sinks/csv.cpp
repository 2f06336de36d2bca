// The `csv` sink: a header row, then one row per record (RFC 4180 quoting).
//   sink:
//     csv: {path: out/report.csv, columns: [id, url, status]}
// Without `columns`, the first record's top-level keys are the columns. Strings
// are written as text, null or missing as an empty field, objects and arrays as JSON;
// a row whose one field is empty is written as "" (a blank line is no row).
#include <memory>

#include "engine/blocking_pool.h"
#include "run/checkpoint.h"
#include "expr/expression.h"
#include "engine/json_scan.h"
#include "config/kinds.h"
#include "engine/record_decoder.h"
#include "sinks/file/file_output.h"

namespace aetl {
namespace {

struct CsvConfig {
  std::string path = "-";
  std::vector<std::string> columns;
  char delimiter = ',';
  bool append = false;
  bool fsync = true;
};

void append_csv_field(std::string& out, std::string_view v, char delimiter) {
  bool quote = v.find_first_of(std::string("\"\r\n") + delimiter) != std::string_view::npos ||
               (!v.empty() && (v.front() == ' ' || v.back() == ' '));
  if (!quote) {
    out.append(v);
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

/// Ends a row; a row with nothing in it (one column, empty) is written as `""`,
/// since readers skip a blank line.
void end_row(std::string& out, size_t row_start) {
  if (out.size() == row_start) out += "\"\"";
  out += "\r\n";
}

class CsvSink final : public PipelineSink {
 public:
  CsvSink(RunContext& run, const CsvConfig& cfg)
      : cfg_(cfg), pool_(run.stage.pool), out_(run.stage, cfg.path, cfg.append || run.append_files, cfg.fsync, FileOutputRules{nullptr, true}) {}

  asio::awaitable<void> open(const Checkpoint* resume, const std::string& key) override {
    co_await out_.open(checkpointed_length(resume, key));
    if (out_.length() > 0 && cfg_.columns.empty()) {  // a resumed file: keep its header
      std::string_view head = out_.head();
      auto nl = head.find('\n');
      std::vector<std::string> fields;
      std::string_view header = nl == std::string_view::npos ? std::string_view() : head.substr(0, nl);
      if (!header.empty() && header.back() == '\r') header.remove_suffix(1);  // written with CRLF
      if (!header.empty() && split_csv(header, cfg_.delimiter, fields) == CsvSplit::whole) set_columns(fields);
    }
    header_written_ = out_.length() > 0;
    if (!cfg_.columns.empty() && columns_.empty()) set_columns(cfg_.columns);
  }

  asio::awaitable<bool> write(const Batch& batch, WriteContext& wc) override {
    // Formatted on the pool (one batch at a time, so the evaluator is never shared).
    auto format = [this, &batch, &wc]() {
      format_batch(batch, wc, buffer_);
      return 0;
    };
    co_await run_blocking(pool_.pool(), format);
    bool ok = co_await out_.write(buffer_);
    if (ok && header_in_buffer_) header_written_ = true;
    co_return ok;
  }

  asio::awaitable<void> close() override { co_await out_.close(); }
  std::optional<uint64_t> durable_length() const override { return out_.durable_length(); }
  std::string describe() const override { return "csv " + out_.path(); }

 private:
  /// Into `buffer` (cleared first; its capacity kept from write to write).
  void format_batch(const Batch& batch, WriteContext& wc, std::string& buffer) {
    buffer.clear();
    header_in_buffer_ = false;
    if (columns_.empty()) {  // the first record with fields gives the columns
      for (const auto& r : batch) {
        std::vector<std::string> keys;
        for_each_member(r.data, 0, [&](const JsonMember& m) { keys.push_back(json_unescape(m.raw_key)); });
        if (!keys.empty()) {
          set_columns(keys);
          break;
        }
      }
      if (columns_.empty()) {  // nothing to make columns of: not written, not lost
        for (size_t k = 0; k < batch.size(); ++k)
          wc.rejected.emplace_back(k, "no fields to make CSV columns of (set columns:)");
        return;
      }
    }
    header_in_buffer_ = !header_written_;
    if (!header_written_) {
      size_t row_start = buffer.size();
      for (size_t i = 0; i < columns_.size(); ++i) {
        if (i) buffer += cfg_.delimiter;
        append_csv_field(buffer, columns_[i], cfg_.delimiter);
      }
      end_row(buffer, row_start);
    }
    std::string error;
    std::string tmp;
    for (size_t k = 0; k < batch.size(); ++k) {
      if (!eval_->bind(batch[k].data, error)) {
        wc.rejected.emplace_back(k, error);
        continue;
      }
      size_t row_start = buffer.size();
      for (size_t i = 0; i < columns_.size(); ++i) {
        if (i) buffer += cfg_.delimiter;
        expr::Value v = eval_->eval(i);
        if (v.type == expr::Value::Type::null) continue;
        if (v.type == expr::Value::Type::string) {
          append_csv_field(buffer, v.s, cfg_.delimiter);
        } else {
          tmp.clear();
          expr::append_value_json(v, tmp);
          append_csv_field(buffer, tmp, cfg_.delimiter);
        }
      }
      end_row(buffer, row_start);
    }
  }

  void set_columns(const std::vector<std::string>& names) {
    columns_ = names;
    program_ = std::make_unique<expr::Program>();
    for (const auto& c : columns_) program_->add(expr::field_expression(c));
    eval_ = std::make_unique<expr::Evaluator>(*program_);
  }

  CsvConfig cfg_;
  BlockingPool& pool_;
  FileOutput out_;
  std::string buffer_;  // the write being made; written one at a time
  std::vector<std::string> columns_;
  std::unique_ptr<expr::Program> program_;
  std::unique_ptr<expr::Evaluator> eval_;
  bool header_written_ = false;
  bool header_in_buffer_ = false;
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"path", FieldType::string, "-", "the file; - is standard output", "out/report.csv"},
    {"columns", FieldType::list, "", "the columns, in order (default: the first record's top-level keys)",
     "[id, country, total]"},
    {"delimiter", FieldType::string, ",", "the field separator (one character)", "\";\""},
    {"append", FieldType::boolean, "false", "append to the file (default: a fresh run truncates it)", "true"},
    {"fsync", FieldType::boolean, "true", "fsync each batch before acknowledging it", "false"},
};
const std::string_view kExamples[] = {"{path: out.csv, columns: [id, name], delimiter: \";\", append: true, fsync: false}"};
const FieldDefault kCommonDefaults[] = {{"batch.size", "100000"}, {"batch.bytes", "2MiB"}, {"batch.linger", "200ms"}};
}  // namespace
extern const KindFields csv_sink_fields{kFields, kExamples, kCommonDefaults};

SinkBuilder parse_csv_sink(const ConfigValue& node, ConfigProblems& problems, SinkCommon& common) {
  auto cfg = std::make_shared<CsvConfig>();
  common.batching.linger = std::chrono::milliseconds(200);
  common.batching.size = 100000;
  common.batching.bytes = 2 << 20;  // 2 MiB per write and fsync: memory stays low
  size_t before = problems.size();
  ConfigReader r(node, problems, {kFields, sink_common_fields()});
  if (!r.ok()) return {};
  if (auto p = r.string("path")) cfg->path = p->text;
  if (auto cols = r.string_list("columns")) {
    for (auto& c : *cols) cfg->columns.push_back(c.text);
  }
  if (auto d = r.string("delimiter")) {
    if (d->text.size() != 1 || d->text[0] == '"') problems.add(d->where, "delimiter: must be one character (not a quote)");
    else cfg->delimiter = d->text[0];
  }
  if (auto a = r.boolean("append")) cfg->append = *a;
  if (auto f = r.boolean("fsync")) cfg->fsync = *f;
  read_sink_common(r, common);
  r.finish();
  if (problems.size() != before) return {};
  common.file = cfg->path;
  return [cfg](RunContext& run, const SinkIdentity&) -> std::unique_ptr<PipelineSink> { return std::make_unique<CsvSink>(run, *cfg); };
}

}  // namespace aetl
