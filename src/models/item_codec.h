// Private to sr_models: the checkpoint encoding of one item (TakeDirty/Restore).
// Neighbours are stored by item id because dense indexes are not stable across runs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace streamrec::models::internal {

struct ItemRecord {
  uint64_t views = 0, add_to_carts = 0, purchases = 0;
  int64_t last_seen_ms = 0;
  double popularity = 0;  //!< absolute: the decayed value as of `as_of_ms`
  int64_t as_of_ms = 0;
  struct Neighbor {
    std::string item_id;
    float weight = 0;
  };
  std::vector<Neighbor> neighbors;  //!< same tenant as the item
};

//! Version 1: u8 version, varints for counters/lengths, zigzag varints for times,
//! little-endian f64 popularity and f32 weights.
std::string EncodeItemRecord(const ItemRecord& record);
common::Result<ItemRecord> DecodeItemRecord(std::string_view bytes);

}  // namespace streamrec::models::internal
