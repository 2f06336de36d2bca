#include "sources/redis/stream_entries.h"

namespace aetl {

using redis::ReplyView;
using Type = redis::RedisReply::Type;

void take_entries(ReplyView list, std::string_view field, StreamEntries& out) {
  const size_t n = list.size();
  out.entries.reserve(out.entries.size() + n);
  for (size_t i = 0; i < n; ++i) {
    ReplyView item = list[i];
    if (item.type() != Type::array || item.size() < 2) continue;
    auto id = redis::StreamId::parse(item[0].str());
    if (!id) continue;
    StreamEntries::Entry e;
    e.id = *id;
    ReplyView fields = item[1];
    if (fields.type() != Type::array) {
      e.state = StreamEntries::Entry::State::deleted;
    } else {
      e.state = StreamEntries::Entry::State::no_field;
      for (size_t f = 0; f + 1 < fields.size(); f += 2) {
        if (fields[f].str() != field) continue;
        e.state = StreamEntries::Entry::State::value;
        e.value.assign(fields[f + 1].str());
        break;
      }
    }
    out.entries.push_back(std::move(e));
  }
}

bool take_read_reply(ReplyView reply, std::string_view field, StreamEntries& out) {
  if (reply.type() == Type::nil) return true;
  if (reply.type() != Type::array) return false;
  if (reply.size() > 0 && reply[0].type() == Type::array && reply[0].size() >= 2) take_entries(reply[0][1], field, out);
  return true;
}

}  // namespace aetl
