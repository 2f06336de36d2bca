#pragma once
#include <chrono>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "config/field_spec.h"

// Exactly-once SQL sinks fed by a queue source (redis) keep the IDs of the
// deliveries they committed in a table beside their data,
//   aetl_deliveries (pipeline, id, committed_at)   primary key (pipeline, id)
// written in each batch's transaction (WriteContext::delivery_ids): a record
// whose ID is there already was committed by an earlier delivery of the same
// entry (a worker killed between its COMMIT and its XACK, or paused while another
// worker took its entries over) and is not written again. Two workers committing
// the same ID at once are serialised by the key: the second finds it there.
// IDs older than `remember_deliveries` are deleted, at most once per
// kForgetEvery, in a batch's transaction.
namespace aetl {

inline constexpr std::string_view kDeliveryTable = "aetl_deliveries";
inline constexpr std::chrono::seconds kForgetEvery{600};
inline constexpr std::chrono::hours kRememberDeliveriesDefault{24 * 7};

/// The field of the exactly-once SQL sinks that sets how long IDs are kept.
inline constexpr FieldSpec kRememberDeliveriesField{
    "remember_deliveries", FieldType::duration, "7d",
    "with a queue source (redis) and exactly_once: how long committed entries' IDs are kept to turn away a second "
    "delivery (a worker paused longer could write its entries twice)",
    "30d"};

/// A delivery ID the batch holds twice (not expected: the source hands each
/// entry on once) is written once: the later records count as kept.
inline void skip_repeated_ids(const std::vector<std::string>& ids, std::vector<bool>& kept) {
  std::unordered_set<std::string_view> seen;
  seen.reserve(ids.size());
  for (size_t k = 0; k < ids.size(); ++k)
    if (!ids[k].empty() && !kept[k] && !seen.insert(ids[k]).second) kept[k] = true;
}

}  // namespace aetl
