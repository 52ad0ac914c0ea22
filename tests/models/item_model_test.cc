#include "models/item_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <thread>

namespace streamrec::models {
namespace {

constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kT0 = 1'700'000'000'000;

ItemModelOptions TestOptions() {
  ItemModelOptions o;
  o.popular_refresh_ms = 0;  // Popular() reflects every Observe at once
  return o;
}

events::Event Ev(std::string tenant, std::string item, int64_t t,
                 events::EventType type = events::EventType::kView) {
  events::Event e;
  e.tenant = std::move(tenant);
  e.user_id = "u";
  e.item_id = std::move(item);
  e.timestamp_ms = t;
  e.type = type;
  return e;
}

// Replays one user's views as the pipeline would: each with the user's earlier items.
void Session(ItemModel& model, const std::string& tenant, const std::vector<std::string>& items,
             int64_t t, int64_t step = 1000) {
  std::vector<WindowItem> window;
  for (const auto& item : items) {
    model.Observe(Ev(tenant, item, t), window);
    window.push_back({item, t});
    t += step;
  }
}

std::vector<std::string> Ids(const std::vector<ScoredItem>& items) {
  std::vector<std::string> ids;
  for (const auto& i : items) ids.push_back(i.item_id);
  return ids;
}

double WeightOf(const std::vector<ScoredItem>& items, const std::string& id) {
  for (const auto& i : items) {
    if (i.item_id == id) return i.score;
  }
  return -1;
}

TEST(ItemModelTest, PopularityDecaysWithEventTime) {
  auto options = TestOptions();
  options.popularity_half_life_ms = kHour;
  ItemModel model(options);
  for (int i = 0; i < 5; ++i) model.Observe(Ev("shop", "old", kT0 + i), {});
  for (int i = 0; i < 2; ++i) model.Observe(Ev("shop", "new", kT0 + 10 * kHour + i), {});

  EXPECT_EQ(model.now_ms(), kT0 + 10 * kHour + 1);
  auto top = model.Popular("shop", 10);
  ASSERT_EQ(Ids(top), (std::vector<std::string>{"new", "old"}));
  EXPECT_NEAR(top[0].score, 2.0, 1e-6);
  EXPECT_NEAR(top[1].score, 5.0 * std::exp2(-10.0), 1e-6);

  auto stats = model.Stats("shop", "old");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->views, 5u);
  EXPECT_EQ(stats->last_seen_ms, kT0 + 4);
  EXPECT_NEAR(stats->popularity, 5.0 * std::exp2(-10.0), 1e-6);
  EXPECT_FALSE(model.Stats("shop", "missing"));
}

TEST(ItemModelTest, PopularityStaysFiniteOverManyHalfLives) {
  auto options = TestOptions();
  options.popularity_half_life_ms = 1000;
  ItemModel model(options);
  // 500 half-lives would overflow a naive forward-decayed sum (2^500 > DBL_MAX / 2^500).
  for (int i = 0; i <= 500; ++i) model.Observe(Ev("shop", "a", kT0 + i * 1000LL), {});
  model.Observe(Ev("shop", "b", kT0 + 500 * 1000LL), {});
  auto stats = model.Stats("shop", "a");
  ASSERT_TRUE(stats);
  EXPECT_TRUE(std::isfinite(stats->popularity));
  EXPECT_NEAR(stats->popularity, 2.0, 1e-6);  // geometric series 1 + 1/2 + 1/4 + ...
  EXPECT_NEAR(model.Stats("shop", "b")->popularity, 1.0, 1e-9);
}

TEST(ItemModelTest, EventTypesWeighPopularity) {
  ItemModel model(TestOptions());
  for (int i = 0; i < 4; ++i) model.Observe(Ev("shop", "viewed", kT0), {});
  model.Observe(Ev("shop", "bought", kT0, events::EventType::kPurchase), {});
  model.Observe(Ev("shop", "carted", kT0, events::EventType::kAddToCart), {});
  model.Observe(Ev("shop", "removed", kT0, events::EventType::kRemoveFromCart), {});
  model.Observe(Ev("shop", "", kT0 + 5), {});  // no item: only the clock moves

  EXPECT_EQ(Ids(model.Popular("shop", 10)),
            (std::vector<std::string>{"bought", "viewed", "carted"}));
  EXPECT_EQ(model.item_count(), 3u);
  EXPECT_EQ(model.now_ms(), kT0 + 5);
  EXPECT_EQ(model.Stats("shop", "bought")->purchases, 1u);
  EXPECT_EQ(model.Stats("shop", "carted")->add_to_carts, 1u);
}

TEST(ItemModelTest, TenantsAreIsolated) {
  ItemModel model(TestOptions());
  for (int s = 0; s < 5; ++s) Session(model, "a", {"a1", "a2", "a3", "shared"}, kT0 + s * 10000);
  Session(model, "b", {"b1", "shared"}, kT0);
  Session(model, "b", {"b2"}, kT0);

  // The same id in two shops is two items.
  EXPECT_EQ(model.Stats("a", "shared")->views, 5u);
  EXPECT_EQ(model.Stats("b", "shared")->views, 1u);
  EXPECT_FALSE(model.Stats("b", "a1"));

  std::set<std::string> b_items = {"b1", "b2", "shared"};
  std::vector<WindowItem> window = {{"a1", kT0}, {"shared", kT0 + 1}};
  auto rec = model.Recommend("b", window, 10);
  EXPECT_FALSE(rec.items.empty());
  for (const auto& item : rec.items) EXPECT_TRUE(b_items.count(item.item_id)) << item.item_id;
  EXPECT_EQ(Ids(model.Similar("b", "shared", 10)), std::vector<std::string>{"b1"});
  for (const auto& item : model.Popular("b", 10)) EXPECT_TRUE(b_items.count(item.item_id));
  EXPECT_TRUE(model.Recommend("unknown-shop", window, 10).items.empty());
  EXPECT_EQ(model.Popular("", 100).size(), 7u);  // empty tenant: all shops
}

TEST(ItemModelTest, CovisitationIsSymmetricAndRecencyWeighted) {
  ItemModel model(TestOptions());
  // x, y then z: y is adjacent to z (weight 1), x one step further (0.7).
  Session(model, "shop", {"x", "y", "z"}, kT0);
  auto z = model.Similar("shop", "z", 10);
  EXPECT_EQ(Ids(z), (std::vector<std::string>{"y", "x"}));
  EXPECT_NEAR(WeightOf(z, "y"), 1.0, 1e-6);
  EXPECT_NEAR(WeightOf(z, "x"), 0.7, 1e-6);
  EXPECT_NEAR(WeightOf(model.Similar("shop", "x", 10), "z"), 0.7, 1e-6);
  EXPECT_NEAR(WeightOf(model.Similar("shop", "x", 10), "y"), 1.0, 1e-6);

  // A purchase after z counts double; a repeated window item counts once, at its closest.
  std::vector<WindowItem> window = {{"x", kT0}, {"z", kT0 + 1}, {"x", kT0 + 2}};
  model.Observe(Ev("shop", "p", kT0 + 3, events::EventType::kPurchase), window);
  EXPECT_NEAR(WeightOf(model.Similar("shop", "p", 10), "x"), 2.0, 1e-6);
  EXPECT_NEAR(WeightOf(model.Similar("shop", "p", 10), "z"), 1.4, 1e-6);
  EXPECT_NEAR(WeightOf(model.Similar("shop", "x", 10), "p"), 2.0, 1e-6);
  EXPECT_TRUE(model.Similar("shop", "nope", 10).empty());
}

TEST(ItemModelTest, NeighbourListsAreBounded) {
  auto options = TestOptions();
  options.max_neighbors = 5;
  ItemModel model(options);
  // hub is co-visited with 40 items; item k is seen with it k+1 times.
  for (int k = 0; k < 40; ++k) {
    for (int r = 0; r <= k; ++r) {
      Session(model, "shop", {"item" + std::to_string(k), "hub"}, kT0 + k * 100000 + r * 10);
    }
  }
  auto hub = model.Similar("shop", "hub", 100);
  EXPECT_GE(hub.size(), 5u);
  EXPECT_LE(hub.size(), 10u);
  // Prunes keep the best, so the strongest neighbours survive in order.
  EXPECT_EQ(hub[0].item_id, "item39");
  EXPECT_EQ(hub[1].item_id, "item38");
  EXPECT_NEAR(hub[0].score, 40.0, 1e-3);
  EXPECT_TRUE(std::is_sorted(hub.begin(), hub.end(),
                             [](const auto& a, const auto& b) { return a.score > b.score; }));
  EXPECT_EQ(model.Similar("shop", "hub", 3).size(), 3u);
}

TEST(ItemModelTest, RecommendExcludesWindowAndFallsBackToPopularity) {
  ItemModel model(TestOptions());
  for (int s = 0; s < 3; ++s) Session(model, "shop", {"a", "b", "c"}, kT0 + s * 10000);
  Session(model, "shop", {"a", "d"}, kT0 + 50000);
  for (int i = 0; i < 10; ++i) model.Observe(Ev("shop", "hot", kT0 + 60000 + i), {});
  model.Observe(Ev("shop", "cold", kT0 + 70000), {});

  auto cold = model.Recommend("shop", {}, 3);
  EXPECT_EQ(cold.model, "popularity");
  EXPECT_EQ(Ids(cold.items), Ids(model.Popular("shop", 3)));

  std::vector<WindowItem> window = {{"b", kT0}, {"a", kT0 + 1}};
  std::vector<std::string> exclude = {"d"};
  // Only c, hot and cold remain once a, b (window) and d (excluded) are taken out.
  auto rec = model.Recommend("shop", window, 4, exclude);
  EXPECT_EQ(rec.model, "covisitation");
  ASSERT_EQ(Ids(rec.items), (std::vector<std::string>{"c", "hot", "cold"}));
  EXPECT_EQ(rec.items[0].item_id, "c");  // neighbour of both window items
  for (const auto& item : rec.items) {
    EXPECT_NE(item.item_id, "a");
    EXPECT_NE(item.item_id, "b");
    EXPECT_NE(item.item_id, "d");
  }
  // Filled from popularity below the co-visitation scores, most popular first.
  EXPECT_TRUE(std::is_sorted(rec.items.begin(), rec.items.end(),
                             [](const auto& a, const auto& b) { return a.score > b.score; }));
  EXPECT_GT(rec.items.back().score, 0);

  auto popular = Ids(model.Popular("shop", 10, exclude));
  EXPECT_EQ(std::count(popular.begin(), popular.end(), "d"), 0);
  EXPECT_EQ(popular.size(), 5u);
}

TEST(ItemModelTest, EvictionBoundsItemsAndReportsDeletions) {
  auto options = TestOptions();
  options.max_items = 100;
  ItemModel model(options);
  // Older sessions decay below newer ones, so early items are the ones evicted.
  for (int s = 0; s < 150; ++s) {
    Session(model, "shop", {"i" + std::to_string(2 * s), "i" + std::to_string(2 * s + 1)},
            kT0 + s * kHour);
    EXPECT_LE(model.item_count(), 100u);
  }
  auto dirty = model.TakeDirty();
  std::set<std::string> deleted, saved;
  for (const auto& d : dirty) (d.bytes ? saved : deleted).insert(d.item);
  EXPECT_GE(deleted.size(), 200u);
  EXPECT_EQ(saved.size(), model.item_count());
  EXPECT_TRUE(deleted.count("i0"));
  EXPECT_FALSE(model.Stats("shop", "i0"));
  EXPECT_TRUE(model.Stats("shop", "i299"));
  EXPECT_EQ(Ids(model.Similar("shop", "i299", 5)), std::vector<std::string>{"i298"});
  // No neighbour list may still name an evicted item.
  for (const auto& id : saved) {
    for (const auto& n : model.Similar("shop", id, 100))
      EXPECT_TRUE(model.Stats("shop", n.item_id));
  }
  EXPECT_TRUE(model.TakeDirty().empty());
}

std::vector<std::string> AllItems(const ItemModel& model, const std::string& tenant) {
  return Ids(model.Popular(tenant, 1000));
}

TEST(ItemModelTest, CheckpointRoundTripGivesIdenticalAnswers) {
  auto options = TestOptions();
  options.popularity_half_life_ms = 2 * kHour;
  ItemModel model(options);
  std::vector<std::vector<std::string>> sessions = {
      {"a", "b", "c"}, {"b", "c", "d", "e"}, {"a", "c"}, {"e", "f", "a"}, {"g", "h"}};
  for (size_t s = 0; s < sessions.size(); ++s) {
    Session(model, "shop", sessions[s], kT0 + static_cast<int64_t>(s) * kHour);
  }
  Session(model, "other", {"a", "z"}, kT0);
  model.Observe(Ev("shop", "c", kT0 + 6 * kHour, events::EventType::kPurchase),
                std::vector<WindowItem>{{"a", kT0}});

  ItemModel restored(options);
  for (const auto& d : model.TakeDirty()) {
    ASSERT_TRUE(d.bytes);
    ASSERT_TRUE(restored.Restore(d.tenant, d.item, *d.bytes).ok());
  }
  EXPECT_EQ(restored.item_count(), model.item_count());
  EXPECT_EQ(restored.now_ms(), model.now_ms());
  EXPECT_TRUE(restored.TakeDirty().empty());
  for (const std::string tenant : {"shop", "other", ""}) {
    EXPECT_EQ(restored.Popular(tenant, 100), model.Popular(tenant, 100));
  }
  for (const std::string tenant : {"shop", "other"}) {
    for (const auto& id : AllItems(model, tenant)) {
      EXPECT_EQ(restored.Similar(tenant, id, 10), model.Similar(tenant, id, 10)) << id;
      auto s1 = model.Stats(tenant, id), s2 = restored.Stats(tenant, id);
      ASSERT_TRUE(s1 && s2);
      EXPECT_EQ(s1->views, s2->views);
      EXPECT_EQ(s1->purchases, s2->purchases);
      EXPECT_EQ(s1->last_seen_ms, s2->last_seen_ms);
      EXPECT_DOUBLE_EQ(s1->popularity, s2->popularity);
      std::vector<WindowItem> window = {{id, kT0}};
      auto r1 = model.Recommend(tenant, window, 5), r2 = restored.Recommend(tenant, window, 5);
      EXPECT_EQ(r1.items, r2.items) << id;
      EXPECT_EQ(r1.model, r2.model);
    }
  }
  std::vector<WindowItem> window = {{"a", kT0}, {"e", kT0 + 1}};
  EXPECT_EQ(restored.Recommend("shop", window, 8).items, model.Recommend("shop", window, 8).items);

  // Both go on learning identically.
  model.Observe(Ev("shop", "h", kT0 + 7 * kHour), window);
  restored.Observe(Ev("shop", "h", kT0 + 7 * kHour), window);
  EXPECT_EQ(restored.Similar("shop", "h", 10), model.Similar("shop", "h", 10));
  EXPECT_EQ(Ids(restored.Popular("shop", 10)), Ids(model.Popular("shop", 10)));
}

TEST(ItemModelTest, RestoreInternsUnknownNeighboursAndRejectsGarbage) {
  ItemModel source(TestOptions());
  Session(source, "shop", {"a", "b"}, kT0);
  std::map<std::string, std::string> saved;
  for (const auto& d : source.TakeDirty()) saved[d.item] = *d.bytes;

  ItemModel model(TestOptions());
  ASSERT_TRUE(model.Restore("shop", "b", saved["b"]).ok());  // a is known only as b's neighbour
  EXPECT_EQ(model.item_count(), 2u);
  EXPECT_EQ(Ids(model.Similar("shop", "b", 5)), std::vector<std::string>{"a"});
  EXPECT_EQ(model.Stats("shop", "a")->views, 0u);
  ASSERT_TRUE(model.Restore("shop", "a", saved["a"]).ok());  // later record fills it in
  EXPECT_EQ(model.Stats("shop", "a")->views, 1u);

  std::string truncated = saved["a"].substr(0, saved["a"].size() - 2);
  EXPECT_FALSE(model.Restore("shop", "x", truncated).ok());
  EXPECT_FALSE(model.Restore("shop", "x", "\x07garbage").ok());
  EXPECT_FALSE(model.Restore("shop", "x", "").ok());
  EXPECT_FALSE(model.Restore("", "x", saved["a"]).ok());
  EXPECT_FALSE(model.Stats("shop", "x"));
}

TEST(ItemModelTest, ApproximateBytesGrowsWithItems) {
  ItemModel model(TestOptions());
  uint64_t empty = model.ApproximateBytes();
  for (int s = 0; s < 1000; ++s) {
    Session(model, "shop", {"item-" + std::to_string(s), "item-" + std::to_string(s + 1)}, kT0 + s);
  }
  uint64_t full = model.ApproximateBytes();
  // At least the slot, two neighbour entries and an index node per item.
  EXPECT_GT(full - empty, 1001u * (64 + 16 + 32));
  EXPECT_LT(full - empty, 1001u * 2000);
}

TEST(ItemModelTest, ConcurrentObserveAndQueries) {
  auto options = TestOptions();
  options.max_items = 500;
  ItemModel model(options);
  Session(model, "shop", {"w0", "w1"}, kT0);  // so every query has something to answer
  std::thread writer([&] {
    for (int s = 0; s < 2000; ++s) {
      Session(model, "shop", {"w" + std::to_string(s % 700), "w" + std::to_string((s * 7) % 700)},
              kT0 + s * 1000);
    }
  });
  size_t answered = 0;
  for (int q = 0; q < 2000; ++q) {
    std::vector<WindowItem> window = {{"w" + std::to_string(q % 700), kT0}};
    auto rec = model.Recommend("shop", window, 10);
    answered += rec.items.empty() ? 0 : 1;
    for (const auto& item : rec.items) EXPECT_EQ(item.item_id[0], 'w');
    (void)model.Popular("", 10);
  }
  writer.join();
  EXPECT_LE(model.item_count(), 500u);
  EXPECT_EQ(answered, 2000u);
}

}  // namespace
}  // namespace streamrec::models
