// The `jq` stage: a jq program per record (libjq), on the thread pool.
//   - jq: '.items[] | {id, price: (.price * 100 | floor)}'
//   - jq: {program: 'select(.ok) | .user', on_non_object: wrap}
// Each output of the program is a record (zero: the record is dropped; several:
// it is split). A record the program fails on goes to the dead letter with jq's
// message, none of its outputs kept. Outputs must be objects: with
// `on_non_object: wrap` other values become {"value": ...}, else they are errors.
extern "C" {
#include <jq.h>
}

#include <memory>
#include <mutex>

#include "config/kinds.h"
#include "run/pool_stage.h"

namespace aetl {
namespace {

// libjq 1.6 is not safe to use from two threads at once, even with separate
// states (shared allocator and number formatting state): one lock for all.
std::mutex& jq_lock() {
  static std::mutex m;
  return m;
}

void collect_error(void* data, jv msg) {
  auto* out = static_cast<std::string*>(data);
  if (jv_get_kind(msg) == JV_KIND_STRING) {
    if (!out->empty()) *out += "; ";
    *out += jv_string_value(msg);
  }
  jv_free(msg);
}

struct JqProgram {
  std::string text;
  bool wrap = false;
};

/// A compiled program; compile errors are kept in `error`.
class Jq {
 public:
  explicit Jq(const std::string& program) {
    std::lock_guard lock(jq_lock());
    state_ = jq_init();
    if (!state_) {
      error = "jq: cannot initialise";
      return;
    }
    jq_set_error_cb(state_, collect_error, &messages_);
    if (!jq_compile(state_, program.c_str())) error = messages_.empty() ? "jq: cannot compile" : messages_;
    messages_.clear();
  }
  ~Jq() {
    std::lock_guard lock(jq_lock());
    jq_teardown(&state_);
  }
  std::string error;

  /// Runs the program on one record; outputs are JSON texts. False + message on an error.
  bool run(const std::string& input, bool wrap, std::vector<std::string>& outputs, std::string& message) {
    std::lock_guard lock(jq_lock());
    outputs.clear();
    jv value = jv_parse_sized(input.data(), static_cast<int>(input.size()));
    if (!jv_is_valid(value)) {
      message = invalid_message(value, "invalid JSON");
      return false;
    }
    jq_start(state_, value, 0);
    for (;;) {
      jv out = jq_next(state_);
      if (!jv_is_valid(out)) {
        if (jv_invalid_has_msg(jv_copy(out))) {
          message = "jq: " + invalid_message(out, "error");
          return false;
        }
        jv_free(out);
        break;
      }
      if (jv_get_kind(out) != JV_KIND_OBJECT) {
        if (!wrap) {
          jv_free(out);
          message = "jq: the program produced a value that is not an object (set on_non_object: wrap)";
          return false;
        }
        out = jv_object_set(jv_object(), jv_string("value"), out);
      }
      jv text = jv_dump_string(out, 0);
      outputs.emplace_back(jv_string_value(text), static_cast<size_t>(jv_string_length_bytes(jv_copy(text))));
      jv_free(text);
    }
    if (!messages_.empty()) {  // errors reported through the callback (e.g. `error` on stderr)
      message = "jq: " + messages_;
      messages_.clear();
      return false;
    }
    return true;
  }

 private:
  static std::string invalid_message(jv invalid, const char* fallback) {
    jv msg = jv_invalid_get_msg(invalid);
    std::string text = fallback;
    if (jv_get_kind(msg) == JV_KIND_STRING) {
      text = jv_string_value(msg);
    } else if (jv_get_kind(msg) != JV_KIND_NULL) {
      jv dumped = jv_dump_string(msg, 0);
      text = jv_string_value(dumped);
      jv_free(dumped);
      return text;
    }
    jv_free(msg);
    return text;
  }

  jq_state* state_ = nullptr;
  std::string messages_;
};

class JqStage final : public PoolStage {
 public:
  JqStage(RunContext& run, PartStats& stats, std::shared_ptr<const JqProgram> program)
      : PoolStage(run, stats, 1), program_(std::move(program)), jq_(program_->text) {}  // libjq: one at a time

 protected:
  void process(size_t, Batch& in, StageOutput& out) override {
    std::vector<std::string> outputs;
    std::string message;
    for (auto& r : in) {
      if (!jq_.run(r.data, program_->wrap, outputs, message)) {
        out.failed.push_back({std::move(r), stats_.name, message, 1, message != "invalid JSON"});
        continue;
      }
      if (outputs.empty()) {
        out.dropped.push_back(r.pos);
        continue;
      }
      if (outputs.size() > 1) out.splits.emplace_back(r.pos, static_cast<uint32_t>(outputs.size()));
      for (size_t k = 0; k < outputs.size(); ++k) {
        Record x;
        x.pos = r.pos;
        x.part = outputs.size() > 1 ? split_part(r.part, k) : r.part;
        x.data = std::move(outputs[k]);
        out.out.push_back(std::move(x));
      }
    }
  }

 private:
  std::shared_ptr<const JqProgram> program_;
  Jq jq_;
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    {"", FieldType::jq_program, "", "short form: the program alone", "'{id, total: (.price * .qty)}'"},
    {"program", FieldType::jq_program, "required", "the jq program, run once per record", "'select(.ok) | {id}'"},
    {"on_non_object", FieldType::choice, "error",
     "an output that is not an object: error (dead letter) or wrap (becomes {\"value\": ...})", "wrap"},
};
const std::string_view kExamples[] = {"'.a'", "{program: '.items[]', on_non_object: wrap}"};
}  // namespace
extern const KindFields jq_stage_fields{kFields, kExamples};

StageBuilder parse_jq_stage(const ConfigValue& node, ConfigProblems& problems) {
  auto program = std::make_shared<JqProgram>();
  std::optional<ConfigString> text;
  if (node.is_scalar()) {
    text = expand_scalar(node, problems, "");
  } else {
    ConfigReader r(node, problems, {kFields});
    if (!r.ok()) return {};
    text = r.string("program", true);
    if (auto w = r.choice("on_non_object", {"error", "wrap"})) program->wrap = *w == "wrap";
    r.finish();
  }
  if (!text) return {};
  program->text = text->text;
  Jq check(program->text);
  if (!check.error.empty()) {
    std::string msg = check.error;
    for (char& c : msg)
      if (c == '\n') c = ' ';
    problems.add(text->where, msg.rfind("jq: ", 0) == 0 ? msg : "jq: " + msg);
    return {};
  }
  return [program](RunContext& run, PartStats& stats) -> std::unique_ptr<Stage> {
    return std::make_unique<JqStage>(run, stats, program);
  };
}

}  // namespace aetl
