// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/server/server.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

namespace boxlite::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto kBodyTimeout = 60s;         // Between two reads of a request body.
constexpr auto kReplyTimeout = 300s;       // Sending a JSON reply.
constexpr auto kDownloadTimeout = 3600s;   // Sending a tar or an export.
constexpr auto kWsWriteTimeout = 20s;      // One WebSocket frame (BoxLite 0.9's).
constexpr auto kWsIdleTimeout = 30s;       // Pings every half of it: 15 s (0.9's).

std::string_view Sv(beast::string_view s) { return {s.data(), s.size()}; }

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  return !ec && addr.is_loopback();
}

Status ValidateServerOptions(const ServerOptions& o) {
  boost::system::error_code ec;
  if (o.host != "localhost") {
    net::ip::make_address(o.host, ec);
    if (ec) {
      return Status::InvalidArgument("--host " + o.host +
                                     " is not an IP address: give one, such as 127.0.0.1");
    }
  }
  if (o.port < 0 || o.port > 65535) {
    return Status::InvalidArgument("--port must be between 0 and 65535");
  }
  if (!IsLoopbackHost(o.host) && o.api_key.empty()) {
    return Status::InvalidArgument(
        "serving on " + o.host +
        " without an API key would give the network every box: set --api-key KEY (or "
        "BOXLITE_SERVE_API_KEY), or bind 127.0.0.1");
  }
  return Status::OK();
}

struct Server::Impl {
  // Before ioc: handlers still queued when ioc goes hold connection slots.
  std::atomic<int> connections{0};
  net::io_context ioc{2};
  tcp::acceptor acceptor{ioc};
  std::unique_ptr<net::thread_pool> workers;
  std::vector<std::thread> io_threads;
  std::shared_ptr<Runtime> runtime;
  std::unique_ptr<Api> api;
  ServerOptions options;
  std::string host;
  int port = 0;
  std::mutex stop_mu;
  bool stopped = false;
  net::steady_timer accept_retry{ioc};

  void DoAccept();
};

namespace {

// One connection slot (ServerOptions::max_connections), held by the HTTP session and then
// by the WebSocket session it becomes.
struct Slot {
  explicit Slot(std::atomic<int>* n) : count(n) {}
  ~Slot() { --*count; }
  std::atomic<int>* count;
};

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(beast::tcp_stream stream, Server::Impl* impl, std::shared_ptr<Slot> slot,
            std::shared_ptr<ExecSession> session, std::shared_ptr<Outbox> outbox)
      : ws_(std::move(stream)),
        impl_(impl),
        slot_(std::move(slot)),
        session_(std::move(session)),
        outbox_(std::move(outbox)),
        write_timer_(ws_.get_executor()) {}

  ~WsSession() { Fail(); }

  void Accept(http::request<http::empty_body> req) {
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = 30s;
    t.idle_timeout = kWsIdleTimeout;
    t.keep_alive_pings = true;
    ws_.set_option(t);
    std::string id = session_->id();
    ws_.set_option(websocket::stream_base::decorator([id](websocket::response_type& res) {
      res.set("x-boxlite-execution-id", id);
      res.set(http::field::server, "boxlite");
    }));
    ws_.read_message_max(kMaxJsonBody);
    req_ = std::move(req);
    ws_.async_accept(req_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Fail();
      self->OnOpen();
    });
  }

 private:
  void OnOpen() {
    std::weak_ptr<WsSession> weak = shared_from_this();
    auto exec = ws_.get_executor();
    outbox_->SetWake([weak, exec] {
      net::post(exec, [weak] {
        if (auto self = weak.lock()) self->PumpWrites();
      });
    });
    PumpWrites();
    DoRead();
  }

  void PumpWrites() {
    if (writing_ || failed_ || closing_) return;
    auto frame = outbox_->Pop();
    if (!frame) return;
    writing_ = true;
    current_ = std::move(*frame);
    ws_.binary(!current_->text);
    write_timer_.expires_after(kWsWriteTimeout);
    std::weak_ptr<WsSession> weak = shared_from_this();
    write_timer_.async_wait([weak](beast::error_code ec) {
      if (ec) return;
      // A client that stopped reading: drop it; the exec keeps running (the backlog holds
      // its latest output for the next attach).
      if (auto self = weak.lock()) self->Fail();
    });
    ws_.async_write(net::buffer(current_->data),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->OnWrite(ec);
                    });
  }

  void OnWrite(beast::error_code ec) {
    write_timer_.cancel();
    writing_ = false;
    if (ec || failed_) return Fail();
    if (current_->close_after) {
      closing_ = true;
      // The exec is over and this client has everything: the next attach may come now,
      // without waiting for the close handshake.
      session_->Detach(outbox_);
      ws_.async_close(websocket::close_code::normal,
                      [self = shared_from_this()](beast::error_code) { self->Fail(); });
      return;
    }
    current_.reset();
    PumpWrites();
  }

  void DoRead() {
    if (failed_) return;
    ws_.async_read(rbuf_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnRead(ec);
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec) {
      // The client closed (or vanished). Mid-close after the exit frame this is the
      // normal end.
      if (!closing_) Fail();
      return;
    }
    bool binary = ws_.got_binary();
    std::string data = beast::buffers_to_string(rbuf_.data());
    rbuf_.consume(rbuf_.size());
    // Stdin and control calls block on the guest: run them on the workers, and read the
    // next message only after (ordering, and backpressure on a fast writer).
    net::post(*impl_->workers, [self = shared_from_this(), binary, data = std::move(data)] {
      std::string error = self->Apply(binary, data);
      if (!error.empty()) {
        self->outbox_->Push(
            Frame{true, nlohmann::json{{"type", "error"}, {"message", error}}.dump(
                            -1, ' ', false, nlohmann::json::error_handler_t::replace),
                  false});
      }
      net::post(self->ws_.get_executor(), [self] { self->DoRead(); });
    });
  }

  // Applies one client message; returns an error text for a {"type":"error"} frame.
  std::string Apply(bool binary, const std::string& data) {
    Exec& exec = session_->exec();
    if (binary) {
      Status s = exec.WriteStdin(data);
      return s.ok() ? "" : "stdin: " + s.message();
    }
    auto j = nlohmann::json::parse(data, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("type") || !j["type"].is_string()) {
      return "a text message must be a JSON object with a \"type\"";
    }
    std::string type = j["type"].get<std::string>();
    if (type == "stdin_eof") {
      Status s = exec.CloseStdin();
      return s.ok() ? "" : "stdin_eof: " + s.message();
    }
    if (type == "resize") {
      auto rows = j.value("rows", nlohmann::json()), cols = j.value("cols", nlohmann::json());
      if (!rows.is_number_integer() || !cols.is_number_integer() || rows.get<int64_t>() < 1 ||
          cols.get<int64_t>() < 1 || rows.get<int64_t>() > 65535 || cols.get<int64_t>() > 65535) {
        return "resize needs integer rows and cols between 1 and 65535";
      }
      Status s = exec.Resize(rows.get<int>(), cols.get<int>());
      return s.ok() ? "" : "resize: " + s.message();
    }
    if (type == "signal") {
      auto sig = j.value("sig", nlohmann::json());
      static const int kAllowed[] = {1, 2, 3, 6, 10, 12, 15, 28};
      bool allowed = false;
      if (sig.is_number_integer()) {
        for (int a : kAllowed) allowed = allowed || sig.get<int64_t>() == a;
      }
      if (!allowed) return "signal must be one of 1, 2, 3, 6, 10, 12, 15, 28";
      Status s = exec.Signal(sig.get<int>());
      return s.ok() ? "" : "signal: " + s.message();
    }
    return "unknown message type '" + type + "': use resize, signal or stdin_eof";
  }

  void Fail() {
    if (failed_) return;
    failed_ = true;
    outbox_->Close();
    session_->Detach(outbox_);
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  websocket::stream<beast::tcp_stream> ws_;
  Server::Impl* impl_;
  std::shared_ptr<Slot> slot_;
  std::shared_ptr<ExecSession> session_;
  std::shared_ptr<Outbox> outbox_;
  net::steady_timer write_timer_;
  http::request<http::empty_body> req_;
  beast::flat_buffer rbuf_;
  std::optional<Frame> current_;
  bool writing_ = false;
  bool closing_ = false;
  bool failed_ = false;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, Server::Impl* impl, std::shared_ptr<Slot> slot)
      : stream_(std::move(socket)), impl_(impl), slot_(std::move(slot)) {}

  void Run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

 private:
  void ReadHeader() {
    header_.emplace();
    header_->header_limit(16 * 1024);
    // The route decides the body's limit (JSON or upload), once the header is read.
    header_->body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_after(impl_->options.header_timeout);
    http::async_read_header(stream_, buffer_, *header_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->OnHeader(ec);
                            });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  // A reply sent before the body was read: the connection closes after it when a body
  // may follow.
  void EarlyReply(Reply r) {
    const auto& req = header_->get();
    if (req.chunked() || (req.has_content_length() && !header_->is_done())) keep_alive_ = false;
    WriteReply(std::move(r));
  }

  void OnHeader(beast::error_code ec) {
    if (ec) {
      if (ec == http::error::header_limit) {
        keep_alive_ = false;
        ctx_ = RequestCtx{};
        ctx_.request_id = RequestIdFor("");
        Reply r = ErrorReply(Status::InvalidArgument("the request header is over 16 KiB"),
                             ctx_.request_id);
        r.status = 431;
        return WriteReply(std::move(r));
      }
      return Close();
    }
    auto& req = header_->get();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    ctx_ = RequestCtx{};
    ctx_.request_id = RequestIdFor(Sv(req["X-Request-Id"]));
    std::string_view target = Sv(req.target());
    auto match = MatchRoute(Sv(req.method_string()), TargetPath(target));
    if (match.route == nullptr) {
      Reply r = match.path_known
                    ? ErrorReply(Status::InvalidArgument("method " +
                                                         std::string(Sv(req.method_string())) +
                                                         " is not served on this path"),
                                 ctx_.request_id)
                    : ErrorReply(Status::NotFound("no route " + std::string(TargetPath(target)) +
                                                  ": see openapi/serve.openapi.yaml"),
                                 ctx_.request_id);
      if (match.path_known) r.status = 405;
      return EarlyReply(std::move(r));
    }
    if (!match.route->is_public &&
        !CheckApiKey(impl_->options.api_key, Sv(req[http::field::authorization]))) {
      Reply r;
      r.status = 401;
      r.body = nlohmann::json{{"error",
                               {{"message", "invalid or missing API key"},
                                {"type", "AuthError"},
                                {"code", "unauthenticated"},
                                {"request_id", ctx_.request_id}}}}
                   .dump();
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return EarlyReply(std::move(r));
    }
    ctx_.route = match.route->id;
    ctx_.params = std::move(match.params);
    ctx_.query = ParseQuery(target);
    ctx_.idempotency_key = std::string(Sv(req["Idempotency-Key"]));
    // The parser checks a declared length against its limit only while it reads the
    // header, which happens before the route is known: check it here.
    uint64_t limit = match.route->body == BodyKind::kUpload ? impl_->options.max_upload_bytes
                                                            : kMaxJsonBody;
    if (auto length = header_->content_length(); length && *length > limit) {
      Reply r = ErrorReply(
          Status::InvalidArgument(match.route->body == BodyKind::kUpload
                                      ? "the upload is over " + std::to_string(limit) +
                                            " bytes: raise serve's --max-upload-bytes"
                                      : std::string("the JSON body is over 1 MiB")),
          ctx_.request_id);
      r.status = 413;
      keep_alive_ = false;
      return WriteReply(std::move(r));
    }
    switch (match.route->body) {
      case BodyKind::kWebSocket:
        if (!websocket::is_upgrade(req)) {
          return EarlyReply(ErrorReply(
              Status::InvalidArgument("this route is a WebSocket: send Upgrade: websocket"),
              ctx_.request_id));
        }
        return StartAttach();
      case BodyKind::kUpload:
        return StartUpload();
      case BodyKind::kNone:
      case BodyKind::kJson:
        break;
    }
    string_parser_.emplace(std::move(*header_));
    string_parser_->body_limit(kMaxJsonBody);
    stream_.expires_after(kBodyTimeout);
    http::async_read(stream_, buffer_, *string_parser_,
                     [self = shared_from_this()](beast::error_code bec, size_t) {
                       self->OnBody(bec);
                     });
  }

  void OnBody(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      Reply r = ErrorReply(Status::InvalidArgument("the JSON body is over 1 MiB"),
                           ctx_.request_id);
      r.status = 413;
      return WriteReply(std::move(r));
    }
    if (ec) return Close();
    ctx_.body = std::move(string_parser_->get().body());
    Dispatch();
  }

  void StartUpload() {
    std::string dir;
    auto keep = impl_->api->TempDir("serve-upload", &dir);
    if (!keep.ok()) return EarlyReply(ErrorReply(keep.error(), ctx_.request_id));
    upload_keep_ = *keep;
    ctx_.upload_path = dir + "/upload";
    bool expect_continue = beast::iequals(header_->get()[http::field::expect], "100-continue");
    file_parser_.emplace(std::move(*header_));
    file_parser_->body_limit(impl_->options.max_upload_bytes);
    beast::error_code ec;
    file_parser_->get().body().open(ctx_.upload_path.c_str(), beast::file_mode::write, ec);
    if (ec) {
      keep_alive_ = false;
      return WriteReply(ErrorReply(Status::IoError("creating the upload file: " + ec.message()),
                                   ctx_.request_id));
    }
    if (expect_continue) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      stream_.expires_after(kBodyTimeout);
      http::async_write(stream_, *cont,
                        [self = shared_from_this(), cont](beast::error_code wec, size_t) {
                          if (wec) return self->Close();
                          self->ReadUploadChunk();
                        });
      return;
    }
    ReadUploadChunk();
  }

  void ReadUploadChunk() {
    if (file_parser_->is_done()) return OnUploaded();
    stream_.expires_after(kBodyTimeout);
    http::async_read_some(stream_, buffer_, *file_parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (ec == http::error::body_limit) {
                              self->keep_alive_ = false;
                              Reply r = ErrorReply(
                                  Status::InvalidArgument(
                                      "the upload is over " +
                                      std::to_string(self->impl_->options.max_upload_bytes) +
                                      " bytes: raise serve's --max-upload-bytes"),
                                  self->ctx_.request_id);
                              r.status = 413;
                              self->upload_keep_.reset();
                              return self->WriteReply(std::move(r));
                            }
                            if (ec) return self->Close();
                            self->ReadUploadChunk();
                          });
  }

  void OnUploaded() {
    file_parser_->get().body().close();
    Dispatch();
  }

  void Dispatch() {
    stream_.expires_never();
    net::post(*impl_->workers, [self = shared_from_this()] {
      Reply r = self->impl_->api->Handle(self->ctx_);
      net::post(self->stream_.get_executor(), [self, r = std::move(r)]() mutable {
        self->upload_keep_.reset();
        self->WriteReply(std::move(r));
      });
    });
  }

  void StartAttach() {
    stream_.expires_never();
    net::post(*impl_->workers, [self = shared_from_this()] {
      auto target = self->impl_->api->AttachTarget(self->ctx_.route, self->ctx_.params);
      net::post(self->stream_.get_executor(), [self, target = std::move(target)]() mutable {
        self->OnAttachTarget(std::move(target));
      });
    });
  }

  void OnAttachTarget(Result<std::shared_ptr<ExecSession>> target) {
    if (!target.ok()) {
      keep_alive_ = false;
      return WriteReply(ErrorReply(target.error(), ctx_.request_id));
    }
    auto outbox = std::make_shared<Outbox>();
    if (!(*target)->Attach(outbox)) {
      keep_alive_ = false;
      return WriteReply(ErrorReply(
          Status::FailedPrecondition("execution " + (*target)->id() +
                                     " already has a client attached: one at a time"),
          ctx_.request_id));
    }
    auto ws = std::make_shared<WsSession>(std::move(stream_), impl_, slot_, *target, outbox);
    ws->Accept(header_->release());
  }

  template <typename Body>
  void Send(std::shared_ptr<http::response<Body>> res, std::shared_ptr<void> keep,
            std::chrono::seconds timeout) {
    stream_.expires_after(timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep](beast::error_code ec, size_t) {
                        if (ec || !self->keep_alive_) return self->Close();
                        self->ReadHeader();
                      });
  }

  template <typename Body>
  void Decorate(http::response<Body>& res, const Reply& r) {
    res.set(http::field::server, "boxlite");
    res.set("X-Request-Id", ctx_.request_id);
    if (!r.content_type.empty()) res.set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(keep_alive_);
  }

  void WriteReply(Reply r) {
    auto status = static_cast<http::status>(r.status);
    if (!r.file_path.empty()) {
      auto res = std::make_shared<http::response<http::file_body>>(status, 11);
      beast::error_code ec;
      res->body().open(r.file_path.c_str(), beast::file_mode::scan, ec);
      if (ec) {
        return WriteReply(ErrorReply(Status::IoError("reading " + r.file_path + ": " + ec.message()),
                                     ctx_.request_id));
      }
      Decorate(*res, r);
      res->prepare_payload();
      return Send(res, r.keep, kDownloadTimeout);
    }
    auto res = std::make_shared<http::response<http::string_body>>(status, 11);
    Decorate(*res, r);
    if (head_) {
      res->content_length(r.body.size());
    } else {
      res->body() = std::move(r.body);
      res->prepare_payload();
    }
    Send(res, r.keep, kReplyTimeout);
  }

  beast::tcp_stream stream_;
  Server::Impl* impl_;
  std::shared_ptr<Slot> slot_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_;
  std::optional<http::request_parser<http::string_body>> string_parser_;
  std::optional<http::request_parser<http::file_body>> file_parser_;
  RequestCtx ctx_;
  std::shared_ptr<void> upload_keep_;
  bool keep_alive_ = false;
  bool head_ = false;
};

}  // namespace

void Server::Impl::DoAccept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors or similar: wait a little instead of spinning.
      accept_retry.expires_after(100ms);
      accept_retry.async_wait([this](beast::error_code wec) {
        if (!wec) DoAccept();
      });
      return;
    }
    if (connections.load() >= options.max_connections) {
      // A small reply on a fresh socket: its send buffer takes it at once.
      Reply busy = ErrorReply(Status::Unavailable("too many connections: retry later"),
                              RequestIdFor(""));
      http::response<http::string_body> res(static_cast<http::status>(busy.status), 11);
      res.set(http::field::content_type, busy.content_type);
      res.keep_alive(false);
      res.body() = std::move(busy.body);
      res.prepare_payload();
      beast::error_code wec;
      http::write(socket, res, wec);
      socket.shutdown(tcp::socket::shutdown_send, wec);
      socket.close(wec);
    } else {
      ++connections;
      auto slot = std::make_shared<Slot>(&connections);
      std::make_shared<HttpSession>(std::move(socket), this, slot)->Run();
    }
    DoAccept();
  });
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(10); }

const std::string& Server::host() const { return impl_->host; }
int Server::port() const { return impl_->port; }

Result<std::unique_ptr<Server>> Server::Start(std::shared_ptr<Runtime> runtime,
                                              const ServerOptions& options,
                                              const ReaperConfig& reaper) {
  if (Status s = ValidateServerOptions(options); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->runtime = runtime;
  impl->host = options.host == "localhost" ? "127.0.0.1" : options.host;
  boost::system::error_code ec;
  auto addr = net::ip::make_address(impl->host, ec);
  tcp::endpoint endpoint(addr, static_cast<unsigned short>(options.port));
  std::string where = impl->host + ":" + std::to_string(options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(StatusCode::kUnavailable,
                  "cannot listen on " + where + ": " + ec.message() +
                      " (pick another --port, or 0 for a free one)",
                  ec.value());
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->workers = std::make_unique<net::thread_pool>(std::max(2, options.workers));
  impl->api = std::make_unique<Api>(runtime, options, reaper);
  impl->DoAccept();
  for (int i = 0; i < 2; ++i) {
    impl->io_threads.emplace_back([ioc = &impl->ioc] { ioc->run(); });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::Shutdown(int timeout_seconds) {
  {
    std::lock_guard<std::mutex> lock(impl_->stop_mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  net::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor.close(ec);
    impl->accept_retry.cancel();
  });
  // The execs the server started end with it; their readers stop.
  impl_->api->sessions().Shutdown(std::chrono::seconds(5));
  impl_->ioc.stop();
  for (auto& t : impl_->io_threads) t.join();
  impl_->io_threads.clear();
  (void)impl_->runtime->Shutdown(timeout_seconds);
  impl_->api->ReleaseAll();
  impl_->workers->stop();
  impl_->workers->join();
}

}  // namespace boxlite::server
