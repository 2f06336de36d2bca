#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace aetl {

/// `url` with query parameter `name` set to `value` (URL-encoded): an earlier
/// `name=...` in the query is replaced, else the parameter is appended.
std::string with_query_param(std::string_view url, std::string_view name, std::string_view value);

/// `reference` (absolute, or relative as in an href) resolved against `base`, by
/// libcurl's URL parser. nullopt, with `error` set, when it makes no URL.
std::optional<std::string> resolve_url(const std::string& base, const std::string& reference, std::string& error);

}  // namespace aetl
