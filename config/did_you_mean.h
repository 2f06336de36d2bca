#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aetl {

/// Levenshtein distance (insertions, deletions, substitutions; case-sensitive).
size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` if it is near enough to be a typo: at most
/// one edit for short words, at most a third of the word's length for longer ones.
/// Ties go to the first candidate.
std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace aetl
