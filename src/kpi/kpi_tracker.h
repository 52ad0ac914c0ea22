// KPIs of served lists: impressions, clicks, and the add-to-carts, purchases and revenue
// attributed to them, per (tenant, placement, model, variant, hour).
//
// The tracker is a pipeline observer. Per user it keeps the lists recently shown and
// clicked (bounded: last N lists, dropped after the longest attribution window) so that a
// later add-to-cart or purchase of one of their items is attributed to the list. Both the
// per-user records and the hourly aggregates are written through the pipeline step's
// atomic batch (kState family, "k" prefix), so a restart restores exactly what the state
// database's consumer offsets cover and the log replay adds the rest: exactly-once.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "events/event.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

namespace streamrec::kpi {

struct KpiOptions {
  int64_t cart_window_ms = 30 * 60 * 1000;          //!< click/impression -> add-to-cart
  int64_t purchase_window_ms = 24ll * 3600 * 1000;  //!< click/impression -> purchase
  size_t max_lists_per_user = 20;                   //!< newest lists kept per user
  size_t max_items_per_list = 50;                   //!< items of a list remembered
  size_t max_clicks_per_list = 20;                  //!< clicks of a list remembered
  size_t recent_event_ids = 64;       //!< per-user ids of applied events (retried steps)
  size_t max_cached_users = 100'000;  //!< in-memory user records (the rest stay in the DB)
  int64_t retention_ms = 400ll * 24 * 3600 * 1000;  //!< hourly aggregates kept this long
};

struct Counts {
  uint64_t impressions = 0;
  uint64_t clicks = 0;
  uint64_t add_to_carts = 0;  //!< attributed add-to-cart events
  uint64_t purchases = 0;     //!< attributed purchase events
  double revenue = 0;         //!< attributed revenue (shop currency)

  Counts& operator+=(const Counts& o);
  bool operator==(const Counts&) const = default;
  double Ctr() const { return impressions ? double(clicks) / double(impressions) : 0; }
  double AddToCartRate() const {
    return impressions ? double(add_to_carts) / double(impressions) : 0;
  }
  double ConversionRate() const {
    return impressions ? double(purchases) / double(impressions) : 0;
  }
};

//! One aggregate row: the counts of a (tenant, placement, model, variant) in one hour.
struct Bucket {
  std::string tenant;
  std::string placement;
  std::string model;
  std::string variant;
  int64_t hour_ms = 0;  //!< start of the hour (event time, UTC)
  Counts counts;
};

enum class GroupBy { kNone, kPlacement, kModel, kVariant };
std::optional<GroupBy> ParseGroupBy(std::string_view name);
std::string_view GroupByName(GroupBy g);

struct KpiQuery {
  std::string tenant;
  int64_t from_ms = 0;  //!< inclusive; hours starting at or after it (floored to the hour)
  int64_t to_ms = 0;    //!< exclusive
  std::optional<std::string> placement;  //!< only this placement
  GroupBy group_by = GroupBy::kPlacement;
};

struct HourPoint {
  int64_t hour_ms = 0;
  Counts counts;
};

struct KpiGroup {
  std::string key;  //!< placement, model or variant name ("all" for kNone)
  Counts totals;
  std::vector<HourPoint> series;  //!< hours with any count, ascending
};

struct KpiReport {
  KpiQuery query;
  Counts totals;
  std::vector<HourPoint> series;  //!< all groups together, every hour of [from, to)
  std::vector<KpiGroup> groups;   //!< by totals.impressions, descending
};

//! Per-user attribution state (exposed for tests and GDPR export).
struct ShownList {
  std::string list_id;
  std::string placement;
  std::string model;
  std::string variant;
  int64_t shown_ms = 0;     //!< impression time (first click's when the impression was missed)
  bool impression = false;  //!< an impression of it was counted
  std::vector<std::string> items;
  std::vector<std::pair<std::string, int64_t>> clicks;  //!< item, time
};
struct UserKpiState {
  std::vector<ShownList> lists;  //!< oldest first, at most max_lists_per_user
  //! Applied events (id and the aggregate key each changed, empty if none), oldest first.
  std::vector<std::pair<std::string, std::string>> recent;
  int64_t last_ms = 0;
};
std::string EncodeUserKpiState(const UserKpiState& s);
common::Result<UserKpiState> DecodeUserKpiState(std::string_view bytes);

class KpiTracker {
 public:
  //! `store` outlives the tracker.
  KpiTracker(store::Store& store, KpiOptions options);
  ~KpiTracker();

  //! Loads the persisted aggregates. Call once before the pipeline starts.
  common::Status Restore();

  //! The pipeline observer; add it before Pipeline::Start().
  pipeline::EventObserver Observer();
  //! What the observer does (thread-safe).
  void Observe(const events::Event& event, pipeline::StepWrites& writes);

  //! Aggregates in the query's range, grouped.
  KpiReport Query(const KpiQuery& query) const;
  //! Every aggregate row (tests, debugging).
  std::vector<Bucket> Buckets() const;

  //! The user's attribution state, if any.
  common::Result<std::optional<UserKpiState>> User(std::string_view tenant, std::string_view user);
  //! GDPR: removes the user's attribution state (aggregates are anonymous counts and
  //! stay). NOTE: call after Pipeline::ForgetUser, which drains the workers.
  common::Status ForgetUser(std::string_view tenant, std::string_view user);

  //! Drops aggregates of hours older than retention (memory and DB).
  common::Status Trim(int64_t now_ms);

  //! Estimated bytes held in memory, for metrics.
  size_t MemoryBytes() const;

 private:
  struct CachedUser {
    UserKpiState state;
    uint64_t touched = 0;
  };
  UserKpiState* LoadUser(const std::string& key);
  void EvictUsers();
  //! Adds `delta` to the bucket and writes its new value; returns the bucket's key.
  std::string Add(const Bucket& where, const Counts& delta, pipeline::StepWrites& writes);
  void PruneUser(UserKpiState& s, int64_t now_ms) const;

  store::Store& store_;
  const KpiOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;    // DB key -> row
  std::unordered_map<std::string, CachedUser> users_;  // DB key -> state
  uint64_t clock_ = 0;
};

}  // namespace streamrec::kpi
