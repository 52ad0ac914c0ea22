// The pipeline over a real Store, EventLog and ItemModel in a temp dir.
#include "pipeline/pipeline.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>

#include <boost/json.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "registry/recommender.h"
#include "support/datasets.h"
#include "support/temp_dir.h"

namespace streamrec::pipeline {
namespace {

using events::EventType;

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr int64_t kMin = 60'000;
constexpr int64_t kWait = 60'000;

events::Event Ev(const std::string &user, const std::string &item, int64_t ts,
                 EventType type = EventType::kView) {
  static std::atomic<uint64_t> next_id{0};
  events::Event e;
  e.event_id = "e" + std::to_string(next_id++);
  e.tenant = "shop";
  e.user_id = user;
  e.item_id = item;
  e.type = type;
  e.timestamp_ms = ts;
  e.collector_ms = ts;
  return e;
}

//! Store + log + pipeline over one data dir, reopened at will.
class Env {
 public:
  explicit Env(PipelineOptions options = {}, uint32_t partitions = 4)
      : options_(options), partitions_(partitions) {
    model_options_.popular_refresh_ms = 0;
  }
  ~Env() { Close(/*clean=*/true); }

  void Open() {
    metrics_ = std::make_unique<common::Registry>();
    auto store = store::Store::Open(dir_.Sub("db"), {});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    log::LogOptions lo;
    lo.partitions = partitions_;
    lo.sync = false;
    auto log = log::EventLog::Open(*store_, lo, *metrics_);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
    auto pipeline = Pipeline::Open(*store_, *log_, options_, model_options_, *metrics_);
    ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
    pipeline_ = std::move(pipeline).value();
    if (before_start_) before_start_(*pipeline_);
    auto s = pipeline_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  //! clean: Stop() (drain + item checkpoint); else the pipeline is just
  //! destroyed, which for its state is a crash: the next Open() replays from
  //! the stored offsets.
  void Close(bool clean) {
    if (pipeline_ && clean) pipeline_->Stop();
    if (log_) log_->Stop();
    pipeline_.reset();
    log_.reset();
    store_.reset();
  }

  void Append(const std::vector<events::Event> &events) {
    auto r = log_->Append(events);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->appended, events.size());
  }
  void AppendAndWait(const std::vector<events::Event> &events) {
    Append(events);
    ASSERT_TRUE(pipeline_->WaitIdle(kWait));
  }

  //! REQUIRES: closed. Runs `fn` on the data dir's store, as a tool would.
  void WithStore(const std::function<void(store::Store &)> &fn) {
    auto store = store::Store::Open(dir_.Sub("db"), {});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    fn(**store);
  }

  Pipeline &pipeline() { return *pipeline_; }
  log::EventLog &log() { return *log_; }
  common::Registry &metrics() { return *metrics_; }
  PipelineOptions &options() { return options_; }
  //! Runs on each Open() between Pipeline::Open and Start (observers are added there).
  void BeforeStart(std::function<void(Pipeline &)> fn) { before_start_ = std::move(fn); }

 private:
  testing::TempDir dir_;
  PipelineOptions options_;
  models::ItemModelOptions model_options_;
  uint32_t partitions_;
  std::unique_ptr<common::Registry> metrics_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<log::EventLog> log_;
  std::unique_ptr<Pipeline> pipeline_;
  std::function<void(Pipeline &)> before_start_;
};

//! Sessions over a small catalogue: users u0..u{n-1}, each a few views a minute
//! apart, some events out of order and some add-to-carts; deterministic.
std::vector<events::Event> Sessions(int users, int per_user, int64_t t0 = kT0) {
  std::vector<events::Event> out;
  uint64_t x = 12345;
  auto rnd = [&] { return (x = x * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  for (int u = 0; u < users; ++u) {
    for (int i = 0; i < per_user; ++i) {
      int64_t ts = t0 + u * 1000 + i * kMin;
      if (i % 7 == 3) ts -= 2 * kMin;  // out of order
      auto type = i % 5 == 4 ? EventType::kAddToCart : EventType::kView;
      out.push_back(Ev("u" + std::to_string(u), "i" + std::to_string(rnd() % 15), ts, type));
    }
  }
  // Interleave users as a live stream would.
  std::stable_sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
    return a.timestamp_ms / (3 * kMin) < b.timestamp_ms / (3 * kMin);
  });
  return out;
}

std::map<std::string, uint64_t> ViewsPerItem(const std::vector<events::Event> &events) {
  std::map<std::string, uint64_t> out;
  for (const auto &e : events) {
    if (e.type == EventType::kView) ++out[e.item_id];
  }
  return out;
}

//! Every item's view count in the item checkpoint equals the number of its view
//! events: nothing was applied twice or lost. REQUIRES: env closed cleanly
//! (checkpoint written).
void ExpectExactViews(Env &env, const std::vector<events::Event> &events) {
  models::ItemModelOptions mo;
  models::ItemModel model(mo);
  env.WithStore([&](store::Store &store) {
    std::unique_ptr<rocksdb::Iterator> it(
        store.db(store::Cf::kItems)->NewIterator({}, store.cf(store::Cf::kItems)));
    for (it->Seek("i"); it->Valid() && it->key().starts_with("i"); it->Next()) {
      std::string_view key = it->key().ToStringView();
      size_t sep = key.find('\0');
      ASSERT_NE(sep, std::string_view::npos);
      ASSERT_TRUE(
          model.Restore(key.substr(1, sep - 1), key.substr(sep + 1), it->value().ToStringView())
              .ok());
    }
  });
  for (const auto &[item, views] : ViewsPerItem(events)) {
    auto stats = model.Stats("shop", item);
    ASSERT_TRUE(stats.has_value()) << item;
    EXPECT_EQ(stats->views, views) << item;
  }
}

void ExpectHistoryWithoutDuplicates(Pipeline &p, const std::string &user) {
  auto state = p.User("shop", user);
  ASSERT_TRUE(state.ok()) << user;
  std::set<uint64_t> seqs;
  for (const auto &h : state->history) EXPECT_TRUE(seqs.insert(h.seq).second) << user;
}

struct Snapshot {
  std::map<std::string, std::vector<std::string>> history;  // user -> items
  std::map<std::string, std::string> sessions;              // user -> id/count
  std::map<std::string, std::vector<std::string>> similar;  // item -> neighbours
  std::map<std::string, std::vector<double>> similar_scores;
};

Snapshot Take(Pipeline &p, const std::vector<events::Event> &events) {
  Snapshot s;
  std::set<std::string> users, items;
  for (const auto &e : events) {
    users.insert(e.user_id);
    items.insert(e.item_id);
  }
  for (const auto &u : users) {
    auto state = p.User("shop", u);
    EXPECT_TRUE(state.ok()) << u;
    if (!state.ok()) continue;
    for (const auto &h : state->history) s.history[u].push_back(h.item_id);
    s.sessions[u] = state->session_id + "/" + std::to_string(state->sessions) + "/" +
                    std::to_string(state->session_events);
  }
  for (const auto &i : items) {
    auto similar = p.Similar("shop", i, 10);
    EXPECT_TRUE(similar.ok()) << i;
    if (!similar.ok()) continue;
    for (const auto &n : *similar) {
      s.similar[i].push_back(n.item_id);
      s.similar_scores[i].push_back(n.score);
    }
  }
  return s;
}

void ExpectSame(const Snapshot &a, const Snapshot &b) {
  EXPECT_EQ(a.history, b.history);
  EXPECT_EQ(a.sessions, b.sessions);
  ASSERT_EQ(a.similar_scores.size(), b.similar_scores.size());
  for (const auto &[item, scores] : a.similar_scores) {
    auto it = b.similar_scores.find(item);
    ASSERT_NE(it, b.similar_scores.end()) << item;
    ASSERT_EQ(scores.size(), it->second.size()) << item;
    // Ties may list neighbours in another order; the scores must agree.
    for (size_t k = 0; k < scores.size(); ++k)
      EXPECT_NEAR(scores[k], it->second[k], 1e-5 * (1 + std::abs(scores[k]))) << item;
  }
}

TEST(PipelineTest, AppendedEventsProduceRecommendations) {
  Env env;
  env.Open();
  auto &p = env.pipeline();
  // Many sessions where A is followed by B: B becomes A's neighbour.
  std::vector<events::Event> events;
  for (int u = 0; u < 20; ++u) {
    std::string user = "s" + std::to_string(u);
    events.push_back(Ev(user, "A", kT0 + u * 10 * kMin));
    events.push_back(Ev(user, "B", kT0 + u * 10 * kMin + 1000));
    events.push_back(
        Ev(user, "pop" + std::to_string(u % 3), kT0 + u * 10 * kMin + 2000, EventType::kPurchase));
  }
  env.AppendAndWait(events);
  EXPECT_EQ(p.processed(), events.size());

  auto similar = p.Similar("shop", "A", 5);
  ASSERT_TRUE(similar.ok());
  ASSERT_FALSE(similar->empty());
  EXPECT_EQ(similar->front().item_id, "B");
  EXPECT_EQ(p.Similar("shop", "nope", 5).status().code, common::Code::kNotFound);

  // A user who just viewed A gets B first.
  env.AppendAndWait({Ev("x", "A", kT0 + 300 * kMin)});
  auto recs = p.Recommendations("shop", "x", 3);
  ASSERT_TRUE(recs.ok());
  ASSERT_FALSE(recs->items.empty());
  EXPECT_EQ(recs->items.front().item_id, "B");
  EXPECT_EQ(recs->model, "covisitation");
  EXPECT_LE(recs->items.size(), 3u);
  for (const auto &i : recs->items) EXPECT_NE(i.item_id, "A");  // the window is excluded
  EXPECT_EQ(recs->last_event_ms, kT0 + 300 * kMin);

  // A cold user gets the tenant's popular items.
  EXPECT_EQ(p.User("shop", "cold").status().code, common::Code::kNotFound);
  auto cold = p.Recommendations("shop", "cold", 4);
  ASSERT_TRUE(cold.ok());
  EXPECT_EQ(cold->model, "popularity");
  EXPECT_EQ(cold->items.size(), 4u);

  // Longer than the stored list: computed now, still well-formed.
  auto longer = p.Recommendations("shop", "x", 100);
  ASSERT_TRUE(longer.ok());
  EXPECT_GE(longer->items.size(), recs->items.size());

  auto &m = env.metrics();
  EXPECT_EQ(m.CounterValue("streamrec_pipeline_events_total", {{"type", "view"}}), 41u);
  EXPECT_EQ(m.CounterValue("streamrec_pipeline_events_total", {{"type", "purchase"}}), 20u);
  EXPECT_GE(m.CounterValue("streamrec_pipeline_steps_total"), 1u);
  auto text = m.RenderPrometheus();
  EXPECT_NE(text.find("streamrec_pipeline_items"), std::string::npos);
  EXPECT_NE(text.find("streamrec_pipeline_item_model_bytes"), std::string::npos);
  EXPECT_NE(text.find("streamrec_freshness_seconds_count"), std::string::npos);
}

TEST(PipelineTest, WindowSessionsAndOutOfOrderThroughThePipeline) {
  PipelineOptions o;
  o.window_max_items = 3;
  Env env(o);
  env.Open();
  auto &p = env.pipeline();
  env.AppendAndWait({Ev("u", "a", kT0), Ev("u", "b", kT0 + kMin), Ev("u", "c", kT0 + 2 * kMin),
                     Ev("u", "d", kT0 + 3 * kMin), Ev("u", "e", kT0 + 8 * kMin)});
  auto state = p.User("shop", "u");
  ASSERT_TRUE(state.ok());
  // 5 minutes before e (8 min): d (3 min) is in, c (2 min) is out.
  auto w = state->Window(o.window_ms, o.window_max_items);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].item_id, "d");
  EXPECT_EQ(w[1].item_id, "e");
  EXPECT_EQ(state->sessions, 1u);

  // Last-N: three newest.
  env.AppendAndWait({Ev("u", "f", kT0 + 8 * kMin + 1), Ev("u", "g", kT0 + 8 * kMin + 2)});
  state = p.User("shop", "u");
  w = state->Window(o.window_ms, o.window_max_items);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].item_id, "e");
  EXPECT_EQ(w[2].item_id, "g");

  // A late event lands in its place in time; the window does not move back.
  env.AppendAndWait({Ev("u", "late", kT0 + 5 * kMin)});
  state = p.User("shop", "u");
  ASSERT_EQ(state->history.size(), 8u);
  EXPECT_EQ(state->history[4].item_id, "late");
  EXPECT_EQ(state->last_event_ms, kT0 + 8 * kMin + 2);

  // More than 30 minutes idle: a new session.
  env.AppendAndWait({Ev("u", "h", kT0 + 8 * kMin + 2 + 31 * kMin)});
  state = p.User("shop", "u");
  EXPECT_EQ(state->sessions, 2u);
  EXPECT_EQ(state->session_id, "2");
  EXPECT_EQ(state->session_events, 1u);
  w = state->Window(o.window_ms, o.window_max_items);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].item_id, "h");
  auto recs = p.Recommendations("shop", "u", 5);
  ASSERT_TRUE(recs.ok());
  for (const auto &i : recs->items) EXPECT_NE(i.item_id, "h");
}

//! Reference: everything processed in one pipeline lifetime.
Snapshot Reference(const std::vector<events::Event> &events, uint32_t workers = 1,
                   uint32_t partitions = 4) {
  PipelineOptions o;
  o.workers = workers;
  Env env(o, partitions);
  env.Open();
  env.AppendAndWait(events);
  return Take(env.pipeline(), events);
}

uint64_t ViewCounter(Env &env) {
  return env.metrics().CounterValue("streamrec_pipeline_events_total", {{"type", "view"}});
}

TEST(PipelineTest, CleanRestartResumesWithoutDoubleCounting) {
  auto events = Sessions(30, 12);
  std::vector<events::Event> first(events.begin(), events.begin() + 200);
  std::vector<events::Event> second(events.begin() + 200, events.end());

  Env env;
  env.Open();
  env.AppendAndWait(first);
  env.Close(/*clean=*/true);

  env.Open();
  ASSERT_TRUE(env.pipeline().WaitIdle(kWait));
  EXPECT_EQ(env.pipeline().processed(),
            0u);  // nothing to replay after a clean stop
  env.AppendAndWait(second);
  EXPECT_EQ(env.pipeline().processed(), second.size());
  ExpectSame(Take(env.pipeline(), events), Reference(events));
  for (int u = 0; u < 30; ++u)
    ExpectHistoryWithoutDuplicates(env.pipeline(), "u" + std::to_string(u));
  // After a clean stop every consumer is at the log's end.
  env.Close(true);
  env.Open();
  auto offsets = env.pipeline().ConsumerOffsets();
  for (uint32_t p = 0; p < offsets.size(); ++p) EXPECT_EQ(offsets[p], env.log().NextSeq(p));
  env.Close(true);
  ExpectExactViews(env, events);
}

TEST(PipelineTest, CrashBetweenCheckpointsReplaysExactlyOnce) {
  auto events = Sessions(30, 12);
  std::vector<events::Event> first(events.begin(), events.begin() + 150);
  std::vector<events::Event> second(events.begin() + 150, events.begin() + 300);
  std::vector<events::Event> third(events.begin() + 300, events.end());

  PipelineOptions o;
  o.checkpoint_interval_ms = 3'600'000;  // only Stop() checkpoints here
  o.max_batch = 16;                      // many steps, many offset writes
  Env env(o);
  env.Open();
  env.AppendAndWait(first);
  env.Close(/*clean=*/true);  // item checkpoint covers `first`

  env.Open();
  env.AppendAndWait(second);
  // The item checkpoint lags the user offsets: retention must keep what replay
  // needs.
  auto offsets = env.pipeline().ConsumerOffsets();
  uint64_t total_lag = 0;
  for (uint32_t p = 0; p < offsets.size(); ++p) {
    EXPECT_LE(offsets[p], env.log().NextSeq(p));
    total_lag += env.log().NextSeq(p) - offsets[p];
  }
  EXPECT_EQ(total_lag, second.size());
  auto s = env.log().EnforceRetention(kT0 + 1000 * kMin * 1000, offsets);
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (uint32_t p = 0; p < offsets.size(); ++p) EXPECT_EQ(env.log().FirstSeq(p), offsets[p]);
  env.Close(/*clean=*/false);  // crash: user states are past the item checkpoint

  env.Open();
  ASSERT_TRUE(env.pipeline().WaitIdle(kWait));
  // Replay fed `second` to the item model only (the user states already had
  // it).
  EXPECT_EQ(env.pipeline().processed(), second.size());
  env.AppendAndWait(third);
  // Same users, same co-visitation as one uninterrupted run: no event counted
  // twice, and the replayed ones saw the same windows as the first time.
  ExpectSame(Take(env.pipeline(), events), Reference(events));
  for (int u = 0; u < 30; ++u)
    ExpectHistoryWithoutDuplicates(env.pipeline(), "u" + std::to_string(u));
  env.Close(true);
  ExpectExactViews(env, events);
}

TEST(PipelineTest, CrashBeforeAnyCheckpointRebuildsTheItemModel) {
  auto events = Sessions(20, 10);
  PipelineOptions o;
  o.checkpoint_interval_ms = 0;  // no periodic checkpoints
  Env env(o);
  env.Open();
  env.AppendAndWait(events);
  auto offsets = env.pipeline().ConsumerOffsets();
  for (auto off : offsets) EXPECT_EQ(off, 0u);  // no item checkpoint yet
  env.Close(/*clean=*/false);

  env.Open();
  ASSERT_TRUE(env.pipeline().WaitIdle(kWait));
  EXPECT_EQ(env.pipeline().processed(), events.size());
  ExpectSame(Take(env.pipeline(), events), Reference(events));
  env.Close(true);
  ExpectExactViews(env, events);
}

TEST(PipelineTest, LostUserStateIsRebuiltWithoutRecountingItems) {
  // User offsets behind the item checkpoint (user writes lost, or a state
  // wipe): replay applies the events to user state only.
  auto events = Sessions(10, 10);
  Env env;
  env.Open();
  env.AppendAndWait(events);
  env.Close(true);
  env.WithStore([](store::Store &store) {
    ASSERT_TRUE(
        store.db(store::Cf::kState)->DeleteRange({}, store.cf(store::Cf::kState), "", "\xff").ok());
  });
  env.Open();
  // Start() returns after the replay: the users are back.
  EXPECT_TRUE(env.pipeline().User("shop", "u1").ok());
  EXPECT_EQ(env.pipeline().processed(), events.size());
  ExpectSame(Take(env.pipeline(), events), Reference(events));
  env.Close(true);
  ExpectExactViews(env, events);
}

TEST(PipelineTest, ConcurrentCheckpointsAndQueueOverflowStayExact) {
  // 3,000 events in one commit overflow the worker queues (read back from the
  // log); checkpoints run every few ms between small steps of two workers; then
  // a crash.
  auto events = Sessions(100, 30);
  PipelineOptions o;
  o.workers = 2;
  o.max_batch = 8;
  o.checkpoint_interval_ms = 2;
  Env env(o);
  env.Open();
  env.AppendAndWait(events);
  EXPECT_EQ(env.pipeline().processed(), events.size());
  env.Close(/*clean=*/false);

  env.Open();
  ASSERT_TRUE(env.pipeline().WaitIdle(kWait));
  EXPECT_LE(env.pipeline().processed(), events.size());
  ExpectSame(Take(env.pipeline(), events), Reference(events));
  env.Close(true);
  ExpectExactViews(env, events);
}

TEST(PipelineTest, TwoWorkersGiveTheSameResultsAsOne) {
  auto events = Sessions(40, 10);
  ExpectSame(Reference(events, 2, 4), Reference(events, 1, 4));
  ExpectSame(Reference(events, 3, 8), Reference(events, 1, 4));
}

TEST(PipelineTest, StartsAtTheLogsFirstSeqAfterRetention) {
  auto first = Sessions(10, 10);
  auto second = Sessions(10, 10, kT0 + 100 * kMin);
  Env env;
  env.Open();
  env.AppendAndWait(first);
  std::vector<uint64_t> mid(4);
  for (uint32_t p = 0; p < 4; ++p) mid[p] = env.log().NextSeq(p);
  env.AppendAndWait(second);
  ASSERT_TRUE(env.log().EnforceRetention(kT0 + 100ll * 24 * 3600 * 1000, mid).ok());
  for (uint32_t p = 0; p < 4; ++p) EXPECT_EQ(env.log().FirstSeq(p), mid[p]);
  env.Close(true);
  // Without its state the pipeline starts at what retention left, not at seq 0.
  env.WithStore([](store::Store &store) {
    ASSERT_TRUE(
        store.db(store::Cf::kState)->DeleteRange({}, store.cf(store::Cf::kState), "", "\xff").ok());
    ASSERT_TRUE(
        store.db(store::Cf::kItems)->DeleteRange({}, store.cf(store::Cf::kItems), "", "\xff").ok());
  });
  env.Open();
  ASSERT_TRUE(env.pipeline().WaitIdle(kWait));
  EXPECT_EQ(env.pipeline().processed(), second.size());
  uint64_t views = 0;
  for (const auto &e : second) views += e.type == EventType::kView ? 1 : 0;
  EXPECT_EQ(ViewCounter(env), views);
  env.Close(true);
  ExpectExactViews(env, second);
}

TEST(PipelineTest, StoredRecommendationsAreServedTruncated) {
  PipelineOptions o;
  o.rec_count = 5;
  Env env(o);
  env.Open();
  env.AppendAndWait(Sessions(20, 10));
  auto &p = env.pipeline();
  auto full = p.Recommendations("shop", "u3", 5);
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->items.size(), 5u);
  auto two = p.Recommendations("shop", "u3", 2);
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->items.size(), 2u);
  EXPECT_EQ(two->items[0], full->items[0]);
  EXPECT_EQ(two->items[1], full->items[1]);
  EXPECT_EQ(two->generated_at_ms, full->generated_at_ms);  // the stored list
  auto more = p.Recommendations("shop", "u3", 8);
  ASSERT_TRUE(more.ok());
  EXPECT_GT(more->items.size(), 5u);  // computed now
}

TEST(PipelineTest, ObserversListsReplaceTheBuiltInOnesWhenItIsOff) {
  Env env;
  std::atomic<bool> builtin{true};
  std::mutex pushed_mu;
  std::set<std::string> pushed;  // list observers see observer lists as any stored list
  env.BeforeStart([&](Pipeline &p) {
    p.SetBuiltinLists([&] { return builtin.load(); });
    p.AddObserver([](const events::Event &e, const UserState &, StepWrites &writes) {
      if (e.item_id != "special") return;
      writes.PutList(e.tenant, e.user_id, {.items = {{"chosen", 1.0}}, .model = "observer"});
      writes.PutList(
          e.tenant, "friend-of-" + e.user_id,
          {.items = {{"gift", 2.0}}, .model = "observer", .last_event_ms = e.timestamp_ms});
    });
    // "claimed" users' lists belong to the observer even when it puts none.
    p.AddObserver([](const events::Event &e, const UserState &, StepWrites &writes) {
      if (e.item_id == "claimed") writes.ClaimList(e.tenant, e.user_id);
    });
    p.AddListObserver([&](const std::string &, const std::string &user, const RecList &list) {
      std::lock_guard lock(pushed_mu);
      pushed.insert(user + ":" + list.model);
    });
  });
  env.Open();
  auto &p = env.pipeline();
  env.AppendAndWait({Ev("a", "x", kT0), Ev("a", "y", kT0 + 1000), Ev("b", "special", kT0)});
  auto stored = [&](const std::string &user) {
    auto list = p.StoredRecommendations("shop", user);
    EXPECT_TRUE(list.ok());
    return list.ok() && *list ? (*list)->model : std::string("none");
  };
  const std::string builtin_model = stored("a");  // popularity: nothing co-visited yet
  EXPECT_TRUE(builtin_model == "popularity" || builtin_model == "covisitation") << builtin_model;
  EXPECT_EQ(stored("b"), "observer");
  auto b = p.StoredRecommendations("shop", "b");
  ASSERT_TRUE(b.ok() && *b);
  ASSERT_EQ((*b)->items.size(), 1u);
  EXPECT_EQ((*b)->items[0].item_id, "chosen");
  EXPECT_EQ((*b)->last_event_ms, kT0);
  EXPECT_EQ(stored("friend-of-b"), "observer");
  // Observer lists are served as they are: not recomputed when short or old.
  auto served = p.Recommendations("shop", "friend-of-b", 10);
  ASSERT_TRUE(served.ok());
  EXPECT_EQ(served->model, "observer");
  ASSERT_EQ(served->items.size(), 1u);
  EXPECT_EQ(served->items[0].item_id, "gift");
  env.AppendAndWait({Ev("d", "claimed", kT0 + 1500)});
  EXPECT_EQ(stored("d"), "none") << "claimed: no built-in list";

  // Built-in lists off: users without an observer list keep what they had.
  builtin = false;
  env.AppendAndWait({Ev("a", "z", kT0 + 2000), Ev("c", "x", kT0 + 2000)});
  EXPECT_EQ(stored("c"), "none");
  auto a = p.StoredRecommendations("shop", "a");
  ASSERT_TRUE(a.ok() && *a);
  EXPECT_EQ((*a)->last_event_ms, kT0 + 1000) << "a's list was not recomputed";
  env.AppendAndWait({Ev("c", "special", kT0 + 3000)});
  EXPECT_EQ(stored("c"), "observer");
  std::lock_guard lock(pushed_mu);
  EXPECT_EQ(pushed, (std::set<std::string>{"a:" + builtin_model, "b:observer", "c:observer",
                                           "friend-of-b:observer", "friend-of-c:observer"}));
}

// Deferred runs are called once the step has seen its events, before its writes commit, the
// latest of each key only: what they put is stored with the step, the others are dropped unrun.
TEST(PipelineTest, DeferredRunsCallTheLatestOfEachKeyBeforeTheStepCommits) {
  Env env;
  std::atomic<int> ran{0}, dropped{0};
  env.BeforeStart([&](Pipeline &p) {
    p.AddObserver([&](const events::Event &e, const UserState &, StepWrites &writes) {
      // Counts itself as dropped when destroyed without having been called.
      auto called = std::shared_ptr<bool>(new bool(false), [&](bool *b) {
        if (!*b) ++dropped;
        delete b;
      });
      writes.DeferLatest(e.user_id, [&ran, called, tenant = e.tenant, user = e.user_id,
                                     item = e.item_id](StepWrites &step) {
        *called = true;
        ++ran;
        step.PutList(tenant, user, {.items = {{item, 1.0}}, .model = "deferred"});
      });
    });
  });
  env.Open();
  std::vector<events::Event> events;
  for (int i = 0; i < 30; ++i) {
    events.push_back(Ev("u" + std::to_string(i % 3), "item" + std::to_string(i), kT0 + i));
  }
  env.AppendAndWait(events);
  EXPECT_EQ(ran + dropped, 30);
  EXPECT_GE(ran, 3);
  for (int u = 0; u < 3; ++u) {
    auto list = env.pipeline().StoredRecommendations("shop", "u" + std::to_string(u));
    ASSERT_TRUE(list.ok() && *list);
    EXPECT_EQ((*list)->model, "deferred");
    ASSERT_EQ((*list)->items.size(), 1u);
    EXPECT_EQ((*list)->items[0].item_id, "item" + std::to_string(27 + u)) << "the latest";
  }
}

TEST(PipelineTest, WarmupMergesPartitionsByCollectorTime) {
  Env env({}, /*partitions=*/4);
  std::vector<int64_t> seen;
  env.BeforeStart([&](Pipeline &p) {
    p.AddWarmupObserver([&](const events::Event &e) { seen.push_back(e.collector_ms); }, kMin);
  });
  env.Open();
  std::vector<events::Event> events;  // users spread over the partitions, times interleaved
  for (int i = 0; i < 40; ++i) events.push_back(Ev("m" + std::to_string(i % 8), "x", kT0 + i));
  env.AppendAndWait(events);
  env.Close(/*clean=*/true);
  env.Open();
  ASSERT_EQ(seen.size(), 40u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
}

TEST(PipelineTest, WarmupReplaysTheRecentAppliedEventsOnceAtStart) {
  Env env({}, /*partitions=*/2);
  std::vector<std::string> seen;  // Start() calls warm-up observers before any worker runs
  env.BeforeStart([&](Pipeline &p) {
    p.AddWarmupObserver([&](const events::Event &e) { seen.push_back(e.item_id); }, 2 * kMin);
  });
  env.Open();
  EXPECT_TRUE(seen.empty()) << "nothing was applied before";
  std::vector<events::Event> events;
  for (int i = 0; i < 10; ++i) events.push_back(Ev("w", "i" + std::to_string(i), kT0 + i * kMin));
  env.AppendAndWait(events);
  EXPECT_TRUE(seen.empty()) << "live events are not warm-up events";
  env.Close(/*clean=*/true);

  env.Open();
  // Collector times 7, 8 and 9 minutes are within 2 minutes of the newest (9).
  EXPECT_EQ(seen, (std::vector<std::string>{"i7", "i8", "i9"}));
  EXPECT_EQ(env.pipeline().processed(), 0u) << "warm-up applies nothing";
}

//! A learned model that answers one item per user and notes how many users each call asked.
class FakeRecommender : public models::Recommender {
 public:
  models::RecommenderOutput Recommend(std::string_view, std::string_view user,
                                      std::span<const std::string>, size_t) const override {
    std::lock_guard lock(mu_);
    batch_sizes_.push_back(1);
    return {{{"learned-" + std::string(user), 9.0}}, "fake@v1"};
  }
  std::vector<models::RecommenderOutput> RecommendBatch(
      std::span<const models::RecommendRequest> requests) const override {
    std::vector<models::RecommenderOutput> out;
    for (const auto &r : requests) {
      out.push_back({{{"learned-" + std::string(r.user), 9.0}}, "fake@v1"});
    }
    std::lock_guard lock(mu_);
    batch_sizes_.push_back(requests.size());
    return out;
  }
  std::vector<size_t> batch_sizes() const {
    std::lock_guard lock(mu_);
    return batch_sizes_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::vector<size_t> batch_sizes_;
};

TEST(PipelineTest, LearnedModelIsAskedOnceForAllUsersOfAStepAndToppedUp) {
  PipelineOptions o;
  o.rec_count = 3;
  Env env(o, /*partitions=*/1);
  env.Open();
  env.AppendAndWait(Sessions(10, 4));  // co-visitation to fill up from
  auto recommender = std::make_shared<FakeRecommender>();
  env.pipeline().SetRecommender(recommender);
  // One append, one commit: the worker takes the ten users in one step.
  std::vector<events::Event> events;
  for (int u = 0; u < 10; ++u) events.push_back(Ev("u" + std::to_string(u), "i1", kT0 + kMin));
  env.AppendAndWait(events);
  auto sizes = recommender->batch_sizes();
  ASSERT_FALSE(sizes.empty());
  size_t asked = 0;
  for (size_t n : sizes) asked += n;
  EXPECT_EQ(asked, 10u);
  EXPECT_LT(sizes.size(), 10u) << "users were batched";
  for (int u = 0; u < 10; ++u) {
    auto list = env.pipeline().StoredRecommendations("shop", "u" + std::to_string(u));
    ASSERT_TRUE(list.ok() && *list);
    ASSERT_EQ((*list)->items.size(), 3u) << "topped up from co-visitation";
    EXPECT_EQ((*list)->items[0].item_id, "learned-u" + std::to_string(u));
    EXPECT_EQ((*list)->model, "fake@v1");
  }
}

TEST(PipelineTest, OttoSampleCountsEveryEventType) {
  auto path = testing::DatasetPath("otto-sample/train.jsonl");
  if (!path) GTEST_SKIP() << "datasets not available";
  std::ifstream in(*path);
  std::vector<events::Event> events;
  std::string line;
  while (std::getline(in, line)) {
    auto doc = boost::json::parse(line).as_object();
    std::string user = "s" + std::to_string(doc.at("session").as_int64());
    for (const auto &v : doc.at("events").as_array()) {
      const auto &o = v.as_object();
      std::string type(o.at("type").as_string());
      auto t = type == "clicks"  ? EventType::kView
               : type == "carts" ? EventType::kAddToCart
                                 : EventType::kPurchase;
      events.push_back(Ev(user, std::to_string(o.at("aid").as_int64()), o.at("ts").as_int64(), t));
    }
  }
  ASSERT_EQ(events.size(), 862u);
  PipelineOptions o;
  o.workers = 2;
  o.user_ttl_ms = 365ll * 24 * 3600 * 1000;
  Env env(o);
  env.Open();
  for (size_t i = 0; i < events.size(); i += 100) {
    env.Append({events.begin() + i, events.begin() + std::min(i + 100, events.size())});
  }
  ASSERT_TRUE(env.pipeline().WaitIdle(kWait));
  auto &m = env.metrics();
  EXPECT_EQ(m.CounterValue("streamrec_pipeline_events_total", {{"type", "view"}}), 800u);
  EXPECT_EQ(m.CounterValue("streamrec_pipeline_events_total", {{"type", "add_to_cart"}}), 52u);
  EXPECT_EQ(m.CounterValue("streamrec_pipeline_events_total", {{"type", "purchase"}}), 10u);
  auto state = env.pipeline().User("shop", "s0");
  ASSERT_TRUE(state.ok());
  EXPECT_GT(state->sessions, 1u);  // session 0 spans days
  EXPECT_LE(state->history.size(), o.history_max_events);
}

}  // namespace
}  // namespace streamrec::pipeline
