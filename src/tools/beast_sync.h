// Blocking HTTP client calls over Beast's async operations (the only ones that honour
// tcp_stream timeouts), shared by the plain client and the sinks' HTTPS transport.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <iterator>
#include <string>
#include <utility>

#include "tools/http_client.h"

namespace streamrec::tools {

//! Starts one async operation with `start(handler)` and runs `ioc` until it completes.
template <typename Start>
boost::beast::error_code RunToCompletion(boost::asio::io_context& ioc, Start start) {
  boost::beast::error_code result;
  start([&result](boost::beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

//! Moves a parsed Beast response into ours.
inline HttpResponse ToHttpResponse(
    boost::beast::http::response<boost::beast::http::string_body>&& res) {
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  out.headers.reserve(std::distance(res.begin(), res.end()));
  for (const auto& field : res) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = std::move(res.body());
  return out;
}

}  // namespace streamrec::tools
