#include "pipeline/user_state.h"

#include <gtest/gtest.h>

namespace streamrec::pipeline {
namespace {

using events::EventType;

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr int64_t kMin = 60'000;

events::Event Ev(std::string item, EventType type, int64_t ts, std::string sid = {}) {
  events::Event e;
  e.tenant = "shop";
  e.user_id = "u1";
  e.item_id = std::move(item);
  e.type = type;
  e.timestamp_ms = ts;
  e.session_id = std::move(sid);
  return e;
}

std::vector<std::string> Ids(const std::vector<models::WindowItem> &w) {
  std::vector<std::string> out;
  for (const auto &i : w) out.push_back(i.item_id);
  return out;
}

TEST(UserStateTest, WindowKeepsRecentViewsAndCartsWithinTimeAndCount) {
  PipelineOptions o;
  UserState s;
  uint64_t seq = 0;
  ApplyEvent(s, Ev("old", EventType::kView, kT0), seq++, o);
  ApplyEvent(s, Ev("a", EventType::kView, kT0 + 6 * kMin), seq++, o);
  ApplyEvent(s, Ev("bought", EventType::kPurchase, kT0 + 7 * kMin), seq++, o);
  ApplyEvent(s, Ev("b", EventType::kAddToCart, kT0 + 8 * kMin), seq++, o);
  ApplyEvent(s, Ev("", EventType::kOther, kT0 + 9 * kMin), seq++, o);
  ApplyEvent(s, Ev("c", EventType::kView, kT0 + 10 * kMin), seq++, o);

  // 5 minutes before the newest event (kT0 + 10 min): "old" is out, the
  // purchase is not a window type, the item-less event is not in the history.
  EXPECT_EQ(Ids(s.Window(5 * kMin, 20)), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(Ids(s.Window(5 * kMin, 2)), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(Ids(s.Window(60 * kMin, 20)), (std::vector<std::string>{"old", "a", "b", "c"}));
  EXPECT_EQ(s.history.size(), 5u);
  EXPECT_TRUE(s.Window(5 * kMin, 0).empty());
}

TEST(UserStateTest, WindowListsEachItemOnceAtItsNewestTime) {
  PipelineOptions o;
  UserState s;
  ApplyEvent(s, Ev("a", EventType::kView, kT0), 0, o);
  ApplyEvent(s, Ev("b", EventType::kView, kT0 + 1000), 1, o);
  ApplyEvent(s, Ev("a", EventType::kView, kT0 + 2000), 2, o);
  auto w = s.Window(5 * kMin, 20);
  ASSERT_EQ(Ids(w), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(w[1].timestamp_ms, kT0 + 2000);
}

TEST(UserStateTest, SessionSplitsAfterGapOrNewTrackerSession) {
  PipelineOptions o;
  UserState s;
  ApplyEvent(s, Ev("a", EventType::kView, kT0), 0, o);
  ApplyEvent(s, Ev("b", EventType::kView, kT0 + 29 * kMin), 1, o);
  EXPECT_EQ(s.sessions, 1u);
  EXPECT_EQ(s.session_id, "1");
  EXPECT_EQ(s.session_events, 2u);
  ApplyEvent(s, Ev("c", EventType::kView, kT0 + 29 * kMin + 30 * kMin + 1), 2, o);
  EXPECT_EQ(s.sessions, 2u);
  EXPECT_EQ(s.session_id, "2");
  EXPECT_EQ(s.session_events, 1u);
  EXPECT_EQ(s.session_start_ms, kT0 + 59 * kMin + 1);
  // The tracker's session id wins when sent.
  ApplyEvent(s, Ev("d", EventType::kView, kT0 + 60 * kMin, "sid-x"), 3, o);
  EXPECT_EQ(s.sessions, 3u);
  EXPECT_EQ(s.session_id, "sid-x");
  ApplyEvent(s, Ev("e", EventType::kView, kT0 + 61 * kMin, "sid-x"), 4, o);
  EXPECT_EQ(s.sessions, 3u);
  EXPECT_EQ(s.session_events, 2u);
}

TEST(UserStateTest, OutOfOrderEventsGoToTheirPlaceInTime) {
  PipelineOptions o;
  UserState s;
  ApplyEvent(s, Ev("a", EventType::kView, kT0 + 10 * kMin), 0, o);
  ApplyEvent(s, Ev("late", EventType::kView, kT0 + 8 * kMin), 1, o);
  ApplyEvent(s, Ev("too-late", EventType::kView, kT0 + 1 * kMin), 2, o);
  ASSERT_EQ(s.history.size(), 3u);
  EXPECT_EQ(s.history[0].item_id, "too-late");
  EXPECT_EQ(s.history[1].item_id, "late");
  EXPECT_EQ(s.history[2].item_id, "a");
  EXPECT_EQ(s.last_event_ms,
            kT0 + 10 * kMin);  // the newest, not the last received
  EXPECT_EQ(s.sessions, 1u);
  EXPECT_EQ(s.session_start_ms, kT0 + 1 * kMin);
  // The window is relative to the newest event: the 9-minute-old one is out.
  EXPECT_EQ(Ids(s.Window(5 * kMin, 20)), (std::vector<std::string>{"late", "a"}));
}

TEST(UserStateTest, HistoryIsCappedAndExpires) {
  PipelineOptions o;
  o.history_max_events = 3;
  o.user_ttl_ms = 60 * kMin;
  UserState s;
  for (int i = 0; i < 5; ++i)
    ApplyEvent(s, Ev("i" + std::to_string(i), EventType::kView, kT0 + i), i, o);
  ASSERT_EQ(s.history.size(), 3u);
  EXPECT_EQ(s.history.front().item_id, "i2");
  ApplyEvent(s, Ev("new", EventType::kView, kT0 + 61 * kMin), 5, o);
  ASSERT_EQ(s.history.size(), 1u);
  EXPECT_EQ(s.history.front().item_id, "new");
}

TEST(UserStateTest, StateBeforeRebuildsTheWindowAnEventSaw) {
  PipelineOptions o;
  UserState s;
  ApplyEvent(s, Ev("a", EventType::kView, kT0), 10, o);
  ApplyEvent(s, Ev("b", EventType::kView, kT0 + 1000), 12, o);
  ApplyEvent(s, Ev("c", EventType::kView, kT0 + 2000), 15, o);
  EXPECT_EQ(Ids(StateBefore(s, 15).Window(5 * kMin, 20)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Ids(StateBefore(s, 11).Window(5 * kMin, 20)), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(StateBefore(s, 10).Window(5 * kMin, 20).empty());
  EXPECT_EQ(StateBefore(s, 13).last_event_ms, kT0 + 1000);
}

TEST(UserStateTest, CodecsRoundTripAndRejectCorruption) {
  PipelineOptions o;
  UserState s;
  ApplyEvent(s, Ev("a", EventType::kView, kT0 + 5000), 7, o);
  ApplyEvent(s, Ev("b", EventType::kAddToCart, kT0), 3,
             o);  // out of order: negative deltas
  ApplyEvent(s, Ev("", EventType::kOther, kT0 + 9000, "sid"), 9, o);
  auto bytes = EncodeUserState(s);
  auto back = DecodeUserState(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->session_id, s.session_id);
  EXPECT_EQ(back->session_start_ms, s.session_start_ms);
  EXPECT_EQ(back->last_event_ms, s.last_event_ms);
  EXPECT_EQ(back->session_events, s.session_events);
  EXPECT_EQ(back->sessions, s.sessions);
  ASSERT_EQ(back->history.size(), s.history.size());
  for (size_t i = 0; i < s.history.size(); ++i) {
    EXPECT_EQ(back->history[i].item_id, s.history[i].item_id);
    EXPECT_EQ(back->history[i].type, s.history[i].type);
    EXPECT_EQ(back->history[i].timestamp_ms, s.history[i].timestamp_ms);
    EXPECT_EQ(back->history[i].seq, s.history[i].seq);
  }
  EXPECT_FALSE(DecodeUserState(bytes.substr(0, bytes.size() - 1)).ok());
  EXPECT_FALSE(DecodeUserState(bytes + "x").ok());
  EXPECT_FALSE(DecodeUserState("").ok());
  EXPECT_FALSE(DecodeUserState(std::string(1, '\x7f') + bytes.substr(1)).ok());

  RecList r{{{"x", 1.5}, {"y", -0.25}}, "covisitation", kT0, kT0 - 1};
  auto rb = DecodeRecList(EncodeRecList(r));
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->items, r.items);
  EXPECT_EQ(rb->model, r.model);
  EXPECT_EQ(rb->generated_at_ms, r.generated_at_ms);
  EXPECT_EQ(rb->last_event_ms, r.last_event_ms);
  EXPECT_FALSE(rb->from_observer);
  auto rbytes = EncodeRecList(r);
  EXPECT_EQ(rbytes[0], 1) << "the pipeline's own lists keep the format older binaries read";
  EXPECT_FALSE(DecodeRecList(rbytes.substr(0, rbytes.size() - 3)).ok());
  r.from_observer = true;
  auto observer = DecodeRecList(EncodeRecList(r));
  ASSERT_TRUE(observer.ok());
  EXPECT_TRUE(observer->from_observer);
  EXPECT_EQ(observer->items, r.items);
}

}  // namespace
}  // namespace streamrec::pipeline
