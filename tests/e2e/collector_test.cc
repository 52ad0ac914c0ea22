// The collector end to end: real binary, real HTTP, real RocksDB files.
#include <atomic>
#include <set>
#include <thread>

#include "e2e_fixture.h"

namespace streamrec::e2e {
namespace {

using CollectorE2eTest = E2eTest;

std::string Eid(int i) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "00000000-0000-4000-8000-%012d", i);
  return buf;
}

TEST_F(CollectorE2eTest, Tp2BatchOfNYieldsNProcessedEventsAndRecommendations) {
  StartServer();
  const int64_t t0 = 1'700'000'000'000;
  json::array batch;
  // Five shoppers each view shirt -> trousers -> belt; a sixth views only the shirt.
  const std::vector<std::string> products = {"blue-shirt", "grey-trousers", "brown-belt"};
  int i = 0;
  for (int user = 0; user < 5; ++user) {
    for (size_t p = 0; p < products.size(); ++p) {
      batch.push_back(PageView(Eid(i++), "duid-" + std::to_string(user), products[p],
                               t0 + user * 1000 + static_cast<int64_t>(p) * 10'000));
    }
  }
  batch.push_back(PageView(Eid(i++), "duid-new", "blue-shirt", t0 + 60'000));
  auto r = Post(kTp2Path, Tp2Body(batch));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json(r).at("accepted").to_number<int64_t>(), 16);
  ASSERT_TRUE(WaitProcessed(16));
  EXPECT_EQ(Processed(), 16);

  auto recs = Get("/v1/recommendations?user_id=duid-new&tenant=shop1&n=5");
  ASSERT_EQ(recs.status, 200) << recs.body;
  auto body = Json(recs);
  EXPECT_EQ(body.at("user_id").as_string(), "duid-new");
  EXPECT_EQ(body.at("model").as_string(), "covisitation");
  const auto& items = body.at("items").as_array();
  ASSERT_GE(items.size(), 2u);
  std::set<std::string> top2 = {std::string(items[0].at("item_id").as_string()),
                                std::string(items[1].at("item_id").as_string())};
  EXPECT_EQ(top2, (std::set<std::string>{"grey-trousers", "brown-belt"}));
  for (const auto& item : items) EXPECT_NE(item.at("item_id").as_string(), "blue-shirt");

  auto history = Json(Get("/v1/users/duid-0/history?tenant=shop1"));
  ASSERT_EQ(history.at("history").as_array().size(), 3u);
  EXPECT_EQ(history.at("history").as_array()[2].at("item_id").as_string(), "brown-belt");

  auto similar = Get("/v1/items/blue-shirt/similar?tenant=shop1&n=3");
  ASSERT_EQ(similar.status, 200) << similar.body;
  EXPECT_EQ(Json(similar).at("items").as_array().size(), 2u);
}

TEST_F(CollectorE2eTest, DuplicatesAreIgnoredWithinAndAcrossRequests) {
  StartServer();
  json::array batch;
  for (int i = 0; i < 10; ++i) batch.push_back(PageView(Eid(i), "u1", "item-" + std::to_string(i), 1'700'000'000'000 + i));
  batch.push_back(PageView(Eid(3), "u1", "item-3", 1'700'000'000'003));  // retry in the same batch
  auto first = Json(Post(kTp2Path, Tp2Body(batch)));
  EXPECT_EQ(first.at("accepted").to_number<int64_t>(), 10);
  EXPECT_EQ(first.at("duplicates").to_number<int64_t>(), 1);
  auto again = Json(Post(kTp2Path, Tp2Body(batch)));  // a tracker retry of the whole batch
  EXPECT_EQ(again.at("accepted").to_number<int64_t>(), 0);
  EXPECT_EQ(again.at("duplicates").to_number<int64_t>(), 11);
  ASSERT_TRUE(WaitProcessed(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Processed(), 10);
  EXPECT_EQ(Json(Get("/v1/users/u1/history?tenant=shop1")).at("history").as_array().size(), 10u);
}

struct BadCase {
  std::string name, method, target, body;
  int status;
  std::string reason, field;
};

TEST_F(CollectorE2eTest, EachClassOfBadInputGetsItsStatusABadRowAndACount) {
  StartServer("server:\n  max_body_bytes: 65536\ncollector:\n  allowed_tenants: [shop1]\n  max_batch_events: 50\n");
  auto event = PageView(Eid(1), "u1", "x", 1'700'000'000'000);
  auto without = [&](const char* key) {
    auto e = event;
    e.erase(key);
    return Tp2Body({e});
  };
  auto with = [&](const char* key, const char* value) {
    auto e = event;
    e[key] = value;
    return Tp2Body({e});
  };
  auto unstructured = [&](const char* ue_px) {
    auto e = event;
    e["e"] = "ue";
    e["ue_px"] = ue_px;
    return Tp2Body({e});
  };
  json::array too_many;
  for (int i = 0; i < 51; ++i) too_many.push_back(PageView(Eid(100 + i), "u", "x", 1));
  const std::vector<BadCase> cases = {
      {"invalid json", "POST", std::string(kTp2Path), "{not json", 400, "invalid_json", "body"},
      {"wrong schema", "POST", std::string(kTp2Path),
       R"({"schema":"iglu:com.acme/other/jsonschema/1-0-0","data":[]})", 400, "invalid_schema",
       "schema"},
      {"bad base64", "POST", std::string(kTp2Path),
       unstructured("!!!not-base64!!!"), 400, "invalid_base64", "ue_px"},
      {"bad json inside base64", "POST", std::string(kTp2Path), unstructured("bm90IGpzb24"), 400,
       "invalid_json", "ue_px"},
      {"missing eid", "POST", std::string(kTp2Path), without("eid"), 400, "missing_field", "eid"},
      {"missing user", "POST", std::string(kTp2Path), without("duid"), 400, "missing_field",
       "duid"},
      {"tenant not allowed", "POST", std::string(kTp2Path), with("aid", "intruder"), 400,
       "tenant_not_allowed", "aid"},
      {"batch too large", "POST", std::string(kTp2Path), Tp2Body(too_many), 413,
       "batch_too_large", ""},
      {"body too large", "POST", std::string(kTp2Path), std::string(70'000, 'x'), 413,
       "body_too_large", "body"},
      {"native missing user", "POST", "/v1/events",
       R"({"tenant":"shop1","event_id":"n1","type":"view","item_id":"a","timestamp":1})", 400, "missing_field",
       "user_id"},
      {"native bad type", "POST", "/v1/events",
       R"({"tenant":"shop1","event_id":"n2","type":"teleport","user_id":"u","item_id":"a","timestamp":1})", 400,
       "invalid_field", "type"},
      {"native bad timestamp", "POST", "/v1/events",
       R"({"tenant":"shop1","event_id":"n3","type":"view","user_id":"u","item_id":"a","timestamp":"soon"})", 400,
       "invalid_field", "timestamp"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = client_->Request(c.method, c.target, c.body, {{"Content-Type", "application/json"}});
    if (c.status == 413 && c.reason == "body_too_large") {
      // The server closes the connection after refusing the body; the client reconnects.
      client_ = std::make_unique<tools::HttpClient>("127.0.0.1", server_->port());
    }
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, c.status) << r->body;
    auto body = Json(*r);
    ASSERT_TRUE(body.is_object() && body.as_object().contains("error")) << r->body;
    auto err = body.at("error");
    EXPECT_EQ(err.at("reason").as_string(), c.reason) << r->body;
    if (!c.field.empty()) {
      EXPECT_EQ(err.at("field").as_string(), c.field) << r->body;
    }
    EXPECT_FALSE(err.at("message").as_string().empty());
  }
  EXPECT_EQ(Get("/v1/bad-rows?n=100").status, 401);  // an admin endpoint
  auto rows = Json(AdminRequest("GET", "/v1/bad-rows?n=100")).at("bad_rows").as_array();
  std::set<std::string> reasons;
  for (const auto& row : rows) reasons.insert(std::string(row.at("reason").as_string()));
  std::string metrics = Get("/metrics").body;
  for (const auto& c : cases) {
    EXPECT_TRUE(reasons.count(c.reason)) << "no bad row for " << c.name;
    EXPECT_NE(metrics.find("streamrec_events_rejected_total{reason=\"" + c.reason + "\"}"),
              std::string::npos)
        << c.name;
  }
  // The server is still healthy and nothing bad reached the pipeline.
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_EQ(Processed(), 0);
}

TEST_F(CollectorE2eTest, PixelGetAnswersAGifAndRecordsTheEvent) {
  StartServer();
  auto r = Get("/i?e=pv&eid=" + Eid(7) +
               "&aid=shop1&duid=px-user&url=https%3A%2F%2Fshop.example%2Fproducts%2Fred-hat&dtm=1700000000000");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("Content-Type"), "image/gif");
  EXPECT_EQ(r.body.substr(0, 6), "GIF89a");
  ASSERT_TRUE(WaitProcessed(1));
  auto history = Json(Get("/v1/users/px-user/history?tenant=shop1"));
  EXPECT_EQ(history.at("history").as_array()[0].at("item_id").as_string(), "red-hat");
}

TEST_F(CollectorE2eTest, NativeJsonObjectAndArrayAreAccepted) {
  StartServer();
  auto one = Post("/v1/events",
                  R"({"event_id":"a1","type":"view","user_id":"n1","item_id":"sku-1","timestamp":1700000000000,"tenant":"shop1"})");
  EXPECT_EQ(one.status, 200) << one.body;
  auto many = Post("/v1/events",
                   R"([{"event_id":"a2","type":"add_to_cart","user_id":"n1","item_id":"sku-2","timestamp":1700000001000,"tenant":"shop1"},
                       {"event_id":"a3","type":"purchase","user_id":"n1","item_id":"sku-2","timestamp":1700000002000,"tenant":"shop1","properties":{"price":9.5}}])");
  EXPECT_EQ(Json(many).at("accepted").to_number<int64_t>(), 2);
  ASSERT_TRUE(WaitProcessed(3));
  auto history = Json(Get("/v1/users/n1/history?tenant=shop1")).at("history").as_array();
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[1].at("type").as_string(), "add_to_cart");
  EXPECT_EQ(history[2].at("type").as_string(), "purchase");
}

TEST_F(CollectorE2eTest, ServingValidatesParametersAndFallsBackToPopularity) {
  StartServer();
  json::array batch;
  for (int i = 0; i < 6; ++i) batch.push_back(PageView(Eid(i), "u" + std::to_string(i), i < 4 ? "hit" : "other", 1'700'000'000'000 + i));
  ASSERT_EQ(Post(kTp2Path, Tp2Body(batch)).status, 200);
  ASSERT_TRUE(WaitProcessed(6));

  auto missing = Get("/v1/recommendations?n=5");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(Json(missing).at("error").at("field").as_string(), "user_id");
  auto bad_n = Get("/v1/recommendations?user_id=x&n=0");
  EXPECT_EQ(bad_n.status, 400);
  EXPECT_EQ(Json(bad_n).at("error").at("field").as_string(), "n");

  auto cold = Json(Get("/v1/recommendations?user_id=never-seen&tenant=shop1&n=2"));
  EXPECT_EQ(cold.at("model").as_string(), "popularity");
  ASSERT_EQ(cold.at("items").as_array().size(), 2u);
  EXPECT_EQ(cold.at("items").as_array()[0].at("item_id").as_string(), "hit");

  EXPECT_EQ(Get("/v1/users/never-seen/history?tenant=shop1").status, 404);
  EXPECT_EQ(Get("/v1/items/unknown/similar?tenant=shop1").status, 404);
  EXPECT_EQ(Get("/nope").status, 404);
  auto metrics = Get("/metrics");
  EXPECT_NE(metrics.body.find("streamrec_http_request_seconds_bucket{route=\"recommendations\""),
            std::string::npos);
  EXPECT_NE(metrics.body.find("streamrec_freshness_seconds"), std::string::npos);
}

TEST_F(CollectorE2eTest, CorsAllowsOnlyConfiguredOrigins) {
  StartServer("server:\n  cors_origins: [\"https://shop.example\"]\n");
  auto ok = client_->Request("OPTIONS", std::string(kTp2Path), {},
                             {{"Origin", "https://shop.example"},
                              {"Access-Control-Request-Method", "POST"},
                              {"Access-Control-Request-Headers", "content-type"}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 204);
  EXPECT_EQ(ok->Header("Access-Control-Allow-Origin"), "https://shop.example");
  EXPECT_EQ(ok->Header("Access-Control-Allow-Credentials"), "true");
  auto denied = client_->Request("OPTIONS", std::string(kTp2Path), {},
                                 {{"Origin", "https://evil.example"},
                                  {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, 403);
  EXPECT_EQ(denied->Header("Access-Control-Allow-Origin"), "");
}

TEST_F(CollectorE2eTest, KillNineDuringLoadLosesNoAcknowledgedEvent) {
  StartServer();
  constexpr int kThreads = 4;
  std::atomic<bool> stop{false};
  std::vector<std::vector<std::string>> acked(kThreads);
  std::vector<std::thread> senders;
  const uint16_t port = server_->port();
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      tools::HttpClient client("127.0.0.1", port);
      for (int i = 0; !stop; ++i) {
        std::string user = "k" + std::to_string(t) + "-" + std::to_string(i);
        std::string body = R"({"event_id":"e-)" + user + R"(","type":"view","user_id":")" + user +
                           R"(","item_id":"item-)" + std::to_string(i % 50) +
                           R"(","timestamp":1700000000000,"tenant":"shop1"})";
        auto r = client.Request("POST", "/v1/events", body, {{"Content-Type", "application/json"}});
        if (!r.ok()) break;  // the server is gone
        if (r->status == 200) acked[t].push_back(user);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  server_->Kill();
  stop = true;
  for (auto& s : senders) s.join();
  size_t total = 0;
  for (auto& a : acked) total += a.size();
  ASSERT_GT(total, 100u) << "the load did not get going";

  ASSERT_TRUE(server_->Start()) << server_->Stderr();
  client_ = std::make_unique<tools::HttpClient>("127.0.0.1", server_->port());
  ASSERT_TRUE(WaitProcessed(0));
  // Every acknowledged event is in the log: sending it again is a duplicate ...
  for (const auto& list : acked) {
    for (const auto& user : list) {
      std::string body = R"({"event_id":"e-)" + user + R"(","type":"view","user_id":")" + user +
                         R"(","item_id":"x","timestamp":1700000000000,"tenant":"shop1"})";
      auto r = Json(Post("/v1/events", body));
      ASSERT_EQ(r.at("duplicates").to_number<int64_t>(), 1) << user;
    }
  }
  // ... and was processed exactly once after recovery.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (const auto& list : acked) {
    for (const auto& user : list) {
      tools::HttpResponse h;
      do {
        h = Get("/v1/users/" + user + "/history?tenant=shop1");
        if (h.status == 200) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      } while (std::chrono::steady_clock::now() < deadline);
      ASSERT_EQ(h.status, 200) << user;
      EXPECT_EQ(Json(h).at("history").as_array().size(), 1u) << user;
    }
  }
  EXPECT_EQ(server_->Stop(), 0) << server_->Stderr();
}

}  // namespace
}  // namespace streamrec::e2e
