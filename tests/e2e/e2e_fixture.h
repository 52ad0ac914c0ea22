// Shared fixture for end-to-end tests: the real streamrec binary on a free port with a
// temp data dir, and a real HTTP client.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/server_process.h"
#include "support/temp_dir.h"
#include "tools/http_client.h"
#include "tools/mini_http_server.h"

namespace streamrec::e2e {

namespace json = boost::json;

inline constexpr std::string_view kTp2Path = "/com.snowplowanalytics.snowplow/tp2";
inline constexpr std::string_view kPayloadSchema =
    "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4";

//! A tp2 page-view event as the JS trackers send it (every value a string).
inline json::object PageView(const std::string& eid, const std::string& duid,
                             const std::string& product, int64_t dtm_ms,
                             const std::string& aid = "shop1") {
  return {{"e", "pv"},
          {"eid", eid},
          {"aid", aid},
          {"duid", duid},
          {"p", "web"},
          {"tv", "js-4.0.0"},
          {"url", "https://shop.example/products/" + product},
          {"dtm", std::to_string(dtm_ms)},
          {"stm", std::to_string(dtm_ms + 5)}};
}

inline std::string Tp2Body(const json::array& events) {
  return json::serialize(json::object{{"schema", kPayloadSchema}, {"data", events}});
}

//! A shop backend of the test's own that records what it is sent and answers `response_body`.
struct Recorder {
  std::mutex mu;
  std::vector<tools::ServerRequest> requests;
  std::unique_ptr<tools::MiniHttpServer> server;

  explicit Recorder(std::string response_body = R"({"ok":true})") {
    tools::MiniHttpServerOptions options;
    options.handler = [this, body = std::move(response_body)](const tools::ServerRequest& r) {
      std::lock_guard lock(mu);
      requests.push_back(r);
      return tools::HttpResponse{200, body, {}};
    };
    server = std::move(tools::MiniHttpServer::Start(options)).value();
  }
  size_t count() {
    std::lock_guard lock(mu);
    return requests.size();
  }
  //! Waits until at least `n` requests arrived (false on timeout).
  bool WaitFor(size_t n, int timeout_ms = 10000) {
    for (int waited = 0; count() < n; waited += 20) {
      if (waited >= timeout_ms) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }
};

//! The bootstrap admin key the test servers start with (STREAMREC_ADMIN_KEY).
inline constexpr const char* kAdminKey = "e2e-admin-key-0123456789abcdefghijklmnop";

class E2eTest : public ::testing::Test {
 protected:
  //! Starts the server with `config_yaml`; unless it has an `auth:` section, one that turns
  //! the per-client rate limit off (every test client is 127.0.0.1).
  void StartServer(const std::string& config_yaml = {}) {
    setenv("STREAMREC_ADMIN_KEY", kAdminKey, 1);
    std::string yaml = config_yaml;
    if (yaml.find("auth:") == std::string::npos) yaml += "\nauth:\n  rate_limit_per_s: 0\n";
    std::string config_path = dir_.Sub("config.yaml");
    FILE* f = fopen(config_path.c_str(), "w");
    fputs(yaml.c_str(), f);
    fclose(f);
    server_ = std::make_unique<testing::ServerProcess>(STREAMREC_BINARY, dir_.Sub("data"),
                                                       config_path);
    ASSERT_TRUE(server_->Start()) << server_->Stderr();
    client_ = std::make_unique<tools::HttpClient>("127.0.0.1", server_->port());
  }

  tools::HttpResponse Get(const std::string& target) {
    auto r = client_->Request("GET", target);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : tools::HttpResponse{};
  }
  static tools::HeaderList Admin() {
    return {{"Authorization", std::string("Bearer ") + kAdminKey}};
  }
  tools::HttpResponse AdminRequest(std::string_view method, const std::string& target,
                                   const std::string& body = {}) {
    auto headers = Admin();
    headers.emplace_back("Content-Type", "application/json");
    auto r = client_->Request(method, target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : tools::HttpResponse{};
  }
  tools::HttpResponse Post(std::string_view target, const std::string& body) {
    auto r = client_->Request("POST", target, body, {{"Content-Type", "application/json"}});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : tools::HttpResponse{};
  }
  static json::value Json(const tools::HttpResponse& r) {
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    EXPECT_FALSE(ec) << "not JSON: " << r.body;
    return ec ? json::value{} : v;
  }
  //! Whether the real Snowplow node tracker is installed (scripts/setup runs `npm ci`).
  static bool HaveNodeTracker() {
    return std::filesystem::exists(std::string(STREAMREC_SOURCE_DIR) +
                                   "/node_modules/@snowplow/node-tracker");
  }
  //! Sends `events` (see tests/e2e/snowplow_send.mjs) with the node tracker as app `app_id`,
  //! `buffer_size` events per tp2 POST; returns the script's JSON summary line.
  json::value SendWithTracker(const json::array& events, const std::string& app_id, bool base64,
                              int buffer_size) {
    std::string events_path = dir_.Sub("tracker-events.json");
    std::ofstream(events_path) << json::serialize(events);
    std::string cmd = std::string("cd '") + STREAMREC_SOURCE_DIR +
                      "' && node tests/e2e/snowplow_send.mjs http://127.0.0.1:" +
                      std::to_string(server_->port()) + " " + app_id + " " +
                      (base64 ? "true" : "false") + " " + std::to_string(buffer_size) + " '" +
                      events_path + "' 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
    EXPECT_EQ(pclose(p), 0) << out;
    size_t summary = out.rfind("{\"sent\"");
    boost::system::error_code ec;
    auto v = json::parse(summary == std::string::npos ? out : out.substr(summary), ec);
    EXPECT_FALSE(ec) << out;
    return v;
  }

  int64_t Processed() { return Json(Get("/healthz")).at("processed").to_number<int64_t>(); }
  //! Polls /healthz until `n` events are processed (false on timeout).
  bool WaitProcessed(int64_t n, int timeout_ms = 15000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Processed() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::unique_ptr<tools::HttpClient> client_;
};

}  // namespace streamrec::e2e
