#include <catch2/catch.hpp>

#include "config/did_you_mean.h"

using aetl::did_you_mean;
using aetl::edit_distance;

TEST_CASE("edit distance counts insertions, deletions and substitutions", "[did_you_mean]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("sqlite", "sqlite") == 0);
  CHECK(edit_distance("sqlte", "sqlite") == 1);
  CHECK(edit_distance("sqlitee", "sqlite") == 1);
  CHECK(edit_distance("sqlote", "sqlite") == 1);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("abc", "") == 3);
}

TEST_CASE("a typo of a known key gets a suggestion", "[did_you_mean]") {
  std::vector<std::string> sinks{"jsonl", "csv", "sqlite", "postgres", "redis"};
  CHECK(did_you_mean("sqlte", sinks) == std::optional<std::string>("sqlite"));
  CHECK(did_you_mean("postgress", sinks) == std::optional<std::string>("postgres"));
  CHECK(did_you_mean("jsnl", sinks) == std::optional<std::string>("jsonl"));
}

TEST_CASE("a word far from every candidate gets no suggestion", "[did_you_mean]") {
  std::vector<std::string> sinks{"jsonl", "csv", "sqlite"};
  CHECK_FALSE(did_you_mean("kafka", sinks).has_value());
  CHECK_FALSE(did_you_mean("x", std::vector<std::string>{}).has_value());
}

TEST_CASE("short words allow one edit only", "[did_you_mean]") {
  std::vector<std::string> keys{"key", "url"};
  CHECK(did_you_mean("kye", keys) == std::nullopt);  // a transposition is two edits
  CHECK(did_you_mean("ky", keys) == std::optional<std::string>("key"));
}
