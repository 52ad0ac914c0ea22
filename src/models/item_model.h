// Real-time item models updated online with every event: time-decayed popularity
// (global and per tenant), bounded per-item statistics, and item-to-item co-visitation
// with bounded neighbour lists. Thread-safe: updates take an exclusive lock, queries a
// shared one.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "events/event.h"

namespace streamrec::models {

struct ScoredItem {
  std::string item_id;
  double score = 0;
  bool operator==(const ScoredItem&) const = default;
};

//! An item in a user's window, oldest first.
struct WindowItem {
  std::string item_id;
  int64_t timestamp_ms = 0;
};

struct ItemModelOptions {
  size_t max_items = 500'000;                        //!< per model; least popular evicted
  size_t max_neighbors = 50;                         //!< co-visitation list cap per item
  int64_t popularity_half_life_ms = 24ll * 3600 * 1000;
  double recency_decay = 0.7;  //!< weight of the k-th most recent window item: decay^k
};

struct ItemStats {
  uint64_t views = 0, add_to_carts = 0, purchases = 0;
  int64_t last_seen_ms = 0;
  double popularity = 0;  //!< decayed to the model's current time
};

}  // namespace streamrec::models
