#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace aetl {

/// The target of the link with relation `rel` in a Link header value (RFC 8288:
/// `<https://x/?page=2>; rel="next", <...>; rel="last"`; several headers joined
/// by ", "), as written (it may be relative). nullopt when there is none.
std::optional<std::string> link_target(std::string_view header, std::string_view rel);

}  // namespace aetl
