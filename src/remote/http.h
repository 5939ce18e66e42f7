// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The remote runtime's transport (Boost.Beast over Asio, with OpenSSL for https): HTTP/1.1
// requests on kept-alive connections, and WebSocket streams for exec attach. Server
// certificates are verified against the system's roots and the URL's host name.
//
// Thread-safety: HttpClient may be used from any thread (a small pool of connections);
// a WsStream is used by one owner, its callbacks run on its own I/O thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "boxlite/result.h"
#include "boxlite/status.h"
#include "src/remote/endpoint.h"

namespace boxlite::remote {

struct HttpRequest {
  std::string method = "GET";   // GET, POST, PUT, DELETE, HEAD.
  std::string target;           // Path and query.
  std::string body;
  std::string content_type;     // Set with a body.
  std::string body_file;        // Send this file as the body instead of `body`.
  std::string save_to;          // A 2xx body goes to this new file instead of `body`.
};

struct HttpResponse {
  int status = 0;
  std::string body;  // Bounded (kMaxResponseBody) unless saved to a file.
};

// One WebSocket attach. Messages arrive on the stream's own thread through `on_message`
// (binary: true for a binary frame), which returns false to pause reading until
// Resume(); `on_end` is called once when the stream is over: `clean` when the server
// closed it with a close frame.
class WsStream {
 public:
  struct Callbacks {
    std::function<bool(bool binary, std::string data)> on_message;
    std::function<void(bool clean, const Status& why)> on_end;
  };
  virtual ~WsStream() = default;
  virtual void Start(Callbacks callbacks) = 0;
  // Sends one message; blocks until it is written. Unavailable once the stream ended.
  virtual Status Send(bool binary, std::string data) = 0;
  virtual void Resume() = 0;
  // Closes (a close frame, bounded wait) and stops the I/O thread. Idempotent.
  virtual void Close() = 0;
};

class HttpClient {
 public:
  static constexpr size_t kMaxResponseBody = size_t{64} << 20;

  HttpClient(Endpoint endpoint, std::string path_prefix, std::string bearer_token);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const Endpoint& endpoint() const { return endpoint_; }
  // Targets of box routes (with the prefix) and of global ones (/me, /config: never).
  std::string BoxTarget(std::string_view route) const;
  std::string GlobalTarget(std::string_view route) const;

  // Sends a request and returns whatever status came back. Unavailable when the server
  // cannot be reached (one line naming it).
  Result<HttpResponse> Send(const HttpRequest& request);
  // Sends and checks: a status outside 2xx is the error its envelope says (wire.h);
  // `what` names the call in messages ("create box").
  Result<HttpResponse> Call(const HttpRequest& request, std::string_view what);
  // Call() with a JSON body (null: none), parsing a JSON answer (null for an empty one).
  Result<nlohmann::json> CallJson(const std::string& method, const std::string& target,
                                  const nlohmann::json& body, std::string_view what);

  // Opens a WebSocket on `target`. `response_header`, when given, names a header of the
  // upgrade response whose value is stored in *header_value.
  Result<std::unique_ptr<WsStream>> OpenWs(const std::string& target, std::string_view what,
                                           const std::string& response_header = "",
                                           std::string* header_value = nullptr);

 private:
  struct Conn;
  Result<std::unique_ptr<Conn>> Connect();
  Result<HttpResponse> SendOn(Conn& conn, const HttpRequest& request, bool* nothing_received,
                              bool* reusable);

  Endpoint endpoint_;
  std::string prefix_;
  std::string bearer_;
  struct Tls;
  std::unique_ptr<Tls> tls_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_;
};

}  // namespace boxlite::remote
