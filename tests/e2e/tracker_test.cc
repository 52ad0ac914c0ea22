// Events sent by the real Snowplow node tracker (npm @snowplow/node-tracker) become
// recommendations. Needs node and `npm ci` (scripts/setup does both).
#include <cstdio>
#include <filesystem>
#include <set>
#include <fstream>

#include "e2e_fixture.h"
#include "support/datasets.h"

namespace streamrec::e2e {
namespace {

class TrackerE2eTest : public E2eTest {
 protected:
  void SetUp() override {
    if (!HaveNodeTracker()) GTEST_SKIP() << "node_modules missing: run scripts/setup (npm ci)";
  }

  static json::object View(const std::string& duid, const std::string& product) {
    return {{"duid", duid}, {"kind", "page_view"},
            {"url", "https://shop.example/products/" + product + "?variant=1"}};
  }
  static json::object AddToCart(const std::string& duid, const std::string& product) {
    return {{"duid", duid},
            {"kind", "self_describing"},
            {"schema",
             "iglu:com.snowplowanalytics.snowplow.ecommerce/snowplow_ecommerce_action/jsonschema/1-0-2"},
            {"data", {{"type", "add_to_cart"}}},
            {"context",
             json::array{{{"schema",
                           "iglu:com.snowplowanalytics.snowplow.ecommerce/product/jsonschema/1-0-0"},
                          {"data", {{"id", product}, {"currency", "EUR"}, {"price", 19.9}}}}}}};
  }
};

TEST_F(TrackerE2eTest, PageViewsAndSelfDescribingEventsBecomeRecommendations) {
  StartServer();
  json::array events;
  for (int u = 0; u < 4; ++u) {
    std::string duid = "tracker-user-" + std::to_string(u);
    events.push_back(View(duid, "linen-shirt"));
    events.push_back(View(duid, "canvas-shoes"));
    events.push_back(AddToCart(duid, "straw-hat"));
  }
  events.push_back(View("tracker-newcomer", "linen-shirt"));
  // Batches of 5: several tp2 POSTs, each with several events.
  auto summary = SendWithTracker(events, "shop1", /*base64=*/true, 5);
  EXPECT_EQ(summary.at("failed").to_number<int64_t>(), 0) << json::serialize(summary);
  ASSERT_TRUE(WaitProcessed(13)) << Processed();
  EXPECT_EQ(Processed(), 13);

  auto history = Json(Get("/v1/users/tracker-user-0/history?tenant=shop1")).at("history").as_array();
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].at("item_id").as_string(), "linen-shirt");
  EXPECT_EQ(history[2].at("item_id").as_string(), "straw-hat");
  EXPECT_EQ(history[2].at("type").as_string(), "add_to_cart");

  auto recs = Json(Get("/v1/recommendations?user_id=tracker-newcomer&tenant=shop1&n=3"));
  EXPECT_EQ(recs.at("model").as_string(), "covisitation");
  const auto& items = recs.at("items").as_array();
  ASSERT_GE(items.size(), 2u);
  std::set<std::string> got;
  for (const auto& i : items) got.insert(std::string(i.at("item_id").as_string()));
  EXPECT_TRUE(got.count("canvas-shoes"));
  EXPECT_TRUE(got.count("straw-hat"));
  EXPECT_FALSE(got.count("linen-shirt"));
}

TEST_F(TrackerE2eTest, PlainJsonEncodingIsDecodedToo) {
  StartServer();
  json::array events = {View("plain-user", "wool-socks"), AddToCart("plain-user", "wool-socks")};
  auto summary = SendWithTracker(events, "shop1", /*base64=*/false, 1);
  EXPECT_EQ(summary.at("failed").to_number<int64_t>(), 0);
  ASSERT_TRUE(WaitProcessed(2));
  auto history = Json(Get("/v1/users/plain-user/history?tenant=shop1")).at("history").as_array();
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[1].at("type").as_string(), "add_to_cart");
  EXPECT_EQ(history[1].at("item_id").as_string(), "wool-socks");
}

}  // namespace
}  // namespace streamrec::e2e
