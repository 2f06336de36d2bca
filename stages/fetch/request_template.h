#pragma once
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config_reader.h"
#include "expr/expression.h"
#include "stages/fetch.h"

namespace aetl {

struct RunContext;
struct PartStats;

/// A string with {expression} holes: literal pieces and expression indices.
struct Template {
  struct Piece {
    std::string text;
    int expr = -1;
  };
  std::vector<Piece> pieces;
};

/// Parses "a/{id}/b?x={lower(name)}" (`{{` and `}}` are literal braces), its
/// expressions compiled into `program`; problems reported as `what: ...`.
std::optional<Template> parse_template(const ConfigString& s, expr::Program& program,
                                       ConfigProblems& problems, const std::string& what);

enum class Encode { url, none };
/// The template with each expression's value put in (URL-encoded with
/// Encode::url, unless the template is one expression alone: a whole URL).
std::string render_template(const Template& t, expr::Evaluator& eval, Encode encode);

/// `record` with field `into` (`into_json`: its quoted name and a colon) set to
/// `value`: replaced where it stands, else appended.
std::string record_with_field(const std::string& record, const std::string& into, const std::string& into_json,
                              const std::string& value);

/// What a request came to, as the JSON a record receives:
/// {"status", "ok", "body" (parsed JSON, else text, else null), "error", "attempts", "time_ms"}.
std::string response_value(const Attempted& attempted, const std::string& body);

/// Reads `concurrency:` (a number, or `auto`: adaptive per host, up to
/// kAdaptiveConcurrencyMax in flight) into `limits`.
void read_concurrency(ConfigReader& r, AttemptLimits& limits);

/// A pipeline's `fetch:` entry, as read from the file.
struct FetchConfig {
  expr::Program program;
  Template url;
  std::string method = "GET";
  std::vector<std::pair<std::string, Template>> headers;
  std::optional<Template> body;
  AttemptLimits limits;
  bool ordered = false;
  std::string into_json = "\"response\":";
  std::string into = "response";
  bool keep_failures = false;
  std::string ledger;  ///< `ledger: FILE` (empty: none)
};

/// The pipeline's side of the fetch stage: each record's request comes from the
/// templates; the response lands in the `into` field of the record, whose other
/// fields stay as written. A record that does not bind, makes a bad URL or
/// header, or fails (after the retries, unless keep_failures) goes to the dead
/// letter. Counts in the stage's PartStats; skipped records count as dropped and
/// are handled at once, as a filter's are.
class RequestTemplates final : public FetchMode {
 public:
  RequestTemplates(RunContext& run, PartStats& stats, std::shared_ptr<const FetchConfig> cfg,
                   LedgerFollower* follower);
  ~RequestTemplates() override;

  void received(const Batch& batch) override;
  Made make(Record& record) override;
  void skipped(FetchJob& job) override;
  asio::awaitable<void> wait_room() override;
  void attempt_started() override;
  void attempt_ended(const HttpResponse&) override;
  void host_limit(const std::string& host, size_t limit) override;

 private:
  class Job;
  void fail(Record r, std::string error, int attempts, bool json = true);

  RunContext& run_;
  PartStats& stats_;
  std::shared_ptr<const FetchConfig> cfg_;
  std::unique_ptr<expr::Evaluator> eval_;
  LedgerFollower* follower_;
};

}  // namespace aetl
