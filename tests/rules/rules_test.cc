#include "rules/rules.h"

#include <gtest/gtest.h>

#include <chrono>

#include "rules/rule_book.h"
#include "support/temp_dir.h"

namespace streamrec::rules {
namespace {

using catalog::Item;
using events::EventType;
using models::ScoredItem;

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;

class RulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::Store::Open(dir_.Sub("db"), {});
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
    catalog_ = std::make_unique<catalog::Catalog>(*store_);
    auto item = [](std::string id, std::string category, double price,
                   std::vector<std::string> tags = {}) {
      Item i;
      i.tenant = "shop";
      i.id = std::move(id);
      i.handle = i.id + "-handle";
      i.categories = {std::move(category)};
      i.price = price;
      i.tags = std::move(tags);
      return i;
    };
    std::vector<Item> items = {item("s1", "shoes", 100, {"sale"}),
                               item("s2", "shoes", 50),
                               item("s3", "shoes", 200),
                               item("k1", "socks", 10),
                               item("k2", "socks", 12),
                               item("j1", "jackets", 150, {"sale"}),
                               item("j2", "jackets", 90)};
    items[2].available = false;  // s3
    items[4].published = false;  // k2
    ASSERT_TRUE(catalog_->Upsert(items).ok());
    context_.tenant = "shop";
    context_.placement = "product_page";
    context_.now_ms = kNow;
  }

  RuleSet Rules(std::string_view json) {
    auto set = RuleSet::FromJson(json);
    EXPECT_TRUE(set.ok()) << set.status().ToString();
    return set.ok() ? std::move(set).value() : RuleSet();
  }
  static std::vector<std::string> Ids(const Ruled& r) {
    std::vector<std::string> ids;
    for (const auto& i : r.items) ids.push_back(i.item_id);
    return ids;
  }
  Ruled Apply(std::string_view json, const std::vector<ScoredItem>& fallback = {}) {
    return Rules(json).Apply(candidates_, "covisitation", context_, *catalog_, fallback);
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<catalog::Catalog> catalog_;
  RuleContext context_;
  // Model order; "ghost" is not in the catalog.
  std::vector<ScoredItem> candidates_ = {{"s1", 10},   {"k1", 9}, {"s3", 8}, {"j1", 7},
                                         {"ghost", 6}, {"k2", 5}, {"s2", 4}, {"j2", 3}};
};

using IdList = std::vector<std::string>;

TEST_F(RulesTest, EmptySetPassesThroughWithModelReason) {
  auto r = Apply("{}");
  EXPECT_EQ(Ids(r), (IdList{"s1", "k1", "s3", "j1", "ghost", "k2", "s2", "j2"}));
  EXPECT_EQ(r.items[0].reasons, (std::vector<std::string>{"model:covisitation"}));
  EXPECT_EQ(r.items[0].score, 10);
  EXPECT_TRUE(r.applied_rules.empty());
}

TEST_F(RulesTest, ExcludeSeenWithinMinutes) {
  context_.history = {{"s1", EventType::kView, kNow - 5 * kMinute},
                      {"k1", EventType::kView, kNow - 90 * kMinute}};
  EXPECT_EQ(Ids(Apply(R"({"exclude_seen":{"minutes":30}})"))[0], "k1");
  auto all = Apply(R"({"exclude_seen":true})");
  EXPECT_EQ(Ids(all)[0], "s3");
  EXPECT_EQ(all.applied_rules, (std::vector<std::string>{"exclude_seen"}));
}

TEST_F(RulesTest, ExcludeBought) {
  context_.history = {{"s1", EventType::kPurchase, kNow - 1000 * kMinute},
                      {"k1", EventType::kView, kNow}};
  EXPECT_EQ(Ids(Apply(R"({"exclude_bought":true})")),
            (IdList{"k1", "s3", "j1", "ghost", "k2", "s2", "j2"}));
}

TEST_F(RulesTest, ContextItemIsNeverRecommended) {
  context_.context_item_id = "s1-handle";  // a handle resolves to s1
  EXPECT_EQ(Ids(Apply("{}"))[0], "k1");
  EXPECT_EQ(Ids(Apply(R"({"exclude_context":false})"))[0], "s1");
}

TEST_F(RulesTest, AvailableAndPublishedOnlyKeepUnknownItems) {
  EXPECT_EQ(Ids(Apply(R"({"available_only":true})")),
            (IdList{"s1", "k1", "j1", "ghost", "k2", "s2", "j2"}));
  EXPECT_EQ(Ids(Apply(R"({"published_only":true})")),
            (IdList{"s1", "k1", "s3", "j1", "ghost", "s2", "j2"}));
  EXPECT_EQ(Ids(Apply(R"({"catalog_only":true})")).size(), 7u);
}

TEST_F(RulesTest, IncludeAndExcludeCategories) {
  EXPECT_EQ(Ids(Apply(R"({"include_categories":["Shoes"]})")), (IdList{"s1", "s3", "s2"}));
  EXPECT_EQ(Ids(Apply(R"({"exclude_categories":["shoes","socks"]})")),
            (IdList{"j1", "ghost", "j2"}));
}

TEST_F(RulesTest, SameCategoryAndComplementary) {
  context_.context_item_id = "s2";
  EXPECT_EQ(Ids(Apply(R"({"same_category":true})")), (IdList{"s1", "s3"}));
  EXPECT_EQ(Ids(Apply(R"({"complementary":true})")), (IdList{"k1", "j1", "k2", "j2"}));
  context_.context_item_id.reset();
  auto skipped = Apply(R"({"same_category":true})");
  EXPECT_EQ(skipped.items.size(), candidates_.size());
  EXPECT_EQ(skipped.applied_rules, (std::vector<std::string>{"same_category:skipped"}));
}

TEST_F(RulesTest, PriceBandAbsoluteAndRelative) {
  EXPECT_EQ(Ids(Apply(R"({"price_band":{"min":50,"max":150}})")), (IdList{"s1", "j1", "s2", "j2"}));
  context_.context_item_id = "s1";  // 100
  EXPECT_EQ(Ids(Apply(R"({"price_band":{"min_ratio":0.8,"max_ratio":1.6}})")),
            (IdList{"j1", "j2"}));
}

TEST_F(RulesTest, BoostReordersAndExplains) {
  auto r = Apply(R"({"boost":{"category":{"jackets":2},"tag":{"sale":1.5}}})");
  // j1: 7 x2 x1.5 = 21, s1: 10 x1.5 = 15, k1 9, s3 8, j2: 3 x2 = 6, ghost 6 (model order kept)
  EXPECT_EQ(Ids(r), (IdList{"j1", "s1", "k1", "s3", "ghost", "j2", "k2", "s2"}));
  EXPECT_DOUBLE_EQ(r.items[0].score, 21);
  EXPECT_EQ(r.items[0].reasons,
            (std::vector<std::string>{"model:covisitation", "boost:category=jackets x2",
                                      "boost:tag=sale x1.5"}));
}

TEST_F(RulesTest, PinsPlaceItemsAtPositions) {
  auto r = Apply(R"({"pin":[{"item":"j2","position":1},{"item":"k1","position":3}]})");
  EXPECT_EQ(Ids(r), (IdList{"j2", "s1", "k1", "s3", "j1", "ghost", "k2", "s2"}));
  EXPECT_EQ(r.items[0].reasons, (std::vector<std::string>{"model:covisitation", "pinned:1"}));
  // An item the model did not propose can be pinned; positions past the end go last.
  candidates_ = {{"s1", 1}};
  auto extra = Apply(R"({"pin":{"j1":2,"k1":9}})");
  EXPECT_EQ(Ids(extra), (IdList{"s1", "j1", "k1"}));
  EXPECT_EQ(extra.items[1].reasons, (std::vector<std::string>{"pinned:2"}));
}

TEST_F(RulesTest, DiversityCapsPerPrimaryCategory) {
  EXPECT_EQ(Ids(Apply(R"({"diversity":{"max_per_category":1}})")),
            (IdList{"s1", "k1", "j1", "ghost"}));
}

TEST_F(RulesTest, LimitAndFillObeyFilters) {
  EXPECT_EQ(Ids(Apply(R"({"limit":3})")), (IdList{"s1", "k1", "s3"}));
  candidates_ = {{"s1", 5}};
  std::vector<ScoredItem> popular = {{"s1", 100}, {"s3", 90}, {"k2", 80}, {"j1", 70}, {"k1", 60}};
  auto r = Apply(R"({"available_only":true,"published_only":true,"limit":3,
                     "fill_from":"popularity"})",
                 popular);
  EXPECT_EQ(Ids(r), (IdList{"s1", "j1", "k1"}));  // s3 sold out, k2 unpublished, s1 not twice
  EXPECT_EQ(r.items[1].reasons, (std::vector<std::string>{"fill:popularity"}));
  EXPECT_EQ(r.applied_rules,
            (std::vector<std::string>{"available_only", "published_only", "limit", "fill_from"}));
}

TEST_F(RulesTest, OrderFiltersBoostsPinsDiversityLimit) {
  context_.history = {{"j2", EventType::kPurchase, kNow}};
  auto r = Apply(R"({
    "limit": 4,
    "diversity": {"max_per_category": 1},
    "pin": [{"item": "s2", "position": 2}, {"item": "j2", "position": 1}],
    "boost": {"category": {"socks": 3}, "tag": {"sale": 0.1}},
    "available_only": true,
    "exclude_bought": true,
    "fill_from": "popularity"
  })",
                 {{"j2", 1}, {"k1", 1}, {"x-new", 1}});
  // Filters: s3 (sold out) and j2 (bought: the pin is dropped too) go. Boosts: k1 27,
  // k2 15, ghost 6, s1 1, j1 0.7. Pin: s2 at 2 (exempt from diversity). Diversity: k2 is
  // a second sock. Limit 4: k1, s2, ghost, s1.
  EXPECT_EQ(Ids(r), (IdList{"k1", "s2", "ghost", "s1"}));
  EXPECT_EQ(r.applied_rules, (std::vector<std::string>{"exclude_bought", "available_only", "boost",
                                                       "pin", "diversity", "limit", "fill_from"}));
}

TEST_F(RulesTest, ConfigErrorsNameRuleAndField) {
  auto field = [](std::string_view json) { return RuleSet::FromJson(json).status().field; };
  EXPECT_EQ(field(R"({"nope":1})"), "nope");
  EXPECT_EQ(field(R"({"limit":0})"), "limit");
  EXPECT_EQ(field(R"({"exclude_seen":{"minutes":-1}})"), "exclude_seen.minutes");
  EXPECT_EQ(field(R"({"price_band":{"min_ratio":"a"}})"), "price_band.min_ratio");
  EXPECT_EQ(field(R"({"price_band":{"min":5,"max":1}})"), "price_band.min");
  EXPECT_EQ(field(R"({"boost":{"category":{"shoes":0}}})"), "boost.category.shoes");
  EXPECT_EQ(field(R"({"pin":[{"item":"a","position":0}]})"), "pin.position");
  EXPECT_EQ(field(R"({"diversity":{"max":1}})"), "diversity.max");
  EXPECT_EQ(field(R"({"fill_from":"popularity"})"), "fill_from");
  EXPECT_EQ(field(R"({"available_only":"yes"})"), "available_only");
  EXPECT_EQ(RuleSet::FromJson("{").status().reason, "invalid_json");
  auto yaml = RuleSet::FromYaml("limit: 3\nboost:\n  category: {shoes: x}\n");
  EXPECT_EQ(yaml.status().field, "boost.category.shoes");
  EXPECT_EQ(RuleSet::FromYaml("a: [1,\n").status().reason, "invalid_yaml");
}

TEST_F(RulesTest, YamlMatchesJson) {
  auto yaml = RuleSet::FromYaml(R"(
exclude_seen: {minutes: 60}
available_only: true
include_categories: [shoes, "jackets"]
boost:
  tag: {sale: 1.5}
limit: 2
)");
  ASSERT_TRUE(yaml.ok()) << yaml.status().ToString();
  auto again = RuleSet::FromJson(yaml->ToJson());
  ASSERT_TRUE(again.ok());
  auto a = yaml->Apply(candidates_, "m", context_, *catalog_, {});
  auto b = again->Apply(candidates_, "m", context_, *catalog_, {});
  EXPECT_EQ(Ids(a), (IdList{"s1", "j1"}));
  EXPECT_EQ(Ids(a), Ids(b));
}

TEST_F(RulesTest, RuleBookFallbacksAndPersistence) {
  RuleBook book;
  ASSERT_TRUE(book.LoadYaml(R"(
"*":
  default: {limit: 1}
  cart: {limit: 2}
shop:
  product_page: {limit: 3}
)")
                  .ok());
  auto limit_of = [&](std::string_view tenant, std::string_view placement) {
    auto set = book.Find(tenant, placement);
    return set ? set->Apply(candidates_, "m", context_, *catalog_, {}).items.size() : 0;
  };
  EXPECT_EQ(limit_of("shop", "product_page"), 3u);
  EXPECT_EQ(limit_of("shop", "home"), 1u);   // "*" / default
  EXPECT_EQ(limit_of("other", "cart"), 2u);  // "*" / cart
  ASSERT_TRUE(book.Set("shop", "default", Rules(R"({"limit":4})")).ok());
  EXPECT_EQ(limit_of("shop", "home"), 4u);  // tenant default before "*"

  auto bad = book.LoadJson(R"({"shop":{"home":{"limit":"x"}}})");
  EXPECT_EQ(bad.field, "shop.home.limit");
  EXPECT_EQ(book.size(), 4u);

  ASSERT_TRUE(book.Save(*store_).ok());
  RuleBook restored;
  ASSERT_TRUE(restored.Restore(*store_).ok());
  EXPECT_EQ(restored.ToJson(), book.ToJson());
  EXPECT_TRUE(book.Remove("shop", "default"));
  ASSERT_TRUE(book.Save(*store_).ok());
  ASSERT_TRUE(restored.Restore(*store_).ok());
  EXPECT_EQ(restored.size(), 3u);
  EXPECT_EQ(RuleBook().Find("x", "y"), nullptr);
}

// A quick figure for the report, not an assertion: ns per Apply on 100 candidates.
TEST_F(RulesTest, ApplyCostOn100Candidates) {
  std::vector<Item> items;
  candidates_.clear();
  for (int i = 0; i < 100; ++i) {
    Item it;
    it.tenant = "shop";
    it.id = "product-" + std::to_string(i);
    it.categories = {"category-" + std::to_string(i % 7)};
    it.tags = {i % 3 ? "regular" : "sale"};
    it.price = 10 + i;
    items.push_back(it);
    candidates_.push_back({it.id, 100.0 - i});
  }
  ASSERT_TRUE(catalog_->Upsert(items).ok());
  for (int i = 0; i < 20; ++i) {
    context_.history.push_back({"product-" + std::to_string(i * 3), EventType::kView, kNow});
  }
  auto rules = Rules(R"({"exclude_seen":{"minutes":60},"exclude_bought":true,
    "available_only":true,"published_only":true,"exclude_categories":["gift"],
    "price_band":{"min":1,"max":1000},"boost":{"tag":{"sale":1.3}},
    "pin":[{"item":"product-99","position":1}],"diversity":{"max_per_category":3},
    "limit":10,"fill_from":"popularity"})");
  auto plain = Rules("{}");
  for (int i = 0; i < 100; ++i) rules.Apply(candidates_, "m", context_, *catalog_, {});
  constexpr int kRuns = 20'000;
  auto time = [&](const RuleSet& set) {
    auto start = std::chrono::steady_clock::now();
    size_t n = 0;
    for (int i = 0; i < kRuns; ++i)
      n += set.Apply(candidates_, "m", context_, *catalog_, {}).items.size();
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    EXPECT_GT(n, 0u);
    return ns / kRuns;
  };
  std::printf("rules_apply_100_candidates_full_ns %lld\n", static_cast<long long>(time(rules)));
  std::printf("rules_apply_100_candidates_empty_ns %lld\n", static_cast<long long>(time(plain)));
}

}  // namespace
}  // namespace streamrec::rules
