// Event-time windows: sliding, tumbling and session, with late and out-of-order events and the
// exact boundaries.
#include "scenario/window.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "expr/json.h"

namespace streamrec::scenario::testing {
namespace {

using expr::Value;

constexpr int64_t kMin = 60 * 1000;

struct Probe {
  WindowState state;
  explicit Probe(WindowSpec spec) : state(std::move(spec)) {}
  // Adds item `id` at t; returns the window's list of ids as JSON, or "late".
  std::string Add(const std::string& id, int64_t t, const std::string& key = "u") {
    WindowOutput out;
    std::vector<Value> inputs(state.spec().aggregates.size(), Value(id));
    if (!state.Add(key, t, inputs, &out)) return "late";
    last = out;
    return expr::ToJson(out.aggregate(0));
  }
  WindowOutput last;
};

WindowSpec Spec(WindowKind kind, std::vector<AggregateKind> aggs = {AggregateKind::kList}) {
  WindowSpec spec;
  spec.kind = kind;
  spec.size_ms = 5 * kMin;
  spec.gap_ms = 30 * kMin;
  spec.aggregates = std::move(aggs);
  return spec;
}

TEST(WindowTest, SlidingBoundaryIsExclusiveAtWatermarkMinusSize) {
  Probe p(Spec(WindowKind::kSliding));
  EXPECT_EQ(p.Add("a", 0), R"(["a"])");
  EXPECT_EQ(p.Add("b", 5 * kMin - 1), R"(["a","b"])");
  // Exactly size after a: a has left (the window is (w - size, w]).
  EXPECT_EQ(p.Add("c", 5 * kMin), R"(["b","c"])");
  EXPECT_EQ(p.last.start_ms, 1);
  EXPECT_EQ(p.last.end_ms, 5 * kMin + 1);
}

TEST(WindowTest, LateEventsAreDroppedOutOfOrderInsertedInOrder) {
  auto spec = Spec(WindowKind::kSliding);
  spec.allowed_lateness_ms = kMin;
  Probe p(spec);
  p.Add("a", 10 * kMin);
  p.Add("c", 12 * kMin);
  // 1 ms beyond the allowed lateness behind the watermark: late, nothing changes.
  EXPECT_EQ(p.Add("x", 12 * kMin - kMin - 1), "late");
  // Exactly at watermark - lateness: accepted, and inserted in time order.
  EXPECT_EQ(p.Add("b", 11 * kMin), R"(["a","b","c"])");
  EXPECT_EQ(p.state.items(), 3u);
  // Another group has its own watermark.
  EXPECT_EQ(p.Add("z", 0, "other"), R"(["z"])");
}

TEST(WindowTest, TumblingWindowsAreEpochAlignedAndHalfOpen) {
  auto spec = Spec(WindowKind::kTumbling, {AggregateKind::kList, AggregateKind::kCount});
  spec.allowed_lateness_ms = 2 * kMin;
  Probe p(spec);
  EXPECT_EQ(p.Add("a", 1 * kMin), R"(["a"])");
  EXPECT_EQ(p.Add("b", 5 * kMin - 1), R"(["a","b"])");
  // Exactly at the window end: the next window.
  EXPECT_EQ(p.Add("c", 5 * kMin), R"(["c"])");
  EXPECT_EQ(p.last.start_ms, 5 * kMin);
  EXPECT_EQ(p.last.end_ms, 10 * kMin);
  // Out of order within the lateness: lands in the previous window, which is still kept.
  EXPECT_EQ(p.Add("d", 4 * kMin), R"(["a","d","b"])");
  EXPECT_EQ(expr::ToJson(p.last.aggregate(1)), "3");
  EXPECT_EQ(p.Add("e", 2 * kMin), "late");
}

TEST(WindowTest, SessionGapBoundaryStartsANewSession) {
  Probe p(Spec(WindowKind::kSession));
  EXPECT_EQ(p.Add("a", 0), R"(["a"])");
  EXPECT_EQ(p.Add("b", 30 * kMin - 1), R"(["a","b"])");
  EXPECT_EQ(p.last.end_ms, 60 * kMin - 1);
  // A gap of exactly `gap` starts a new session.
  EXPECT_EQ(p.Add("c", 60 * kMin - 1), R"(["c"])");
  EXPECT_EQ(p.last.start_ms, 60 * kMin - 1);
}

TEST(WindowTest, SessionOutOfOrderEventMergesSessions) {
  auto spec = Spec(WindowKind::kSession);
  spec.gap_ms = 10 * kMin;
  spec.allowed_lateness_ms = 60 * kMin;
  Probe p(spec);
  p.Add("a", 0);
  EXPECT_EQ(p.Add("c", 15 * kMin), R"(["c"])");
  // Arrives late but within lateness, bridging the two sessions.
  EXPECT_EQ(p.Add("b", 8 * kMin), R"(["a","b","c"])");
}

TEST(WindowTest, BoundedGroupsItemsAndTtl) {
  auto spec = Spec(WindowKind::kSliding);
  spec.size_ms = 1000 * kMin;
  spec.max_items = 2;
  spec.max_groups = 2;
  spec.ttl_ms = 10 * kMin;
  Probe p(spec);
  EXPECT_EQ(p.Add("a", 1, "u1"), R"(["a"])");
  p.Add("b", 2, "u1");
  EXPECT_EQ(p.Add("c", 3, "u1"), R"(["b","c"])") << "max_items keeps the newest";
  p.Add("x", 4, "u2");
  p.Add("y", 5, "u3");  // evicts u1, the least recently updated
  EXPECT_EQ(p.state.groups(), 2u);
  EXPECT_EQ(p.Add("d", 6, "u1"), R"(["d"])");
  // 20 minutes later u3 and u1 (idle for more than the 10 min TTL) have expired.
  p.Add("z", 20 * kMin, "u4");
  EXPECT_EQ(p.state.groups(), 1u);
  EXPECT_EQ(p.state.evicted_groups(), 4u);
}

TEST(WindowTest, Aggregators) {
  WindowSpec spec =
      Spec(WindowKind::kSliding,
           {AggregateKind::kSet, AggregateKind::kCount, AggregateKind::kSum, AggregateKind::kMin,
            AggregateKind::kMax, AggregateKind::kLast, AggregateKind::kApproxDistinct});
  WindowState state(spec);
  WindowOutput out;
  auto add = [&](Value v, int64_t t) {
    std::vector<Value> inputs(spec.aggregates.size(), v);
    ASSERT_TRUE(state.Add("k", t, inputs, &out));
  };
  add(3, 1);
  add(1, 2);
  add(Value(), 3);  // nulls are skipped
  add(3, 4);
  add(2.5, 5);
  std::vector<std::string> got;
  for (size_t a = 0; a < spec.aggregates.size(); ++a) got.push_back(expr::ToJson(out.aggregate(a)));
  EXPECT_EQ(got, (std::vector<std::string>{"[1,3,2.5]", "4", "9.5", "1", "3", "2.5", "3"}));
  EXPECT_EQ(out.items, 5u);
}

TEST(WindowTest, ApproxDistinctIsCloseForLargerWindows) {
  WindowSpec spec = Spec(WindowKind::kSliding, {AggregateKind::kApproxDistinct});
  spec.max_items = 5000;
  WindowState state(spec);
  WindowOutput out;
  for (int i = 0; i < 2000; ++i) {
    Value inputs[] = {Value("item-" + std::to_string(i % 1000))};
    state.Add("k", i, inputs, &out);
  }
  int64_t estimate = out.aggregate(0).as_int();
  EXPECT_GT(estimate, 700);
  EXPECT_LT(estimate, 1300);
}

TEST(WindowTest, ParseDuration) {
  int64_t ms = 0;
  EXPECT_TRUE(ParseDuration("5m", &ms));
  EXPECT_EQ(ms, 5 * kMin);
  EXPECT_TRUE(ParseDuration("250ms", &ms));
  EXPECT_EQ(ms, 250);
  EXPECT_TRUE(ParseDuration("1500", &ms));
  EXPECT_EQ(ms, 1500);
  EXPECT_FALSE(ParseDuration("5 min", &ms));
  EXPECT_FALSE(ParseDuration("m", &ms));
}

// Updating the group's last output (what left dropped, the new item appended) gives what making
// it again gives, on a long mixed stream: several groups, nulls, time and max_items purges, late
// and out-of-order events, outputs shared elsewhere, and stale versions.
TEST(WindowTest, UpdatedOutputsEqualOutputsMadeAgain) {
  WindowSpec spec = Spec(WindowKind::kSliding, {AggregateKind::kList, AggregateKind::kList});
  spec.size_ms = 1000;
  spec.allowed_lateness_ms = 300;
  spec.max_items = 4;
  WindowState made(spec), updated(spec);
  std::map<std::string, WindowOutput> last;  // per key: the output kept for updating
  uint64_t seed = 42;
  auto next = [&seed](uint64_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (seed >> 33) % n;
  };
  int64_t t = 0;
  size_t updates_offered = 0;
  for (int i = 0; i < 2000; ++i) {
    t += static_cast<int64_t>(next(400));
    const int64_t time = next(5) == 0 ? t - static_cast<int64_t>(next(500)) : t;  // out of order
    const std::string key = "k" + std::to_string(next(3));
    const std::string id = "i" + std::to_string(i);
    auto inputs = [&] {
      return std::vector<Value>{next(4) == 0 ? Value() : Value(id), Value(expr::TimeMs{time})};
    };
    std::vector<Value> a = inputs();
    std::vector<Value> b = a;
    WindowOutput fresh;
    const bool added = made.Add(key, time, a, &fresh);
    WindowOutput& kept = last[key];
    Value shared;
    if (next(10) == 0) shared = kept.record;  // held elsewhere: must be made again
    const uint64_t previous = next(20) == 0 ? kept.version + 7 : kept.version;  // stale sometimes
    updates_offered += previous != 0;
    ASSERT_EQ(updated.Add(key, time, b, &kept, previous), added) << i;
    if (!added) continue;
    ASSERT_EQ(expr::ToJson(kept.record), expr::ToJson(fresh.record)) << i;
    ASSERT_EQ(kept.items, fresh.items) << i;
  }
  EXPECT_GT(updates_offered, 1000u);
}

// The window's rules written the plainest way (a sorted vector per group, erased and searched in
// full), to check the state's bookkeeping (rows skipped rather than shifted out, compaction,
// insertion behind skipped rows, item counts) against.
class NaiveWindow {
 public:
  explicit NaiveWindow(WindowSpec spec) : spec_(std::move(spec)) {}
  // The window's ids as JSON, or "late".
  std::string Add(const std::string& key, int64_t t, const std::string& id, int64_t* start,
                  int64_t* end) {
    Group& g = groups_[key];
    if (g.watermark != INT64_MIN && t < g.watermark - spec_.allowed_lateness_ms) return "late";
    auto at = std::upper_bound(g.items.begin(), g.items.end(), t,
                               [](int64_t v, const auto& item) { return v < item.first; });
    size_t inserted = static_cast<size_t>(at - g.items.begin());
    g.items.insert(at, {t, id});
    g.watermark = std::max(g.watermark, t);
    const size_t n = g.items.size();
    auto time = [&](size_t i) { return g.items[i].first; };
    size_t drop = 0;
    if (spec_.kind == WindowKind::kSliding) {
      while (drop < n && time(drop) <= g.watermark - spec_.size_ms) ++drop;
    } else if (spec_.kind == WindowKind::kTumbling) {
      const int64_t oldest = g.watermark - spec_.allowed_lateness_ms;
      const int64_t keep_from = FloorDiv(oldest, spec_.size_ms) * spec_.size_ms;
      while (drop < n && time(drop) < keep_from) ++drop;
    } else {
      const int64_t closed = g.watermark - spec_.allowed_lateness_ms - spec_.gap_ms;
      for (size_t i = 1; i < n && time(i - 1) <= closed; ++i) {
        if (time(i) - time(i - 1) >= spec_.gap_ms) drop = i;
      }
    }
    if (n - drop > spec_.max_items) drop = n - spec_.max_items;
    g.items.erase(g.items.begin(), g.items.begin() + static_cast<ptrdiff_t>(drop));
    inserted = inserted >= drop ? inserted - drop : SIZE_MAX;
    size_t begin = 0, stop = g.items.size();
    if (spec_.kind == WindowKind::kSliding) {
      *start = g.watermark - spec_.size_ms + 1;
      *end = g.watermark + 1;
    } else if (spec_.kind == WindowKind::kTumbling) {
      *start = FloorDiv(t, spec_.size_ms) * spec_.size_ms;
      *end = *start + spec_.size_ms;
      begin = stop;
      for (size_t i = 0; i < g.items.size(); ++i) {
        if (time(i) >= *start && begin == stop) begin = i;
      }
      for (stop = begin; stop < g.items.size() && time(stop) < *end;) ++stop;
    } else if (inserted == SIZE_MAX) {
      begin = stop = 0;
      *start = t;
      *end = t + spec_.gap_ms;
    } else {
      for (begin = inserted; begin > 0 && time(begin) - time(begin - 1) < spec_.gap_ms;) --begin;
      for (stop = inserted + 1;
           stop < g.items.size() && time(stop) - time(stop - 1) < spec_.gap_ms;)
        ++stop;
      *start = time(begin);
      *end = time(stop - 1) + spec_.gap_ms;
    }
    std::string ids = "[";
    for (size_t i = begin; i < stop; ++i)
      ids += (i > begin ? ",\"" : "\"") + g.items[i].second + "\"";
    return ids + "]";
  }
  size_t items() const {
    size_t n = 0;
    for (const auto& [key, g] : groups_) n += g.items.size();
    return n;
  }

 private:
  static int64_t FloorDiv(int64_t a, int64_t b) {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
  }
  struct Group {
    int64_t watermark = INT64_MIN;
    std::vector<std::pair<int64_t, std::string>> items;
  };
  WindowSpec spec_;
  std::map<std::string, Group> groups_;
};

TEST(WindowTest, EveryKindMatchesItsRulesWrittenPlainly) {
  for (WindowKind kind : {WindowKind::kSliding, WindowKind::kTumbling, WindowKind::kSession}) {
    WindowSpec spec = Spec(kind, {AggregateKind::kList, AggregateKind::kCount});
    spec.size_ms = 1000;
    spec.gap_ms = 700;
    spec.allowed_lateness_ms = 400;
    spec.max_items = 5;
    WindowState state(spec);
    NaiveWindow naive(spec);
    uint64_t seed = 7 + static_cast<uint64_t>(kind);
    auto next = [&seed](uint64_t n) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      return (seed >> 33) % n;
    };
    int64_t t = 100000;
    size_t late = 0, out_of_order = 0;
    for (int i = 0; i < 3000; ++i) {
      t += static_cast<int64_t>(next(300));
      int64_t time = t;
      if (next(4) == 0) {
        time -= static_cast<int64_t>(next(600));  // behind: in time or late
        ++out_of_order;
      }
      const std::string key = "k" + std::to_string(next(3));
      const std::string id = "i" + std::to_string(i);
      int64_t start = 0, end = 0;
      const std::string expected = naive.Add(key, time, id, &start, &end);
      WindowOutput out;
      std::vector<Value> inputs{Value(id), Value(true)};
      const bool added = state.Add(key, time, inputs, &out);
      ASSERT_EQ(added, expected != "late") << i;
      if (!added) {
        ++late;
        continue;
      }
      ASSERT_EQ(expr::ToJson(out.aggregate(0)), expected)
          << "kind " << static_cast<int>(kind) << ", event " << i;
      ASSERT_EQ(out.aggregate(1).as_int(), static_cast<int64_t>(out.aggregate(0).as_list().size()));
      ASSERT_EQ(out.start_ms, start) << i;
      ASSERT_EQ(out.end_ms, end) << i;
      ASSERT_EQ(state.items(), naive.items()) << i;
    }
    EXPECT_GT(late, 15u);
    EXPECT_GT(out_of_order - late, 200u) << "out-of-order events inserted behind others";
  }
}

}  // namespace
}  // namespace streamrec::scenario::testing
