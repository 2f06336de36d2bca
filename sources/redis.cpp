// The `redis` source: a worker of a Redis Streams consumer group. Entries are
// read with XREADGROUP (the group is created if missing), each becomes a record
// (its field `field` holds the record's JSON object), and an entry is
// acknowledged (XACK) only once its record is handled for good: written by the
// sink or the dead letter, or dropped by a filter, and covered by a saved
// checkpoint when the run keeps one. Entries a consumer left pending longer than
// `claim_idle` (it died, or it is stuck) are claimed (XPENDING + XCLAIM) and
// processed here; entries this worker holds are claimed again to itself every
// third of `claim_idle`, so a live worker busy on them keeps them. An entry
// delivered more than `max_deliveries` times, or one that cannot become a record,
// goes to the dead letter with the reason and is acknowledged once it is there.
//   source:
//     redis: {url: "redis://queue:6379/0", stream: jobs, group: workers}
// Delivery: at-least-once (a worker killed between the sink's commit and the
// XACK leaves the entry pending; another claims it and writes it again).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "config/kinds.h"
#include "config/redis_url_field.h"
#include "sources/redis.h"
#include "engine/channel.h"
#include "engine/record_decoder.h"
#include "engine/setup_error.h"
#include "engine/shutdown.h"
#include "engine/task_group.h"
#include "net/redis/redis_connection.h"
#include "net/redis/stream_id.h"
#include "sources/redis/stream_entries.h"
#include "run/checkpoint.h"
#include "run/dead_letters.h"
#include "run/handled_follower.h"
#include "run/run_context.h"

namespace aetl {
namespace {

using redis::RedisCommand;
using redis::RedisConnection;
using redis::RedisError;
using redis::RedisReply;
using Clock = std::chrono::steady_clock;

std::string default_consumer() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "host");
  return std::string(host) + "-" + std::to_string(::getpid());
}

using redis::StreamId;
using redis::StreamIdHash;
using Entry = StreamEntries::Entry;
using IdSet = std::unordered_set<StreamId, StreamIdHash>;

/// The entries a worker holds, by record position: positions are handed out one
/// after another (1, 2, 3, ...), so a deque indexed from the oldest held one
/// (no node per entry: a worker reads tens of thousands a second). Slots let go
/// of behind a held one stay (empty, 24 bytes) until it goes.
class HeldEntries {
 public:
  struct Held {
    StreamId id;
    bool first;  ///< read as new (XREADGROUP >), not claimed
  };
  /// Holds the entry of the next position, `seq` (one more than the last).
  void add(uint64_t seq, StreamId id, bool first) {
    if (slots_.empty()) base_ = seq;
    slots_.push_back({{id, first}, true});
    ++live_;
  }
  const Held* find(uint64_t seq) const {
    if (seq < base_ || seq - base_ >= slots_.size() || !slots_[seq - base_].live) return nullptr;
    return &slots_[seq - base_].held;
  }
  /// Lets go of the entries of positions first..last, handing each ID to `f`.
  template <class F>
  void take(uint64_t first, uint64_t last, F&& f) {
    if (slots_.empty()) return;
    for (uint64_t s = std::max(first, base_); s <= last && s - base_ < slots_.size(); ++s) {
      Slot& slot = slots_[s - base_];
      if (!slot.live) continue;
      slot.live = false;
      --live_;
      f(slot.held.id);
    }
    while (!slots_.empty() && !slots_.front().live) {
      slots_.pop_front();
      ++base_;
    }
  }
  bool empty() const { return live_ == 0; }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& s : slots_)
      if (s.live) f(s.held.id);
  }

 private:
  struct Slot {
    Held held;
    bool live;
  };
  std::deque<Slot> slots_;
  uint64_t base_ = 0;
  size_t live_ = 0;
};

/// Stream IDs as one command's arguments: their text side by side in one buffer.
class IdArgs {
 public:
  void add(StreamId id) {
    size_t at = text_.size();
    id.append_to(text_);
    ends_.push_back({at, text_.size() - at});
  }
  /// Appends the IDs to `cmd` (views into this, which must outlive it).
  void append_to(redis::RedisCommand& cmd) const {
    for (auto [at, n] : ends_) cmd.push_back(std::string_view(text_).substr(at, n));
  }
  size_t size() const { return ends_.size(); }

 private:
  std::string text_;
  std::vector<std::pair<size_t, size_t>> ends_;
};

class RedisSource final : public Source {
 public:
  RedisSource(RunContext& run, PartStats& stats, std::shared_ptr<const RedisSourceConfig> cfg)
      : run_(run), stats_(stats), cfg_(std::move(cfg)), consumer_(cfg_->consumer.empty() ? default_consumer() : cfg_->consumer),
        name_("redis " + cfg_->url.where() + " stream " + cfg_->stream + " group " + cfg_->group),
        follower_(
            run.tracker, run.checkpoints, [this](uint32_t, uint64_t first, uint64_t last) { for_good(first, last); },
            [this](uint32_t, uint64_t line) { failed_for_now(line); }) {
    // The stream and the group's pending list are the state: nothing to resume
    // from a checkpoint (positions are this run's own numbers).
    run_.tracker.add_input(0, name_, nullptr);
    run_.stage.input_names = {name_};
    // What an exactly-once sink keeps to turn away a second delivery of an entry.
    run_.delivery = [this](const Position& pos) {
      RunContext::Delivery d;
      StreamId id;
      if (const HeldEntries::Held* h = in_flight_.find(pos.line)) {
        id = h->id;
        d.first = h->first;
      } else if (auto f = failed_ids_.find(pos.line); f != failed_ids_.end()) {
        id = f->second;
      } else {  // not expected: then the record is written (at least once), never skipped
        spdlog::warn("source redis: no entry ID for record {} (written without exactly-once)", pos.line);
        return d;
      }
      d.id.reserve(cfg_->stream.size() + 1 + StreamId::kMaxText);
      d.id += cfg_->stream;
      d.id += ' ';
      id.append_to(d.id);
      return d;
    };
  }

  asio::awaitable<void> run(BatchChannel& out) override {
    auto ex = run_.stage.io.get_executor();
    std::exception_ptr error;
    try {
      reader_ = co_await RedisConnection::connect(ex, cfg_->url, cfg_->timeout);
      control_ = co_await RedisConnection::connect(ex, cfg_->url, cfg_->timeout);
      co_await create_group();
    } catch (const RedisError& e) {
      error = std::make_exception_ptr(SetupError("source redis: " + std::string(e.what())));
    }
    if (error) std::rethrow_exception(error);

    TaskGroup upkeep(ex);
    upkeep.spawn(keep_up_or_abort());
    try {
      co_await read_entries(out);
    } catch (...) {
      error = std::current_exception();
    }
    reading_done_ = true;
    if (!error) {
      co_await send_batch(out, Batch{});
      // The records still in the pipeline are written (or fail) after this;
      // their entries are acknowledged as they become handled for good.
      co_await wait_for_in_flight();
    }
    done_ = true;
    wake_.cancel();
    co_await upkeep.wait_all();
    if (error) std::rethrow_exception(error);
    if (upkeep.first_error()) std::rethrow_exception(upkeep.first_error());
  }

 private:
  asio::awaitable<void> create_group() {
    RedisCommand type{std::string_view("TYPE"), std::string_view(cfg_->stream)};
    RedisReply t = co_await control_->command(type, cfg_->timeout);
    redis::expect_ok(t, "TYPE " + cfg_->stream);
    if (t.str != "stream" && t.str != "none")
      throw RedisError(cfg_->url.where() + ": key '" + cfg_->stream + "' holds a " + t.str + ", not a stream",
                       RedisError::Kind::reply);
    RedisCommand create{std::string_view("XGROUP"), std::string_view("CREATE"), std::string_view(cfg_->stream),
                        std::string_view(cfg_->group), std::string_view(cfg_->start), std::string_view("MKSTREAM")};
    RedisReply r = co_await control_->command(create, cfg_->timeout);
    if (r.is_error() && r.error_code() != "BUSYGROUP")
      throw RedisError(cfg_->url.where() + ": XGROUP CREATE " + cfg_->stream + " " + cfg_->group + ": " + r.str,
                       RedisError::Kind::reply);
    if (!r.is_error()) spdlog::info("source redis: created group '{}' on stream '{}' at {}", cfg_->group, cfg_->stream, cfg_->start);
  }

  /// Reads new entries until stopped (or idle for stop_when_idle), with a claim
  /// of idle pending entries at the start and every half claim_idle. Entries this
  /// consumer left pending in an earlier life (a fixed `consumer` name) come back
  /// through the claims too, so their deliveries are counted (max_deliveries).
  ///
  /// While a read's entries are turned into records, the next read is already on
  /// the wire (when the last one found entries, and without --limit): the server
  /// makes the next reply meanwhile. Entries of that read are emitted even when the run stops (they
  /// were delivered to this worker), unless it aborts.
  asio::awaitable<void> read_entries(BatchChannel& out) {
    auto last_claim = Clock::now() - cfg_->claim_idle;  // claim at once
    last_activity_ = Clock::now();
    std::shared_ptr<ReadAhead> ahead;
    std::exception_ptr error;
    try {
      while (!run_.stage.control.stopping() && !limit_reached()) {
        if (Clock::now() - last_claim >= cfg_->claim_idle / 2) {
          co_await claim_idle_entries(out);
          last_claim = Clock::now();
          if (limit_reached()) break;
        }
        if (!ahead) ahead = start_read(want());
        StreamEntries got = co_await finish_read(ahead);
        ahead.reset();
        if (got.empty()) {
          if (cfg_->stop_when_idle.count() > 0 && in_flight_.empty() &&
              Clock::now() - last_activity_ >= cfg_->stop_when_idle && co_await nothing_pending())
            break;
          continue;
        }
        // Not with --limit: claims made meanwhile could not count the entries on their way.
        if (!run_.limit && !run_.stage.control.stopping()) ahead = start_read(want());
        last_activity_ = Clock::now();
        stats_.events["read"] += got.size();
        co_await emit(out, std::move(got), true);
      }
    } catch (...) {
      error = std::current_exception();
    }
    if (ahead) {
      StreamEntries got;
      std::exception_ptr ahead_error;
      try {
        got = co_await finish_read(ahead);
      } catch (...) {
        ahead_error = std::current_exception();
      }
      if (!error && !ahead_error && !run_.stage.control.aborted()) {
        stats_.events["read"] += got.size();
        if (!got.empty()) co_await emit(out, std::move(got), true);
      }
      if (!error) error = ahead_error;
    }
    ahead_ids_.clear();  // not emitted (an abort, an error): left pending, claimed after claim_idle
    if (error) std::rethrow_exception(error);
  }

  /// A read on the reader connection, going on while the loop does other work.
  struct ReadAhead {
    size_t count = 0;
    StreamEntries entries;
    std::exception_ptr error;
    bool done = false;
  };

  std::shared_ptr<ReadAhead> start_read(size_t count) {
    auto slot = std::make_shared<ReadAhead>();
    slot->count = count;
    asio::co_spawn(run_.stage.io.get_executor(), read_into(slot), asio::detached);
    return slot;
  }

  asio::awaitable<void> read_into(std::shared_ptr<ReadAhead> slot) {
    std::string count = std::to_string(slot->count);
    std::string block = std::to_string(cfg_->block.count());
    RedisCommand read{"XREADGROUP", "GROUP", cfg_->group, consumer_, "COUNT", count, "BLOCK", block,
                      "STREAMS", cfg_->stream, ">"};
    try {
      // The entries are taken out of hiredis's reply in place (no copy of it).
      auto take = [this, slot](redis::ReplyView r) {
        slot->entries = StreamEntries{};
        return take_read_reply(r, cfg_->field, slot->entries);
      };
      RedisReply r = co_await command_with_retry(reader_, read, cfg_->timeout + cfg_->block, take);
      if (r.is_error()) throw RedisError(cfg_->url.where() + ": XREADGROUP: " + r.str, RedisError::Kind::reply);
      // Delivered to this worker from now on: renewed (and not claimed here) until held.
      for (const auto& e : slot->entries.entries) ahead_ids_.push_back(e.id);
    } catch (...) {
      slot->error = std::current_exception();
    }
    slot->done = true;
    read_wake_.cancel();
  }

  asio::awaitable<StreamEntries> finish_read(const std::shared_ptr<ReadAhead>& slot) {
    while (!slot->done) {
      read_wake_.expires_after(std::chrono::seconds(1));
      asio::error_code ec;
      co_await read_wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (slot->error) std::rethrow_exception(slot->error);
    co_return std::move(slot->entries);
  }

  bool limit_reached() const { return run_.limit && emitted_ >= run_.limit; }

  /// Entries to read at a time: `count`, within --limit (at least 1).
  size_t want() const {
    size_t n = cfg_->count;
    if (run_.limit) n = std::min<uint64_t>(n, run_.limit > emitted_ ? run_.limit - emitted_ : 0);
    return std::max<size_t>(n, 1);
  }

  /// Turns entries into records (or dead letters) and sends them on; waits while
  /// the pipeline has no room, so no more is read than it can take. `read`: they
  /// come from a read (first deliveries, the oldest of ahead_ids_), not a claim.
  asio::awaitable<void> emit(BatchChannel& out, StreamEntries got, bool read) {
    Batch batch;
    batch.reserve(got.size());
    std::optional<IdSet> held;  // made once, only when the group was set back
    for (auto& e : got.entries) {
      if (read && !ahead_ids_.empty() && ahead_ids_.front() == e.id) ahead_ids_.pop_front();
      // New entries come in ID order, above every entry this worker was handed
      // before (read or claimed: a claim only brings entries the group delivered
      // already); one at or below the newest came again (the group was set back:
      // XGROUP SETID), maybe while this worker holds it.
      const bool again = read && newest_ && e.id <= *newest_;
      if (!newest_ || e.id > *newest_) newest_ = e.id;
      if (again) {
        if (!held) held = held_ids();
        if (held->count(e.id)) continue;  // in the pipeline already: once is enough
      }
      if (e.state == Entry::State::deleted) {  // deleted (XDEL, trimmed) while pending: nothing to do
        acks_.push_back(e.id);
        continue;
      }
      uint64_t seq = ++seq_;
      hold(seq, e.id, read && !again);
      if (held) held->insert(e.id);
      ++emitted_;
      ++stats_.in;
      Record rec;
      rec.pos = Position{0, seq, seq};
      std::string reason;
      if (e.state == Entry::State::no_field) {
        reason = "no field '" + cfg_->field + "'";
      } else {
        Decoded d = decoder_.decode(e.value);  // checked as a lines source checks a line
        if (d.kind == Decoded::record) {
          if (d.data.empty()) rec.data = std::move(e.value);
          else rec.data = std::move(d.data);  // invalid UTF-8 escaped
          batch.push_back(std::move(rec));
          continue;
        }
        reason = "field '" + cfg_->field + "': " + (d.kind == Decoded::skip ? std::string("empty") : d.data);
      }
      ++stats_.failed;
      ++stats_.events["dead_lettered"];
      rec.data = std::move(e.value);
      run_.dead_letters.push(FailedRecord{std::move(rec), "source redis",
                                          "stream " + cfg_->stream + " entry " + e.id.text() + ": " + reason, 1, false});
      co_await run_.dead_letters.wait_room();
    }
    stats_.out += batch.size();
    if (!batch.empty()) co_await send_batch(out, std::move(batch));
  }

  IdSet held_ids() const {
    IdSet ids;
    in_flight_.for_each([&ids](StreamId id) { ids.insert(id); });
    return ids;
  }

  /// The entries this worker has: held, or read ahead and not held yet.
  IdSet ours() const {
    IdSet ids(ahead_ids_.begin(), ahead_ids_.end());
    in_flight_.for_each([&ids](StreamId id) { ids.insert(id); });
    return ids;
  }

  /// Claims entries other consumers left pending longer than claim_idle. One
  /// delivered max_deliveries times already goes to the dead letter instead.
  asio::awaitable<void> claim_idle_entries(BatchChannel& out) {
    std::string idle = std::to_string(cfg_->claim_idle.count());
    std::string start = "-";
    for (int pages = 0; pages < 100 && !run_.stage.control.stopping() && !limit_reached(); ++pages) {
      size_t page = want();
      std::string count = std::to_string(page);
      RedisCommand pending{"XPENDING", cfg_->stream, cfg_->group, "IDLE", idle, start, "+", count};
      RedisReply p = co_await command_with_retry(control_, pending, cfg_->timeout);
      if (p.is_error() || p.elements.empty()) co_return;
      const IdSet mine = ours();  // held or read ahead: renewed, not lost
      IdArgs take;
      std::unordered_map<StreamId, long long, StreamIdHash> deliveries;
      for (const auto& row : p.elements) {
        if (row.elements.size() < 4) continue;
        auto id = StreamId::parse(row.elements[0].str);
        if (!id || mine.count(*id)) continue;
        deliveries[*id] = row.elements[3].integer;
        take.add(*id);
      }
      start = "(" + p.elements.back().elements[0].str;
      if (take.size()) {
        RedisCommand claim{"XCLAIM", cfg_->stream, cfg_->group, consumer_, idle};
        take.append_to(claim);
        StreamEntries got;
        auto take_claimed = [this, &got](redis::ReplyView r) {
          if (r.type() != RedisReply::Type::array) return false;
          got = StreamEntries{};
          take_entries(r, cfg_->field, got);
          return true;
        };
        RedisReply c = co_await command_with_retry(control_, claim, cfg_->timeout, take_claimed);
        if (!c.is_error()) {
          StreamEntries fresh;
          for (auto& e : got.entries) {
            ++stats_.events["claimed"];
            if (mine.count(e.id)) continue;  // in the pipeline already: once is enough
            if (deliveries[e.id] >= cfg_->max_deliveries) {
              poison_entry(e, deliveries[e.id] + 1);
              continue;
            }
            fresh.entries.push_back(std::move(e));
          }
          if (!got.empty()) spdlog::info("source redis: claimed {} entr{} idle for {} ms or more", got.size(),
                                         got.size() == 1 ? "y" : "ies", cfg_->claim_idle.count());
          co_await run_.dead_letters.wait_room();
          if (!fresh.empty()) co_await emit(out, std::move(fresh), false);
        }
      }
      if (p.elements.size() < page) co_return;
    }
  }

  void poison_entry(Entry& e, long long delivered) {
    uint64_t seq = ++seq_;
    hold(seq, e.id, false);
    ++emitted_;
    ++stats_.in;
    ++stats_.failed;
    ++stats_.events["dead_lettered"];
    Record rec;
    rec.pos = Position{0, seq, seq};
    if (e.state == Entry::State::value) rec.data = std::move(e.value);
    bool is_json = decoder_.decode(rec.data).kind == Decoded::record;
    run_.dead_letters.push(FailedRecord{std::move(rec), "source redis",
                                        "stream " + cfg_->stream + " entry " + e.id.text() + ": delivered " +
                                            std::to_string(delivered) + " times (max_deliveries " +
                                            std::to_string(cfg_->max_deliveries) + ")",
                                        static_cast<int>(delivered), is_json});
  }

  void hold(uint64_t seq, StreamId id, bool first) {
    in_flight_.add(seq, id, first);
    if (!failed_.empty()) failed_.erase(id);  // claimed again after a failure
  }

  asio::awaitable<bool> nothing_pending() {
    RedisCommand summary{"XPENDING", cfg_->stream, cfg_->group};
    RedisReply r = co_await command_with_retry(control_, summary, cfg_->timeout);
    // Entries this run failed (no dead letter) stay pending on purpose.
    co_return !r.is_error() && !r.elements.empty() && r.elements[0].integer <= static_cast<long long>(failed_.size());
  }

  /// Records handled for good: their entries are acknowledged (by keep_up()).
  void for_good(uint64_t first, uint64_t last) {
    in_flight_.take(first, last, [this](StreamId id) { acks_.push_back(id); });
    wake_.cancel();
  }

  /// A record failed with no dead letter: its entry stays pending, no longer
  /// renewed, so it is claimed again after claim_idle (here or by another worker)
  /// and counts towards max_deliveries.
  void failed_for_now(uint64_t line) {
    in_flight_.take(line, line, [this, line](StreamId id) {
      failed_.insert(id);
      failed_ids_[line] = id;  // other parts of its record may still reach the sink
    });
    // Parts left the pipeline long before a million more records were read (it
    // holds a few batches): older IDs are of no more use.
    if (seq_ > kFailedIdsKept) failed_ids_.erase(failed_ids_.begin(), failed_ids_.lower_bound(seq_ - kFailedIdsKept));
  }

  /// keep_up(), and if it fails (acknowledgements could not be sent) the run
  /// stops: nothing would be acknowledged any more.
  asio::awaitable<void> keep_up_or_abort() {
    std::exception_ptr error;
    try {
      co_await keep_up();
    } catch (...) {
      error = std::current_exception();
      run_.stage.control.request_abort();
    }
    if (error) std::rethrow_exception(error);
  }

  /// In the background on the second connection: XACKs what is handled for good,
  /// and claims again (to itself) the entries this worker holds, so others do not
  /// take them while it is alive.
  asio::awaitable<void> keep_up() {
    auto last_renew = Clock::now();
    for (;;) {
      // Renewals first: a steady flow of acknowledgements must not delay them past claim_idle.
      if (Clock::now() - last_renew >= cfg_->claim_idle / 3 && (!in_flight_.empty() || !ahead_ids_.empty())) {
        co_await renew_claims();
        last_renew = Clock::now();
      }
      if (!acks_.empty()) {
        std::vector<StreamId> ids;
        ids.swap(acks_);
        IdArgs args;
        for (StreamId id : ids) args.add(id);
        RedisCommand ack{"XACK", cfg_->stream, cfg_->group};
        args.append_to(ack);
        RedisReply r = co_await command_with_retry(control_, ack, cfg_->timeout);
        if (r.is_error()) throw RedisError(cfg_->url.where() + ": XACK: " + r.str, RedisError::Kind::reply);
        stats_.events["acked"] += ids.size();
        continue;
      }
      if (done_) co_return;
      wake_.expires_after(std::chrono::milliseconds(50));
      asio::error_code ec;
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<void> renew_claims() {
    IdArgs args;
    for (StreamId id : ours()) args.add(id);
    RedisCommand renew{"XCLAIM", cfg_->stream, cfg_->group, consumer_, "0"};
    args.append_to(renew);
    renew.push_back("JUSTID");
    RedisReply r = co_await command_with_retry(control_, renew, cfg_->timeout);
    if (!r.is_error()) stats_.events["renewed"] += r.elements.size();
  }

  /// Waits until every record sent on is handled for good or failed for good
  /// (no dead letter), or the run aborts.
  asio::awaitable<void> wait_for_in_flight() {
    while (!in_flight_.empty() && !run_.stage.control.aborted()) {
      asio::steady_timer t(run_.stage.io.get_executor(), std::chrono::milliseconds(20));
      asio::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  /// A command on `conn`, made again on a new connection (with backoff) after a
  /// lost one (a server restart); gives up after about 15 s of tries. `take` as
  /// for RedisConnection::command.
  asio::awaitable<RedisReply> command_with_retry(std::unique_ptr<RedisConnection>& conn, const RedisCommand& cmd,
                                                 std::chrono::milliseconds timeout,
                                                 RedisConnection::Take take = {}) {
    auto ex = run_.stage.io.get_executor();
    const RetryPolicy& retry = cfg_->retry;
    std::chrono::milliseconds delay = retry.min_backoff;
    auto since = Clock::now();
    for (int attempt = 1;; ++attempt) {
      std::exception_ptr error;
      try {
        if (!conn || conn->broken()) conn = co_await RedisConnection::connect(ex, cfg_->url, cfg_->timeout);
        RedisReply r = co_await conn->command(cmd, timeout, take);
        if (!redis::is_transient_error(r)) co_return r;
        throw RedisError(cfg_->url.where() + ": " + r.str, RedisError::Kind::connection);
      } catch (const RedisError& e) {
        if (e.kind != RedisError::Kind::connection || run_.stage.control.aborted()) throw;
        if (attempt > retry.max_retries) {
          auto secs = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - since).count();
          error = std::make_exception_ptr(RedisError(
              "source redis: " + std::string(e.what()) + " (gave up after " + std::to_string(attempt) + " tries in " +
                  std::to_string(secs) + " s)",
              RedisError::Kind::reply));
        } else {
          spdlog::warn("source redis: {} (attempt {}, connecting again in {} ms)", e.what(), attempt, delay.count());
        }
      }
      if (error) std::rethrow_exception(error);
      asio::steady_timer t(ex, delay);
      asio::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      delay = std::min(delay * 2, retry.max_backoff);
    }
  }

  RunContext& run_;
  PartStats& stats_;
  std::shared_ptr<const RedisSourceConfig> cfg_;
  std::string consumer_;
  std::string name_;
  std::unique_ptr<RedisConnection> reader_;   // XREADGROUP (may block)
  std::unique_ptr<RedisConnection> control_;  // XACK, XPENDING, XCLAIM
  HeldEntries in_flight_;                     // by record position: entries not yet acknowledged
  std::deque<StreamId> ahead_ids_;            // entries read, not held yet (oldest first): renewed too
  std::optional<StreamId> newest_;            // the newest entry a read or a claim brought
  IdSet failed_;                              // entries whose record failed with no dead letter: left pending
  std::map<uint64_t, StreamId> failed_ids_;   // their IDs by position, for the delivery IDs
  static constexpr uint64_t kFailedIdsKept = 1'000'000;
  std::vector<StreamId> acks_;
  uint64_t seq_ = 0;
  uint64_t emitted_ = 0;
  Clock::time_point last_activity_;
  bool reading_done_ = false;
  bool done_ = false;
  asio::steady_timer wake_{run_.stage.io.get_executor()};
  asio::steady_timer read_wake_{run_.stage.io.get_executor()};  // a read ahead ended
  RecordDecoder decoder_{DecoderOptions{}};
  HandledFollower follower_;
};

}  // namespace

namespace {
const FieldSpec kFields[] = {
    kRedisUrlField,
    {"stream", FieldType::string, "required", "the stream's key", "jobs"},
    {"group", FieldType::string, "required", "the consumer group; created (with the stream) if missing", "workers"},
    {"consumer", FieldType::string, "", "this worker's name in the group (default: host-pid)", "worker-1"},
    {"start", FieldType::string, "0", "where a group created here starts: 0 (the whole stream), $ (new entries) or an ID",
     "$"},
    {"field", FieldType::string, "data", "the entry field that holds the record's JSON object", "payload"},
    {"count", FieldType::integer, "100", "entries read at a time", "500"},
    {"block", FieldType::duration, "1s", "how long one read waits for new entries", "5s"},
    {"claim_idle", FieldType::duration, "60s", "claim entries other consumers left pending this long", "5m"},
    {"max_deliveries", FieldType::integer, "5", "an entry delivered this many times goes to the dead letter", "3"},
    {"stop_when_idle", FieldType::duration, "", "end the run when nothing came for this long and nothing is pending "
     "(default: run until stopped)", "10s"},
    {"timeout", FieldType::duration, "5s", "how long connecting and each reply may take", "10s"},
    {"retry.max", FieldType::integer, "10", "tries again after a lost connection, then the run stops", "30"},
    {"retry.backoff", FieldType::duration_range, "200ms..5s", "the waits between tries, doubling", "1s..10s"},
};
const std::string_view kExamples[] = {
    "{url: \"redis://127.0.0.1:6379/0\", stream: jobs, group: workers}",
    "{url: \"redis://queue:6379/1\", stream: jobs, group: workers, consumer: w1, start: $, field: payload, count: 500, "
    "block: 5s, claim_idle: 5m, max_deliveries: 3, stop_when_idle: 10s, timeout: 10s, retry: {max: 30, backoff: "
    "1s..10s}}",
};
}  // namespace
extern const KindFields redis_source_fields{kFields, kExamples};

SourceBuilder parse_redis_source(const ConfigValue& node, ConfigProblems& problems) {
  ConfigReader r(node, problems, {kFields});
  if (!r.ok()) return {};
  auto cfg = std::make_shared<RedisSourceConfig>();
  size_t before = problems.size();
  cfg->url = read_redis_url(r, problems);
  auto nonempty = [&](const char* key, std::string& to, bool required) {
    if (auto s = r.string(key, required)) {
      if (s->text.empty()) problems.add(s->where, std::string(key) + ": empty");
      to = s->text;
    }
  };
  nonempty("stream", cfg->stream, true);
  nonempty("group", cfg->group, true);
  nonempty("consumer", cfg->consumer, false);
  nonempty("start", cfg->start, false);
  nonempty("field", cfg->field, false);
  if (auto n = r.integer("count", 1, 100000)) cfg->count = static_cast<size_t>(*n);
  if (auto d = r.duration("block")) cfg->block = std::max(*d, std::chrono::milliseconds(1));
  if (auto d = r.duration("claim_idle")) cfg->claim_idle = std::max(*d, std::chrono::milliseconds(100));
  if (auto n = r.integer("max_deliveries", 1, 1000000)) cfg->max_deliveries = *n;
  if (auto d = r.duration("stop_when_idle")) cfg->stop_when_idle = *d;
  if (auto d = r.duration("timeout")) cfg->timeout = *d;
  if (auto retry = r.retry("retry", cfg->retry)) cfg->retry = *retry;
  r.finish();
  if (problems.size() != before) return {};
  return redis_source(cfg);
}

SourceBuilder redis_source(std::shared_ptr<const RedisSourceConfig> cfg) {
  return [cfg](RunContext& run) -> std::unique_ptr<Source> {
    return std::make_unique<RedisSource>(run, run.add_part("redis"), cfg);
  };
}

}  // namespace aetl
