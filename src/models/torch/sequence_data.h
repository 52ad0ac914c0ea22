// User item sequences for sequential recommenders: reading the `user item item ...` files
// (S3-Rec/SASRec formats), leave-one-out ranking metrics and a popularity baseline.
// No LibTorch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace streamrec::models {

//! Item ids are 1..n_items; 0 is padding. Sequences are oldest first.
struct UserSequences {
  std::vector<std::vector<int32_t>> sequences;  //!< one per user, in file order
  int32_t n_items = 0;                          //!< largest item id seen
  //! Event times in unix seconds, parallel to `sequences`; empty when the file has none.
  std::vector<std::vector<int64_t>> times;
  //! External item ids: vocab[k - 1] is item k. Empty: item k is the number k itself.
  std::vector<std::string> vocab;
};

//! Numbers string item ids 1..n in order of first appearance (0 stays padding).
class ItemNumbering {
 public:
  int32_t Add(std::string_view item) {
    auto [it, added] = ids_.try_emplace(std::string(item), static_cast<int32_t>(items_.size() + 1));
    if (added) items_.emplace_back(item);
    return it->second;
  }
  //! 0 (padding: the model ignores it) for an item never added.
  int32_t Find(const std::string& item) const {
    auto it = ids_.find(item);
    return it == ids_.end() ? 0 : it->second;
  }
  size_t size() const { return items_.size(); }
  //! The ids' external items, item k at [k - 1].
  std::vector<std::string> Take() && { return std::move(items_); }

 private:
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> items_;
};

//! Reads a plain or gzip file whose lines are `<user> <item> [<item> ...]` with numeric ids
//! used as embedding rows as they are (models/eval.h ReadUserSequences keeps string ids for
//! the id-agnostic models). Consecutive
//! lines of the same user are joined, so both the one-line-per-user S3-Rec format and the
//! one-line-per-interaction SASRec format work. max_users 0: all.
//! A RecBole atomic `.inter` file (tab-separated, header `user_id:token item_id:token ...
//! timestamp:float`) is recognised by its header: each user's events are ordered by time
//! (stable, so ties keep file order), `times` is filled, items are numbered 1..n in order of
//! first appearance and `vocab` maps them back; users keep the order of their first event.
common::Result<UserSequences> ReadIdSequences(const std::string& path, size_t max_users = 0);

//! The time-gap bucket of an event `gap_seconds` after the previous one: 0 = unknown (no
//! timestamps, or the first event), else 1 + floor(log2(1 + max(gap, 0))), capped at
//! buckets - 1. REQUIRES: buckets >= 2.
int32_t GapBucket(int64_t gap_seconds, int32_t buckets);

//! Full-ranking leave-one-out metrics (one target per user), averaged over users.
struct LooMetrics {
  uint64_t users = 0;
  double hr5 = 0, hr10 = 0, hr20 = 0;
  double ndcg5 = 0, ndcg10 = 0, ndcg20 = 0;

  //! Adds one user whose target had `rank` (0 = best) among the ranked items.
  void Add(int64_t rank);
  //! Turns the sums into means; call once after the last Add.
  void Finish();
  //! `{"users":N,"hr@5":...,"ndcg@20":...}`.
  std::string ToJson() const;
};

//! Ranks every user's target by global popularity in `train` (counts over all its items),
//! with the user's `histories` items masked when mask_history (the target never is).
LooMetrics EvaluatePopularity(std::span<const std::vector<int32_t>> train,
                              std::span<const std::vector<int32_t>> histories,
                              std::span<const int32_t> targets, int32_t n_items,
                              bool mask_history = true);

}  // namespace streamrec::models
