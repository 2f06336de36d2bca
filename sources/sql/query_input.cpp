#include "sources/sql/query_input.h"

#include <cstdlib>

#include "engine/json_scan.h"
#include "engine/json_writer.h"

namespace aetl {

QueryInput::QueryInput(RunContext& run, std::string base_name, bool incremental)
    : run_(run), base_name_(std::move(base_name)) {
  const InputMark* last = nullptr;
  if (run_.resume)
    for (const auto& m : run_.resume->inputs) {
      if (incremental ? m.name.rfind(base_name_, 0) == 0 : m.name == base_name_) last = &m;
      else run_.tracker.carry(m);
    }
  if (!incremental) {
    name_ = base_name_;
    run_.tracker.add_input(0, name_, last);
    if (last) mark_ = *last;
  } else if (last) {
    // The last window's mark is kept until this run's window replaces it.
    previous_ = parse(std::string_view(last->name).substr(base_name_.size()));
    again_ = previous_ && last->line < previous_->rows;
    run_.tracker.carry(*last);
    carried_ = last->name;
  }
  run_.stage.input_names = {name_.empty() ? base_name_ : name_};
}

std::optional<QueryWindow> QueryInput::parse(std::string_view text) {
  QueryWindow w;
  bool upto = false, rows = false;
  bool ok = for_each_member(text, 0, [&](const JsonMember& m) {
    std::string_view v = text.substr(m.value_begin, m.value_end - m.value_begin);
    if (m.raw_key == "after" && v != "null") w.low = json_unescape(v.substr(1, v.size() - 2));
    if (m.raw_key == "upto" && v.size() >= 2) w.high = json_unescape(v.substr(1, v.size() - 2)), upto = true;
    if (m.raw_key == "rows") w.rows = std::strtoull(std::string(v).c_str(), nullptr, 10), rows = true;
    if (m.raw_key == "attempt") w.attempt = std::atoi(std::string(v).c_str());
  });
  if (!ok || !upto || !rows) return std::nullopt;
  return w;
}

QueryWindow QueryInput::next_window() const {
  QueryWindow w;
  if (previous_ && again_) {
    w = *previous_;
    w.attempt = previous_->attempt + 1;
  } else if (previous_) {
    w.low = previous_->high;
  }
  return w;
}

void QueryInput::open(const QueryWindow& w) {
  std::string json;
  JsonWriter jw(json);
  jw.begin_object().key("after");
  if (w.low) jw.string(*w.low);
  else jw.null();
  jw.key("upto").string(w.high).key("rows").number(static_cast<int64_t>(w.rows));
  jw.key("attempt").number(static_cast<int64_t>(w.attempt)).end_object();
  name_ = base_name_ + json;
  window_ = w;
  if (!carried_.empty()) run_.tracker.drop_carried(carried_);
  carried_.clear();
  run_.tracker.add_input(0, name_, nullptr);
  run_.stage.input_names = {name_};
}

}  // namespace aetl
