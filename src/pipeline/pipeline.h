// The streaming pipeline: consumes committed log events, keeps per-user windows and
// sessions and the item models, and recomputes and stores each user's recommendations.
//
// Exactly-once: a worker writes a user's new state, new recommendations and its consumer
// offset in one RocksDB WriteBatch; item models are checkpointed with their own offsets.
// On start, state is recovered and the log is replayed from those offsets.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "events/event.h"
#include "log/event_log.h"
#include "models/item_model.h"
#include "store/store.h"

namespace streamrec::models {
class Recommender;  // registry/recommender.h
}  // namespace streamrec::models

namespace streamrec::pipeline {

struct PipelineOptions {
  int64_t window_ms = 5 * 60 * 1000;         //!< event-time sliding window of item views
  size_t window_max_items = 20;              //!< last-N cap of the window
  size_t history_max_events = 50;            //!< recent events kept per user
  int64_t session_gap_ms = 30 * 60 * 1000;   //!< inactivity that ends a session
  int64_t user_ttl_ms = 30ll * 24 * 3600 * 1000;  //!< idle users' state is dropped after this
  size_t rec_count = 20;                     //!< length of the stored list
  int64_t recs_stale_ms = 10 * 60 * 1000;    //!< served lists older than this are recomputed
  int64_t checkpoint_interval_ms = 30000;    //!< item model checkpoint period
  uint32_t workers = 1;                      //!< worker threads; partition p goes to p % workers
  size_t max_batch = 1024;                   //!< events one worker step takes
};

struct HistoryEntry {
  std::string item_id;
  events::EventType type = events::EventType::kOther;
  int64_t timestamp_ms = 0;
  uint64_t seq = 0;  //!< log seq in the user's partition (rebuilds the window before an event)
};

struct UserState {
  std::vector<HistoryEntry> history;  //!< oldest first, capped at history_max_events
  std::string session_id;             //!< the tracker's sid, else ours: "<n>" (n = sessions)
  int64_t session_start_ms = 0;
  int64_t last_event_ms = 0;
  uint32_t session_events = 0;
  uint64_t sessions = 0;

  //! Item views and add-to-carts within `window_ms` of the last event, the newest
  //! `max_items` distinct items (each at its newest timestamp), oldest first.
  std::vector<models::WindowItem> Window(int64_t window_ms, size_t max_items) const;
};

struct RecList {
  std::vector<models::ScoredItem> items;
  std::string model;             //!< "covisitation", "popularity", ...
  int64_t generated_at_ms = 0;   //!< wall clock when computed
  int64_t last_event_ms = 0;     //!< event time of the user's newest event it reflects
  //! Put by an observer (a scenario's `store` sink): served as it is, whatever its age or
  //! length, rather than recomputed by the built-in path.
  bool from_observer = false;
};

//! Writes an observer adds to the step's atomic batch (state database, kState family).
//! Observers use their own key prefix (see store/key_schema.h).
class StepWrites {
 public:
  virtual ~StepWrites() = default;
  virtual void Put(std::string_view key, std::string_view value) = 0;
  virtual void Delete(std::string_view key) = 0;
  //! Stores `list` as the user's served list in this step instead of the built-in one (the
  //! last one put for a user wins); list observers see it as any stored list.
  virtual void PutList(std::string_view tenant, std::string_view user, RecList list) = 0;
  //! The user's list belongs to the observer: the step computes no built-in list for them even
  //! when nothing is put (a scenario with a `store` sink that dropped the event).
  virtual void ClaimList(std::string_view tenant, std::string_view user) = 0;
  //! Calls `run` with these writes once the step has observed all its events, before they
  //! commit; of the runs deferred under one key only the latest is called (the others are
  //! dropped, unrun). A step that fails drops them all.
  virtual void DeferLatest(std::string key, std::function<void(StepWrites&)> run) = 0;
};

//! Sees every event as it is applied to user state, on a worker thread, and may add writes
//! to the same atomic batch as the user's state, so its results are exactly-once too.
//! NOTE: keep it quick (it runs inside the step); if a step's write fails, the step is
//! retried and the observer sees its events again.
using EventObserver =
    std::function<void(const events::Event& event, const UserState& state, StepWrites& writes)>;

//! Sees, once at Start() and before any new event, the events that were applied before the
//! restart and are at most `span_ms` (collector time) older than each partition's newest one:
//! what an in-memory consumer (a scenario's windows) needs to rebuild its state. Its effects
//! must not leave the process (no pushes): these events were handled before.
using WarmupObserver = std::function<void(const events::Event& event)>;

struct RecList;
//! Sees each user's new list after the step that computed it was stored (worker thread;
//! keep it quick: sinks only enqueue).
using ListObserver = std::function<void(const std::string& tenant, const std::string& user,
                                        const RecList& list)>;

class Pipeline {
 public:
  static common::Result<std::unique_ptr<Pipeline>> Open(store::Store& store, log::EventLog& log,
                                                        const PipelineOptions& options,
                                                        const models::ItemModelOptions& model_options,
                                                        common::Registry& metrics);
  virtual ~Pipeline() = default;

  //! The live item models (thread-safe reads), for scenario recommend steps.
  virtual const models::ItemModel& item_model() const = 0;

  //! Adds an observer; call before Start().
  virtual void AddObserver(EventObserver observer) = 0;
  //! Whether the pipeline computes and stores the lists of touched users that no observer put or
  //! claimed (the default: yes); asked once per step. No: only observer lists are stored (a
  //! benchmark of a scenario replacing the built-in path). Call before Start().
  virtual void SetBuiltinLists(std::function<bool()> enabled) = 0;
  //! Adds a warm-up observer covering `span_ms`; call before Start().
  virtual void AddWarmupObserver(WarmupObserver observer, int64_t span_ms) = 0;
  virtual void AddListObserver(ListObserver observer) = 0;

  //! Stored lists come from `recommender` (e.g. registry::ModelHost) instead of the co-visitation
  //! model, topped up from co-visitation when it returns fewer than n items; nullptr (the
  //! default) is co-visitation alone. Thread-safe; may be called while running.
  virtual void SetRecommender(std::shared_ptr<models::Recommender> recommender) = 0;

  //! Recovers state (item checkpoint + replay of the log from stored offsets), registers
  //! the log's commit listener and starts the workers.
  virtual common::Status Start() = 0;
  //! Processes what is queued, checkpoints the item models, stops the workers.
  virtual void Stop() = 0;

  // --- read side: thread-safe, used by the HTTP handlers.

  //! The stored list, or one computed now when missing or stale (cold users get
  //! popularity). Never NotFound: an unknown user gets the tenant's popular items.
  virtual common::Result<RecList> Recommendations(std::string_view tenant, std::string_view user,
                                                  size_t n) = 0;
  //! The list the worker stored for the user, if any (no recomputation).
  virtual common::Result<std::optional<RecList>> StoredRecommendations(std::string_view tenant,
                                                                       std::string_view user) = 0;
  //! Co-visitation neighbours of an item; NotFound when the item is unknown.
  virtual common::Result<std::vector<models::ScoredItem>> Similar(std::string_view tenant,
                                                                  std::string_view item,
                                                                  size_t n) = 0;
  //! The tenant's most popular items now (time-decayed), best first.
  virtual std::vector<models::ScoredItem> Popular(std::string_view tenant, size_t n) = 0;
  //! NotFound when the user has no state.
  virtual common::Result<UserState> User(std::string_view tenant, std::string_view user) = 0;

  //! GDPR erasure of the user's state and stored list. Call after the log was redacted;
  //! waits for the workers to finish what is queued first, so that no step in flight
  //! writes the state back.
  virtual common::Status ForgetUser(std::string_view tenant, std::string_view user) = 0;

  //! Next seq to process per partition (the slowest of user and item consumers), for
  //! log retention.
  virtual std::vector<uint64_t> ConsumerOffsets() const = 0;
  //! Blocks until every event committed before the call is processed, or the timeout.
  virtual bool WaitIdle(int64_t timeout_ms) = 0;
  //! Events processed since start.
  virtual uint64_t processed() const = 0;
};

}  // namespace streamrec::pipeline
