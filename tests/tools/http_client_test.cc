#include "tools/http_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tools/mini_http_server.h"

namespace streamrec::tools {
namespace {

// Echoes the request back so the test can see what the client sent.
HttpResponse Echo(const ServerRequest& req) {
  HttpResponse res;
  res.status = req.target == "/missing" ? 404 : 200;
  res.body = req.method + " " + req.target + " " + req.body;
  for (const auto& [name, value] : req.headers) {
    if (name == "X-Test") res.headers.emplace_back("X-Echo", value);
  }
  return res;
}

TEST(HttpClientTest, KeepAliveRequestsReuseOneConnection) {
  auto server = MiniHttpServer::Start({.handler = Echo});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  HttpClient client("127.0.0.1", (*server)->port());
  for (int i = 0; i < 20; ++i) {
    auto res = client.Request("POST", "/v1/events", "[1]", {{"X-Test", "v" + std::to_string(i)}});
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "POST /v1/events [1]");
    EXPECT_EQ(res->Header("x-echo"), "v" + std::to_string(i));  // case-insensitive
    EXPECT_EQ(res->Header("content-type"), "application/json");
  }
  auto missing = client.Request("GET", "/missing");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);  // an HTTP error is still a successful Result
  EXPECT_EQ(missing->Header("no-such-header"), "");
  EXPECT_EQ(client.connects(), 1u);
  EXPECT_EQ((*server)->connections(), 1u);
}

TEST(HttpClientTest, ReconnectsWhenServerClosesTheConnection) {
  // The server answers the 3rd request of each connection with "Connection: close".
  auto server = MiniHttpServer::Start({.handler = Echo, .max_requests_per_connection = 3});
  ASSERT_TRUE(server.ok());
  HttpClient client("127.0.0.1", (*server)->port());
  for (int i = 0; i < 10; ++i) {
    auto res = client.Request("GET", "/x");
    ASSERT_TRUE(res.ok()) << i << ": " << res.status().ToString();
    EXPECT_EQ(res->status, 200);
  }
  EXPECT_EQ(client.connects(), 4u);  // 3 + 3 + 3 + 1
}

TEST(HttpClientTest, ReconnectsOnceAfterServerRestart) {
  auto server = MiniHttpServer::Start({});
  ASSERT_TRUE(server.ok());
  const uint16_t port = (*server)->port();
  HttpClient client("127.0.0.1", port);
  ASSERT_TRUE(client.Request("GET", "/").ok());
  // The old connection dies with the server; a new server on the same port takes over.
  server->reset();
  auto again = MiniHttpServer::Start({.port = port});
  if (!again.ok()) GTEST_SKIP() << "port taken meanwhile: " << again.status().ToString();
  auto res = client.Request("GET", "/");
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->body, R"({"ok":true})");
  EXPECT_EQ(client.connects(), 2u);
}

TEST(HttpClientTest, ConnectionRefusedIsUnavailable) {
  uint16_t port;
  {
    auto server = MiniHttpServer::Start({});
    ASSERT_TRUE(server.ok());
    port = (*server)->port();
  }
  HttpClient client("127.0.0.1", port, {.timeout = std::chrono::milliseconds(2000)});
  auto res = client.Request("GET", "/");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code, common::Code::kUnavailable);
  EXPECT_EQ(res.status().reason, "connect_failed");
}

TEST(HttpClientTest, TimesOutOnASlowServer) {
  auto server = MiniHttpServer::Start({.handler = [](const ServerRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return HttpResponse{200, "late", {}};
  }});
  ASSERT_TRUE(server.ok());
  HttpClient client("127.0.0.1", (*server)->port(), {.timeout = std::chrono::milliseconds(100)});
  auto start = std::chrono::steady_clock::now();
  auto res = client.Request("GET", "/");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().reason, "timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(450));
}

TEST(HttpClientTest, BodyLimit) {
  auto server = MiniHttpServer::Start({.handler = [](const ServerRequest&) {
    return HttpResponse{200, std::string(10'000, 'x'), {}};
  }});
  ASSERT_TRUE(server.ok());
  HttpClient client("127.0.0.1", (*server)->port(), {.body_limit = 1'000});
  auto res = client.Request("GET", "/");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code, common::Code::kTooLarge);
}

TEST(ParseHostPortTest, Forms) {
  using HP = std::pair<std::string, uint16_t>;
  EXPECT_EQ(*ParseHostPort("http://127.0.0.1:8080"), HP("127.0.0.1", 8080));
  EXPECT_EQ(*ParseHostPort("127.0.0.1:8080"), HP("127.0.0.1", 8080));
  EXPECT_EQ(*ParseHostPort("http://localhost:9000/v1/events?x=1"), HP("localhost", 9000));
  EXPECT_EQ(*ParseHostPort("http://example.com"), HP("example.com", 80));
  EXPECT_EQ(*ParseHostPort("[::1]:8080"), HP("::1", 8080));
  for (const char* bad : {"https://x:1", "ftp://x:1", "x:0", "x:70000", "x:abc", ":80", "", "x:"}) {
    auto r = ParseHostPort(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().field, "url");
    }
  }
}

}  // namespace
}  // namespace streamrec::tools
