// A small asynchronous HTTP/1.1 server on Boost.Beast: keep-alive, body limits, idle
// timeouts, and handlers that answer later (ingest answers only after the log commit).
#pragma once

#include <boost/beast/http.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace streamrec::serve {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
//! Sends the response; call exactly once, from any thread.
using Responder = std::function<void(Response&&)>;
//! What the server knows about a request beyond its bytes.
struct RequestInfo {
  std::string peer;  //!< the client's IP address
};
using Handler = std::function<void(Request&&, const RequestInfo&, Responder)>;
//! Told about requests the server refused before a handler saw them (e.g. oversize).
using RejectHook = std::function<void(const std::string& reason, const std::string& target)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;                    //!< 0 picks a free port
  unsigned threads = 2;                    //!< I/O threads
  size_t max_body_bytes = 1 << 20;         //!< larger bodies get 413
  int idle_timeout_s = 60;                 //!< keep-alive connections idle longer are closed
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Handler handler, RejectHook on_reject = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  //! Binds and starts the I/O threads; port() is valid afterwards.
  common::Status Start();
  //! Stops accepting, closes connections, joins the threads.
  void Stop();
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//! A JSON response with the request's version and keep-alive.
Response JsonResponse(const Request& req, http::status status, std::string body);

}  // namespace streamrec::serve
