#include "tools/http_client.h"

#include "tools/beast_sync.h"

#include <strings.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <charconv>

namespace streamrec::tools {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Errors by which a reused keep-alive connection shows the server had closed it.
bool ClosedByPeer(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted;
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), key.size()) == 0) {
      return value;
    }
  }
  return {};
}

struct HttpClient::Impl {
  Impl(std::string h, uint16_t p, HttpClientOptions o)
      : host(std::move(h)), port(p), options(o), stream(ioc) {}

  // Async operations only because tcp_stream's timeouts apply to them alone.
  template <typename Start>
  beast::error_code Run(Start start) {
    return RunToCompletion(ioc, std::move(start));
  }

  common::Status Connect() {
    if (endpoints.empty()) {
      beast::error_code ec;
      tcp::resolver resolver(ioc);
      auto results = resolver.resolve(host, std::to_string(port), ec);
      if (ec) {
        return common::Status::Make(common::Code::kUnavailable, "resolve_failed",
                                    "cannot resolve " + host + ": " + ec.message());
      }
      endpoints.assign(results.begin(), results.end());
    }
    stream.expires_after(options.timeout);
    beast::error_code ec = Run([&](auto handler) { stream.async_connect(endpoints, handler); });
    if (ec) {
      stream.close();
      return common::Status::Make(
          common::Code::kUnavailable, "connect_failed",
          "cannot connect to " + host + ":" + std::to_string(port) + ": " + ec.message());
    }
    // Small requests and responses: Nagle + delayed ACK would add ~40 ms per round trip.
    stream.socket().set_option(tcp::no_delay(true), ec);
    connected = true;
    ++connects;
    buffer.clear();
    return common::Status::Ok();
  }

  void Close() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
    connected = false;
    buffer.clear();
  }

  std::string host;
  uint16_t port;
  HttpClientOptions options;
  asio::io_context ioc{1};
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::vector<tcp::endpoint> endpoints;
  bool connected = false;
  uint64_t connects = 0;
};

HttpClient::HttpClient(std::string host, uint16_t port, HttpClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(host), port, options)) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

void HttpClient::Close() { impl_->Close(); }
uint64_t HttpClient::connects() const { return impl_->connects; }

common::Result<HttpResponse> HttpClient::Request(std::string_view method, std::string_view target,
                                                 std::string_view body, const HeaderList& headers) {
  Impl& im = *impl_;
  auto req = MakeRequest(method, target, body, headers,
                         im.host + ":" + std::to_string(im.port), "streamrec-tools");

  for (int attempt = 0;; ++attempt) {
    const bool reused = im.connected;
    if (!im.connected) {
      common::Status status = im.Connect();
      if (!status.ok()) return status;
    }
    im.stream.expires_after(im.options.timeout);
    beast::error_code ec =
        im.Run([&](auto handler) { http::async_write(im.stream, req, handler); });
    http::response_parser<http::string_body> parser;
    parser.body_limit(im.options.body_limit);
    if (!ec) {
      im.stream.expires_after(im.options.timeout);
      ec = im.Run([&](auto handler) { http::async_read(im.stream, im.buffer, parser, handler); });
    }
    if (ec) {
      im.Close();
      if (reused && attempt == 0 && ClosedByPeer(ec)) continue;
      if (ec == http::error::body_limit) {
        return common::Status::Make(
            common::Code::kTooLarge, "response_too_large",
            "response body over " + std::to_string(im.options.body_limit) + " bytes");
      }
      const char* reason = ec == beast::error::timeout ? "timeout" : "transport_error";
      return common::Status::Make(
          common::Code::kUnavailable, reason,
          std::string(method) + " " + std::string(target) + ": " + ec.message());
    }
    auto res = parser.release();
    if (!res.keep_alive()) im.Close();
    return ToHttpResponse(std::move(res));
  }
}

common::Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view url) {
  auto invalid = [&](std::string why) {
    return common::Status::Invalid(
        "invalid_url", "cannot use '" + std::string(url) + "': " + std::move(why), "url");
  };
  std::string_view rest = url;
  uint16_t port = 80;
  if (auto scheme = rest.find("://"); scheme != std::string_view::npos) {
    std::string_view name = rest.substr(0, scheme);
    if (name == "https") return invalid("https is not supported (no TLS in this client)");
    if (name != "http") return invalid("only http:// URLs are supported");
    rest.remove_prefix(scheme + 3);
  }
  rest = rest.substr(0, rest.find_first_of("/?#"));
  std::string_view host = rest;
  std::string_view port_text;
  if (rest.starts_with('[')) {  // IPv6 literal
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return invalid("unterminated '['");
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return invalid("expected ':' after ']'");
      port_text = after.substr(1);
    }
  } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
  }
  if (host.empty()) return invalid("no host");
  if (!port_text.empty() || rest.ends_with(':')) {
    unsigned value = 0;
    auto [end, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (err != std::errc() || end != port_text.data() + port_text.size() || value == 0 ||
        value > 65535) {
      return invalid("bad port '" + std::string(port_text) + "'");
    }
    port = static_cast<uint16_t>(value);
  }
  return std::pair<std::string, uint16_t>(std::string(host), port);
}

}  // namespace streamrec::tools
