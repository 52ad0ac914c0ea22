// The KPI tracker: attribution windows and their edges, bounded per-user state, retried
// steps, and that its writes restore the same aggregates and attribution state.
#include "kpi/kpi_tracker.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <boost/json.hpp>

#include "kpi/report.h"
#include "store/key_schema.h"
#include "support/temp_dir.h"

namespace streamrec::kpi {
namespace {

using events::Event;
using events::EventType;

constexpr int64_t kMin = 60 * 1000;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kT0 = 1'714'564'800'000;  // 2024-05-01T12:00:00Z

//! Collects a step's writes like the pipeline does, and commits them (or not).
class Batch : public pipeline::StepWrites {
 public:
  explicit Batch(store::Store& store) : store_(store) {}
  void Put(std::string_view key, std::string_view value) override {
    wb_.Put(store_.cf(store::Cf::kState), key, value);
  }
  void Delete(std::string_view key) override { wb_.Delete(store_.cf(store::Cf::kState), key); }
  void PutList(std::string_view, std::string_view, pipeline::RecList) override {
    ADD_FAILURE() << "KPI tracking never stores lists";
  }
  void ClaimList(std::string_view, std::string_view) override {
    ADD_FAILURE() << "KPI tracking never claims lists";
  }
  void DeferLatest(std::string, std::function<void(pipeline::StepWrites&)>) override {
    ADD_FAILURE() << "KPI tracking never defers";
  }
  void Commit() {
    ASSERT_TRUE(store_.db(store::Cf::kState)->Write({}, &wb_).ok());
    wb_.Clear();
  }
  void Drop() { wb_.Clear(); }
  int Count() const { return static_cast<int>(wb_.Count()); }

 private:
  store::Store& store_;
  rocksdb::WriteBatch wb_;
};

class KpiTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open(KpiOptions options = {}) {
    tracker_.reset();
    batch_.reset();
    if (!store_) {
      auto store = store::Store::Open(dir_.Sub("db"), {});
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      store_ = std::move(store).value();
    }
    tracker_ = std::make_unique<KpiTracker>(*store_, options);
    ASSERT_TRUE(tracker_->Restore().ok());
    batch_ = std::make_unique<Batch>(*store_);
  }

  //! Observes one event and commits its writes.
  void Apply(const Event& e) {
    tracker_->Observe(e, *batch_);
    batch_->Commit();
  }

  Event Make(EventType type, const std::string& item, int64_t ts, std::string props,
             const std::string& user = "u1") {
    Event e;
    e.event_id = "e" + std::to_string(next_id_++);
    e.tenant = "shop1";
    e.user_id = user;
    e.item_id = item;
    e.type = type;
    e.timestamp_ms = ts;
    e.collector_ms = ts;
    e.properties = std::move(props);
    return e;
  }
  Event Impression(const std::string& list, std::vector<std::string> items, int64_t ts,
                   const std::string& user = "u1", const std::string& model = "covisitation") {
    boost::json::object p{{"list_id", list},
                          {"placement", "product_page"},
                          {"model", model},
                          {"items", boost::json::value_from(items)}};
    return Make(EventType::kImpression, "", ts, boost::json::serialize(p), user);
  }
  Event Click(const std::string& list, const std::string& item, int64_t ts,
              const std::string& user = "u1") {
    boost::json::object p{
        {"list_id", list}, {"placement", "product_page"}, {"model", "covisitation"}};
    return Make(EventType::kClick, item, ts, boost::json::serialize(p), user);
  }

  Counts Totals() {
    KpiQuery q;
    q.tenant = "shop1";
    q.from_ms = kT0 - 48 * kHour;
    q.to_ms = kT0 + 96 * kHour;
    return tracker_->Query(q).totals;
  }

  streamrec::testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<KpiTracker> tracker_;
  std::unique_ptr<Batch> batch_;
  int next_id_ = 0;
};

TEST_F(KpiTrackerTest, CountsImpressionsAndClicksPerPlacementModelAndHour) {
  Apply(Impression("L1", {"a", "b", "c"}, kT0));
  Apply(Impression("L1", {"a", "b", "c"}, kT0 + 1000));  // the same list shown again
  Apply(Impression("L2", {"d"}, kT0 + kHour, "u2", "popularity"));
  Apply(Click("L1", "b", kT0 + 2000));
  Apply(Make(EventType::kView, "b", kT0 + 3000, ""));  // views are not KPI events

  auto buckets = tracker_->Buckets();
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets[0].placement, "product_page");
  EXPECT_EQ(buckets[0].model, "covisitation");
  EXPECT_EQ(buckets[0].variant, "default");
  EXPECT_EQ(buckets[0].hour_ms, kT0);
  EXPECT_EQ(buckets[0].counts.impressions, 1u);
  EXPECT_EQ(buckets[0].counts.clicks, 1u);
  EXPECT_EQ(buckets[1].model, "popularity");
  EXPECT_EQ(buckets[1].hour_ms, kT0 + kHour);
  EXPECT_DOUBLE_EQ(Totals().Ctr(), 0.5);
}

TEST_F(KpiTrackerTest, CartAttributedToTheClickedListUpToTheWindowEdge) {
  Apply(Impression("L1", {"a", "b"}, kT0));
  Apply(Click("L1", "b", kT0 + kMin));
  Apply(Make(EventType::kAddToCart, "b", kT0 + kMin + 30 * kMin, ""));  // exactly 30 min: in
  EXPECT_EQ(Totals().add_to_carts, 1u);
  Apply(Make(EventType::kAddToCart, "b", kT0 + kMin + 30 * kMin + 1, ""));  // 1 ms late, but
  // the impression at kT0 is older still: not attributed either.
  EXPECT_EQ(Totals().add_to_carts, 1u);
  Apply(Make(EventType::kAddToCart, "zzz", kT0 + 2 * kMin, ""));  // never shown
  EXPECT_EQ(Totals().add_to_carts, 1u);
  Apply(Make(EventType::kAddToCart, "b", kT0 - 1, ""));  // before the click and the list
  EXPECT_EQ(Totals().add_to_carts, 1u);
}

TEST_F(KpiTrackerTest, ShownButNotClickedIsTheSecondaryAttribution) {
  Apply(Impression("L1", {"a", "b"}, kT0, "u1", "covisitation"));
  Apply(Impression("L2", {"b"}, kT0 + kMin, "u1", "popularity"));
  Apply(Click("L1", "b", kT0 + 2 * kMin));
  // The click wins over the newer impression of L2.
  Apply(Make(EventType::kAddToCart, "b", kT0 + 3 * kMin, ""));
  // Item a was only shown (in L1): attributed to L1 by the impression.
  Apply(Make(EventType::kAddToCart, "a", kT0 + 4 * kMin, ""));
  KpiQuery q{"shop1", kT0 - kHour, kT0 + kHour, std::nullopt, GroupBy::kModel};
  auto report = tracker_->Query(q);
  ASSERT_EQ(report.groups.size(), 2u);
  for (const auto& g : report.groups) {
    EXPECT_EQ(g.totals.add_to_carts, g.key == "covisitation" ? 2u : 0u) << g.key;
  }
}

TEST_F(KpiTrackerTest, PurchaseWindowIs24HoursAndCarriesRevenue) {
  Apply(Impression("L1", {"a", "b"}, kT0));
  Apply(Click("L1", "a", kT0 + kMin));
  Apply(Make(EventType::kPurchase, "a", kT0 + kMin + 24 * kHour,
             R"({"price":"19.90","quantity":2})"));
  Apply(Make(EventType::kPurchase, "a", kT0 + kMin + 24 * kHour + 1, R"({"revenue":5})"));
  Counts c = Totals();
  EXPECT_EQ(c.purchases, 1u);
  EXPECT_DOUBLE_EQ(c.revenue, 39.8);
}

TEST_F(KpiTrackerTest, SnowplowSelfDescribingPropertiesAreRead) {
  // The collector stores a self-describing event's {schema, data} as its properties.
  Event shown = Make(EventType::kImpression, "", kT0,
                     R"({"schema":"iglu:dev.streamrec/impression/jsonschema/1-0-0",)"
                     R"("data":{"type":"impression","list_id":"L9","placement":"cart",)"
                     R"("model":"popularity","variant":"B","items":["x","y"]}})");
  Apply(shown);
  Apply(Make(EventType::kAddToCart, "y", kT0 + kMin, ""));
  auto buckets = tracker_->Buckets();
  ASSERT_EQ(buckets.size(), 1u);
  EXPECT_EQ(buckets[0].placement, "cart");
  EXPECT_EQ(buckets[0].variant, "B");
  EXPECT_EQ(buckets[0].counts.impressions, 1u);
  EXPECT_EQ(buckets[0].counts.add_to_carts, 1u);
}

TEST_F(KpiTrackerTest, PerUserStateIsBoundedByCountAndTtl) {
  Open({.max_lists_per_user = 3});
  for (int i = 0; i < 5; ++i) {
    Apply(Impression("L" + std::to_string(i), {"item" + std::to_string(i)}, kT0 + i * 1000));
  }
  auto user = tracker_->User("shop1", "u1");
  ASSERT_TRUE(user.ok() && *user);
  ASSERT_EQ((*user)->lists.size(), 3u);
  EXPECT_EQ((*user)->lists.front().list_id, "L2");
  // The oldest list was dropped, so its item is no longer attributed.
  Apply(Make(EventType::kAddToCart, "item0", kT0 + 10'000, ""));
  EXPECT_EQ(Totals().add_to_carts, 0u);
  // After the longest window (24 h) everything shown before is gone.
  Apply(Impression("late", {"z"}, kT0 + 25 * kHour));
  user = tracker_->User("shop1", "u1");
  ASSERT_EQ((*user)->lists.size(), 1u);
  EXPECT_EQ((*user)->lists.front().list_id, "late");
  EXPECT_LE((*user)->recent.size(), KpiOptions{}.recent_event_ids);
}

TEST_F(KpiTrackerTest, WritesRoundTripThroughARestore) {
  Apply(Impression("L1", {"a", "b"}, kT0));
  Apply(Click("L1", "a", kT0 + kMin));
  Apply(Impression("L2", {"c"}, kT0 + 2 * kHour, "u2"));
  auto before = tracker_->Buckets();

  Open();  // a restart: a new tracker reads what the batches wrote
  auto after = tracker_->Buckets();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].placement, before[i].placement);
    EXPECT_EQ(after[i].hour_ms, before[i].hour_ms);
    EXPECT_EQ(after[i].counts, before[i].counts);
  }
  // Attribution state survived too: a cart after the restart is attributed.
  Apply(Make(EventType::kAddToCart, "a", kT0 + 5 * kMin, ""));
  EXPECT_EQ(Totals().add_to_carts, 1u);
  EXPECT_EQ(Totals().clicks, 1u);
}

TEST_F(KpiTrackerTest, UncommittedStepIsNotRestored) {
  Apply(Impression("L1", {"a"}, kT0));
  tracker_->Observe(Click("L1", "a", kT0 + kMin), *batch_);
  batch_->Drop();  // the step's write failed and the process died
  Open();
  EXPECT_EQ(Totals().impressions, 1u);
  EXPECT_EQ(Totals().clicks, 0u);
}

TEST_F(KpiTrackerTest, RetriedStepCountsOnceAndRewritesItsResults) {
  Apply(Impression("L1", {"a"}, kT0));
  Event click = Click("L1", "a", kT0 + kMin);
  tracker_->Observe(click, *batch_);
  batch_->Drop();  // the step's write failed; the pipeline retries it
  tracker_->Observe(click, *batch_);
  EXPECT_GE(batch_->Count(), 2);  // the bucket and the user record again
  batch_->Commit();
  EXPECT_EQ(Totals().clicks, 1u);
  Open();
  EXPECT_EQ(Totals().clicks, 1u);
}

TEST_F(KpiTrackerTest, ForgetUserRemovesAttributionState) {
  Apply(Impression("L1", {"a"}, kT0));
  ASSERT_TRUE(tracker_->ForgetUser("shop1", "u1").ok());
  auto user = tracker_->User("shop1", "u1");
  ASSERT_TRUE(user.ok());
  EXPECT_FALSE(*user);
  std::string value;
  EXPECT_TRUE(store_->db(store::Cf::kState)
                  ->Get({}, store_->cf(store::Cf::kState), store::KpiUserKey("shop1", "u1"), &value)
                  .IsNotFound());
  Apply(Make(EventType::kAddToCart, "a", kT0 + kMin, ""));
  EXPECT_EQ(Totals().add_to_carts, 0u);
  EXPECT_EQ(Totals().impressions, 1u);  // anonymous counts stay
}

TEST_F(KpiTrackerTest, TrimDropsOldHours) {
  Open({.retention_ms = 48 * kHour});
  Apply(Impression("old", {"a"}, kT0 - 72 * kHour));
  Apply(Impression("new", {"a"}, kT0));
  ASSERT_TRUE(tracker_->Trim(kT0).ok());
  EXPECT_EQ(tracker_->Buckets().size(), 1u);
  Open({.retention_ms = 48 * kHour});
  EXPECT_EQ(tracker_->Buckets().size(), 1u);
}

TEST(KpiReportTest, QueryParametersAndTimes) {
  auto t = ParseTime("2024-05-01T12:00:00Z", "from");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, kT0);
  EXPECT_EQ(*ParseTime("2024-05-01T12", "from"), kT0);
  EXPECT_EQ(*ParseTime("1714564800000", "from"), kT0);
  EXPECT_EQ(FormatTime(kT0), "2024-05-01T12:00:00Z");
  EXPECT_EQ(ParseTime("2024-13-01", "from").status().field, "from");
  EXPECT_FALSE(ParseTime("yesterday", "to").ok());

  auto q = MakeQuery("shop1", std::nullopt, std::nullopt, std::nullopt, std::nullopt, kT0);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->to_ms - q->from_ms, 24 * kHour);
  EXPECT_EQ(q->group_by, GroupBy::kPlacement);
  EXPECT_EQ(MakeQuery("s", "2", "1", {}, {}, kT0).status().field, "from");
  EXPECT_EQ(MakeQuery("s", {}, {}, {}, std::string("colour"), kT0).status().field, "group_by");
}

TEST_F(KpiTrackerTest, ReportJsonTableAndSvg) {
  Apply(Impression("L1", {"a", "b"}, kT0));
  Apply(Impression("L2", {"a", "b"}, kT0 + kHour, "u2"));
  Apply(Click("L1", "a", kT0 + kMin));
  KpiQuery q{"shop1", kT0, kT0 + 3 * kHour, std::string("product_page"), GroupBy::kPlacement};
  auto report = tracker_->Query(q);
  ASSERT_EQ(report.series.size(), 3u);  // dense: every hour of the range
  EXPECT_EQ(report.series[2].counts.impressions, 0u);

  std::string text = ReportJson(report);
  auto v = boost::json::parse(text).as_object();
  EXPECT_EQ(v.at("totals").at("clicks").to_number<uint64_t>(), 1u);
  EXPECT_DOUBLE_EQ(v.at("totals").at("ctr").as_double(), 0.5);
  EXPECT_EQ(v.at("groups").at(0).at("placement").as_string(), "product_page");
  EXPECT_EQ(v.at("series").at(0).at("hour_iso").as_string(), "2024-05-01T12:00:00Z");

  auto parsed = ParseReportJson(text);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->totals, report.totals);
  ASSERT_EQ(parsed->groups.size(), 1u);
  EXPECT_EQ(parsed->series.size(), 3u);

  std::string table = FormatTable(*parsed);
  EXPECT_NE(table.find("product_page"), std::string::npos) << table;
  EXPECT_NE(table.find("50.00%"), std::string::npos) << table;
  std::string svg = RenderCtrSvg(*parsed);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace streamrec::kpi
