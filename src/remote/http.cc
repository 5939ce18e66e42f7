// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/remote/http.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <limits>
#include <thread>
#include <utility>

#include "src/base/macros.h"
#include "src/remote/wire.h"

namespace boxlite::remote {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr int kSocketTimeoutS = 900;  // A blocking read or write gives up after this.
constexpr size_t kMaxWsMessage = size_t{16} << 20;
constexpr const char* kUserAgent = "boxlite-remote/0.1";

Status Unreachable(const Endpoint& ep, std::string_view step, const error_code& ec) {
  return Status::Unavailable("cannot reach the BoxLite server at " + ep.ToString() + ": " +
                             std::string(step) + ": " + ec.message() +
                             " (is 'boxlite serve' running there?)");
}

// Resolves and connects `stream` (a tcp_stream) to the endpoint, with socket timeouts for
// the blocking calls and no Nagle delay.
Status ConnectTcp(beast::tcp_stream& stream, asio::io_context& ioc, const Endpoint& ep) {
  tcp::resolver resolver(ioc);
  error_code ec;
  auto results = resolver.resolve(ep.host, ep.port, ec);
  if (ec) return Unreachable(ep, "resolve " + ep.host, ec);
  stream.connect(results, ec);
  if (ec) return Unreachable(ep, "connect", ec);
  int fd = stream.socket().native_handle();
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  struct timeval tv = {kSocketTimeoutS, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return Status::OK();
}

// Sets up TLS on `stream` for `host`: SNI and host-name verification against the roots.
template <typename SslStream>
Status TlsHandshake(SslStream& stream, const Endpoint& ep) {
  if (!SSL_set_tlsext_host_name(stream.native_handle(), ep.host.c_str())) {
    return Status::Internal("TLS: cannot set the server name " + ep.host);
  }
  stream.set_verify_mode(asio::ssl::verify_peer);
  stream.set_verify_callback(asio::ssl::host_name_verification(ep.host));
  error_code ec;
  stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) {
    return Status::Unavailable("TLS handshake with " + ep.ToString() + " failed: " + ec.message() +
                               " (the server's certificate must be valid for " + ep.host +
                               " and signed by a root this system trusts)");
  }
  return Status::OK();
}

bool NothingReceived(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated;
}

// One WebSocket attach on its own I/O thread (see WsStream).
template <typename Ws>
class WsStreamImpl final : public WsStream {
 public:
  WsStreamImpl(std::unique_ptr<asio::io_context> ioc, std::unique_ptr<Ws> ws)
      : ioc_(std::move(ioc)), ws_(std::move(ws)), guard_(asio::make_work_guard(*ioc_)) {}
  ~WsStreamImpl() override { Close(); }

  void Start(Callbacks callbacks) override {
    cb_ = std::move(callbacks);
    asio::post(*ioc_, [this] { DoRead(); });
    thread_ = std::thread([this] { ioc_->run(); });
  }

  Status Send(bool binary, std::string data) override {
    if (closed_) return Status::Unavailable("the exec stream is closed");
    auto done = std::make_shared<std::promise<Status>>();
    auto future = done->get_future();
    asio::post(*ioc_, [this, binary, data = std::move(data), done]() mutable {
      if (ended_ || close_requested_) {
        done->set_value(Status::Unavailable("the connection to the server is closed"));
        return;
      }
      queue_.push_back(Item{binary, std::move(data), done});
      if (queue_.size() == 1) DoWrite();
    });
    try {
      return future.get();
    } catch (const std::future_error&) {
      return Status::Unavailable("the exec stream is closed");
    }
  }

  void Resume() override {
    asio::post(*ioc_, [this] {
      if (paused_ && !ended_) {
        paused_ = false;
        DoRead();
      }
    });
  }

  void Close() override {
    if (closed_.exchange(true)) return;
    if (thread_.joinable()) {
      asio::post(*ioc_, [this] {
        close_requested_ = true;
        if (queue_.empty() && !ended_) DoClose();
      });
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(2), [this] { return ended_flag_; });
    }
    guard_.reset();
    ioc_->stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Item {
    bool binary;
    std::string data;
    std::shared_ptr<std::promise<Status>> done;
  };

  void DoRead() {
    ws_->async_read(buffer_, [this](const error_code& ec, size_t) {
      if (ec) {
        End(ec);
        return;
      }
      std::string data = beast::buffers_to_string(buffer_.data());
      buffer_.consume(buffer_.size());
      if (cb_.on_message(ws_->got_binary(), std::move(data))) {
        DoRead();
      } else {
        paused_ = true;
      }
    });
  }

  void DoWrite() {
    Item& item = queue_.front();
    ws_->binary(item.binary);
    ws_->async_write(asio::buffer(item.data), [this](const error_code& ec, size_t) {
      Item done = std::move(queue_.front());
      queue_.pop_front();
      done.done->set_value(ec ? Status::Unavailable("send to the server: " + ec.message())
                              : Status::OK());
      if (ec) {
        FailQueue();
        return;
      }
      if (!queue_.empty()) {
        DoWrite();
      } else if (close_requested_ && !ended_) {
        DoClose();
      }
    });
  }

  void DoClose() {
    ws_->async_close(websocket::close_code::normal, [](const error_code&) {});
  }

  void FailQueue() {
    for (auto& item : queue_) {
      item.done->set_value(Status::Unavailable("the connection to the server is closed"));
    }
    queue_.clear();
  }

  void End(const error_code& ec) {
    if (ended_) return;
    ended_ = true;
    if (queue_.empty()) FailQueue();  // Writes in flight fail in their own handler.
    bool clean = ec == websocket::error::closed;
    Status why = clean ? Status::OK()
                       : Status::Unavailable("the connection to the server was lost: " + ec.message());
    if (cb_.on_end) cb_.on_end(clean, why);
    std::lock_guard<std::mutex> lock(mu_);
    ended_flag_ = true;
    cv_.notify_all();
  }

  std::unique_ptr<asio::io_context> ioc_;
  std::unique_ptr<Ws> ws_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  Callbacks cb_;
  beast::flat_buffer buffer_;
  // I/O thread only.
  std::deque<Item> queue_;
  bool ended_ = false;
  bool paused_ = false;
  bool close_requested_ = false;
  std::atomic<bool> closed_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool ended_flag_ = false;  // Guarded by mu_.
};

// Completes a WebSocket handshake on `ws` (connected below) and wraps it in a stream.
template <typename Ws>
Result<std::unique_ptr<WsStream>> Upgrade(std::unique_ptr<asio::io_context> ioc, std::unique_ptr<Ws> ws,
                                          const Endpoint& ep, const std::string& target,
                                          const std::string& bearer, std::string_view what,
                                          const std::string& header, std::string* header_value) {
  ws->set_option(websocket::stream_base::decorator([bearer](websocket::request_type& req) {
    req.set(http::field::user_agent, kUserAgent);
    if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + bearer);
  }));
  ws->read_message_max(kMaxWsMessage);
  websocket::response_type res;
  error_code ec;
  ws->handshake(res, ep.HostHeader(), target, ec);
  if (ec) {
    int status = res.result_int();
    if (status != 0 && status != 101) return StatusFromResponse(status, res.body(), what);
    return Unreachable(ep, "WebSocket upgrade", ec);
  }
  if (!header.empty() && header_value != nullptr) {
    auto it = res.find(header);
    if (it != res.end()) *header_value = std::string(it->value().substr(0, 256));
  }
  // The server hears from us at least every 15 s: a ping after 15 s of silence, and a
  // stream silent for 30 s is dead (the exec is then looked up and re-attached).
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = std::chrono::seconds(30);
  timeouts.idle_timeout = std::chrono::seconds(30);
  timeouts.keep_alive_pings = true;
  ws->set_option(timeouts);
  return std::unique_ptr<WsStream>(new WsStreamImpl<Ws>(std::move(ioc), std::move(ws)));
}

}  // namespace

struct HttpClient::Tls {
  asio::ssl::context ctx{asio::ssl::context::tls_client};
};

struct HttpClient::Conn {
  asio::io_context ioc;
  std::unique_ptr<beast::tcp_stream> tcp;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
};

HttpClient::HttpClient(Endpoint endpoint, std::string path_prefix, std::string bearer_token)
    : endpoint_(std::move(endpoint)), prefix_(std::move(path_prefix)), bearer_(std::move(bearer_token)) {
  if (endpoint_.tls) {
    tls_ = std::make_unique<Tls>();
    tls_->ctx.set_default_verify_paths();
    tls_->ctx.set_verify_mode(asio::ssl::verify_peer);
  }
}

HttpClient::~HttpClient() = default;

std::string HttpClient::BoxTarget(std::string_view route) const {
  return RouteTarget(endpoint_, prefix_, route);
}

std::string HttpClient::GlobalTarget(std::string_view route) const {
  return RouteTarget(endpoint_, "", route);
}

Result<std::unique_ptr<HttpClient::Conn>> HttpClient::Connect() {
  auto c = std::make_unique<Conn>();
  if (endpoint_.tls) {
    c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(c->ioc, tls_->ctx);
    BOXLITE_RETURN_IF_ERROR(ConnectTcp(beast::get_lowest_layer(*c->tls), c->ioc, endpoint_));
    BOXLITE_RETURN_IF_ERROR(TlsHandshake(*c->tls, endpoint_));
  } else {
    c->tcp = std::make_unique<beast::tcp_stream>(c->ioc);
    BOXLITE_RETURN_IF_ERROR(ConnectTcp(*c->tcp, c->ioc, endpoint_));
  }
  return c;
}

Result<HttpResponse> HttpClient::SendOn(Conn& conn, const HttpRequest& request, bool* nothing_received,
                                        bool* reusable) {
  auto run = [&](auto& stream) -> Result<HttpResponse> {
    http::verb verb = http::string_to_verb(request.method);
    if (verb == http::verb::unknown) return Status::InvalidArgument("bad method " + request.method);
    auto set_headers = [&](auto& req) {
      req.set(http::field::host, endpoint_.HostHeader());
      req.set(http::field::user_agent, kUserAgent);
      if (!bearer_.empty()) req.set(http::field::authorization, "Bearer " + bearer_);
      if (!request.content_type.empty()) req.set(http::field::content_type, request.content_type);
      req.keep_alive(true);
      req.prepare_payload();
    };
    error_code ec;
    if (!request.body_file.empty()) {
      http::request<http::file_body> req{verb, request.target, 11};
      req.body().open(request.body_file.c_str(), beast::file_mode::scan, ec);
      if (ec) return Status::IoError("open " + request.body_file + ": " + ec.message());
      set_headers(req);
      http::write(stream, req, ec);
    } else {
      http::request<http::string_body> req{verb, request.target, 11};
      req.body() = request.body;
      set_headers(req);
      http::write(stream, req, ec);
    }
    if (ec) {
      *nothing_received = true;
      return Unreachable(endpoint_, "send", ec);
    }
    // A number, not boost::none: Beast 1.74 compares the length against the optional, and
    // an empty optional is below every length.
    constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();
    http::response_parser<http::empty_body> head;
    head.body_limit(kNoLimit);
    if (verb == http::verb::head) head.skip(true);
    http::read_header(stream, conn.buffer, head, ec);
    if (ec) {
      *nothing_received = NothingReceived(ec);
      return Unreachable(endpoint_, "read the answer", ec);
    }
    HttpResponse out;
    out.status = head.get().result_int();
    bool keep = head.get().keep_alive();
    if (!request.save_to.empty() && out.status / 100 == 2) {
      http::response_parser<http::file_body> p{std::move(head)};
      p.body_limit(kNoLimit);
      p.get().body().open(request.save_to.c_str(), beast::file_mode::write_new, ec);
      if (ec) return Status::IoError("create " + request.save_to + ": " + ec.message());
      http::read(stream, conn.buffer, p, ec);
      p.get().body().close();
      if (ec) return Unreachable(endpoint_, "read the answer", ec);
    } else {
      http::response_parser<http::string_body> p{std::move(head)};
      p.body_limit(kMaxResponseBody);
      if (verb != http::verb::head) http::read(stream, conn.buffer, p, ec);
      if (ec == http::error::body_limit) {
        return Status::ResourceExhausted("the server's answer is larger than " +
                                         std::to_string(kMaxResponseBody >> 20) + " MiB");
      }
      if (ec) return Unreachable(endpoint_, "read the answer", ec);
      out.body = std::move(p.get().body());
    }
    *reusable = keep;
    return out;
  };
  if (conn.tls) return run(*conn.tls);
  return run(*conn.tcp);
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Conn> conn;
    bool reused = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
        reused = true;
      }
    }
    if (!conn) {
      BOXLITE_ASSIGN_OR_RETURN(conn, Connect());
    }
    bool nothing_received = false, reusable = false;
    Result<HttpResponse> r = SendOn(*conn, request, &nothing_received, &reusable);
    if (r.ok()) {
      if (!reusable) return r;
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_.size() < 8) idle_.push_back(std::move(conn));
      return r;
    }
    // A kept-alive connection the server closed meanwhile: once more on a new one.
    if (reused && nothing_received && attempt == 0) continue;
    return r;
  }
}

Result<HttpResponse> HttpClient::Call(const HttpRequest& request, std::string_view what) {
  BOXLITE_ASSIGN_OR_RETURN(HttpResponse r, Send(request));
  if (r.status / 100 != 2) return StatusFromResponse(r.status, r.body, what);
  return r;
}

Result<nlohmann::json> HttpClient::CallJson(const std::string& method, const std::string& target,
                                            const nlohmann::json& body, std::string_view what) {
  HttpRequest req;
  req.method = method;
  req.target = target;
  if (!body.is_null()) {
    req.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    req.content_type = "application/json";
  }
  BOXLITE_ASSIGN_OR_RETURN(HttpResponse r, Call(req, what));
  if (r.body.empty()) return nlohmann::json();
  return ParseBody(r.body, what);
}

Result<std::unique_ptr<WsStream>> HttpClient::OpenWs(const std::string& target, std::string_view what,
                                                     const std::string& response_header,
                                                     std::string* header_value) {
  auto ioc = std::make_unique<asio::io_context>();
  if (endpoint_.tls) {
    using Ws = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
    auto ws = std::make_unique<Ws>(*ioc, tls_->ctx);
    BOXLITE_RETURN_IF_ERROR(ConnectTcp(beast::get_lowest_layer(*ws), *ioc, endpoint_));
    BOXLITE_RETURN_IF_ERROR(TlsHandshake(ws->next_layer(), endpoint_));
    return Upgrade(std::move(ioc), std::move(ws), endpoint_, target, bearer_, what, response_header,
                   header_value);
  }
  using Ws = websocket::stream<beast::tcp_stream>;
  auto ws = std::make_unique<Ws>(*ioc);
  BOXLITE_RETURN_IF_ERROR(ConnectTcp(beast::get_lowest_layer(*ws), *ioc, endpoint_));
  return Upgrade(std::move(ioc), std::move(ws), endpoint_, target, bearer_, what, response_header,
                 header_value);
}

}  // namespace boxlite::remote
