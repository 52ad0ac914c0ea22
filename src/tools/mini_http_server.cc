#include "tools/mini_http_server.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace streamrec::tools {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Shared {
  RequestHandler handler;
  uint32_t max_requests_per_connection = 0;
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> connections{0};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Shared& shared) : stream_(std::move(socket)), shared_(shared) {}

  void Start() {
    beast::error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    Read();
  }

 private:
  void Read() {
    // A parser handles one message; make a fresh one per request.
    request_.emplace();
    // Large enough for replay batches; the default 1 MB would reject big benchmark bodies.
    request_->body_limit(64u << 20);
    http::async_read(
        stream_, buffer_, *request_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Close();
    auto& req = request_->get();
    response_ = {};
    response_.version(req.version());
    if (shared_.handler) {
      ServerRequest in;
      in.method = std::string(req.method_string());
      in.target = std::string(req.target());
      in.body = std::move(req.body());
      for (const auto& field : req) {
        in.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      HttpResponse out = shared_.handler(in);
      response_.result(static_cast<unsigned>(out.status));
      bool has_content_type = false;
      for (const auto& [name, value] : out.headers) {
        response_.set(name, value);
        if (beast::iequals(name, "content-type")) has_content_type = true;
      }
      if (!has_content_type) response_.set(http::field::content_type, "application/json");
      response_.body() = std::move(out.body);
    } else {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, "application/json");
      response_.body() = R"({"ok":true})";
    }
    ++served_;
    bool keep_alive = req.keep_alive() && (shared_.max_requests_per_connection == 0 ||
                                           served_ < shared_.max_requests_per_connection);
    response_.keep_alive(keep_alive);
    response_.prepare_payload();
    shared_.requests.fetch_add(1, std::memory_order_relaxed);
    http::async_write(stream_, response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        if (ec || !keep_alive) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Shared& shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> request_;
  http::response<http::string_body> response_;
  uint32_t served_ = 0;
};

}  // namespace

struct MiniHttpServer::Impl {
  explicit Impl(int threads) : ioc(threads), acceptor(asio::make_strand(ioc)) {}

  void Accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) {
        shared.connections.fetch_add(1, std::memory_order_relaxed);
        std::make_shared<Session>(std::move(s), shared)->Start();
      }
      Accept();
    });
  }

  asio::io_context ioc;
  tcp::acceptor acceptor;
  Shared shared;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  std::once_flag stopped;
};

MiniHttpServer::MiniHttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MiniHttpServer::~MiniHttpServer() { Stop(); }

common::Result<std::unique_ptr<MiniHttpServer>> MiniHttpServer::Start(
    MiniHttpServerOptions options) {
  const int threads = std::max(1, options.threads);
  auto impl = std::make_unique<Impl>(threads);
  impl->shared.handler = std::move(options.handler);
  impl->shared.max_requests_per_connection = options.max_requests_per_connection;
  beast::error_code ec;
  auto address = asio::ip::make_address(options.address, ec);
  if (ec) {
    return common::Status::Invalid("invalid_address",
                                   "bad listen address '" + options.address + "'", "address");
  }
  tcp::endpoint endpoint(address, options.port);
  auto& acceptor = impl->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return common::Status::Make(common::Code::kUnavailable, "listen_failed",
                                "cannot listen on " + options.address + ":" +
                                    std::to_string(options.port) + ": " + ec.message());
  }
  impl->port = acceptor.local_endpoint().port();
  impl->Accept();
  for (int i = 0; i < threads; ++i) {
    impl->threads.emplace_back([ioc = &impl->ioc] { ioc->run(); });
  }
  return std::unique_ptr<MiniHttpServer>(new MiniHttpServer(std::move(impl)));
}

uint16_t MiniHttpServer::port() const { return impl_->port; }
uint64_t MiniHttpServer::requests() const { return impl_->shared.requests.load(); }
uint64_t MiniHttpServer::connections() const { return impl_->shared.connections.load(); }

void MiniHttpServer::Stop() {
  std::call_once(impl_->stopped, [this] {
    // Stopping the io_context abandons open sessions; their sockets close as the
    // handlers holding them are destroyed with the io_context.
    impl_->ioc.stop();
    for (auto& t : impl_->threads) t.join();
  });
}

}  // namespace streamrec::tools
