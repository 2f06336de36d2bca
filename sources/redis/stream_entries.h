#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/redis/redis_reply.h"
#include "net/redis/stream_id.h"

namespace aetl {

/// The entries of one XREADGROUP or XCLAIM reply, taken out of hiredis's reply
/// in place: per entry its ID and the value of the one field a record is read
/// from, in a string of its own that becomes the record's (one allocation per
/// entry; one buffer for all values was slower: megabytes mapped afresh and
/// grown by copying for every read).
struct StreamEntries {
  struct Entry {
    enum class State : uint8_t {
      value,     ///< the field is there
      deleted,   ///< the entry was deleted (XDEL, trimmed) while pending
      no_field,  ///< the entry has no such field
    };
    redis::StreamId id;
    State state = State::value;
    std::string value;
  };
  std::vector<Entry> entries;

  bool empty() const { return entries.empty(); }
  size_t size() const { return entries.size(); }
};

/// Appends the entries of a list of them ([[id, [f1, v1, ...]], ...], XCLAIM's
/// reply) to `out`, reading `field`'s value. Items that are no entry (or whose ID
/// is not MS-SEQ, which no server sends) are skipped.
void take_entries(redis::ReplyView list, std::string_view field, StreamEntries& out);

/// XREADGROUP's reply for one stream ([[stream, [entries]]], or nil when the
/// read found none): its entries into `out`. False for any other reply (an
/// error), left for the caller to read.
bool take_read_reply(redis::ReplyView reply, std::string_view field, StreamEntries& out);

}  // namespace aetl
