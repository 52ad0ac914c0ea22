#include "sinks/transport.h"

#include <strings.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>

#include "tools/beast_sync.h"

namespace streamrec::sinks {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

class PlainTransport : public Transport {
 public:
  PlainTransport(const Endpoint& e, std::chrono::milliseconds timeout)
      : client_(e.host, e.port, {.timeout = timeout, .body_limit = 8u << 20}) {}
  common::Result<tools::HttpResponse> Request(std::string_view method, std::string_view target,
                                              std::string_view body,
                                              const tools::HeaderList& headers) override {
    return client_.Request(method, target, body, headers);
  }

 private:
  tools::HttpClient client_;
};

// HTTPS keep-alive client; async operations on a private io_context only because
// Beast's timeouts apply to them alone (as in tools::HttpClient).
class TlsTransport : public Transport {
 public:
  TlsTransport(const Endpoint& e, std::chrono::milliseconds timeout)
      : endpoint_(e), timeout_(timeout), ctx_(ssl::context::tls_client) {
    ctx_.set_default_verify_paths();
    ctx_.set_verify_mode(ssl::verify_peer);
  }

  common::Result<tools::HttpResponse> Request(std::string_view method, std::string_view target,
                                              std::string_view body,
                                              const tools::HeaderList& headers) override {
    auto req = tools::MakeRequest(
        method, target, body, headers,
        endpoint_.port == 443 ? endpoint_.host
                              : endpoint_.host + ":" + std::to_string(endpoint_.port),
        "streamrec-sinks");

    for (int attempt = 0;; ++attempt) {
      const bool reused = stream_ != nullptr;
      if (!stream_) {
        common::Status status = Connect();
        if (!status.ok()) return status;
      }
      beast::get_lowest_layer(*stream_).expires_after(timeout_);
      beast::error_code ec = Run([&](auto h) { http::async_write(*stream_, req, h); });
      http::response_parser<http::string_body> parser;
      parser.body_limit(8u << 20);
      if (!ec) {
        beast::get_lowest_layer(*stream_).expires_after(timeout_);
        ec = Run([&](auto h) { http::async_read(*stream_, buffer_, parser, h); });
      }
      if (ec) {
        Close();
        if (reused && attempt == 0 && ec != beast::error::timeout) continue;
        const char* reason = ec == beast::error::timeout ? "timeout" : "transport_error";
        return common::Status::Make(
            common::Code::kUnavailable, reason,
            std::string(method) + " https://" + endpoint_.host + ": " + ec.message());
      }
      auto res = parser.release();
      if (!res.keep_alive()) Close();
      return tools::ToHttpResponse(std::move(res));
    }
  }

 private:
  template <typename Start>
  beast::error_code Run(Start start) {
    return tools::RunToCompletion(ioc_, std::move(start));
  }

  common::Status Connect() {
    auto fail = [&](const char* reason, const std::string& what) {
      stream_.reset();
      return common::Status::Make(
          common::Code::kUnavailable, reason,
          what + " " + endpoint_.host + ":" + std::to_string(endpoint_.port));
    };
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(endpoint_.host, std::to_string(endpoint_.port), ec);
    if (ec) return fail("resolve_failed", "cannot resolve (" + ec.message() + ")");
    stream_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_, ctx_);
    if (!SSL_set_tlsext_host_name(stream_->native_handle(), endpoint_.host.c_str())) {
      return fail("tls_error", "cannot set SNI for");
    }
    stream_->set_verify_callback(ssl::host_name_verification(endpoint_.host));
    auto& tcp_layer = beast::get_lowest_layer(*stream_);
    tcp_layer.expires_after(timeout_);
    ec = Run([&](auto h) { tcp_layer.async_connect(results, h); });
    if (ec) return fail("connect_failed", "cannot connect (" + ec.message() + ") to");
    tcp_layer.socket().set_option(tcp::no_delay(true), ec);
    tcp_layer.expires_after(timeout_);
    ec = Run([&](auto h) { stream_->async_handshake(ssl::stream_base::client, h); });
    if (ec) return fail("tls_error", "TLS handshake failed (" + ec.message() + ") with");
    buffer_.clear();
    return common::Status::Ok();
  }

  void Close() {
    if (!stream_) return;
    beast::error_code ec;
    beast::get_lowest_layer(*stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(*stream_).close();
    stream_.reset();
    buffer_.clear();
  }

  Endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  asio::io_context ioc_{1};
  ssl::context ctx_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream_;
  beast::flat_buffer buffer_;
};

}  // namespace

common::Result<std::pair<Endpoint, std::string>> SplitUrl(std::string_view url) {
  auto invalid = [&](const std::string& why) {
    return common::Status::Invalid("invalid_url", "url: " + why, "url");
  };
  Endpoint e;
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    e.tls = true;
    e.port = 443;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    e.port = 80;
    rest.remove_prefix(7);
  } else {
    return invalid("must start with http:// or https://");
  }
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  std::string target(slash == std::string_view::npos ? "/" : rest.substr(slash));
  if (target.front() == '?') target.insert(0, "/");
  if (authority.find("{{") != std::string_view::npos) {
    return invalid("placeholders are allowed only in the path and query");
  }
  if (authority.find('@') != std::string_view::npos) {
    return invalid("credentials in the URL are not supported; use a header");
  }
  std::string_view host = authority;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid("unterminated '['");
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority[0] != ':') return invalid("expected ':' after ']'");
    authority = authority.empty() ? authority : authority.substr(1);
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    authority = authority.substr(colon + 1);
  } else {
    authority = {};
  }
  if (!authority.empty()) {
    unsigned port = 0;
    auto [end, err] = std::from_chars(authority.data(), authority.data() + authority.size(), port);
    if (err != std::errc() || end != authority.data() + authority.size() || port == 0 ||
        port > 65535) {
      return invalid("bad port");
    }
    e.port = static_cast<uint16_t>(port);
  }
  if (host.empty()) return invalid("no host");
  e.host = std::string(host);
  return std::pair<Endpoint, std::string>(std::move(e), std::move(target));
}

std::unique_ptr<Transport> MakeTransport(const Endpoint& endpoint,
                                         std::chrono::milliseconds timeout) {
  if (endpoint.tls) return std::make_unique<TlsTransport>(endpoint, timeout);
  return std::make_unique<PlainTransport>(endpoint, timeout);
}

}  // namespace streamrec::sinks
