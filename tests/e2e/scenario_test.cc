// YAML scenarios in the real server: the classic Shopify flow fed by the real Snowplow node
// tracker, a scenario's `store` sink deciding the served lists, and hot reload under load.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "e2e_fixture.h"

namespace streamrec::e2e {
namespace {

using ScenarioE2eTest = E2eTest;

std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(std::string(STREAMREC_SOURCE_DIR) + "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

//! Per-step counts of GET /v1/scenario by node id.
std::map<std::string, json::object> StepCounts(const json::value& graph) {
  std::map<std::string, json::object> out;
  for (const auto& node : graph.at("nodes").as_array()) {
    out[std::string(node.at("id").as_string())] = node.at("counts").as_object();
  }
  return out;
}

int64_t Count(const json::object& counts, const char* kind) {
  return counts.at(kind).to_number<int64_t>();
}

TEST_F(ScenarioE2eTest, ClassicShopifyFlowFromTheNodeTrackerUpsertsMetaobjects) {
  if (!HaveNodeTracker()) GTEST_SKIP() << "node_modules missing: run scripts/setup (npm ci)";
  // The shop's Admin GraphQL API, answering as Shopify does.
  Recorder shopify(
      R"({"data":{"metaobjectUpsert":{"metaobject":{"id":"gid://shopify/Metaobject/1",)"
      R"("handle":"h"},"userErrors":[]}},"extensions":{"cost":{"requestedQueryCost":10,)"
      R"("actualQueryCost":10,"throttleStatus":{"maximumAvailable":1000.0,)"
      R"("currentlyAvailable":990,"restoreRate":50.0}}}})");
  // The shipped example, pointed at the test's shop and pushing every change at once.
  std::string yaml = ReadSourceFile("examples/classic-shopify.yaml");
  const std::string sink = "sink: {type: shopify, shop: my-shop, token_env: SHOPIFY_TOKEN, ";
  ASSERT_NE(yaml.find(sink), std::string::npos) << yaml;
  yaml.replace(yaml.find(sink), sink.size(),
               "sink: {type: shopify, shop: my-shop, token_env: E2E_SHOPIFY_TOKEN, endpoint: "
               "\"http://127.0.0.1:" +
                   std::to_string(shopify.server->port()) +
                   "/admin/api/2025-01/graphql.json\", coalesce: {interval_ms: 0}, ");
  std::ofstream(dir_.Sub("classic.yaml")) << yaml;
  setenv("E2E_SHOPIFY_TOKEN", "shpat_e2e_token", 1);
  StartServer("scenario_file: " + dir_.Sub("classic.yaml") + "\n");

  json::array events;
  auto view = [](const std::string& duid, const std::string& product) {
    return json::object{{"duid", duid},
                        {"kind", "page_view"},
                        {"url", "https://shop1.example/products/" + product + "?variant=1"}};
  };
  for (int u = 0; u < 4; ++u) {
    std::string duid = "classic-user-" + std::to_string(u);
    events.push_back(view(duid, "linen-shirt"));
    events.push_back(view(duid, "canvas-shoes"));
  }
  // Not a product page: kept by the pageviews filter, dropped for want of a slug.
  events.push_back(json::object{
      {"duid", "classic-user-0"}, {"kind", "page_view"}, {"url", "https://shop1.example/cart"}});
  auto sent = SendWithTracker(events, "shop1", /*base64=*/true, 3);
  EXPECT_EQ(sent.at("failed").to_number<int64_t>(), 0) << json::serialize(sent);
  ASSERT_TRUE(WaitProcessed(9));
  // Another shop's page view is dropped by the app id filter.
  sent = SendWithTracker(json::array{view("other-shop-user", "linen-shirt")}, "shop2", false, 1);
  EXPECT_EQ(sent.at("failed").to_number<int64_t>(), 0) << json::serialize(sent);
  ASSERT_TRUE(WaitProcessed(10));
  size_t before_newcomer = shopify.count();
  // A newcomer views the shirt: the shoes, viewed with it four times, go to their metaobject.
  sent = SendWithTracker(json::array{view("classic-newcomer", "linen-shirt")}, "shop1", false, 1);
  EXPECT_EQ(sent.at("failed").to_number<int64_t>(), 0) << json::serialize(sent);
  ASSERT_TRUE(WaitProcessed(11));
  ASSERT_TRUE(shopify.WaitFor(before_newcomer + 1)) << shopify.count();

  auto counts = StepCounts(Json(AdminRequest("GET", "/v1/scenario")));
  EXPECT_EQ(Count(counts["snowplow"], "in"), 11);
  EXPECT_EQ(Count(counts["snowplow"], "out"), 11) << "every event kept its tracker fields";
  EXPECT_EQ(Count(counts["pageviews"], "dropped"), 1) << "shop2";
  EXPECT_EQ(Count(counts["products"], "dropped"), 1) << "the cart page";
  EXPECT_EQ(Count(counts["recent"], "out"), 9);
  EXPECT_EQ(Count(counts["push"], "errors"), 0);

  // The log kept of each tracker event only the fields the scenario reads.
  auto exported = Json(AdminRequest("GET", "/v1/users/classic-newcomer/export?tenant=shop1"));
  ASSERT_EQ(exported.at("events").as_array().size(), 1u) << json::serialize(exported);
  auto raw = json::parse(exported.at("events").as_array()[0].at("raw").as_string()).as_object();
  std::vector<std::string> kept;
  for (const auto& field : raw) kept.emplace_back(field.key());
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(kept, std::vector<std::string>({"aid", "duid", "e", "schema", "url"}))
      << json::serialize(raw);

  std::lock_guard lock(shopify.mu);
  bool newcomer_got_shoes = false;
  for (const auto& r : shopify.requests) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/admin/api/2025-01/graphql.json");
    bool token = false;
    for (const auto& [k, v] : r.headers)
      token |= k == "X-Shopify-Access-Token" && v == "shpat_e2e_token";
    EXPECT_TRUE(token);
    auto body = json::parse(r.body);
    EXPECT_NE(std::string(body.at("query").as_string()).find("metaobjectUpsert"),
              std::string::npos);
    const auto& variables = body.at("variables");
    std::string handle(variables.at("handle").at("handle").as_string());
    EXPECT_TRUE(handle.starts_with("customer-classic-")) << handle;
    if (handle != "customer-classic-newcomer") continue;
    auto value =
        json::parse(variables.at("metaobject").at("fields").as_array()[0].at("value").as_string());
    for (const auto& id : value.as_array()) newcomer_got_shoes |= id.as_string() == "canvas-shoes";
  }
  EXPECT_TRUE(newcomer_got_shoes);
}

TEST_F(ScenarioE2eTest, StoreSinkDecidesTheServedLists) {
  // Popular items of the tenant, stored under the scenario's own model name.
  std::ofstream(dir_.Sub("popular.yaml"))
      << "name: popular-lists\nversion: 1\nsource: {type: events}\nsteps:\n"
         "  - {id: views, type: filter, expr: \"#input.type == 'view'\"}\n"
         "  - {id: reco, type: recommend, model: popularity, n: 5, output: recs}\n"
         "  - id: save\n    type: sink\n    sink: {type: store}\n"
         "    value: \"{user: #input.user_id, items: #recs, model: 'scenario-popular'}\"\n";
  StartServer("scenario_file: " + dir_.Sub("popular.yaml") + "\n");
  json::array batch;
  int i = 0;
  for (const char* user : {"a", "b", "c"}) {
    for (const char* item : {"kettle", "toaster"}) {
      batch.push_back(PageView("cccccccc-0000-4000-8000-00000000000" + std::to_string(i),
                               std::string("store-") + user, item, 1'700'000'000'000 + i));
      ++i;
    }
  }
  ASSERT_EQ(Post(kTp2Path, Tp2Body(batch)).status, 200);
  ASSERT_TRUE(WaitProcessed(6));
  auto list = Json(Get("/v1/recommendations?tenant=shop1&user_id=store-c"));
  EXPECT_EQ(list.at("model").as_string(), "scenario-popular") << json::serialize(list);
  ASSERT_FALSE(list.at("items").as_array().empty()) << json::serialize(list);

  // A scenario without a store sink hands the lists back to the built-in path.
  std::string logging =
      "name: popular-lists\nversion: 2\nsource: {type: events}\nsteps:\n"
      "  - {id: out, type: sink, sink: {type: null}}\n";
  ASSERT_EQ(AdminRequest("PUT", "/v1/scenario", logging).status, 200);
  ASSERT_EQ(Post(kTp2Path, Tp2Body({PageView("cccccccc-0000-4000-8000-000000000099", "store-c",
                                             "kettle", 1'700'000'001'000)}))
                .status,
            200);
  ASSERT_TRUE(WaitProcessed(7));
  list = Json(Get("/v1/recommendations?tenant=shop1&user_id=store-c"));
  EXPECT_NE(list.at("model").as_string(), "scenario-popular") << json::serialize(list);
}

TEST_F(ScenarioE2eTest, WindowsSurviveARestartAndNothingIsEmittedTwice) {
  std::string sink_path = dir_.Sub("windows.jsonl");
  std::ofstream(dir_.Sub("windows.yaml"))
      << "name: windows\nversion: 1\nsource: {type: events}\nsteps:\n"
         "  - id: recent\n    type: window\n    size: 5m\n    group_by: \"#input.user_id\"\n"
         "    aggregate: {items: {list: \"#input.item_id\"}}\n    output: win\n"
         "  - id: out\n    type: sink\n    sink: {type: log, path: \"" +
             sink_path +
             "\"}\n"
             "    value: \"{user: #input.user_id, items: #win.items}\"\n";
  StartServer("scenario_file: " + dir_.Sub("windows.yaml") + "\n");
  const int64_t t0 = common::NowMs() - 60'000;
  json::array before;
  int i = 0;
  for (const char* item : {"apron", "whisk", "ladle"}) {
    before.push_back(PageView("eeeeeeee-0000-4000-8000-00000000000" + std::to_string(i),
                              "restart-user", item, t0 + 1000 * i));
    ++i;
  }
  ASSERT_EQ(Post(kTp2Path, Tp2Body(before)).status, 200);
  ASSERT_TRUE(WaitProcessed(3));

  ASSERT_EQ(server_->Stop(), 0) << server_->Stderr();
  ASSERT_TRUE(server_->Start()) << server_->Stderr();
  client_ = std::make_unique<tools::HttpClient>("127.0.0.1", server_->port());
  ASSERT_EQ(Post(kTp2Path, Tp2Body({PageView("eeeeeeee-0000-4000-8000-000000000009", "restart-user",
                                             "sieve", t0 + 5000)}))
                .status,
            200);
  ASSERT_TRUE(WaitProcessed(1));

  std::ifstream in(sink_path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u) << "the warm-up replay emits nothing";
  auto counts = StepCounts(Json(AdminRequest("GET", "/v1/scenario")));
  EXPECT_EQ(Count(counts["out"], "in"), 1) << "nor counts";
  auto items = json::parse(lines.back()).at("value").at("items");
  EXPECT_EQ(json::serialize(items), R"(["apron","whisk","ladle","sieve"])")
      << "the window was rebuilt from the log";
}

TEST_F(ScenarioE2eTest, HotReloadUnderLoadLosesAndRepeatsNothing) {
  StartServer();
  std::string sink_path = dir_.Sub("reload.jsonl");
  auto version = [&](int v, const std::string& filter) {
    return "name: reload\nversion: " + std::to_string(v) +
           "\nsource: {type: events}\nsteps:\n"
           "  - {id: all, type: filter, expr: \"" +
           filter +
           "\"}\n"
           "  - {id: out, type: sink, sink: {type: log, path: \"" +
           sink_path + "\"}}\n";
  };
  ASSERT_EQ(AdminRequest("PUT", "/v1/scenario", version(1, "#input.event_id != null")).status, 200);

  constexpr int kBatches = 60, kPerBatch = 10;
  std::atomic<bool> sending_failed{false};
  std::thread sender([&] {
    tools::HttpClient client("127.0.0.1", server_->port());
    for (int b = 0; b < kBatches; ++b) {
      json::array batch;
      for (int e = 0; e < kPerBatch; ++e) {
        char eid[40];
        std::snprintf(eid, sizeof(eid), "dddddddd-0000-4000-8000-%012d", b * kPerBatch + e);
        batch.push_back(PageView(eid, "reload-user-" + std::to_string(e),
                                 "item-" + std::to_string(b % 7), 1'700'000'000'000 + b * 100 + e));
      }
      auto r =
          client.Request("POST", kTp2Path, Tp2Body(batch), {{"Content-Type", "application/json"}});
      if (!r.ok() || r->status != 200) sending_failed = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  // While events flow: broken versions are refused, valid ones swap in (all of them keep every
  // event, so each event must be logged exactly once whichever version ran it).
  for (int v = 2; v <= 7; ++v) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_EQ(AdminRequest("PUT", "/v1/scenario", version(v, "#input.evnt_id != null")).status,
              400);
    EXPECT_EQ(AdminRequest("PUT", "/v1/scenario", version(v, "#input.tenant != null")).status, 200);
  }
  sender.join();
  ASSERT_FALSE(sending_failed);
  ASSERT_TRUE(WaitProcessed(kBatches * kPerBatch, 30000)) << Processed();

  std::ifstream lines(sink_path);
  std::multiset<std::string> ids;
  for (std::string line; std::getline(lines, line);) {
    ids.insert(std::string(json::parse(line).at("event_id").as_string()));
  }
  EXPECT_EQ(ids.size(), size_t{kBatches * kPerBatch}) << "nothing lost, nothing twice";
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  auto history = Json(AdminRequest("GET", "/v1/scenario/versions"));
  EXPECT_NE(json::serialize(history).find("\"version\":7"), std::string::npos)
      << json::serialize(history);
}

}  // namespace
}  // namespace streamrec::e2e
