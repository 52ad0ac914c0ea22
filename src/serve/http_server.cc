#include "serve/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace streamrec::serve {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

Response JsonResponse(const Request& req, http::status status, std::string body) {
  Response res{status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, const ServerOptions& options, const Handler& handler,
          const RejectHook& on_reject)
      : stream_(std::move(socket)), options_(options), handler_(handler), on_reject_(on_reject) {}

  void Run() {
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) info_.peer = endpoint.address().to_string();
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(std::chrono::seconds(options_.idle_timeout_s));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      const auto& req = parser_->get();
      if (on_reject_) on_reject_("body_too_large", std::string(req.target()));
      Request head;
      head.version(req.version());
      auto res = JsonResponse(
          head, http::status::payload_too_large,
          R"({"error":{"reason":"body_too_large","field":"body","message":"request body exceeds )" +
              std::to_string(options_.max_body_bytes) + R"( bytes"}})");
      res.keep_alive(false);
      return Write(std::move(res));
    }
    if (ec) {
      if (on_reject_) on_reject_("bad_http", ec.message());
      Request head;
      auto res = JsonResponse(head, http::status::bad_request,
                              R"({"error":{"reason":"bad_http","message":"malformed HTTP request"}})");
      res.keep_alive(false);
      return Write(std::move(res));
    }
    stream_.expires_never();  // the handler may take a while (durable commit)
    auto self = shared_from_this();
    handler_(parser_->release(), info_, [self](Response&& res) {
      net::post(self->stream_.get_executor(),
                [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
    });
  }

  void Write(Response&& res) {
    auto shared = std::make_shared<Response>(std::move(res));
    bool keep_alive = shared->keep_alive();
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, *shared,
                      [self = shared_from_this(), shared, keep_alive](beast::error_code ec, size_t) {
                        if (ec || !keep_alive) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const ServerOptions& options_;
  const Handler& handler_;
  const RejectHook& on_reject_;
  RequestInfo info_;
};

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  Handler handler;
  RejectHook on_reject;
  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  bool stopped = false;

  void Accept() {
    acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        s.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(s), options, handler, on_reject)->Run();
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(ServerOptions options, Handler handler, RejectHook on_reject)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->on_reject = std::move(on_reject);
}

HttpServer::~HttpServer() { Stop(); }

common::Status HttpServer::Start() {
  beast::error_code ec;
  auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec) {
    return common::Status::Invalid("invalid_config", "bad listen address: " + impl_->options.host,
                                   "server.host");
  }
  tcp::endpoint endpoint{address, impl_->options.port};
  auto& acceptor = impl_->acceptor.emplace(impl_->ioc);
  if (acceptor.open(endpoint.protocol(), ec); !ec) {
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
    acceptor.bind(endpoint, ec);
  }
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return common::Status::Make(common::Code::kUnavailable, "listen_failed",
                                "cannot listen on " + impl_->options.host + ":" +
                                    std::to_string(impl_->options.port) + ": " + ec.message());
  }
  impl_->port = acceptor.local_endpoint().port();
  impl_->Accept();
  for (unsigned i = 0; i < std::max(1u, impl_->options.threads); ++i) {
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  }
  return common::Status::Ok();
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->acceptor) {
    net::post(impl_->ioc, [this] {
      beast::error_code ec;
      impl_->acceptor->close(ec);
    });
  }
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

uint16_t HttpServer::port() const { return impl_->port; }

}  // namespace streamrec::serve
