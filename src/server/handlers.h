// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The REST handlers of `boxlite serve`: one call per request, run on a worker thread (the
// runtime's calls block), turning a parsed request into a reply with BoxLite 0.9's JSON
// shapes (docs/server.md; openapi/serve.openapi.yaml). No network I/O here. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "boxlite/runtime.h"
#include "src/server/api.h"
#include "src/server/exec_session.h"
#include "src/server/idempotency.h"

namespace boxlite::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8100;  // 0: any free port.
  std::string api_key;  // Empty: no key asked (loopback binds only).
  uint64_t max_upload_bytes = uint64_t{4} << 30;
  int max_connections = 256;
  int workers = 16;
  std::chrono::seconds header_timeout{30};
};

struct RequestCtx {
  RouteId route = RouteId::kConfig;
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> query;
  std::string body;
  std::string upload_path;  // kUpload routes: the streamed body.
  std::string request_id;
  std::string idempotency_key;
};

struct Reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string file_path;        // Non-empty: stream this file as the body.
  std::shared_ptr<void> keep;   // Held until the reply is sent (a temporary directory).
  std::vector<std::pair<std::string, std::string>> headers;
};

Reply ErrorReply(const Status& s, const std::string& request_id);
Reply JsonReply(unsigned status, const nlohmann::json& body);

// Parses BoxLite 0.9's CreateBoxRequest (unknown fields refused, as 0.9's serve does).
Result<BoxOptions> ParseCreateBox(const nlohmann::json& body);
// Box, Volume and Snapshot JSON.
nlohmann::json BoxJson(const BoxInfo& info);

class Api {
 public:
  Api(std::shared_ptr<Runtime> runtime, ServerOptions options, ReaperConfig reaper);
  ~Api();

  Reply Handle(const RequestCtx& request);
  // The exec session a WebSocket attach route names (the box's main session for
  // /v1/boxes/{id}/attach, started on first use).
  Result<std::shared_ptr<ExecSession>> AttachTarget(RouteId route,
                                                    const std::map<std::string, std::string>&
                                                        params);
  // A private directory under the home's tmp/ (removed when the pointer goes).
  Result<std::shared_ptr<void>> TempDir(const std::string& prefix, std::string* path);

  SessionTable& sessions() { return sessions_; }
  // Lets go of every box handle (after Runtime::Shutdown).
  void ReleaseAll();
  Runtime& runtime() { return *runtime_; }
  const ServerOptions& options() const { return options_; }

 private:
  Result<Reply> Dispatch(const RequestCtx& request);
  Result<std::shared_ptr<Box>> FindBox(const std::map<std::string, std::string>& params);
  Result<std::shared_ptr<ExecSession>> FindExec(const std::map<std::string, std::string>& params);
  Result<Reply> CreateBox(const RequestCtx& request);
  Result<Reply> StartExec(const RequestCtx& request);
  // TempDir with an empty "root" directory in it (the tree a files route moves).
  Result<std::shared_ptr<void>> StagingDir(const std::string& prefix, std::string* path);
  // What both files routes need: the box, ?path=, and a staging directory.
  struct FilesCall {
    std::shared_ptr<Box> box;
    std::string path;
    std::string dir;
    std::string root;
    std::shared_ptr<void> keep;
  };
  Result<FilesCall> PrepareFiles(const RequestCtx& request, const char* what);
  Result<Reply> PutFiles(const RequestCtx& request);
  Result<Reply> GetFiles(const RequestCtx& request);

  // Keeps the handle of every box this server found or made: the runtime holds its boxes
  // weakly, and a handle let go would make the next request attach to the VM again.
  std::shared_ptr<Box> Hold(std::shared_ptr<Box> box);
  void Release(const std::string& id);

  std::shared_ptr<Runtime> runtime_;
  ServerOptions options_;
  std::mutex held_mu_;
  std::map<std::string, std::shared_ptr<Box>> held_;
  SessionTable sessions_;
  IdempotencyCache idempotency_;
};

}  // namespace boxlite::server
