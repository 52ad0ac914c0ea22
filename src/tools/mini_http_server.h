// A minimal async HTTP/1.1 keep-alive server on Boost.Beast: the reference peer for
// benchmarks (bench/trivial_server answers every request 200 {"ok":true}) and a stand-in
// server for client tests. Not the product server (that is src/serve).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "tools/http_client.h"

namespace streamrec::tools {

struct ServerRequest {
  std::string method;
  std::string target;
  std::string body;
  HeaderList headers;
};

//! Called concurrently from the server threads; must be thread-safe.
using RequestHandler = std::function<HttpResponse(const ServerRequest&)>;

struct MiniHttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  //!< 0 = pick a free port, see port()
  int threads = 2;
  //! Empty = answer 200 `{"ok":true}` without copying the request (the benchmark peer).
  RequestHandler handler;
  //! After this many requests on one connection answer with `Connection: close`
  //! (0 = never); lets tests exercise client reconnects.
  uint32_t max_requests_per_connection = 0;
};

class MiniHttpServer {
 public:
  //! Binds, listens and starts the threads; returns once connections are accepted.
  static common::Result<std::unique_ptr<MiniHttpServer>> Start(MiniHttpServerOptions options);
  ~MiniHttpServer();  //!< Stop()s
  MiniHttpServer(const MiniHttpServer&) = delete;
  MiniHttpServer& operator=(const MiniHttpServer&) = delete;

  uint16_t port() const;
  //! Requests answered so far.
  uint64_t requests() const;
  //! Connections accepted so far.
  uint64_t connections() const;
  //! Stops accepting, drops open connections and joins the threads. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit MiniHttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrec::tools
