// The `postgres` source: the rows of a query as records, streamed.
//   source:
//     postgres:
//       dsn: "host=db.internal dbname=shop user=etl password=${PGPASSWORD}"   # or the PG* variables
//       query: "SELECT id, email, updated_at FROM users WHERE active"        # or table: users
// The query runs as COPY (SELECT row_to_json(q) FROM (query) q) TO STDOUT: each
// row arrives as one JSON object (column names as keys, numbers as numbers,
// json/jsonb inline, timestamps as ISO text). Rows are read a batch at a time
// while the stages have room, so the server waits rather than memory growing.
// Records are numbered by row; a resumed run runs the query again and skips the
// rows already handled (the order must be stable: give the query an ORDER BY).
#include <spdlog/spdlog.h>

#include "cli/errors.h"
#include "pipeline/checkpoint.h"
#include "pipeline/expr/expression.h"
#include "pipeline/kinds.h"
#include "pipeline/pg/pg_connection.h"
#include "pipeline/run/dead_letters.h"
#include "pipeline/shutdown.h"

namespace aetl {
namespace {

struct PgSourceConfig {
  std::string dsn;
  std::string query;
  size_t batch = 5000;
  std::chrono::milliseconds connect_timeout{10000};
};

/// One line of COPY's text format back to its bytes (\\, \n, \t, octal, ...).
void unescape_copy_text(std::string_view in, std::string& out) {
  out.reserve(out.size() + in.size() + expr::kRecordPadding);
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '\\' || i + 1 == in.size()) {
      out += c;
      continue;
    }
    char e = in[++i];
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case 'x': {
        int v = 0, n = 0;
        while (n < 2 && i + 1 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1]))) {
          char h = in[++i];
          v = v * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          ++n;
        }
        out += static_cast<char>(v);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0', n = 1;
          while (n < 3 && i + 1 < in.size() && in[i + 1] >= '0' && in[i + 1] <= '7') v = v * 8 + (in[++i] - '0'), ++n;
          out += static_cast<char>(v);
        } else {
          out += e;  // \\ and any other escaped character
        }
    }
  }
}

class PostgresSource final : public Source {
 public:
  PostgresSource(RunContext& run, PartStats& stats, std::shared_ptr<const PgSourceConfig> cfg)
      : run_(run), stats_(stats), cfg_(std::move(cfg)) {
    name_ = "postgres: " + cfg_->query;
    run_.stage.input_names = {name_};
    const InputMark* mark = run_.resume ? run_.resume->find(name_) : nullptr;
    run_.tracker.add_input(0, name_, mark);
    if (mark) mark_ = *mark;
    if (run_.resume)
      for (const auto& m : run_.resume->inputs)
        if (m.name != name_) run_.tracker.carry(m);
  }

  asio::awaitable<void> run(BatchChannel& out) override {
    std::shared_ptr<pg::PgConnection> conn;
    std::exception_ptr error;
    std::string sql = "COPY (SELECT row_to_json(aetl_q) FROM (" + cfg_->query + ") aetl_q) TO STDOUT";
    try {
      conn = co_await pg::PgConnection::connect(run_.stage.io.get_executor(), cfg_->dsn, cfg_->connect_timeout);
      co_await conn->copy_out_start(sql);
    } catch (const pg::PgError& e) {
      error = std::make_exception_ptr(UsageError("source postgres: " + std::string(e.what())));
    }
    if (error) std::rethrow_exception(error);
    pg::PgConnection* c = conn.get();
    std::weak_ptr<pg::PgConnection> weak = conn;
    run_.stage.control.on_abort([weak] {
      if (auto live = weak.lock()) live->interrupt();
    });
    std::string piece;
    uint64_t row = 0;
    bool more = true;
    while (more && !run_.stage.control.stopping()) {
      piece.clear();
      size_t rows = 0;
      size_t want = cfg_->batch;
      if (run_.limit) want = std::min<uint64_t>(want, run_.limit - emitted_);
      if (want == 0) break;
      more = co_await c->copy_out_rows(piece, want, rows);
      Batch batch;
      batch.reserve(rows);
      for (size_t at = 0; at < piece.size();) {
        size_t nl = piece.find('\n', at);
        if (nl == std::string::npos) nl = piece.size();
        ++row;
        Record r;
        r.pos = Position{0, row, row};
        if (!mark_.is_done(row)) {
          unescape_copy_text(std::string_view(piece).substr(at, nl - at), r.data);
          batch.push_back(std::move(r));
        }
        at = nl + 1;
      }
      stats_.in += rows;
      stats_.out += batch.size();
      emitted_ += batch.size();
      if (!batch.empty()) co_await send_batch(out, std::move(batch));
      if (run_.limit && emitted_ >= run_.limit) break;
    }
    // Leaving mid-COPY (a stop, --limit): the connection goes with what is unread.
    conn.reset();
    co_await send_batch(out, Batch{});
  }

 private:
  RunContext& run_;
  PartStats& stats_;
  std::shared_ptr<const PgSourceConfig> cfg_;
  std::string name_;
  InputMark mark_;
  uint64_t emitted_ = 0;
};

}  // namespace

SourceBuilder parse_postgres_source(const ConfigValue& node, ConfigProblems& problems) {
  ConfigReader r(node, problems, "source 'postgres'");
  if (!r.ok()) return {};
  auto cfg = std::make_shared<PgSourceConfig>();
  size_t before = problems.size();
  if (auto d = r.string("dsn")) cfg->dsn = d->text;
  auto query = r.string("query");
  auto table = r.string("table");
  if (query && table) problems.add(r.where(), "give query or table, not both");
  else if (!query && !table) problems.add(r.where(), "query (or table) is required");
  if (query) cfg->query = query->text;
  if (table) {
    std::string name = table->text, quoted;
    if (auto dot = name.find('.'); dot != std::string::npos)
      quoted = pg::quote_ident(name.substr(0, dot)) + "." + pg::quote_ident(name.substr(dot + 1));
    else
      quoted = pg::quote_ident(name);
    cfg->query = "SELECT * FROM " + quoted;
  }
  if (auto n = r.integer("batch", 1, 1000000)) cfg->batch = static_cast<size_t>(*n);
  if (auto t = r.duration("connect_timeout")) cfg->connect_timeout = *t;
  r.finish();
  if (problems.size() != before) return {};
  return [cfg](RunContext& run) -> std::unique_ptr<Source> {
    return std::make_unique<PostgresSource>(run, run.add_part("postgres"), cfg);
  };
}

}  // namespace aetl
