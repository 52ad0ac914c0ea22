// A small synchronous HTTP/1.1 keep-alive client (Boost.Beast underneath, kept out of this
// header so that users do not pay Beast's compile time). Used by tests, the replay tool and
// the benchmarks. One HttpClient is one connection: NOT thread-safe, give each thread its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace streamrec::tools {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  std::string body;
  HeaderList headers;

  //! Value of the first header called `name` (case-insensitive), or "" when absent.
  std::string Header(std::string_view name) const;
};

struct HttpClientOptions {
  //! Limit for each of connect, write and read of one request.
  std::chrono::milliseconds timeout{10'000};
  //! Responses with a larger body fail with kTooLarge.
  size_t body_limit = 64u << 20;
};

class HttpClient {
 public:
  //! Connects lazily on the first Request(). `host` may be a name or an IP literal.
  HttpClient(std::string host, uint16_t port, HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  //! Sends one request on the kept-alive connection and reads the whole response.
  //! Any HTTP status is a successful Result; transport failures and timeouts are
  //! kUnavailable. When a reused connection turns out closed by the server (idle timeout,
  //! `Connection: close`), reconnects and resends once.
  //! NOTE: that resend may repeat a non-idempotent request the server had already taken
  //! but not answered; streamrec's event ids make such duplicates harmless.
  common::Result<HttpResponse> Request(std::string_view method, std::string_view target,
                                       std::string_view body = {}, const HeaderList& headers = {});

  //! Closes the connection; the next Request() reconnects.
  void Close();
  //! Number of TCP connections opened so far (tests and benchmarks check reuse with it).
  uint64_t connects() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//! Accepts "http://127.0.0.1:8080", "127.0.0.1:8080", "localhost:8080/any/path",
//! "[::1]:8080" and "http://host" (port 80). https is rejected (the client has no TLS).
common::Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view url);

}  // namespace streamrec::tools
