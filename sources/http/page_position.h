#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aetl {

/// Where the http source stands in an API's pages: enough to ask for a page
/// again. Kept in the checkpoint as JSON after the input's name.
struct PagePosition {
  uint64_t before = 0;  ///< the input's records before this page (its first record is line before+1)
  uint64_t index = 1;   ///< the page's number in its window, from 1 (page: START+index-1 is sent)
  uint64_t offset = 0;  ///< the window's records before this page (offset: START+offset is sent)
  std::string url;      ///< next_url and link: the page's URL (empty: the first page's)
  std::optional<std::string> cursor;  ///< cursor: the one that asks for this page (none: the first page)
  std::optional<std::string> since;   ///< incremental: the window's lower bound (none: from the start)
  std::optional<std::string> high;    ///< incremental: the largest value read in the window before this page
  bool done = false;  ///< every page of the window was read; this is the last one
  /// page, offset: the digest of the page before's records (empty: none read), so
  /// that a page with the same records is caught after a resume too
  std::string previous;
  /// The next URL or cursor this page gave that a page read before had (the
  /// pages loop), and that page's number: a run reading it again fails it again.
  std::optional<std::string> loop;
  uint64_t loop_page = 0;

  std::string to_json() const;
  static std::optional<PagePosition> from_json(std::string_view text);
};

/// A digest of a page's records (64-bit FNV-1a, hex), the same in every build.
std::string records_digest(const std::vector<std::string>& records);

/// True if incremental value `a` comes after `b`: as numbers when both are, else as text.
bool comes_after(const std::string& a, const std::string& b);

/// The positions of the pages a run asked for, by the first line each holds
/// (the end of the window too, past its last line), so that a checkpoint names
/// the page holding its first line not yet handled. Thread-safe: a sink may take
/// a checkpoint on the blocking pool.
class PageLog {
 public:
  explicit PageLog(std::string base) : base_(std::move(base)) {}
  /// The page whose first record is line `first` (or, done, the line past the window).
  void add(uint64_t first, const PagePosition& position);
  /// The input's name for a checkpoint whose lines up to `handled` are handled.
  std::string name_for(uint64_t handled) const;
  /// Forgets pages well before the one holding line `handled`+1 (the first page stays).
  void forget_before(uint64_t handled);
  const std::string& base() const { return base_; }

 private:
  const std::string base_;
  mutable std::mutex mutex_;
  std::map<uint64_t, std::string> pages_;  // first line → position JSON
};

}  // namespace aetl
