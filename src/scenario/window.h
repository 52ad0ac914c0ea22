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

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <list>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/string_hash.h"
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
  //! The record field of each aggregate (spec order); "0", "1", … when not given.
  std::vector<std::string> names;
};

//! The window an event fell in. Reusing one WindowOutput from event to event (per thread) lets
//! Add refill the last record in place when nobody else holds it: no allocation.
struct WindowOutput {
  int64_t start_ms = 0;
  int64_t end_ms = 0;  //!< exclusive
  size_t items = 0;
  //! The group's state this output describes: unique within the WindowState, changed by every
  //! Add that changes the group.
  uint64_t version = 0;
  //! {<aggregate name>: value, …, key, start, end, size}: the aggregates in spec order, then
  //! the group key and the window's bounds (times) and item count.
  expr::Value record;
  const expr::Value& aggregate(size_t a) const { return record.as_map()[a].value; }
};

class WindowState {
 public:
  explicit WindowState(WindowSpec spec);

  //! Adds one event with its aggregate inputs (one per aggregate; null inputs are skipped by
  //! the aggregators) and computes its window. False when the event is late (nothing changed).
  //!
  //! The window of an event: sliding, the `size` before the group's watermark, (w - size, w];
  //! tumbling, the epoch-aligned [k·size, (k+1)·size) holding the event's time; session, the run
  //! of items around the event separated by gaps shorter than `gap`, [first, last + gap).
  //! `inputs` are moved from.
  //!
  //! `previous`: the version of the output `out->record` holds, when it is this window's output
  //! for the group (the run it was made for will not read it again): a sliding window of lists
  //! whose group is still in that state then updates it (drops what left, appends the item)
  //! instead of copying every item again. The result is the same either way.
  bool Add(std::string_view key, int64_t time_ms, std::span<expr::Value> inputs, WindowOutput* out,
           uint64_t previous = 0);

  size_t groups() const;
  size_t items() const;
  uint64_t evicted_groups() const;
  const WindowSpec& spec() const { return spec_; }

 private:
  // What every Add reads comes first, next to the list node's links (one cache line when the
  // allocator aligns the node, as jemalloc's 128-byte size class does).
  struct Group {
    int64_t watermark_ms = INT64_MIN;
    uint64_t version = 0;  // see WindowOutput::version
    // Items in time order, small (max_items) so inserts shift, in one buffer (one cache miss
    // when a group comes back): row i is rows[head + i * stride, head + (i + 1) * stride), its
    // time then its inputs in spec order. Rows that leave are nulled and skipped (head moves
    // on), not shifted out; the buffer is compacted when an append would grow it.
    std::vector<expr::Value> rows;
    size_t head = 0;
    std::string key;
    expr::Value key_value;  // `key` as a string value, made once
  };
  using Lru = std::list<Group>;  // front: most recently updated
  // Open addressing: a lookup costs about two cache misses where std::unordered_map's chains
  // cost three or four (the groups are cold: one lookup per event over many users). Looked up
  // as a string_view, without a std::string.
  using Index =
      boost::unordered_flat_map<std::string, Lru::iterator, common::StringHash, std::equal_to<>>;

  size_t Size(const Group& group) const { return (group.rows.size() - group.head) / stride_; }
  //! Row i's first value (its time); its inputs follow.
  const expr::Value* Row(const Group& group, size_t i) const {
    return &group.rows[group.head + i * stride_];
  }
  int64_t Time(const Group& group, size_t i) const { return Row(group, i)->as_time().ms; }
  //! Drops the oldest rows, `values` values (a multiple of the stride).
  static void DropOldest(Group& group, size_t values);
  void EvictExpired();
  //! How many of the oldest items leave the group (they are not erased here).
  size_t Expired(const Group& group) const;
  void Aggregate(const Group& group, size_t begin, size_t end, WindowOutput* out) const;
  //! Updates `out`, the group's output before an Add that appended its last item and dropped
  //! items holding `removed_values[a]` non-null values of aggregate a: false (`out` untouched)
  //! when it does not hold such lists, or holds them with others.
  bool UpdateLists(const Group& group, const size_t* removed_values, WindowOutput* out) const;
  //! The record's bounds and item count (after the aggregates and the key).
  void SetBounds(expr::Map& record, const WindowOutput& out) const;
  static constexpr size_t kMaxUpdatedLists = 8;

  const WindowSpec spec_;
  const size_t stride_;  // values per item: its time and one input per aggregate
  const bool list_only_;  // sliding, every aggregate a list: outputs can be updated (UpdateLists)
  mutable std::mutex mu_;
  Lru lru_;
  Index index_;
  int64_t max_time_ms_ = INT64_MIN;
  uint64_t last_version_ = 0;
  size_t items_ = 0;
  uint64_t evicted_ = 0;
};

//! Parses "250ms", "30s", "5m", "2h", "1d" or a plain number of milliseconds.
bool ParseDuration(std::string_view text, int64_t* ms);

}  // namespace streamrec::scenario
