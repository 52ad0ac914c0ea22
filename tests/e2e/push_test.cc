// Pushing lists where the shop wants them: a webhook sink in the config, and a YAML scenario
// loaded over the admin API, both against the real binary.
#include <fstream>
#include <mutex>
#include <thread>

#include "e2e_fixture.h"

namespace streamrec::e2e {
namespace {

using PushE2eTest = E2eTest;

TEST_F(PushE2eTest, WebhookSinkReceivesEachUsersNewList) {
  Recorder shop;
  setenv("E2E_WEBHOOK_TOKEN", "s3cr3t-token", 1);
  StartServer("sinks:\n  - type: webhook\n    url: http://127.0.0.1:" +
              std::to_string(shop.server->port()) +
              "/reco\n    headers: {Authorization: \"Bearer {{env.E2E_WEBHOOK_TOKEN}}\"}\n"
              "    body: '{\"user\":\"{{user_id}}\",\"items\":{{items_json}}}'\n"
              "    coalesce: {interval_ms: 0}\n");
  json::array batch;
  for (int u = 0; u < 3; ++u) {
    for (const char* p : {"mug", "teapot"}) {
      batch.push_back(PageView("aaaaaaaa-0000-4000-8000-0000000000" + std::to_string(u) + p[0],
                               "push-user-" + std::to_string(u), p, 1'700'000'000'000 + u));
    }
  }
  ASSERT_EQ(Post(kTp2Path, Tp2Body(batch)).status, 200);
  ASSERT_TRUE(WaitProcessed(6));
  // A newcomer views the mug: the teapot, co-visited three times, is pushed for them.
  ASSERT_EQ(Post(kTp2Path, Tp2Body({PageView("aaaaaaaa-0000-4000-8000-000000000099",
                                             "push-user-new", "mug", 1'700'000'001'000)}))
                .status,
            200);
  ASSERT_TRUE(WaitProcessed(7));
  for (int i = 0; i < 100 && shop.count() < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(shop.count(), 1u);
  std::lock_guard lock(shop.mu);
  bool saw_teapot = false;
  for (const auto& r : shop.requests) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/reco");
    auto body = json::parse(r.body);
    EXPECT_TRUE(std::string(body.at("user").as_string()).starts_with("push-user-"));
    for (const auto& [k, v] : r.headers) {
      if (k == "Authorization") {
        EXPECT_EQ(v, "Bearer s3cr3t-token");
      }
    }
    if (body.at("user").as_string() != "push-user-new") continue;
    for (const auto& item : body.at("items").as_array()) saw_teapot |= item.as_string() == "teapot";
  }
  EXPECT_TRUE(saw_teapot) << "a user who viewed the mug gets the teapot pushed";
}

TEST_F(PushE2eTest, ScenarioHotReloadKeepsTheRunningVersionOnErrors) {
  StartServer();
  std::string sink_path = dir_.Sub("scenario.jsonl");
  auto valid = [&](const std::string& filter) {
    return "name: e2e\nversion: 1\nsource: {type: events}\nsteps:\n"
           "  - {id: views, type: filter, expr: \"" + filter + "\"}\n"
           "  - {id: vars, type: set, vars: {user: \"#input.user_id\"}}\n"
           "  - {id: out, type: sink, sink: {type: log, path: \"" + sink_path + "\"}}\n";
  };
  EXPECT_EQ(Json(AdminRequest("GET", "/v1/scenario")).at("scenario"), json::value(nullptr));
  auto broken = AdminRequest("PUT", "/v1/scenario",
                             valid("lowr(#input.type) == 'view'") + "  - {id: out, type: bogus}\n");
  ASSERT_EQ(broken.status, 400) << broken.body;
  std::string message(Json(broken).at("error").at("message").as_string());
  EXPECT_NE(message.find("lowr"), std::string::npos) << message;  // every error is listed
  EXPECT_NE(message.find("out"), std::string::npos) << message;
  ASSERT_EQ(AdminRequest("PUT", "/v1/scenario", valid("#input.type == 'view'")).status, 200);

  json::array batch;
  for (int i = 0; i < 4; ++i) {
    batch.push_back(PageView("bbbbbbbb-0000-4000-8000-00000000000" + std::to_string(i), "sc-user",
                             "item-" + std::to_string(i), 1'700'000'000'000 + i));
  }
  ASSERT_EQ(Post(kTp2Path, Tp2Body(batch)).status, 200);
  ASSERT_TRUE(WaitProcessed(4));
  // A broken update later does not stop the running version.
  EXPECT_EQ(AdminRequest("PUT", "/v1/scenario", "steps: [").status, 400);
  ASSERT_EQ(Post(kTp2Path, Tp2Body({PageView("bbbbbbbb-0000-4000-8000-000000000009", "sc-user",
                                             "item-9", 1'700'000'000'009)}))
                .status,
            200);
  ASSERT_TRUE(WaitProcessed(5));

  auto graph = Json(AdminRequest("GET", "/v1/scenario"));
  std::string text = json::serialize(graph);
  EXPECT_NE(text.find("\"views\""), std::string::npos) << text;
  std::ifstream lines(sink_path);
  size_t n = 0;
  for (std::string line; std::getline(lines, line);) ++n;
  EXPECT_EQ(n, 5u) << "every view went through the scenario exactly once";
  EXPECT_NE(Get("/metrics").body.find("streamrec_scenario_step_events_total"), std::string::npos);
}

}  // namespace
}  // namespace streamrec::e2e
