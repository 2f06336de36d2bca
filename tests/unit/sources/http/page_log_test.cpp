#include <catch2/catch.hpp>

#include "run/checkpoint.h"
#include "sources/http/page_position.h"

using namespace aetl;

TEST_CASE("a page position reads back as written", "[page_log]") {
  PagePosition p;
  p.before = 200;
  p.index = 3;
  p.offset = 200;
  p.url = "http://h/items?after=\"x\"";
  p.cursor = "c2";
  p.high = "2026-01-02";
  p.previous = records_digest({"{\"id\":1}"});
  p.loop = "c1";
  p.loop_page = 2;
  auto back = PagePosition::from_json(p.to_json());
  REQUIRE(back);
  CHECK(back->to_json() == p.to_json());
  CHECK_FALSE(back->since);
  CHECK(back->loop_page == 2);
  CHECK(records_digest({"a", "b"}) != records_digest({"ab"}));
  CHECK(records_digest({}) == "cbf29ce484222325");
  CHECK_FALSE(PagePosition::from_json("{\"page\": 0, \"before\": 1}"));
}

TEST_CASE("the checkpoint names the page holding the first record not handled", "[page_log]") {
  PageLog log("http: x ");
  PagePosition p1, p2;
  p2.index = 2;
  p2.before = 100;
  log.add(1, p1);
  log.add(101, p2);
  CHECK(log.name_for(0) == "http: x " + p1.to_json());
  CHECK(log.name_for(99) == "http: x " + p1.to_json());
  CHECK(log.name_for(100) == "http: x " + p2.to_json());
  CHECK(log.name_for(150) == "http: x " + p2.to_json());
}

TEST_CASE("forgotten pages fall back to an earlier page, never a later one", "[page_log]") {
  PageLog log("b ");
  for (uint64_t i = 0; i < 100; ++i) {
    PagePosition p;
    p.index = i + 1;
    p.before = i * 10;
    log.add(i * 10 + 1, p);
  }
  log.forget_before(905);  // page 91 holds line 906
  CHECK(PagePosition::from_json(log.name_for(905).substr(2))->index == 91);
  CHECK(PagePosition::from_json(log.name_for(500).substr(2))->index == 1);  // page 51 is gone: the first
}

TEST_CASE("a tracker with a namer names its input in snapshots and absorbs by the base name", "[page_log]") {
  AckTracker t;
  t.add_input(0, "base ", nullptr);
  t.name_by(0, [](const InputMark& m) { return "base " + std::to_string(m.line); });
  t.ack(Position{0, 1, 1});
  CHECK(t.snapshot().inputs[0].name == "base 1");
  InputMark old;
  old.name = "base 7";
  old.line = 3;
  t.absorb(old);
  CHECK(t.snapshot().inputs[0].name == "base 3");
}
