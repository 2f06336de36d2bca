#include "net/sql_table.h"

#include <map>

#include <algorithm>
#include <cctype>

namespace aetl {

std::string quote_sql_ident(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

bool is_sql_type(std::string_view t, bool arrays) {
  size_t i = 0, n = t.size();
  auto alpha = [&](size_t j) { return j < n && (std::isalpha(static_cast<unsigned char>(t[j])) || t[j] == '_'); };
  auto digit = [&](size_t j) { return j < n && std::isdigit(static_cast<unsigned char>(t[j])); };
  if (!alpha(0)) return false;
  while (alpha(i) || digit(i) || (i < n && t[i] == ' ' && alpha(i + 1))) ++i;
  // words that would start a constraint, not a type
  std::string words(t.substr(0, i));
  for (char& c : words) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  words = " " + words + " ";
  for (const char* w : {" CHECK ", " PRIMARY ", " NOT ", " NULL ", " UNIQUE ", " DEFAULT ", " REFERENCES ",
                        " COLLATE ", " GENERATED ", " AS ", " CONSTRAINT ", " KEY "})
    if (words.find(w) != std::string::npos) return false;
  if (i < n && t[i] == ' ' && i + 1 < n && t[i + 1] == '(') ++i;
  if (i < n && t[i] == '(') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
    if (i < n && t[i] == ',') {
      ++i;
      if (i < n && t[i] == ' ') ++i;
      if (!digit(i)) return false;
      while (digit(i)) ++i;
    }
    if (i >= n || t[i] != ')') return false;
    ++i;
  }
  while (arrays && i + 1 < n && t[i] == '[' && t[i + 1] == ']') i += 2;
  return i == n;
}

std::optional<std::pair<std::string, std::string>> sqlite_name_clash(const std::vector<TableColumn>& columns) {
  auto fold = [](std::string s) {
    for (char& c : s)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
  };
  std::map<std::string, const std::string*> seen;
  for (const auto& c : columns) {
    auto [it, fresh] = seen.emplace(fold(c.name), &c.name);
    if (!fresh) return std::pair{*it->second, c.name};
  }
  return std::nullopt;
}

}  // namespace aetl
