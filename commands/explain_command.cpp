#include "commands/explain_command.h"

#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "config/did_you_mean.h"
#include "config/kinds.h"
#include "engine/setup_error.h"

namespace aetl {
namespace {

/// One kind, or the pipeline's top level, as `aetl explain` shows it.
struct Explained {
  std::string part;  ///< "source", "stage", "sink" or "pipeline"
  std::string key;   ///< the kind; empty for the pipeline
  std::string summary;
  const KindFields* fields;
  bool sink = false;  ///< the common sink keys come on top
};

std::vector<Explained> everything() {
  std::vector<Explained> out;
  out.push_back({"pipeline", "", "the top-level keys of a pipeline file", &pipeline_fields()});
  for (const auto& k : source_kinds()) out.push_back({"source", std::string(k.key), std::string(k.summary), &k.fields});
  for (const auto& k : stage_kinds()) out.push_back({"stage", std::string(k.key), std::string(k.summary), &k.fields});
  for (const auto& k : sink_kinds())
    out.push_back({"sink", std::string(k.key), std::string(k.summary), &k.fields, true});
  return out;
}

/// A field as shown: its own, or a common sink key with the sink's default.
struct ShownField {
  const FieldSpec* spec;
  std::string_view default_text;
};

std::vector<ShownField> shown_fields(const Explained& e) {
  std::vector<ShownField> out;
  for (const FieldSpec& f : e.fields->fields) out.push_back({&f, f.default_text});
  if (e.sink)
    for (const FieldSpec& f : sink_common_fields()) {
      std::string_view d = f.default_text;
      for (const FieldDefault& o : e.fields->common_defaults)
        if (o.name == f.name) d = o.default_text;
      out.push_back({&f, d});
    }
  return out;
}

/// `example: batch: {size: 5000}` — the field's example as it is written in a file.
std::string example_line(const Explained& e, const FieldSpec& f) {
  if (f.name.empty()) return e.key + ": " + std::string(f.example);
  if (f.name == "*") return e.key + ": {NAME: " + std::string(f.example) + "}";
  std::string name(f.name);
  std::string out, close;
  size_t start = 0;
  for (size_t dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1) {
    out += name.substr(start, dot - start) + ": {";
    close += "}";
  }
  return out + name.substr(start) + ": " + std::string(f.example) + close;
}

std::string shown_name(const FieldSpec& f) {
  if (f.name.empty()) return "(value)";
  if (f.name == "*") return "NAME";
  return std::string(f.name);
}

std::string explain(const Explained& e) {
  std::string out = (e.key.empty() ? e.part : e.part + " " + e.key) + ": " + e.summary + "\n";
  for (const ShownField& s : shown_fields(e)) {
    const FieldSpec& f = *s.spec;
    out += "\n  " + shown_name(f) + " (" + std::string(field_type_name(f.type));
    // A required key of a section ("incremental.column") is required when the section is given.
    size_t dot = f.name.rfind('.');
    if (s.default_text == "required" && dot != std::string_view::npos)
      out += ", required in " + std::string(f.name.substr(0, dot));
    else if (s.default_text == "required") out += ", required";
    else if (!s.default_text.empty()) out += ", default " + std::string(s.default_text);
    out += ")\n      " + std::string(f.description) + "\n      example: " + example_line(e, f) + "\n";
  }
  return out;
}

std::string table(const std::vector<Explained>& all) {
  std::string out;
  for (const Explained& e : all)
    for (const ShownField& s : shown_fields(e))
      out += e.part + "\t" + e.key + "\t" + std::string(s.spec->name) + "\t" +
             std::string(field_type_name(s.spec->type)) + "\t" + std::string(s.default_text) + "\n";
  return out;
}

const std::vector<std::string> kParts = {"source", "stage", "sink"};

std::vector<const Explained*> find(const std::vector<Explained>& all, const std::vector<std::string>& words) {
  if (words.size() > 2)
    throw SetupError("explain: expected [source|stage|sink] KIND, got " + std::to_string(words.size()) + " words");
  std::string part = words.size() == 2 ? words[0] : "";
  const std::string& key = words.back();
  if (words.size() == 1 && std::find(kParts.begin(), kParts.end(), key) != kParts.end()) {
    std::vector<const Explained*> every;  // `aetl explain sink`: every sink kind
    for (const Explained& e : all)
      if (e.part == key && !e.key.empty()) every.push_back(&e);
    return every;
  }
  if (!part.empty() && std::find(kParts.begin(), kParts.end(), part) == kParts.end()) {
    std::string msg = "explain: '" + part + "' is not source, stage or sink";
    if (auto guess = did_you_mean(part, kParts)) msg += " (did you mean '" + *guess + "'?)";
    throw SetupError(msg);
  }
  std::vector<const Explained*> found;
  std::vector<std::string> candidates;
  for (const Explained& e : all) {
    if (!part.empty() && e.part != part) continue;
    const std::string& name = e.key.empty() ? e.part : e.key;
    candidates.push_back(name);
    if (name == key) found.push_back(&e);
  }
  if (found.empty()) {
    std::string msg = "explain: unknown " + (part.empty() ? std::string() : part + " ") + "kind '" + key + "'";
    if (auto guess = did_you_mean(key, candidates)) msg += " (did you mean '" + *guess + "'?)";
    else msg += " (`aetl list` shows them all)";
    throw SetupError(msg);
  }
  return found;
}

}  // namespace

std::vector<std::string> explain_words() {
  std::vector<std::string> out = kParts;
  for (const Explained& e : everything())
    if (std::find(out.begin(), out.end(), e.key.empty() ? e.part : e.key) == out.end())
      out.push_back(e.key.empty() ? e.part : e.key);
  return out;
}

std::function<ExitCode()> setup_explain_command(CLI::App& app) {
  auto words = std::make_shared<std::vector<std::string>>();
  auto as_table = std::make_shared<bool>(false);
  app.add_option("kind", *words, "A kind (sqlite), a part and a kind (sink postgres), or pipeline");
  app.add_flag("--table", *as_table, "Every field of every kind, tab-separated")->group("");
  return [words, as_table]() -> ExitCode {
    const std::vector<Explained> all = everything();
    std::string out;
    if (*as_table) {
      out = table(all);
    } else {
      if (words->empty()) throw SetupError("explain: which kind? (`aetl list` shows them all)");
      for (const Explained* e : find(all, *words)) out += (out.empty() ? "" : "\n") + explain(*e);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return ExitCode::ok;
  };
}

}  // namespace aetl
