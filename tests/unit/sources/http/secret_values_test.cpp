#include <catch2/catch.hpp>

#include <cstdlib>

#include "sources/http/secret_values.h"

using namespace aetl;

TEST_CASE("secret values are shown as the variable that holds them, as written or %-encoded", "[secret_values]") {
  SecretValues s;
  s.add({{"TOK", "123:abc"}, {"EMPTY", ""}});
  CHECK(s.hide("https://h/bot123:abc/x?t=123%3Aabc&$y") == "https://h/bot${TOK}/x?t=${TOK}&$y");
  CHECK(s.hide("nothing here") == "nothing here");
}

TEST_CASE("a stored template doubles other dollars and reads back with the current value", "[secret_values]") {
  SecretValues s;
  s.add({{"AETL_TEST_SECRET_TOK", "old"}});
  std::string stored = s.to_template("https://h/botold/x?a=$b");
  CHECK(stored == "https://h/bot${AETL_TEST_SECRET_TOK}/x?a=$$b");
  ::setenv("AETL_TEST_SECRET_TOK", "new", 1);
  CHECK(SecretValues::reveal(stored) == "https://h/botnew/x?a=$b");
  ::unsetenv("AETL_TEST_SECRET_TOK");
  CHECK_FALSE(SecretValues::reveal(stored));
}
