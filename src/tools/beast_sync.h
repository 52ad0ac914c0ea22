// Blocking HTTP client calls over Beast's async operations (the only ones that honour
// tcp_stream timeouts), shared by the plain client and the sinks' HTTPS transport.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <strings.h>

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

//! A keep-alive HTTP/1.1 request: any method name, our headers (JSON content type unless one
//! is given and there is a body), the body and its length.
inline boost::beast::http::request<boost::beast::http::string_body> MakeRequest(
    std::string_view method, std::string_view target, std::string_view body,
    const HeaderList& headers, const std::string& host_header, std::string_view user_agent) {
  namespace http = boost::beast::http;
  http::request<http::string_body> req;
  http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    req.method_string(method);
  } else {
    req.method(verb);
  }
  req.target(target);
  req.version(11);
  req.set(http::field::host, host_header);
  req.set(http::field::user_agent, user_agent);
  bool has_content_type = false;
  for (const auto& [name, value] : headers) {
    req.set(name, value);
    if (strcasecmp(name.c_str(), "content-type") == 0) has_content_type = true;
  }
  if (!body.empty() && !has_content_type) req.set(http::field::content_type, "application/json");
  req.body().assign(body);
  req.keep_alive(true);
  req.prepare_payload();
  return req;
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
