#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "run/checkpoint.h"

using namespace aetl;

namespace {
Position at(uint64_t line) { return Position{0, line, line * 10}; }
}  // namespace

TEST_CASE("acks in order move the mark", "[checkpoint]") {
  AckTracker t;
  t.add_input(0, "a", nullptr);
  for (uint64_t l = 1; l <= 5; ++l) t.ack(at(l));
  auto cp = t.snapshot();
  REQUIRE(cp.inputs.size() == 1);
  CHECK(cp.inputs[0].line == 5);
  CHECK(cp.inputs[0].offset == 50);
  CHECK(cp.inputs[0].done.empty());
}

TEST_CASE("acks out of order keep ranges until the gap closes", "[checkpoint]") {
  AckTracker t;
  t.add_input(0, "a", nullptr);
  t.ack(at(2));
  t.ack(at(3));
  t.ack(at(5));
  auto cp = t.snapshot();
  CHECK(cp.inputs[0].line == 0);
  REQUIRE(cp.inputs[0].done.size() == 2);
  CHECK(cp.inputs[0].done[0].first == 2);
  CHECK(cp.inputs[0].done[0].last == 3);
  CHECK(cp.inputs[0].done[1].first == 5);
  t.ack(at(1));
  cp = t.snapshot();
  CHECK(cp.inputs[0].line == 3);
  CHECK(cp.inputs[0].offset == 30);
  t.ack(at(4));
  cp = t.snapshot();
  CHECK(cp.inputs[0].line == 5);
  CHECK(cp.inputs[0].done.empty());
}

TEST_CASE("a failed record holds the mark; later records are remembered as done", "[checkpoint]") {
  AckTracker t;
  t.add_input(0, "a", nullptr);
  t.ack(at(1));
  t.fail(at(2));
  for (uint64_t l = 3; l <= 1000; ++l) t.ack(at(l));
  auto cp = t.snapshot();
  CHECK(cp.inputs[0].line == 1);
  REQUIRE(cp.inputs[0].done.size() == 1);
  CHECK(cp.inputs[0].done[0].first == 3);
  CHECK(cp.inputs[0].done[0].last == 1000);
  CHECK(t.failed() == 1);
  // resumed: only line 2 is left to do
  AckTracker r;
  r.add_input(0, "a", &cp.inputs[0]);
  CHECK(r.already_done(at(1)));
  CHECK_FALSE(r.already_done(at(2)));
  CHECK(r.already_done(at(3)));
  CHECK(r.already_done(at(1000)));
  CHECK_FALSE(r.already_done(at(1001)));
  r.ack(at(2));
  CHECK(r.snapshot().inputs[0].line == 1000);
}

TEST_CASE("a split record is handled once every part is", "[checkpoint]") {
  AckTracker t;
  t.add_input(0, "a", nullptr);
  t.split(at(1), 3);
  t.ack(at(1));
  t.ack(at(1));
  CHECK(t.snapshot().inputs[0].line == 0);
  t.ack(at(1));
  CHECK(t.snapshot().inputs[0].line == 1);
  t.split(at(2), 0);  // no outputs: handled now
  CHECK(t.snapshot().inputs[0].line == 2);
}

TEST_CASE("acks are idempotent", "[checkpoint]") {
  AckTracker t;
  t.add_input(0, "a", nullptr);
  t.ack(at(3));
  t.ack(at(3));
  t.ack(at(1));
  t.ack(at(1));
  t.ack(at(2));
  auto cp = t.snapshot();
  CHECK(cp.inputs[0].line == 3);
  CHECK(cp.inputs[0].done.empty());
}

TEST_CASE("any order of acks ends at the last line", "[checkpoint]") {
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    std::vector<uint64_t> lines(300);
    for (size_t i = 0; i < lines.size(); ++i) lines[i] = i + 1;
    std::shuffle(lines.begin(), lines.end(), rng);
    AckTracker t;
    t.add_input(0, "a", nullptr);
    for (auto l : lines) t.ack(at(l));
    auto cp = t.snapshot();
    CHECK(cp.inputs[0].line == 300);
    CHECK(cp.inputs[0].offset == 3000);
    CHECK(cp.inputs[0].done.empty());
  }
}

TEST_CASE("checkpoints round-trip through JSON, with carried inputs and sink lengths", "[checkpoint]") {
  AckTracker t;
  t.add_input(0, "in \"quoted\".jsonl", nullptr);
  t.ack(at(1));
  t.ack(at(4));
  InputMark gone;
  gone.name = "old.jsonl";
  gone.line = 9;
  gone.offset = 99;
  t.carry(gone);
  auto cp = t.snapshot();
  cp.sink_lengths["sink"] = 1234;
  auto back = Checkpoint::from_json(cp.to_json());
  REQUIRE(back.inputs.size() == 2);
  CHECK(back.inputs[0].name == "in \"quoted\".jsonl");
  CHECK(back.inputs[0].line == 1);
  CHECK(back.inputs[0].done.size() == 1);
  CHECK(back.inputs[0].done[0].end_offset == 40);
  CHECK(back.find("old.jsonl")->offset == 99);
  CHECK(back.sink_lengths.at("sink") == 1234);
  CHECK_THROWS(Checkpoint::from_json("{not json"));
  CHECK_THROWS(Checkpoint::from_json(R"({"inputs": 3})"));
}

TEST_CASE("ranges of lines acked at once merge with single acks and with each other", "[checkpoint]") {
  AckTracker t;
  t.add_input(0, "a", nullptr);
  t.ack_range(0, 3, 5, 50);
  t.ack(at(7));
  t.ack_range(0, 9, 12, 120);
  auto cp = t.snapshot();
  CHECK(cp.inputs[0].line == 0);
  REQUIRE(cp.inputs[0].done.size() == 3);
  t.ack_range(0, 6, 6, 60);  // joins 3-5 and 7
  t.ack_range(0, 4, 10, 100);  // overlaps what is done: idempotent
  cp = t.snapshot();
  REQUIRE(cp.inputs[0].done.size() == 1);
  CHECK(cp.inputs[0].done[0].first == 3);
  CHECK(cp.inputs[0].done[0].last == 12);
  CHECK(cp.inputs[0].done[0].end_offset == 120);
  t.ack_range(0, 1, 2, 20);  // closes the gap: the mark jumps past everything
  cp = t.snapshot();
  CHECK(cp.inputs[0].line == 12);
  CHECK(cp.inputs[0].offset == 120);
  CHECK(cp.inputs[0].done.empty());
  t.ack_range(0, 5, 12, 120);  // under the mark: nothing changes
  CHECK(t.snapshot().inputs[0].line == 12);
}

TEST_CASE("random ranges and single acks in any order end at the last line", "[checkpoint]") {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    // Cut 1..300 into runs, some acked as ranges, some line by line, shuffled,
    // with some runs acked twice.
    std::vector<std::pair<uint64_t, uint64_t>> runs;
    for (uint64_t l = 1; l <= 300;) {
      uint64_t n = 1 + rng() % 12;
      uint64_t last = std::min<uint64_t>(300, l + n - 1);
      runs.emplace_back(l, last);
      if (rng() % 4 == 0) runs.emplace_back(l, last);
      l = last + 1;
    }
    std::shuffle(runs.begin(), runs.end(), rng);
    AckTracker t;
    t.add_input(0, "a", nullptr);
    for (auto [first, last] : runs) {
      if (rng() % 2) {
        t.ack_range(0, first, last, last * 10);
      } else {
        for (uint64_t l = first; l <= last; ++l) t.ack(at(l));
      }
    }
    auto cp = t.snapshot();
    INFO("round " << round);
    CHECK(cp.inputs[0].line == 300);
    CHECK(cp.inputs[0].offset == 3000);
    CHECK(cp.inputs[0].done.empty());
  }
}

TEST_CASE("absorb adds what another mark holds; sink marks survive a JSON round trip", "[checkpoint]") {
  AckTracker t;
  t.add_input(0, "a", nullptr);
  t.ack(at(1));
  t.ack(at(2));
  t.ack(at(9));
  InputMark before;
  before.name = "a";
  before.line = 4;
  before.offset = 40;
  before.done.push_back({6, 7, 70});
  t.absorb(before);
  auto cp = t.snapshot();
  CHECK(cp.inputs[0].line == 4);
  CHECK(cp.inputs[0].offset == 40);
  REQUIRE(cp.inputs[0].done.size() == 2);
  CHECK(cp.inputs[0].done[0].first == 6);
  CHECK(cp.inputs[0].done[0].last == 7);
  CHECK(cp.inputs[0].done[1].first == 9);
  InputMark other = before;
  other.name = "b";  // an input this tracker does not have: nothing
  t.absorb(other);
  CHECK(t.snapshot().inputs.size() == 1);

  cp.sink_marks["fast"] = cp.inputs;
  Checkpoint back = Checkpoint::from_json(cp.to_json());
  REQUIRE(back.sink_marks.count("fast") == 1);
  CHECK(back.sink_marks["fast"][0].line == 4);
  CHECK(back.sink_marks["fast"][0].done.size() == 2);
  CHECK(Checkpoint::from_json(Checkpoint{}.to_json()).sink_marks.empty());
}
