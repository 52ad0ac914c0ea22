// Event-time windows of a scenario `window` step: sliding, tumbling and session windows per
// group (e.g. per user), with aggregators over the items in the event's window.
//
// Time is EVENT time. Each group has a watermark: the newest event time seen for that group
// (per group rather than global, so that one device's skewed clock cannot make everybody
// else's events late). An event older than watermark - allowed_lateness is late: counted and
// dropped, the window is left unchanged. An older event within the lateness is inserted in
// time order (after items with the same time).
//
// Bounded: at most max_groups groups (least recently updated evicted first), max_items items per
// group (oldest dropped first), and groups whose watermark is more than ttl behind the newest
// event time seen by the step are dropped. Thread-safe (one mutex per step).
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "expr/value.h"

namespace streamrec::scenario {

enum class WindowKind { kSliding, kTumbling, kSession };
enum class AggregateKind { kList, kSet, kCount, kSum, kMin, kMax, kLast, kApproxDistinct };

struct WindowSpec {
  WindowKind kind = WindowKind::kSliding;
  int64_t size_ms = 5 * 60 * 1000;  //!< sliding and tumbling
  int64_t gap_ms = 30 * 60 * 1000;  //!< session: a gap of at least this starts a new session
  int64_t allowed_lateness_ms = 0;
  size_t max_items = 100;
  size_t max_groups = 100'000;
  int64_t ttl_ms = 24ll * 3600 * 1000;
  std::vector<AggregateKind> aggregates;
};

//! The window an event fell in, with one value per aggregate (spec order).
struct WindowOutput {
  int64_t start_ms = 0;
  int64_t end_ms = 0;  //!< exclusive
  size_t items = 0;
  std::vector<expr::Value> aggregates;
};

class WindowState {
 public:
  explicit WindowState(WindowSpec spec) : spec_(std::move(spec)) {}

  //! Adds one event with its aggregate inputs (one per aggregate; null inputs are skipped by
  //! the aggregators) and computes its window. False when the event is late (nothing changed).
  //!
  //! The window of an event: sliding, the `size` before the group's watermark, (w - size, w];
  //! tumbling, the epoch-aligned [k·size, (k+1)·size) holding the event's time; session, the run
  //! of items around the event separated by gaps shorter than `gap`, [first, last + gap).
  bool Add(const std::string& key, int64_t time_ms, std::vector<expr::Value> inputs,
           WindowOutput* out);

  size_t groups() const;
  size_t items() const;
  uint64_t evicted_groups() const;
  const WindowSpec& spec() const { return spec_; }

 private:
  struct Item {
    int64_t time_ms;
    std::vector<expr::Value> inputs;
  };
  struct Group {
    std::string key;
    int64_t watermark_ms = INT64_MIN;
    std::vector<Item> items;  // time order; small (max_items), so inserts shift
  };
  using Lru = std::list<Group>;  // front: most recently updated

  void EvictExpired();
  void Purge(Group& group) const;
  void Aggregate(const Group& group, size_t begin, size_t end, WindowOutput* out) const;

  const WindowSpec spec_;
  mutable std::mutex mu_;
  Lru lru_;
  std::unordered_map<std::string, Lru::iterator> index_;
  int64_t max_time_ms_ = INT64_MIN;
  size_t items_ = 0;
  uint64_t evicted_ = 0;
};

//! Parses "250ms", "30s", "5m", "2h", "1d" or a plain number of milliseconds.
bool ParseDuration(std::string_view text, int64_t* ms);

}  // namespace streamrec::scenario
