// Webhook and Shopify sinks against a real local server (MiniHttpServer on 127.0.0.1:0)
// that records requests and answers like the destination would, Shopify-shaped GraphQL
// included. Backoffs and intervals are milliseconds so the suite stays fast.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/metrics.h"
#include "sinks/sink.h"
#include "support/temp_dir.h"
#include "tools/mini_http_server.h"

namespace streamrec::sinks {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr char kSecret[] = "shpat_TOPSECRET_42";

struct Seen {
  tools::ServerRequest request;
  int64_t at_ns;
};

// A recording server whose answers the test scripts per request (index from 0).
class FakeShop {
 public:
  using Answer = std::function<tools::HttpResponse(const tools::ServerRequest&, int index)>;

  explicit FakeShop(Answer answer) : answer_(std::move(answer)) {
    auto server = tools::MiniHttpServer::Start(
        {.threads = 2, .handler = [this](const tools::ServerRequest& req) {
           int index;
           {
             std::lock_guard lock(mu_);
             index = static_cast<int>(seen_.size());
             seen_.push_back({req, common::MonoNs()});
           }
           return answer_(req, index);
         }});
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return seen_.size();
  }
  bool WaitFor(size_t n, std::chrono::milliseconds limit = 5s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (count() < n) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }

 private:
  Answer answer_;
  std::mutex mu_;
  std::vector<Seen> seen_;
  std::unique_ptr<tools::MiniHttpServer> server_;
};

tools::HttpResponse Reply(int status, std::string body, tools::HeaderList headers = {}) {
  return {status, std::move(body), std::move(headers)};
}

// Shopify-shaped answers (see docs/SINKS.md).
std::string CostJson(double available, double maximum = 1000, double restore = 50,
                     bool executed = true) {
  return R"("extensions":{"cost":{"requestedQueryCost":10,"actualQueryCost":)" +
         std::string(executed ? "10" : "null") + R"(,"throttleStatus":{"maximumAvailable":)" +
         std::to_string(maximum) + R"(,"currentlyAvailable":)" + std::to_string(available) +
         R"(,"restoreRate":)" + std::to_string(restore) + "}}}";
}
std::string ShopifyOk(const std::string& handle, double available = 990) {
  return R"({"data":{"metaobjectUpsert":{"metaobject":{"id":"gid://shopify/Metaobject/1",)"
         R"("handle":")" +
         handle + R"("},"userErrors":[]}},)" + CostJson(available) + "}";
}
std::string ShopifyThrottled(double available, double restore) {
  return R"({"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED",)"
         R"("documentation":"https://shopify.dev/api/usage/rate-limits"}}],)" +
         CostJson(available, 1000, restore, false) + "}";
}
std::string ShopifyUserErrors() {
  return R"({"data":{"metaobjectUpsert":{"metaobject":null,"userErrors":[{"field":)"
         R"(["metaobject","fields","0","value"],"message":"Value is invalid JSON",)"
         R"("code":"INVALID_VALUE"}]}},)" +
         CostJson(990) + "}";
}

struct Captured {
  std::mutex mu;
  std::vector<std::string> dead_letters;
  std::vector<std::string> logs;
  std::vector<std::string> DeadLetters() {
    std::lock_guard lock(mu);
    return dead_letters;
  }
};

Deps TestDeps(common::Registry& metrics, Captured& captured) {
  Deps deps;
  deps.metrics = &metrics;
  deps.env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "HOOK_KEY" || name == "SHOPIFY_TOKEN") return std::string(kSecret);
    return std::nullopt;
  };
  deps.dead_letter = [&captured](const std::string& line) {
    std::lock_guard lock(captured.mu);
    captured.dead_letters.push_back(line);
  };
  deps.log = [&captured](const std::string& line) {
    std::lock_guard lock(captured.mu);
    captured.logs.push_back(line);
  };
  return deps;
}

Update MakeUpdate(std::string user, std::vector<std::string> ids) {
  Update u{"shop1", std::move(user), {}, "covisitation", 1714564800000};
  double score = 1.0;
  for (auto& id : ids) u.items.push_back({std::move(id), score /= 2});
  return u;
}

json::object WebhookConfig(FakeShop& shop, const std::string& extra = "") {
  std::string text = R"({"type": "webhook", "name": "hook", "url": ")" +
                     shop.Url("/hook/{{user_id}}?tenant={{tenant}}") + R"(",
      "headers": {"Authorization": "Bearer {{env.HOOK_KEY}}"},
      "body": "{\"user\": {{user_id}}, \"items\": {{items_json}}, \"model\": {{model}}}",
      "retry": {"max_attempts": 4, "initial_backoff_ms": 20, "max_backoff_ms": 100},
      "coalesce": {"interval_ms": 0}, "senders": 2)" +
                     extra + "}";
  return json::parse(text).as_object();
}

json::object ShopifyConfig(FakeShop& shop, const std::string& extra = "") {
  std::string text = R"({"type": "shopify", "name": "shopify", "endpoint": ")" +
                     shop.Url("/admin/api/2025-01/graphql.json") + R"(",
      "metaobject_type": "streamrec_recs",
      "retry": {"max_attempts": 4, "initial_backoff_ms": 20, "max_backoff_ms": 100},
      "coalesce": {"interval_ms": 0})" +
                     extra + "}";
  return json::parse(text).as_object();
}

uint64_t Count(common::Registry& m, const std::string& name, const std::string& sink) {
  return m.CounterValue(name, {{"sink", sink}});
}

TEST(WebhookSinkTest, RendersUrlHeadersAndBody) {
  FakeShop shop([](const tools::ServerRequest&, int) { return Reply(200, "{}"); });
  common::Registry metrics;
  Captured captured;
  auto sink = MakeSink(WebhookConfig(shop), TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  (*sink)->Push(MakeUpdate("user 7", {"p1", "p2"}));
  ASSERT_TRUE(shop.WaitFor(1));
  (*sink)->Stop(1s);
  auto req = shop.seen().at(0).request;
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/hook/user%207?tenant=shop1");
  auto auth = std::find_if(req.headers.begin(), req.headers.end(),
                           [](auto& h) { return h.first == "Authorization"; });
  ASSERT_NE(auth, req.headers.end());
  EXPECT_EQ(auth->second, std::string("Bearer ") + kSecret);
  json::value body = json::parse(req.body);
  EXPECT_EQ(body.at("user"), "user 7");
  EXPECT_EQ(body.at("items"), (json::array{"p1", "p2"}));
  EXPECT_EQ(body.at("model"), "covisitation");
  EXPECT_EQ(Count(metrics, "streamrec_sink_pushes_ok_total", "hook"), 1u);
}

TEST(WebhookSinkTest, RetriesServerErrorsWithBackoff) {
  FakeShop shop([](const tools::ServerRequest&, int i) {
    return i < 2 ? Reply(503, "busy") : Reply(200, "{}");
  });
  common::Registry metrics;
  Captured captured;
  auto sink = MakeSink(WebhookConfig(shop), TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok());
  (*sink)->Push(MakeUpdate("u1", {"p1"}));
  ASSERT_TRUE(shop.WaitFor(3));
  (*sink)->Stop(1s);
  auto seen = shop.seen();
  ASSERT_EQ(seen.size(), 3u);
  // Backoff 20 ms then 40 ms, each with jitter down to half.
  EXPECT_GE(seen[1].at_ns - seen[0].at_ns, 9'000'000);
  EXPECT_GE(seen[2].at_ns - seen[1].at_ns, 19'000'000);
  EXPECT_EQ(seen[2].request.body, seen[0].request.body);
  EXPECT_EQ(Count(metrics, "streamrec_sink_retries_total", "hook"), 2u);
  EXPECT_EQ(Count(metrics, "streamrec_sink_pushes_ok_total", "hook"), 1u);
  EXPECT_TRUE(captured.DeadLetters().empty());
}

TEST(WebhookSinkTest, Honours429RetryAfter) {
  FakeShop shop([](const tools::ServerRequest&, int i) {
    return i == 0 ? Reply(429, "slow down", {{"Retry-After", "0.3"}}) : Reply(200, "{}");
  });
  common::Registry metrics;
  Captured captured;
  auto sink = MakeSink(WebhookConfig(shop), TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok());
  (*sink)->Push(MakeUpdate("u1", {"p1"}));
  ASSERT_TRUE(shop.WaitFor(2));
  (*sink)->Stop(1s);
  auto seen = shop.seen();
  EXPECT_GE(seen[1].at_ns - seen[0].at_ns, 290'000'000);  // not the 20 ms backoff
  EXPECT_EQ(Count(metrics, "streamrec_sink_throttled_total", "hook"), 1u);
  EXPECT_EQ(Count(metrics, "streamrec_sink_pushes_ok_total", "hook"), 1u);
}

TEST(WebhookSinkTest, DeadLettersAfterLastAttemptWithSecretsMasked) {
  // The server echoes the credential it got, as some error pages do.
  FakeShop shop([](const tools::ServerRequest& req, int) {
    std::string auth;
    for (auto& [k, v] : req.headers) {
      if (k == "Authorization") auth = v;
    }
    return Reply(500, "boom, bad credential " + auth);
  });
  testing::TempDir dir;
  common::Registry metrics;
  Captured captured;
  auto sink = MakeSink(
      WebhookConfig(shop, R"(, "dead_letter": {"path": ")" + dir.Sub("dead.jsonl") + "\"}"),
      TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok());
  (*sink)->Push(MakeUpdate("u1", {"p1", "p2"}));
  ASSERT_TRUE(shop.WaitFor(4));
  (*sink)->Stop(1s);
  EXPECT_EQ(shop.count(), 4u);  // max_attempts
  auto lines = captured.DeadLetters();
  ASSERT_EQ(lines.size(), 1u);
  json::value rec = json::parse(lines[0]);
  EXPECT_EQ(rec.at("reason"), "retries_exhausted");
  EXPECT_EQ(rec.at("attempts"), 4);
  EXPECT_EQ(rec.at("user_id"), "u1");
  EXPECT_EQ(rec.at("http_status"), 500);
  EXPECT_EQ(rec.at("items"), (json::array{"p1", "p2"}));
  EXPECT_NE(lines[0].find("Bearer ***"), std::string::npos) << lines[0];
  std::ifstream file(dir.Sub("dead.jsonl"));
  std::string from_file;
  std::getline(file, from_file);
  EXPECT_EQ(from_file, lines[0]);
  std::lock_guard lock(captured.mu);
  ASSERT_FALSE(captured.logs.empty());
  for (const auto& line : captured.logs) EXPECT_EQ(line.find(kSecret), std::string::npos);
  for (const auto& line : captured.dead_letters) EXPECT_EQ(line.find(kSecret), std::string::npos);
  EXPECT_EQ(Count(metrics, "streamrec_sink_dead_letters_total", "hook"), 1u);
  EXPECT_EQ(Count(metrics, "streamrec_sink_pushes_failed_total", "hook"), 1u);
  EXPECT_EQ(Count(metrics, "streamrec_sink_retries_total", "hook"), 3u);
}

TEST(WebhookSinkTest, ClientErrorsAreNotRetried) {
  FakeShop shop([](const tools::ServerRequest&, int) { return Reply(400, "bad"); });
  common::Registry metrics;
  Captured captured;
  auto sink = MakeSink(WebhookConfig(shop), TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok());
  (*sink)->Push(MakeUpdate("u1", {"p1"}));
  ASSERT_TRUE(shop.WaitFor(1));
  (*sink)->Stop(1s);
  EXPECT_EQ(shop.count(), 1u);
  ASSERT_EQ(captured.DeadLetters().size(), 1u);
  EXPECT_EQ(json::parse(captured.DeadLetters()[0]).at("reason"), "http_400");
}

TEST(WebhookSinkTest, CoalescesRapidUpdatesAndSkipsUnchangedLists) {
  FakeShop shop([](const tools::ServerRequest&, int) { return Reply(200, "{}"); });
  common::Registry metrics;
  Captured captured;
  auto config = WebhookConfig(shop);
  config["coalesce"] = json::object{{"interval_ms", 300}};
  auto sink = MakeSink(config, TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok());
  for (int i = 0; i < 10; ++i) (*sink)->Push(MakeUpdate("u1", {"p" + std::to_string(i)}));
  std::this_thread::sleep_for(500ms);  // past one interval
  ASSERT_GE(shop.count(), 1u);
  EXPECT_LE(shop.count(), 2u);
  EXPECT_EQ(json::parse(shop.seen().back().request.body).at("items"), (json::array{"p9"}));
  size_t before = shop.count();
  (*sink)->Push(MakeUpdate("u1", {"p9"}));  // what the shop already has
  std::this_thread::sleep_for(400ms);
  (*sink)->Stop(1s);
  EXPECT_EQ(shop.count(), before);
  EXPECT_GE(Count(metrics, "streamrec_sink_coalesced_total", "hook"), 8u);
  EXPECT_EQ(Count(metrics, "streamrec_sink_unchanged_total", "hook"), 1u);
}

TEST(WebhookSinkTest, StopFlushesPendingWithinTheDeadline) {
  FakeShop shop([](const tools::ServerRequest&, int) { return Reply(200, "{}"); });
  common::Registry metrics;
  Captured captured;
  auto config = WebhookConfig(shop);
  config["coalesce"] = json::object{{"interval_ms", 60'000}};
  auto sink = MakeSink(config, TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok());
  (*sink)->Push(MakeUpdate("u1", {"a"}));
  ASSERT_TRUE(shop.WaitFor(1));
  (*sink)->Push(MakeUpdate("u1", {"b"}));  // waits a minute for its interval...
  auto start = std::chrono::steady_clock::now();
  (*sink)->Stop(2s);  // ...but Stop() sends it now
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(shop.count(), 2u);
  (*sink)->Push(MakeUpdate("u1", {"c"}));
  EXPECT_EQ(Count(metrics, "streamrec_sink_dropped_total", "hook"), 1u);
}

TEST(ShopifySinkTest, UpsertsTheMetaobjectWithGraphQL) {
  FakeShop shop(
      [](const tools::ServerRequest&, int) { return Reply(200, ShopifyOk("customer-u1")); });
  common::Registry metrics;
  Captured captured;
  auto sink = MakeSink(ShopifyConfig(shop), TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  (*sink)->Push(MakeUpdate("u1", {"123", "gid://shopify/Product/456"}));
  ASSERT_TRUE(shop.WaitFor(1));
  (*sink)->Stop(1s);
  auto req = shop.seen().at(0).request;
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/admin/api/2025-01/graphql.json");
  bool token = false;
  for (auto& [k, v] : req.headers) token |= k == "X-Shopify-Access-Token" && v == kSecret;
  EXPECT_TRUE(token);
  json::value body = json::parse(req.body);
  EXPECT_NE(std::string(body.at("query").as_string()).find("metaobjectUpsert(handle: $handle"),
            std::string::npos);
  const auto& vars = body.at("variables");
  EXPECT_EQ(vars.at("handle").at("type"), "streamrec_recs");
  EXPECT_EQ(vars.at("handle").at("handle"), "customer-u1");
  const auto& field = vars.at("metaobject").at("fields").at(0);
  EXPECT_EQ(field.at("key"), "products");
  EXPECT_EQ(json::parse(field.at("value").as_string()),
            (json::array{"gid://shopify/Product/123", "gid://shopify/Product/456"}));
  EXPECT_EQ(Count(metrics, "streamrec_sink_pushes_ok_total", "shopify"), 1u);
}

TEST(ShopifySinkTest, UserErrorsAreNotRetried) {
  FakeShop shop([](const tools::ServerRequest&, int) { return Reply(200, ShopifyUserErrors()); });
  common::Registry metrics;
  Captured captured;
  auto sink = MakeSink(ShopifyConfig(shop), TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok());
  (*sink)->Push(MakeUpdate("u1", {"1"}));
  ASSERT_TRUE(shop.WaitFor(1));
  (*sink)->Stop(1s);
  EXPECT_EQ(shop.count(), 1u);
  auto lines = captured.DeadLetters();
  ASSERT_EQ(lines.size(), 1u);
  json::value rec = json::parse(lines[0]);
  EXPECT_EQ(rec.at("reason"), "user_errors");
  EXPECT_NE(std::string(rec.at("detail").as_string()).find("INVALID_VALUE"), std::string::npos);
  EXPECT_EQ(Count(metrics, "streamrec_sink_retries_total", "shopify"), 0u);
}

TEST(ShopifySinkTest, ThrottledIsRetriedOnceTheBudgetRefills) {
  // The shop says: 0 points left, 100 restored per second -> 10 points in 100 ms.
  FakeShop shop([](const tools::ServerRequest&, int i) {
    return Reply(200, i == 0 ? ShopifyThrottled(0, 100) : ShopifyOk("customer-u1"));
  });
  common::Registry metrics;
  Captured captured;
  auto sink = MakeSink(ShopifyConfig(shop), TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok());
  (*sink)->Push(MakeUpdate("u1", {"1"}));
  ASSERT_TRUE(shop.WaitFor(2));
  (*sink)->Stop(1s);
  auto seen = shop.seen();
  EXPECT_GE(seen[1].at_ns - seen[0].at_ns, 90'000'000);
  EXPECT_EQ(Count(metrics, "streamrec_sink_throttled_total", "shopify"), 1u);
  EXPECT_EQ(Count(metrics, "streamrec_sink_pushes_ok_total", "shopify"), 1u);
  EXPECT_TRUE(captured.DeadLetters().empty());
}

TEST(ShopifySinkTest, OtherGraphQLErrorsFailWithoutRetry) {
  FakeShop shop([](const tools::ServerRequest&, int) {
    return Reply(200, R"({"errors":[{"message":"Access denied for metaobjectUpsert field.",)"
                      R"("extensions":{"code":"ACCESS_DENIED"}}]})");
  });
  common::Registry metrics;
  Captured captured;
  auto sink = MakeSink(ShopifyConfig(shop), TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok());
  (*sink)->Push(MakeUpdate("u1", {"1"}));
  ASSERT_TRUE(shop.WaitFor(1));
  (*sink)->Stop(1s);
  EXPECT_EQ(shop.count(), 1u);
  ASSERT_EQ(captured.DeadLetters().size(), 1u);
  EXPECT_EQ(json::parse(captured.DeadLetters()[0]).at("reason"), "graphql_errors");
}

TEST(ShopifySinkTest, BurstStaysWithinTheRateBudget) {
  // The fake shop runs Shopify's leaky bucket (100 points, 200/s restored, 10 per
  // upsert) and answers THROTTLED when it would overdraw.
  constexpr double kMax = 100, kRestore = 200, kCost = 10;
  std::mutex mu;
  double points = kMax;
  int64_t last_ns = common::MonoNs();
  int throttled = 0;
  FakeShop shop([&](const tools::ServerRequest&, int) {
    std::lock_guard lock(mu);
    int64_t now = common::MonoNs();
    points = std::min(kMax, points + (now - last_ns) / 1e9 * kRestore);
    last_ns = now;
    if (points < kCost) {
      ++throttled;
      return Reply(200, ShopifyThrottled(points, kRestore));
    }
    points -= kCost;
    return Reply(200, R"({"data":{"metaobjectUpsert":{"metaobject":{"id":"gid://shopify/)"
                      R"(Metaobject/1","handle":"h"},"userErrors":[]}},)" +
                          CostJson(points, kMax, kRestore) + "}");
  });
  common::Registry metrics;
  Captured captured;
  auto sink = MakeSink(ShopifyConfig(shop, R"(, "senders": 4,
      "rate": {"capacity": 100, "restore_per_s": 200, "cost": 10})"),
                       TestDeps(metrics, captured));
  ASSERT_TRUE(sink.ok());
  constexpr int kUsers = 40;
  for (int i = 0; i < kUsers; ++i) (*sink)->Push(MakeUpdate("u" + std::to_string(i), {"1"}));
  ASSERT_TRUE(shop.WaitFor(kUsers, 10s));
  (*sink)->Stop(2s);
  auto seen = shop.seen();
  // In any 1 s window: the burst (100 / 10) plus one second of restore (200 / 10).
  size_t worst = 0;
  for (size_t i = 0; i < seen.size(); ++i) {
    size_t n = 0;
    for (size_t j = i; j < seen.size() && seen[j].at_ns - seen[i].at_ns < 1'000'000'000; ++j) ++n;
    worst = std::max(worst, n);
  }
  EXPECT_LE(worst, 30u);
  // 40 upserts = 400 points: 100 at once, 300 at 200/s -> at least ~1.5 s.
  EXPECT_GE(seen.back().at_ns - seen.front().at_ns, 1'400'000'000);
  EXPECT_EQ(Count(metrics, "streamrec_sink_pushes_ok_total", "shopify"), uint64_t{kUsers});
  EXPECT_EQ(throttled, 0);
  EXPECT_GT(Count(metrics, "streamrec_sink_budget_waits_total", "shopify"), 0u);
}

TEST(LogSinkTest, WritesJsonLines) {
  testing::TempDir dir;
  auto sink = MakeSink(
      json::parse(R"({"type": "log", "path": ")" + dir.Sub("recs.jsonl") + "\"}").as_object());
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  (*sink)->Push(MakeUpdate("u1", {"a", "b"}));
  (*sink)->Stop(0ms);
  std::ifstream file(dir.Sub("recs.jsonl"));
  std::string line;
  ASSERT_TRUE(std::getline(file, line));
  json::value rec = json::parse(line);
  EXPECT_EQ(rec.at("user_id"), "u1");
  EXPECT_EQ(rec.at("items").at(1).at("id"), "b");
}

}  // namespace
}  // namespace streamrec::sinks
