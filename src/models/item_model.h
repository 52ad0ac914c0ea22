// Real-time item models updated online with every event: time-decayed popularity
// (global and per tenant), bounded per-item statistics, and item-to-item co-visitation
// with bounded neighbour lists. Thread-safe: updates take an exclusive lock, queries a
// shared one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
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

//! Orders `items` best first, ties by item id (so that no order depends on hashing), and keeps
//! the n best.
void KeepBest(std::vector<ScoredItem>& items, size_t n);

//! An item in a user's window, oldest first.
struct WindowItem {
  std::string item_id;
  int64_t timestamp_ms = 0;
};

struct ItemModelOptions {
  size_t max_items = 500'000;  //!< per model; least popular evicted
  size_t max_neighbors = 50;   //!< co-visitation list cap per item
  int64_t popularity_half_life_ms = 24ll * 3600 * 1000;
  double recency_decay = 0.7;  //!< weight of the k-th most recent window item: decay^k
  //! Popular() lists are cached and rebuilt (O(items)) when stale and older than this much
  //! wall time; 0 rebuilds on every query after a change (tests).
  int64_t popular_refresh_ms = 1000;
};

struct ItemStats {
  uint64_t views = 0, add_to_carts = 0, purchases = 0;
  int64_t last_seen_ms = 0;
  double popularity = 0;  //!< decayed to the model's current time
};

//! Candidates for one user with the model that produced them.
struct Recommendation {
  std::vector<ScoredItem> items;
  std::string model;  //!< "covisitation" when neighbours led, "popularity" for cold users
};

class ItemModel {
 public:
  explicit ItemModel(ItemModelOptions options);
  ~ItemModel();
  ItemModel(const ItemModel&) = delete;
  ItemModel& operator=(const ItemModel&) = delete;

  //! Updates statistics and popularity of event.item_id and, for item events, the
  //! co-visitation between it and each item of the user's window *before* this event
  //! (oldest first). Advances the model clock to max(event time). Events without an
  //! item only advance the clock.
  void Observe(const events::Event& event, std::span<const WindowItem> window_before);

  //! Co-visitation neighbours of an item, best first; empty when unknown.
  std::vector<ScoredItem> Similar(std::string_view tenant, std::string_view item, size_t n) const;
  //! Most popular items now (time-decayed); `tenant` empty means across all tenants.
  std::vector<ScoredItem> Popular(std::string_view tenant, size_t n,
                                  std::span<const std::string> exclude = {}) const;
  //! Neighbours of the window's items weighted by recency (newest weighs most),
  //! excluding `exclude` and the window's own items, filled up to n with the tenant's
  //! popular items.
  Recommendation Recommend(std::string_view tenant, std::span<const WindowItem> window, size_t n,
                           std::span<const std::string> exclude = {}) const;
  std::optional<ItemStats> Stats(std::string_view tenant, std::string_view item) const;

  size_t item_count() const;
  uint64_t ApproximateBytes() const;
  int64_t now_ms() const;  //!< the model's event-time clock

  //! Items changed (or evicted: bytes empty) since the last call, for checkpoints.
  struct DirtyItem {
    std::string tenant, item;
    std::optional<std::string> bytes;  //!< nullopt: evicted, delete it
  };
  std::vector<DirtyItem> TakeDirty();

  //! TakeDirty in two phases, so that a checkpoint stops the writers only briefly:
  //! BeginDirtySnapshot copies the changed items' raw state (no strings, no encoding) and
  //! holds eviction off, so slots stay put; FinishDirtySnapshot then encodes the copy under
  //! short shared locks while Observe goes on, and lets eviction resume. The result is the
  //! state as of Begin. REQUIRES: one snapshot at a time; Finish is called after Begin.
  struct DirtySnapshot;
  struct DirtySnapshotDeleter {
    void operator()(DirtySnapshot* snapshot) const;
  };
  using DirtySnapshotPtr = std::unique_ptr<DirtySnapshot, DirtySnapshotDeleter>;
  DirtySnapshotPtr BeginDirtySnapshot();
  std::vector<DirtyItem> FinishDirtySnapshot(DirtySnapshotPtr snapshot);
  //! Restores one item saved by TakeDirty (at start-up, before any Observe).
  common::Status Restore(std::string_view tenant, std::string_view item, std::string_view bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrec::models
