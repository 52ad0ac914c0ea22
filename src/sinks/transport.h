// The connection a sink sender talks through: plain HTTP via tools::HttpClient, or HTTPS
// (Boost.Beast over OpenSSL, certificates verified against the system store, SNI and host
// name checked). One Transport is one keep-alive connection: NOT thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "tools/http_client.h"

namespace streamrec::sinks {

struct Endpoint {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
};

//! Splits "https://host[:port]/path?q" into the endpoint and the target "/path?q"
//! (target "/" when absent).
common::Result<std::pair<Endpoint, std::string>> SplitUrl(std::string_view url);

class Transport {
 public:
  virtual ~Transport() = default;
  //! Any HTTP status is ok(); transport failures are kUnavailable.
  virtual common::Result<tools::HttpResponse> Request(std::string_view method,
                                                      std::string_view target,
                                                      std::string_view body,
                                                      const tools::HeaderList& headers) = 0;
};

std::unique_ptr<Transport> MakeTransport(const Endpoint& endpoint,
                                         std::chrono::milliseconds timeout);

}  // namespace streamrec::sinks
