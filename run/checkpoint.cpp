#include "run/checkpoint.h"

#include <algorithm>
#include <stdexcept>

#include <simdjson.h>

#include "engine/json_writer.h"
#include "engine/json_memory.h"

namespace aetl {

bool InputMark::is_done(uint64_t l) const {
  if (l <= line) return true;
  for (const auto& r : done)
    if (l >= r.first && l <= r.last) return true;
  return false;
}

const InputMark* Checkpoint::find(const std::string& name) const {
  for (const auto& m : inputs)
    if (m.name == name) return &m;
  return nullptr;
}

namespace {

void write_marks(JsonWriter& w, const std::vector<InputMark>& marks) {
  w.begin_array();
  for (const auto& m : marks) {
    w.begin_object().key("name").string(m.name);
    w.key("line").number(static_cast<int64_t>(m.line)).key("offset").number(static_cast<int64_t>(m.offset));
    w.key("done").begin_array();
    for (const auto& r : m.done) {
      w.begin_array()
          .number(static_cast<int64_t>(r.first))
          .number(static_cast<int64_t>(r.last))
          .number(static_cast<int64_t>(r.end_offset))
          .end_array();
    }
    w.end_array().end_object();
  }
  w.end_array();
}

std::vector<InputMark> read_marks(simdjson::dom::element array) {
  std::vector<InputMark> marks;
  for (auto item : array.get_array()) {
    InputMark m;
    m.name = std::string(std::string_view(item["name"]));
    m.line = uint64_t(int64_t(item["line"]));
    m.offset = uint64_t(int64_t(item["offset"]));
    for (auto r : item["done"].get_array()) {
      simdjson::dom::array a = r;
      if (a.size() != 3) throw std::runtime_error("bad range");
      m.done.push_back({uint64_t(int64_t(a.at(0))), uint64_t(int64_t(a.at(1))), uint64_t(int64_t(a.at(2)))});
    }
    marks.push_back(std::move(m));
  }
  return marks;
}

}  // namespace

std::string Checkpoint::to_json() const {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("version").number(int64_t{1}).key("inputs");
  write_marks(w, inputs);
  w.key("sinks").begin_object();
  for (const auto& [name, len] : sink_lengths) w.key(name).number(static_cast<int64_t>(len));
  w.end_object();
  if (!sink_marks.empty()) {
    w.key("sink_marks").begin_object();
    for (const auto& [name, marks] : sink_marks) {
      w.key(name);
      write_marks(w, marks);
    }
    w.end_object();
  }
  w.end_object();
  return out;
}

Checkpoint Checkpoint::from_json(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  auto parsed = parse_or_throw(parser, [&] { return parser.parse(text.data(), text.size()).get(root); });
  if (parsed) throw std::runtime_error("checkpoint is not JSON");
  Checkpoint cp;
  try {
    cp.inputs = read_marks(root["inputs"]);
    for (auto [key, value] : root["sinks"].get_object()) cp.sink_lengths[std::string(key)] = uint64_t(int64_t(value));
    simdjson::dom::object marks;
    if (root["sink_marks"].get(marks) == simdjson::SUCCESS)
      for (auto [key, value] : marks) cp.sink_marks[std::string(key)] = read_marks(value);
  } catch (const simdjson::simdjson_error& e) {
    throw std::runtime_error(std::string("checkpoint is malformed: ") + e.what());
  }
  return cp;
}

void AckTracker::add_input(uint32_t index, const std::string& name, const InputMark* resume) {
  if (inputs_.size() <= index) inputs_.resize(index + 1);
  Input& in = inputs_[index];
  in.mark = InputMark{};
  in.mark.name = name;
  if (!resume) return;
  in.mark.line = resume->line;
  in.mark.offset = resume->offset;
  for (const auto& r : resume->done) in.ahead[r.first] = r;
}

void AckTracker::name_by(uint32_t index, Namer namer) {
  if (inputs_.size() <= index) inputs_.resize(index + 1);
  inputs_[index].namer = std::move(namer);
}

bool AckTracker::already_done(const Position& pos) const {
  if (pos.source >= inputs_.size()) return false;
  const Input& in = inputs_[pos.source];
  if (pos.line <= in.mark.line) return true;
  auto it = in.ahead.upper_bound(pos.line);
  if (it == in.ahead.begin()) return false;
  --it;
  return pos.line <= it->second.last;
}

void AckTracker::split(const Position& pos, uint32_t parts) {
  if (parts == 0) {
    ack(pos);
    return;
  }
  if (parts == 1) return;
  Input& in = inputs_[pos.source];
  auto [it, fresh] = in.parts.emplace(pos.line, parts);
  if (!fresh) it->second += parts - 1;  // a part of an already split record split again
}

void AckTracker::ack(const Position& pos) {
  if (pos.source >= inputs_.size()) return;
  Input& in = inputs_[pos.source];
  auto p = in.parts.find(pos.line);
  if (p != in.parts.end()) {
    if (--p->second > 0) return;
    in.parts.erase(p);
  }
  ++acked_;
  ++version_;
  mark_done(in, pos.line, pos.line, pos.end_offset);
  handled(pos.source, pos.line, pos.line);
}

void AckTracker::ack_range(uint32_t source, uint64_t first, uint64_t last, uint64_t end_offset) {
  if (source >= inputs_.size() || first > last) return;
  Input& in = inputs_[source];
  acked_ += last - first + 1;
  ++version_;
  mark_done(in, first, last, end_offset);
  handled(source, first, last);
}

void AckTracker::absorb(const InputMark& m) {
  for (auto& in : inputs_) {
    if (in.namer ? m.name.rfind(in.mark.name, 0) != 0 : in.mark.name != m.name) continue;
    if (m.line > 0) mark_done(in, 1, m.line, m.offset);
    for (const auto& r : m.done) mark_done(in, r.first, r.last, r.end_offset);
    ++version_;
    return;
  }
}

void AckTracker::mark_done(Input& in, uint64_t first, uint64_t last, uint64_t end_offset) {
  // Lines are handled once: what the watermark covers already is left alone (an
  // offset below the watermark's would be lost, so `first` moves up, not `last`).
  if (last <= in.mark.line) return;
  if (first <= in.mark.line) first = in.mark.line + 1;
  if (first == in.mark.line + 1 && (in.ahead.empty() || in.ahead.begin()->first > last + 1)) {  // the usual case
    in.mark.line = last;
    in.mark.offset = end_offset;
    return;
  }
  if (!in.ahead.empty()) {  // extending the last range: records finishing in order behind a gap
    auto& tail = in.ahead.rbegin()->second;
    if (tail.last + 1 == first) {
      tail.last = last;
      tail.end_offset = end_offset;
      return;
    }
  }
  // Merge with every range that overlaps or touches [first, last].
  InputMark::Range r{first, last, end_offset};
  auto it = in.ahead.upper_bound(first);
  if (it != in.ahead.begin() && std::prev(it)->second.last + 1 >= first) --it;
  while (it != in.ahead.end() && it->first <= r.last + 1) {
    r.first = std::min(r.first, it->second.first);
    if (it->second.last > r.last) {
      r.last = it->second.last;
      r.end_offset = it->second.end_offset;
    }
    it = in.ahead.erase(it);
  }
  if (r.first == in.mark.line + 1) {
    in.mark.line = r.last;
    in.mark.offset = r.end_offset;
    return;
  }
  in.ahead[r.first] = r;
}

Checkpoint AckTracker::snapshot() const {
  Checkpoint cp;
  for (const auto& in : inputs_) {
    InputMark m = in.mark;
    m.done.clear();
    for (const auto& [first, r] : in.ahead) m.done.push_back(r);
    if (in.namer) m.name = in.namer(m);
    cp.inputs.push_back(std::move(m));
  }
  for (const auto& m : carried_) cp.inputs.push_back(m);
  return cp;
}

}  // namespace aetl
