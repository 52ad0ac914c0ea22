#include "pipeline/pipeline.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/clock.h"
#include "pipeline/user_state.h"
#include "registry/recommender.h"
#include "store/key_schema.h"

namespace streamrec::pipeline {

namespace {

using common::Code;
using common::Result;
using common::Status;
using store::Cf;

constexpr std::string_view kConsumer = "pipeline";
//! A worker queue holds at most max_batch * this many events; beyond, the
//! listener only records that more were committed and the worker reads them
//! back from the log.
constexpr size_t kQueueBatches = 64;
//! Pause after a failed step (storage error) before retrying it.
constexpr auto kRetryDelay = std::chrono::milliseconds(100);
//! Pause when the log says more is committed than it lets us read yet.
constexpr auto kCatchUpDelay = std::chrono::milliseconds(5);
constexpr size_t kEventTypes = static_cast<size_t>(events::kLastEventType) + 1;

void AtomicMax(std::atomic<uint64_t> &a, uint64_t v) {
  uint64_t cur = a.load(std::memory_order_relaxed);
  while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_acq_rel)) {
  }
}

struct Queued {
  log::LoggedEvent logged;
  int64_t enqueue_ns = 0;  //!< 0: read back from the log (no freshness sample)
};

//! What the log's commit listener touches. Shared with the listener, which the
//! log may keep (and call) after the pipeline is gone: then it is closed and
//! ignores events.
struct Inbox {
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Queued> events;
    bool stop = false;   //!< exit after the current step (destructor: like a crash)
    bool drain = false;  //!< Stop(): process up to the drain targets, then exit
  };

  Inbox(uint32_t partitions, uint32_t workers, size_t cap)
      : committed(partitions), workers(workers), cap(cap) {
    for (uint32_t w = 0; w < workers; ++w) queues.push_back(std::make_unique<Queue>());
  }

  //! Runs on the log's writer thread after a durable commit: enqueue and notify
  //! only.
  void OnCommit(std::span<const log::LoggedEvent> logged) {
    if (closed.load(std::memory_order_acquire)) return;
    const int64_t now_ns = common::MonoNs();
    for (const auto &e : logged) AtomicMax(committed[e.partition], e.seq + 1);
    for (uint32_t w = 0; w < workers; ++w) {
      bool any = false;
      {
        std::lock_guard lock(queues[w]->mu);
        auto &q = queues[w]->events;
        for (const auto &e : logged) {
          if (e.partition % workers != w) continue;
          any = true;
          if (q.size() < cap) q.push_back({e, now_ns});
        }
      }
      if (any) queues[w]->cv.notify_one();
    }
  }

  std::vector<std::unique_ptr<Queue>> queues;  //!< per worker
  //! Per partition: every seq below it is durable in the log (may run ahead of
  //! queues).
  std::vector<std::atomic<uint64_t>> committed;
  const uint32_t workers;
  const size_t cap;
  std::atomic<bool> closed{false};
};

//! Lets the checkpointer stop the workers between steps. Unlike a plain
//! shared_mutex it cannot starve the checkpointer while workers keep
//! overlapping steps.
class StepGate {
 public:
  void Enter() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !paused_; });
    ++active_;
  }
  void Exit() {
    std::lock_guard lock(mu_);
    if (--active_ == 0) cv_.notify_all();
  }
  //! Returns once no step runs and none can start until Resume().
  void Pause() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !paused_; });
    paused_ = true;
    cv_.wait(lock, [&] { return active_ == 0; });
  }
  void Resume() {
    std::lock_guard lock(mu_);
    paused_ = false;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
  bool paused_ = false;
};

std::string EncodeOffset(uint64_t v) {
  std::string out;
  store::AppendU64(out, v);
  return out;
}

class PipelineImpl final : public Pipeline {
 public:
  PipelineImpl(store::Store &store, log::EventLog &log, const PipelineOptions &options,
               const models::ItemModelOptions &model_options, common::Registry &metrics)
      : store_(store),
        log_(log),
        options_(options),
        metrics_(metrics),
        model_(model_options),
        partitions_(log.partitions()),
        workers_(std::min(options.workers, log.partitions())),
        inbox_(std::make_shared<Inbox>(partitions_, workers_,
                                       std::max<size_t>(options.max_batch * kQueueBatches, 1024))),
        cursors_(partitions_),
        steps_(metrics.GetCounter("streamrec_pipeline_steps_total",
                                  "Worker steps (one state write each)")),
        step_seconds_(
            metrics.GetHistogram("streamrec_pipeline_step_seconds", "Time of one worker step")),
        freshness_(metrics.GetHistogram("streamrec_freshness_seconds",
                                        "From an acknowledged (durable) event to its "
                                        "user's recommendations readable")),
        checkpoint_pause_(metrics.GetHistogram(
            "streamrec_pipeline_checkpoint_pause_seconds",
            "How long an item checkpoint holds the workers (the raw copy only)")) {
    for (size_t t = 0; t < kEventTypes; ++t) {
      events_[t] = &metrics.GetCounter(
          "streamrec_pipeline_events_total", "Events applied by the pipeline",
          {{"type", std::string(events::EventTypeName(static_cast<events::EventType>(t)))}});
    }
    metrics.AddGaugeCallback(
        "streamrec_pipeline_items", "Items in the item model", {},
        [this] { return static_cast<double>(model_.item_count()); }, this);
    metrics.AddGaugeCallback(
        "streamrec_pipeline_item_model_bytes", "Approximate memory of the item model", {},
        [this] { return static_cast<double>(model_.ApproximateBytes()); }, this);
    metrics.AddGaugeCallback(
        "streamrec_pipeline_lag_events", "Committed events not yet processed", {},
        [this] {
          double lag = 0;
          for (uint32_t p = 0; p < partitions_; ++p) {
            uint64_t c = inbox_->committed[p].load(std::memory_order_relaxed);
            uint64_t h = Handled(p);
            if (c > h) lag += static_cast<double>(c - h);
          }
          return lag;
        },
        this);
  }

  ~PipelineImpl() override {
    // Without Stop() this is a crash as far as state goes: no drain, no
    // checkpoint; the next Start() replays from the stored offsets.
    Shutdown(/*drain=*/false);
    metrics_.RemoveCallbacks(this);
  }

  const models::ItemModel &item_model() const override { return model_; }
  void AddObserver(EventObserver observer) override { observers_.push_back(std::move(observer)); }
  void SetBuiltinLists(std::function<bool()> enabled) override {
    builtin_lists_ = std::move(enabled);
  }
  void AddWarmupObserver(WarmupObserver observer, int64_t span_ms) override {
    warmup_observers_.push_back(std::move(observer));
    warmup_span_ms_ = std::max(warmup_span_ms_, span_ms);
  }
  void SetRecommender(std::shared_ptr<models::Recommender> recommender) override {
    recommender_.store(std::move(recommender));
  }
  void AddListObserver(ListObserver observer) override {
    list_observers_.push_back(std::move(observer));
  }

  Status Start() override {
    std::lock_guard lock(lifecycle_mu_);
    if (started_) return Status::Internal("pipeline already started");
    if (auto s = Recover(); !s.ok()) return s;
    if (auto s = WarmUp(); !s.ok()) return s;
    started_ = true;
    running_ = true;
    for (uint32_t w = 0; w < workers_; ++w) {
      threads_.emplace_back([this, w] { WorkerLoop(w); });
    }
    if (options_.checkpoint_interval_ms > 0) {
      checkpointer_ = std::thread([this] { CheckpointLoop(); });
    }
    // Serve nothing older than what was acknowledged before the restart: wait
    // for the workers to replay (in parallel) up to the log's end as of now.
    const int64_t start_ns = common::MonoNs();
    std::vector<uint64_t> targets(partitions_);
    for (uint32_t p = 0; p < partitions_; ++p) targets[p] = log_.NextSeq(p);
    while (!CaughtUp(targets, std::chrono::seconds(10))) {
      spdlog::info("pipeline: still replaying the log ({} events so far)", processed());
    }
    spdlog::info("pipeline: replayed {} events in {:.3f} s", processed(),
                 static_cast<double>(common::MonoNs() - start_ns) * 1e-9);
    return Status::Ok();
  }

  void Stop() override { Shutdown(/*drain=*/true); }

  Result<std::optional<RecList>> StoredRecommendations(std::string_view tenant,
                                                       std::string_view user) override {
    std::string bytes;
    auto s =
        store_.db(Cf::kState)->Get({}, store_.cf(Cf::kState), store::RecsKey(tenant, user), &bytes);
    if (s.IsNotFound()) return std::optional<RecList>();
    if (!s.ok()) return store::FromRocks(s, "get recommendations");
    auto recs = DecodeRecList(bytes);
    if (!recs.ok()) {
      spdlog::warn("pipeline: ignoring stored recommendations: {}", recs.status().message);
      return std::optional<RecList>();
    }
    return std::optional<RecList>(std::move(recs).value());
  }

  Result<RecList> Recommendations(std::string_view tenant, std::string_view user,
                                  size_t n) override {
    const int64_t now = common::NowMs();
    const int64_t ref = ReferenceNowMs();
    auto stored = StoredRecommendations(tenant, user);
    if (!stored.ok()) return stored.status();
    if (auto &recs = *stored;
        recs && !Expired(recs->last_event_ms, ref, options_.user_ttl_ms) &&
        (recs->from_observer ||  // the scenario's list: recomputing would replace it
         (now - recs->generated_at_ms <= options_.recs_stale_ms &&
          // Shorter than rec_count: the model had no more, asking again won't help.
          (recs->items.size() >= n || recs->items.size() < options_.rec_count)))) {
      if (recs->items.size() > n) recs->items.resize(n);
      return std::move(*recs);
    }
    // Missing, stale or too short: compute from the user's window; the worker
    // alone writes, so this list is not stored.
    auto state = LoadUser(tenant, user);
    if (!state.ok()) return state.status();
    std::vector<models::WindowItem> window;
    if (state->has_value()) {
      window = (*state)->Window(options_.window_ms, options_.window_max_items);
    }
    // Recommend() leaves the window's own items out itself. NOTE: passing them
    // in `exclude` as well would also drop them as co-visitation sources.
    auto rec = RecommendFor(tenant, user, window, n);
    RecList out;
    out.items = std::move(rec.items);
    out.model = rec.model.empty() ? "popularity" : std::move(rec.model);
    out.generated_at_ms = now;
    out.last_event_ms = state->has_value() ? (*state)->last_event_ms : 0;
    return out;
  }

  std::vector<models::ScoredItem> Popular(std::string_view tenant, size_t n) override {
    return model_.Popular(tenant, n);
  }

  Result<std::vector<models::ScoredItem>> Similar(std::string_view tenant, std::string_view item,
                                                  size_t n) override {
    auto items = model_.Similar(tenant, item, n);
    if (items.empty() && !model_.Stats(tenant, item).has_value()) {
      return Status::Make(Code::kNotFound, "unknown_item", "no such item: " + std::string(item),
                          "item");
    }
    return items;
  }

  Result<UserState> User(std::string_view tenant, std::string_view user) override {
    auto state = LoadUser(tenant, user);
    if (!state.ok()) return state.status();
    if (!state->has_value()) {
      return Status::Make(Code::kNotFound, "unknown_user", "no such user: " + std::string(user),
                          "user");
    }
    return std::move(**state);
  }

  std::vector<uint64_t> ConsumerOffsets() const override {
    std::vector<uint64_t> out(partitions_);
    for (uint32_t p = 0; p < partitions_; ++p) {
      out[p] = std::min(cursors_[p].user_durable.load(std::memory_order_acquire),
                        cursors_[p].item_checkpointed.load(std::memory_order_acquire));
    }
    return out;
  }

  Status ForgetUser(std::string_view tenant, std::string_view user) override {
    if (!WaitIdle(10'000)) {
      return Status::Make(common::Code::kUnavailable, "pipeline_busy",
                          "the pipeline did not catch up; retry the erasure");
    }
    rocksdb::WriteBatch wb;
    auto *cf = store_.cf(Cf::kState);
    wb.Delete(cf, store::UserStateKey(tenant, user));
    wb.Delete(cf, store::RecsKey(tenant, user));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return store::FromRocks(store_.db(Cf::kState)->Write(wo, &wb), "erase user state");
  }

  bool WaitIdle(int64_t timeout_ms) override {
    std::vector<uint64_t> targets(partitions_);
    for (uint32_t p = 0; p < partitions_; ++p) targets[p] = log_.NextSeq(p);
    return CaughtUp(targets, std::chrono::milliseconds(timeout_ms));
  }

  uint64_t processed() const override { return processed_.load(std::memory_order_relaxed); }

 private:
  //! Per partition progress. user_durable is written by the owning worker after
  //! its batch is written; item_applied by the owning worker as it feeds the
  //! item model (read by the checkpointer only while the workers are paused);
  //! item_checkpointed by the checkpointer.
  struct Cursor {
    std::atomic<uint64_t> user_durable{0};
    std::atomic<uint64_t> item_applied{0};
    std::atomic<uint64_t> item_checkpointed{0};
    std::atomic<uint64_t> drain_target{0};
  };

  //! What one worker owns; touched by its thread only (after Start).
  struct Worker {
    std::vector<uint32_t> partitions;
    std::deque<Queued> pending;
    std::vector<uint64_t> user_next;  //!< per partition (owned ones meaningful)
    std::vector<Queued> batch;        //!< the step's events; kept to reuse its capacity
  };

  struct CachedUser {
    std::string tenant, user;
    UserState state;
    bool touched = false;
    std::optional<RecList> recs;  //!< kept for list observers only
  };

  //! Waits until every partition's events below `targets` are applied.
  bool CaughtUp(const std::vector<uint64_t> &targets, std::chrono::milliseconds timeout) {
    std::unique_lock lock(progress_mu_);
    return progress_cv_.wait_for(lock, timeout, [&] {
      for (uint32_t p = 0; p < partitions_; ++p) {
        if (Handled(p) < targets[p]) return false;
      }
      return true;
    });
  }

  uint64_t Handled(uint32_t p) const {
    return std::min(cursors_[p].user_durable.load(std::memory_order_acquire),
                    cursors_[p].item_applied.load(std::memory_order_acquire));
  }

  //! "Now" for user TTLs on the read side: the stream's event time, but never
  //! ahead of the wall clock (a client with a clock in the future must not
  //! expire everyone).
  int64_t ReferenceNowMs() const { return std::min(common::NowMs(), model_.now_ms()); }

  //! The stored state, or nullopt when absent or expired.
  Result<std::optional<UserState>> LoadUser(std::string_view tenant, std::string_view user) const {
    std::string bytes;
    auto s = store_.db(Cf::kState)
                 ->Get({}, store_.cf(Cf::kState), store::UserStateKey(tenant, user), &bytes);
    if (s.IsNotFound()) return std::optional<UserState>();
    if (!s.ok()) return store::FromRocks(s, "get user state");
    auto state = DecodeUserState(bytes);
    if (!state.ok()) {
      spdlog::warn("pipeline: dropping unreadable state of a user: {}", state.status().message);
      return std::optional<UserState>();
    }
    if (Expired(state->last_event_ms, ReferenceNowMs(), options_.user_ttl_ms)) {
      return std::optional<UserState>();
    }
    return std::optional<UserState>(std::move(state).value());
  }

  // --- start, stop, recovery

  //! Feeds the warm-up observers the already-applied events of the last warmup_span_ms_ of each
  //! partition (collector time, which grows with seq in a partition), merged across partitions
  //! by collector time: a window grouped by anything but the user sees them in arrival order.
  Status WarmUp() {
    if (warmup_observers_.empty() || warmup_span_ms_ <= 0) return Status::Ok();
    const int64_t start_ns = common::MonoNs();
    struct Source {
      uint32_t partition;
      uint64_t next, end;  // seqs still to read: [next, end)
      std::vector<log::LoggedEvent> chunk;
      size_t pos = 0;
    };
    auto collector_ms_at = [&](uint32_t p, uint64_t seq) -> Result<int64_t> {
      auto one = log_.Read(p, seq, 1);
      if (!one.ok()) return one.status();
      return one->empty() ? INT64_MAX : one->front().event.collector_ms;
    };
    // Reads the source's next chunk when the current one is used up; false when it is done.
    auto refill = [&](Source &s) -> Result<bool> {
      if (s.pos < s.chunk.size()) return true;
      s.chunk.clear();
      s.pos = 0;
      if (s.next >= s.end) return false;
      auto chunk = log_.Read(s.partition, s.next, std::min<uint64_t>(s.end - s.next, 1024));
      if (!chunk.ok()) return chunk.status();
      for (auto &logged : *chunk) {
        if (logged.seq >= s.end) break;
        s.next = logged.seq + 1;
        s.chunk.push_back(std::move(logged));
      }
      if (s.chunk.empty()) s.next = s.end;
      return !s.chunk.empty();
    };
    std::vector<Source> sources;
    for (uint32_t p = 0; p < partitions_; ++p) {
      const uint64_t end = cursors_[p].user_durable.load(std::memory_order_relaxed);
      uint64_t lo = log_.FirstSeq(p);
      if (end <= lo) continue;
      auto newest = collector_ms_at(p, end - 1);
      if (!newest.ok()) return newest.status();
      const int64_t cutoff = *newest - warmup_span_ms_;
      for (uint64_t hi = end - 1; lo < hi;) {  // the first seq at or after the cutoff
        const uint64_t mid = lo + (hi - lo) / 2;
        auto t = collector_ms_at(p, mid);
        if (!t.ok()) return t.status();
        if (*t < cutoff) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      Source source{p, lo, end, {}, 0};
      auto more = refill(source);
      if (!more.ok()) return more.status();
      if (*more) sources.push_back(std::move(source));
    }
    uint64_t fed = 0;
    while (!sources.empty()) {
      size_t oldest = 0;  // few partitions: a scan beats a heap
      for (size_t i = 1; i < sources.size(); ++i) {
        if (sources[i].chunk[sources[i].pos].event.collector_ms <
            sources[oldest].chunk[sources[oldest].pos].event.collector_ms) {
          oldest = i;
        }
      }
      Source &s = sources[oldest];
      const events::Event &event = s.chunk[s.pos++].event;
      if (!event.user_id.empty()) {  // empty: erased
        for (const auto &observe : warmup_observers_) observe(event);
        ++fed;
      }
      auto more = refill(s);
      if (!more.ok()) return more.status();
      if (!*more) sources.erase(sources.begin() + static_cast<ptrdiff_t>(oldest));
    }
    spdlog::info("pipeline: warmed up in-memory state with {} recent events in {:.3f} s", fed,
                 static_cast<double>(common::MonoNs() - start_ns) * 1e-9);
    return Status::Ok();
  }

  Status Recover() {
    auto *db = store_.db(Cf::kState);
    // 1. The item model from its last checkpoint, with the offsets it covers.
    std::vector<uint64_t> item_from(partitions_, 0), user_from(partitions_, 0);
    std::unique_ptr<rocksdb::Iterator> it(
        store_.db(Cf::kItems)->NewIterator({}, store_.cf(Cf::kItems)));
    size_t restored = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view key = it->key().ToStringView();
      if (key.size() == 5 && key[0] == 'c') {
        uint32_t p = store::ReadU32(key.substr(1));
        if (p < partitions_ && it->value().size() == 8) {
          item_from[p] = store::ReadU64(it->value().ToStringView());
        }
        continue;
      }
      if (key.empty() || key[0] != 'i') continue;
      size_t sep = key.find('\0', 1);
      if (sep == std::string_view::npos) continue;
      auto s =
          model_.Restore(key.substr(1, sep - 1), key.substr(sep + 1), it->value().ToStringView());
      if (!s.ok()) return s;
      ++restored;
    }
    if (!it->status().ok()) return store::FromRocks(it->status(), "read item checkpoint");
    it.reset();

    // 2. User-state offsets.
    for (uint32_t p = 0; p < partitions_; ++p) {
      std::string bytes;
      auto s = db->Get({}, store_.cf(Cf::kState), store::OffsetKey(kConsumer, p), &bytes);
      if (s.ok() && bytes.size() == 8) {
        user_from[p] = store::ReadU64(bytes);
      } else if (!s.ok() && !s.IsNotFound()) {
        return store::FromRocks(s, "get consumer offset");
      }
    }

    // 3. Listen before reading the log's end: an event committed from here on
    // is both queued and, maybe, replayed; workers drop the second copy by seq.
    log_.SetCommitListener(
        [inbox = inbox_](std::span<const log::LoggedEvent> logged) { inbox->OnCommit(logged); });

    workers_state_.resize(workers_);
    for (uint32_t w = 0; w < workers_; ++w) workers_state_[w].user_next.assign(partitions_, 0);
    for (uint32_t p = 0; p < partitions_; ++p) {
      // Events that retention dropped cannot be replayed; start at what is
      // left.
      const uint64_t first = log_.FirstSeq(p);
      const uint64_t user = std::max(user_from[p], first);
      const uint64_t item = std::max(item_from[p], first);
      cursors_[p].user_durable = user;
      cursors_[p].item_applied = item;
      cursors_[p].item_checkpointed = item;
      workers_state_[p % workers_].partitions.push_back(p);
      workers_state_[p % workers_].user_next[p] = user;
      AtomicMax(inbox_->committed[p], log_.NextSeq(p));
    }
    spdlog::info(
        "pipeline: restored {} items; replaying the log from the "
        "stored offsets",
        restored);
    return Status::Ok();
  }

  void Shutdown(bool drain) {
    std::lock_guard lock(lifecycle_mu_);
    if (!running_) return;
    running_ = false;
    inbox_->closed.store(true, std::memory_order_release);
    for (uint32_t p = 0; p < partitions_; ++p) {
      cursors_[p].drain_target = inbox_->committed[p].load(std::memory_order_acquire);
    }
    for (auto &q : inbox_->queues) {
      {
        std::lock_guard ql(q->mu);
        (drain ? q->drain : q->stop) = true;
      }
      q->cv.notify_all();
    }
    for (auto &t : threads_) t.join();
    threads_.clear();
    {
      std::lock_guard cl(checkpoint_wait_mu_);
      checkpoint_stop_ = true;
    }
    checkpoint_cv_.notify_all();
    if (checkpointer_.joinable()) checkpointer_.join();
    if (drain) {
      if (auto s = Checkpoint(); !s.ok()) {
        spdlog::error("pipeline: final item checkpoint failed: {}", s.ToString());
      }
    }
  }

  // --- workers

  bool Behind(const Worker &w, bool draining) const {
    for (uint32_t p : w.partitions) {
      uint64_t target = draining ? cursors_[p].drain_target.load(std::memory_order_relaxed)
                                 : inbox_->committed[p].load(std::memory_order_acquire);
      if (LocalHandled(w, p) < target) return true;
    }
    return false;
  }

  uint64_t LocalHandled(const Worker &w, uint32_t p) const {
    return std::min(w.user_next[p], cursors_[p].item_applied.load(std::memory_order_relaxed));
  }

  void WorkerLoop(uint32_t index) {
    Worker &w = workers_state_[index];
    Inbox::Queue &q = *inbox_->queues[index];
    while (true) {
      bool draining = false;
      {
        std::unique_lock lock(q.mu);
        q.cv.wait(lock, [&] {
          return q.stop || q.drain || !q.events.empty() || !w.pending.empty() || Behind(w, false);
        });
        if (q.stop) return;
        draining = q.drain;
        if (w.pending.empty()) {
          w.pending.swap(q.events);
        } else {
          while (!q.events.empty()) {
            w.pending.push_back(std::move(q.events.front()));
            q.events.pop_front();
          }
        }
      }
      if (draining && !Behind(w, true)) return;  // the rest is replayed at the next start
      std::vector<Queued> &batch = w.batch;
      batch.clear();
      if (auto s = BuildBatch(w, draining, batch); !s.ok()) {
        spdlog::error("pipeline: reading the log failed: {}", s.ToString());
        SleepUnlessStopped(q, kRetryDelay);
        continue;
      }
      if (batch.empty()) {
        if (draining) return;  // nothing readable below the drain target
        SleepUnlessStopped(q, kCatchUpDelay);
        continue;
      }
      const Status step = RunStep(w, batch);
      batch.clear();  // the events' memory goes now, the vector's stays for the next step
      if (!step.ok()) {
        // The item model keeps what it applied (item_applied moved with it);
        // the user part is redone from the log because user_next did not move.
        spdlog::error("pipeline: step failed, retrying: {}", step.ToString());
        SleepUnlessStopped(q, kRetryDelay);
      }
    }
  }

  void SleepUnlessStopped(Inbox::Queue &q, std::chrono::milliseconds d) {
    std::unique_lock lock(q.mu);
    q.cv.wait_for(lock, d, [&] { return q.stop; });
  }

  //! Up to max_batch events in log order per partition: queued ones, with any
  //! gap before them (queue overflow, a failed step, start-up replay) read back
  //! from the log, appended to `batch`.
  Status BuildBatch(Worker &w, bool draining, std::vector<Queued> &batch) {
    size_t room = options_.max_batch;
    std::unordered_map<uint32_t, uint64_t> expected;
    auto next = [&](uint32_t p) -> uint64_t & {
      auto [it, fresh] = expected.try_emplace(p, 0);
      if (fresh) it->second = LocalHandled(w, p);
      return it->second;
    };
    // Appends log events [next(p), end) up to the room left; false on a read
    // error.
    auto read_back = [&](uint32_t p, uint64_t end) -> Status {
      uint64_t &exp = next(p);
      auto read = log_.Read(p, exp, std::min<uint64_t>(room, end - exp));
      if (!read.ok()) return read.status();
      bool any = false;
      for (auto &e : *read) {
        if (e.seq >= end) break;
        exp = e.seq + 1;
        batch.push_back({std::move(e), 0});
        --room;
        any = true;
      }
      // Nothing left below `end` (dropped by retention): move on to it.
      if (!any && !read->empty()) exp = end;
      return Status::Ok();
    };

    while (room > 0 && !w.pending.empty()) {
      Queued &f = w.pending.front();
      const uint32_t p = f.logged.partition;
      const uint64_t seq = f.logged.seq;
      uint64_t &exp = next(p);
      if (seq < exp) {
        w.pending.pop_front();  // already applied (replay or an earlier read-back)
        continue;
      }
      if (seq > exp) {
        uint64_t before = exp;
        if (auto s = read_back(p, seq); !s.ok()) return s;
        if (exp == before) break;  // the log has not published it yet; try again later
        continue;
      }
      exp = seq + 1;
      batch.push_back(std::move(f));
      w.pending.pop_front();
      --room;
    }
    if (w.pending.empty()) {
      for (uint32_t p : w.partitions) {
        if (room == 0) break;
        uint64_t target = draining ? cursors_[p].drain_target.load(std::memory_order_relaxed)
                                   : inbox_->committed[p].load(std::memory_order_acquire);
        if (next(p) < target) {
          if (auto s = read_back(p, target); !s.ok()) return s;
        }
      }
    }
    return Status::Ok();
  }

  Status RunStep(Worker &w, std::vector<Queued> &batch) {
    gate_.Enter();
    struct GateExit {
      StepGate &g;
      ~GateExit() { g.Exit(); }
    } exit_gate{gate_};
    const int64_t start_ns = common::MonoNs();

    std::unordered_map<std::string, CachedUser> users;
    std::vector<uint64_t> user_next = w.user_next;
    BatchWrites observer_writes(store_.cf(Cf::kState));
    std::array<uint64_t, kEventTypes> counts{};
    for (auto &q : batch) {
      const auto &e = q.logged.event;
      const uint32_t p = q.logged.partition;
      const uint64_t seq = q.logged.seq;
      const bool apply_item = seq >= cursors_[p].item_applied.load(std::memory_order_relaxed);
      const bool apply_user = seq >= user_next[p];
      if (!apply_item && !apply_user) continue;
      if (e.user_id.empty()) {  // redacted by a GDPR erasure: consumed, nothing to apply
        if (apply_item) cursors_[p].item_applied.store(seq + 1, std::memory_order_release);
        if (apply_user) user_next[p] = seq + 1;
        continue;
      }

      std::string key = store::UserStateKey(e.tenant, e.user_id);
      auto found = users.find(key);
      if (found == users.end()) {
        CachedUser cached{e.tenant, e.user_id, {}, false, std::nullopt};
        std::string bytes;
        auto s = store_.db(Cf::kState)->Get({}, store_.cf(Cf::kState), key, &bytes);
        if (s.ok()) {
          auto state = DecodeUserState(bytes);
          if (state.ok()) {
            cached.state = std::move(state).value();
          } else {
            spdlog::warn("pipeline: resetting unreadable state of a user: {}",
                         state.status().message);
          }
        } else if (!s.IsNotFound()) {
          return store::FromRocks(s, "get user state");
        }
        found = users.emplace(std::move(key), std::move(cached)).first;
      }
      UserState &state = found->second.state;
      // An idle user starts over (bounded state: the TTL also applies on read).
      if (state.sessions > 0 &&
          Expired(state.last_event_ms, e.timestamp_ms, options_.user_ttl_ms)) {
        state = UserState{};
      }

      if (apply_item) {
        // When the stored user state is already past this event (replay after a
        // crash between checkpoints), rebuild the window the event originally
        // saw.
        auto window =
            apply_user
                ? state.Window(options_.window_ms, options_.window_max_items)
                : StateBefore(state, seq).Window(options_.window_ms, options_.window_max_items);
        model_.Observe(e, window);
        cursors_[p].item_applied.store(seq + 1, std::memory_order_release);
      }
      if (apply_user) {
        ApplyEvent(state, e, seq, options_);
        found->second.touched = true;
        user_next[p] = seq + 1;
        for (const auto &observe : observers_) observe(e, state, observer_writes);
      }
      ++counts[std::min(static_cast<size_t>(e.type), kEventTypes - 1)];
    }
    observer_writes.RunDeferred();

    rocksdb::WriteBatch wb = std::move(observer_writes.batch);
    auto *cf = store_.cf(Cf::kState);
    const int64_t now_ms = common::NowMs();
    const bool builtin_lists = !builtin_lists_ || builtin_lists_();
    auto store_list = [&](CachedUser &cached, RecList recs) {
      wb.Put(cf, store::RecsKey(cached.tenant, cached.user), EncodeRecList(recs));
      if (!list_observers_.empty()) cached.recs = std::move(recs);
    };
    std::vector<CachedUser *> builtin;  // users whose list the pipeline computes
    for (auto &[key, cached] : users) {
      if (!cached.touched) continue;
      wb.Put(cf, key, EncodeUserState(cached.state));
      if (auto put = observer_writes.lists.find(key); put != observer_writes.lists.end()) {
        put->second.recs.last_event_ms = cached.state.last_event_ms;
        store_list(cached, std::move(put->second.recs));
        observer_writes.lists.erase(put);
      } else if (builtin_lists && !observer_writes.claimed.contains(key)) {
        builtin.push_back(&cached);
      }
    }
    auto lists = BuiltinLists(builtin);
    for (size_t i = 0; i < builtin.size(); ++i) {
      store_list(*builtin[i], {std::move(lists[i].items), std::move(lists[i].model), now_ms,
                               builtin[i]->state.last_event_ms});
    }
    // Lists put for users other than the events' own (a scenario keyed by another id).
    for (auto &[key, put] : observer_writes.lists) {
      CachedUser other{std::move(put.tenant), std::move(put.user), {}, true, std::nullopt};
      store_list(other, std::move(put.recs));
      users.insert_or_assign(key, std::move(other));
    }
    for (uint32_t p : w.partitions) {
      if (user_next[p] != w.user_next[p]) {
        wb.Put(cf, store::OffsetKey(kConsumer, p), EncodeOffset(user_next[p]));
      }
    }
    if (wb.Count() > 0) {
      // No sync: the log is the durable source, a lost batch is replayed. The
      // next synced write to the state DB (a checkpoint) makes it durable along
      // with its WAL; the state offsets always describe what the DB holds.
      auto s = store_.db(Cf::kState)->Write({}, &wb);
      if (!s.ok()) return store::FromRocks(s, "write user states");
    }
    w.user_next = std::move(user_next);
    // Only lists that are now stored go out (sinks push them to the shop).
    for (const auto &[key, cached] : users) {
      if (!cached.touched || !cached.recs) continue;
      for (const auto &observe : list_observers_) observe(cached.tenant, cached.user, *cached.recs);
    }
    for (uint32_t p : w.partitions) {
      cursors_[p].user_durable.store(w.user_next[p], std::memory_order_release);
    }

    uint64_t applied = 0;
    for (size_t t = 0; t < kEventTypes; ++t) {
      if (counts[t] > 0) events_[t]->Inc(counts[t]);
      applied += counts[t];
    }
    processed_.fetch_add(applied, std::memory_order_relaxed);
    steps_.Inc();
    const int64_t end_ns = common::MonoNs();
    step_seconds_.Observe(static_cast<double>(end_ns - start_ns) * 1e-9);
    for (const auto &q : batch) {
      if (q.enqueue_ns != 0) freshness_.Observe(static_cast<double>(end_ns - q.enqueue_ns) * 1e-9);
    }
    {
      std::lock_guard lock(progress_mu_);  // pairs with WaitIdle's predicate
    }
    progress_cv_.notify_all();
    return Status::Ok();
  }

  // --- item checkpoints

  void CheckpointLoop() {
    std::unique_lock lock(checkpoint_wait_mu_);
    while (!checkpoint_stop_) {
      checkpoint_cv_.wait_for(lock, std::chrono::milliseconds(options_.checkpoint_interval_ms),
                              [&] { return checkpoint_stop_; });
      if (checkpoint_stop_) break;
      lock.unlock();
      if (auto s = Checkpoint(); !s.ok()) {
        spdlog::error("pipeline: item checkpoint failed: {}", s.ToString());
      }
      lock.lock();
    }
  }

  //! Writes the items changed since the last checkpoint and, for every
  //! partition, the next seq the model has applied, in one synced batch. The
  //! workers are paused only while the dirty items and offsets are taken, so
  //! both describe the same point.
  Status Checkpoint() {
    std::lock_guard lock(checkpoint_mu_);
    std::vector<models::ItemModel::DirtyItem> dirty;
    std::vector<uint64_t> offsets(partitions_);
    // Workers wait only while the raw copy is taken; encoding happens after they resume.
    const int64_t pause_start = common::MonoNs();
    gate_.Pause();
    auto snapshot = model_.BeginDirtySnapshot();
    for (uint32_t p = 0; p < partitions_; ++p) {
      offsets[p] = cursors_[p].item_applied.load(std::memory_order_acquire);
    }
    gate_.Resume();
    checkpoint_pause_.Observe(static_cast<double>(common::MonoNs() - pause_start) * 1e-9);
    dirty = model_.FinishDirtySnapshot(std::move(snapshot));

    bool moved = !dirty.empty() || !unwritten_.empty();
    for (uint32_t p = 0; p < partitions_ && !moved; ++p) {
      moved = offsets[p] != cursors_[p].item_checkpointed.load(std::memory_order_relaxed);
    }
    if (!moved) return Status::Ok();

    // Items taken by a failed checkpoint go first; newer versions of them
    // follow and win.
    for (auto &d : dirty) unwritten_.push_back(std::move(d));
    rocksdb::WriteBatch wb;
    auto *cf = store_.cf(Cf::kItems);
    for (const auto &d : unwritten_) {
      if (d.bytes.has_value()) {
        wb.Put(cf, store::ItemKey(d.tenant, d.item), *d.bytes);
      } else {
        wb.Delete(cf, store::ItemKey(d.tenant, d.item));
      }
    }
    for (uint32_t p = 0; p < partitions_; ++p) {
      wb.Put(cf, store::ItemOffsetKey(p), EncodeOffset(offsets[p]));
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto s = store_.db(Cf::kItems)->Write(wo, &wb);
    if (!s.ok()) return store::FromRocks(s, "write item checkpoint");
    unwritten_.clear();
    for (uint32_t p = 0; p < partitions_; ++p) {
      cursors_[p].item_checkpointed.store(offsets[p], std::memory_order_release);
    }
    return Status::Ok();
  }

  //! Co-visitation, or the Recommender's list when one is set, topped up from co-visitation
  //! (which alone answers for cold users and unknown items).
  models::Recommendation RecommendFor(std::string_view tenant, std::string_view user,
                                      std::span<const models::WindowItem> window, size_t n) const {
    auto recommender = recommender_.load();
    if (!recommender || window.empty()) return model_.Recommend(tenant, window, n);
    std::vector<std::string> items = ItemIds(window);
    return TopUp(tenant, window, n, recommender->Recommend(tenant, user, items, n));
  }

  //! RecommendFor for every user of a step, the Recommender asked once for all of them (a
  //! sequential model scores the batch in one pass).
  std::vector<models::Recommendation> BuiltinLists(const std::vector<CachedUser *> &users) const {
    const size_t n = options_.rec_count;
    std::vector<std::vector<models::WindowItem>> windows;
    windows.reserve(users.size());
    for (const CachedUser *u : users) {
      windows.push_back(u->state.Window(options_.window_ms, options_.window_max_items));
    }
    std::vector<models::Recommendation> out(users.size());
    auto recommender = recommender_.load();
    std::vector<std::vector<std::string>> items(users.size());
    std::vector<std::vector<int64_t>> times(users.size());
    std::vector<models::RecommendRequest> requests;
    std::vector<size_t> asked;  // index into users of each request
    for (size_t i = 0; i < users.size(); ++i) {
      if (!recommender || windows[i].empty()) {
        out[i] = model_.Recommend(users[i]->tenant, windows[i], n);
        continue;
      }
      items[i] = ItemIds(windows[i]);
      for (const auto &w : windows[i]) times[i].push_back(w.timestamp_ms);
      requests.push_back({users[i]->tenant, users[i]->user, items[i], n, times[i]});
      asked.push_back(i);
    }
    if (requests.empty()) return out;
    auto learned = recommender->RecommendBatch(requests);
    for (size_t r = 0; r < asked.size(); ++r) {
      const size_t i = asked[r];
      // A short answer (a broken Recommender) leaves co-visitation to fill the rest.
      out[i] = TopUp(users[i]->tenant, windows[i], n,
                     r < learned.size() ? std::move(learned[r]) : models::RecommenderOutput{});
    }
    return out;
  }

  static std::vector<std::string> ItemIds(std::span<const models::WindowItem> window) {
    std::vector<std::string> items;
    items.reserve(window.size());
    for (const auto &w : window) items.push_back(w.item_id);
    return items;
  }

  //! The learned list cut to n, filled up from co-visitation when shorter.
  models::Recommendation TopUp(std::string_view tenant, std::span<const models::WindowItem> window,
                               size_t n, models::RecommenderOutput learned) const {
    if (learned.items.size() > n) learned.items.resize(n);
    if (learned.items.size() == n) return {std::move(learned.items), std::move(learned.model)};
    // The learned items are not window items, so excluding them keeps every co-visitation source.
    std::vector<std::string> taken;
    for (const auto &s : learned.items) taken.push_back(s.item_id);
    auto fallback = model_.Recommend(tenant, window, n - learned.items.size(), taken);
    if (learned.items.empty()) return fallback;
    for (auto &s : fallback.items) learned.items.push_back(std::move(s));
    return {std::move(learned.items), std::move(learned.model)};
  }

  //! Observer writes collected into the step's batch; lists by user state key.
  struct BatchWrites final : StepWrites {
    struct PutRecList {
      std::string tenant, user;
      RecList recs;
    };
    explicit BatchWrites(rocksdb::ColumnFamilyHandle *family) : cf(family) {}
    void Put(std::string_view key, std::string_view value) override { batch.Put(cf, key, value); }
    void Delete(std::string_view key) override { batch.Delete(cf, key); }
    void PutList(std::string_view tenant, std::string_view user, RecList list) override {
      list.from_observer = true;
      lists[store::UserStateKey(tenant, user)] = {std::string(tenant), std::string(user),
                                                  std::move(list)};
    }
    void ClaimList(std::string_view tenant, std::string_view user) override {
      claimed.insert(store::UserStateKey(tenant, user));
    }
    void DeferLatest(std::string key, std::function<void(StepWrites &)> run) override {
      auto [it, fresh] = deferred_at.try_emplace(std::move(key), deferred.size());
      if (fresh) {
        deferred.push_back(std::move(run));
      } else {
        deferred[it->second] = std::move(run);  // the earlier one is dropped here
      }
    }
    //! The deferred runs, each key's latest, in the order their keys were first deferred (by
    //! index, so that a run deferring another under a new key cannot invalidate the loop).
    void RunDeferred() {
      for (size_t i = 0; i < deferred.size(); ++i) {
        auto latest = std::move(deferred[i]);
        latest(*this);
      }
      deferred.clear();
      deferred_at.clear();
    }
    rocksdb::ColumnFamilyHandle *cf;
    rocksdb::WriteBatch batch;
    std::unordered_map<std::string, PutRecList> lists;
    std::unordered_set<std::string> claimed;
    std::vector<std::function<void(StepWrites &)>> deferred;
    std::unordered_map<std::string, size_t> deferred_at;  // key -> index in deferred
  };

  std::vector<EventObserver> observers_;
  std::vector<ListObserver> list_observers_;
  std::function<bool()> builtin_lists_;  //!< empty: always
  std::vector<WarmupObserver> warmup_observers_;
  int64_t warmup_span_ms_ = 0;
  store::Store &store_;
  log::EventLog &log_;
  const PipelineOptions options_;
  common::Registry &metrics_;
  models::ItemModel model_;
  std::atomic<std::shared_ptr<models::Recommender>> recommender_;  //!< null: co-visitation only
  const uint32_t partitions_;
  const uint32_t workers_;
  std::shared_ptr<Inbox> inbox_;
  std::vector<Cursor> cursors_;
  std::vector<Worker> workers_state_;

  common::Counter &steps_;
  common::Histogram &step_seconds_;
  common::Histogram &freshness_;
  common::Histogram &checkpoint_pause_;
  std::array<common::Counter *, kEventTypes> events_{};
  std::atomic<uint64_t> processed_{0};

  StepGate gate_;
  std::mutex progress_mu_;
  std::condition_variable progress_cv_;

  std::mutex lifecycle_mu_;
  bool started_ = false;
  bool running_ = false;
  std::vector<std::thread> threads_;

  std::thread checkpointer_;
  std::mutex checkpoint_wait_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_stop_ = false;
  std::mutex checkpoint_mu_;  //!< one checkpoint at a time; guards unwritten_
  std::vector<models::ItemModel::DirtyItem> unwritten_;
};

}  // namespace

Result<std::unique_ptr<Pipeline>> Pipeline::Open(store::Store &store, log::EventLog &log,
                                                 const PipelineOptions &options,
                                                 const models::ItemModelOptions &model_options,
                                                 common::Registry &metrics) {
  if (options.workers == 0) return Status::Invalid("invalid_option", "must be >= 1", "workers");
  if (options.max_batch == 0) {
    return Status::Invalid("invalid_option", "must be >= 1", "max_batch");
  }
  if (options.window_ms < 0) return Status::Invalid("invalid_option", "must be >= 0", "window_ms");
  if (options.session_gap_ms <= 0) {
    return Status::Invalid("invalid_option", "must be > 0", "session_gap_ms");
  }
  if (options.user_ttl_ms <= 0) {
    return Status::Invalid("invalid_option", "must be > 0", "user_ttl_ms");
  }
  if (log.partitions() == 0) return Status::Internal("the log has no partitions");
  return std::unique_ptr<Pipeline>(new PipelineImpl(store, log, options, model_options, metrics));
}

}  // namespace streamrec::pipeline
