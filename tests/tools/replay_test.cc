#include "tools/replay.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <mutex>
#include <regex>
#include <set>

#include "common/clock.h"
#include "support/datasets.h"
#include "tools/mini_http_server.h"

namespace streamrec::tools {
namespace {

namespace json = boost::json;

std::vector<Click> SampleClicks() {
  return {{"s1", "i1", 1'000, 0}, {"s2", "i\"2", 2'000, 1}, {"s1", "i3", 3'000, 2}};
}

TEST(ReplayPayloadTest, EventIdsAreDeterministicUniqueUuidV4) {
  const std::regex uuid_v4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> ids;
  for (uint64_t row = 0; row < 100'000; ++row) {
    std::string id = EventId("diginetica-srgnn/train_sessions.txt", row);
    if (row < 100) {
      EXPECT_TRUE(std::regex_match(id, uuid_v4)) << id;
    }
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 100'000u);
  EXPECT_EQ(EventId("k", 7), EventId("k", 7));
  EXPECT_NE(EventId("k", 7), EventId("other", 7));
}

TEST(ReplayPayloadTest, Tp2BodyIsValidSnowplowPayload) {
  auto clicks = SampleClicks();
  PayloadOptions options;
  options.tenant = "shop1";
  options.user_prefix = "u-";
  options.dataset_key = "test";
  options.time_offset_ms = 10;
  options.sent_ms = 5'000;
  std::string body = BuildTp2Body(clicks, options);
  json::value v = json::parse(body);
  EXPECT_EQ(v.at("schema").as_string(), kTp2Schema);
  const auto& data = v.at("data").as_array();
  ASSERT_EQ(data.size(), 3u);
  std::set<std::string> eids;
  for (const auto& e : data) {
    for (const auto& [key, value] : e.as_object()) {
      EXPECT_TRUE(value.is_string()) << "tp2 values are strings: " << key;
    }
    eids.insert(std::string(e.at("eid").as_string()));
    EXPECT_EQ(e.at("e").as_string(), "pv");
    EXPECT_EQ(e.at("aid").as_string(), "shop1");
    EXPECT_EQ(e.at("stm").as_string(), "5000");
    EXPECT_EQ(e.at("p").as_string(), "web");
  }
  EXPECT_EQ(eids.size(), 3u);
  EXPECT_EQ(data[0].at("duid").as_string(), "u-s1");
  EXPECT_EQ(data[0].at("dtm").as_string(), "1010");
  EXPECT_EQ(data[1].at("url").as_string(), "https://shop.example/products/i\"2");
  EXPECT_EQ(data[0].at("sid").as_string(), data[2].at("sid").as_string());
  EXPECT_NE(data[0].at("sid").as_string(), data[1].at("sid").as_string());
  EXPECT_EQ(data[0].at("eid").as_string(), EventId("test", 0));
  // Same input, same ids.
  EXPECT_EQ(BuildTp2Body(clicks, options), body);
}

TEST(ReplayPayloadTest, JsonBodyIsNativeEventArray) {
  auto clicks = SampleClicks();
  PayloadOptions options;
  options.dataset_key = "test";
  json::value v = json::parse(BuildJsonBody(clicks, options));
  const auto& events = v.as_array();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].at("type").as_string(), "view");
  EXPECT_EQ(events[2].at("user_id").as_string(), "s1");
  EXPECT_EQ(events[2].at("item_id").as_string(), "i3");
  EXPECT_EQ(events[2].at("timestamp").as_int64(), 3'000);
  EXPECT_EQ(events[2].at("tenant").as_string(), "demo");
  EXPECT_EQ(events[2].at("event_id").as_string(), EventId("test", 2));
}

TEST(ReplayPayloadTest, QuantileNearestRank) {
  std::vector<double> v = {5, 1, 4, 2, 3};
  EXPECT_EQ(Quantile(v, 0.5), 3);
  EXPECT_EQ(Quantile(v, 0.99), 5);
  std::vector<double> empty;
  EXPECT_EQ(Quantile(empty, 0.5), 0);
}

// Replays a real file against an in-process server that records what arrives.
TEST(ReplayTest, SendsEveryEventOnceInBatches) {
  auto path =
      testing::DatasetPath("yoochoose-clicks-100k-sessionrec/yoochoose-clicks-100k_test.txt.gz");
  if (!path) GTEST_SKIP() << "shared datasets not present";
  std::mutex mu;
  std::set<std::string> eids;
  std::atomic<int> bad{0};
  int64_t max_dtm = 0;
  MiniHttpServerOptions server_options;
  server_options.handler = [&](const ServerRequest& req) {
    if (req.method != "POST" || req.target != kTp2Path) ++bad;
    json::value v = json::parse(req.body);
    std::lock_guard lock(mu);
    for (const auto& e : v.at("data").as_array()) {
      eids.insert(std::string(e.at("eid").as_string()));
      max_dtm = std::max<int64_t>(max_dtm, std::stoll(std::string(e.at("dtm").as_string())));
    }
    return HttpResponse{200, "{}", {}};
  };
  auto server = MiniHttpServer::Start(server_options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();

  ReplayOptions options;
  options.url = "http://127.0.0.1:" + std::to_string((*server)->port());
  options.file = *path;
  options.batch = 7;
  options.concurrency = 3;
  options.limit = 1'000;
  options.progress = false;
  const int64_t before = common::NowMs();
  auto report = Replay(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->events, 1'000u);
  EXPECT_EQ(report->requests, 143u);  // ceil(1000 / 7)
  EXPECT_EQ(report->errors, 0u);
  EXPECT_EQ(eids.size(), 1'000u);
  EXPECT_EQ(bad.load(), 0);
  // Shifted so that the last event is "now".
  EXPECT_GE(max_dtm, before - 1'000);
  EXPECT_LE(max_dtm, common::NowMs());
  EXPECT_NE(FormatReport(*report).find("events 1000 count"), std::string::npos);
}

TEST(ReplayTest, CountsHttpErrorsAndFailsWhenUnreachable) {
  auto path =
      testing::DatasetPath("yoochoose-clicks-100k-sessionrec/yoochoose-clicks-100k_test.txt.gz");
  if (!path) GTEST_SKIP() << "shared datasets not present";
  MiniHttpServerOptions server_options;
  server_options.handler = [](const ServerRequest&) {
    return HttpResponse{400, R"({"error":"nope"})", {}};
  };
  auto server = MiniHttpServer::Start(server_options);
  ASSERT_TRUE(server.ok());
  ReplayOptions options;
  options.url = "127.0.0.1:" + std::to_string((*server)->port());
  options.file = *path;
  options.format = "json";
  options.limit = 50;
  options.progress = false;
  auto report = Replay(options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->events, 0u);
  EXPECT_EQ(report->errors, 5u);
  EXPECT_NE(report->first_error.find("nope"), std::string::npos);

  const uint16_t port = (*server)->port();
  server->reset();
  options.url = "127.0.0.1:" + std::to_string(port);
  auto down = Replay(options);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code, common::Code::kUnavailable);
}

TEST(ReplayTest, RateLimitPacesTheStream) {
  auto path =
      testing::DatasetPath("yoochoose-clicks-100k-sessionrec/yoochoose-clicks-100k_test.txt.gz");
  if (!path) GTEST_SKIP() << "shared datasets not present";
  auto server = MiniHttpServer::Start({});
  ASSERT_TRUE(server.ok());
  ReplayOptions options;
  options.url = "127.0.0.1:" + std::to_string((*server)->port());
  options.file = *path;
  options.limit = 200;
  options.rate = 1'000;  // 200 events: the last batch is due at 0.19 s
  options.progress = false;
  auto report = Replay(options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->events, 200u);
  EXPECT_GE(report->seconds, 0.18);
  EXPECT_LT(report->seconds, 2.0);
}

}  // namespace
}  // namespace streamrec::tools
