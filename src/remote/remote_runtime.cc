// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/remote/remote_runtime.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/remote/endpoint.h"
#include "src/remote/files.h"
#include "src/remote/http.h"
#include "src/remote/remote_exec.h"
#include "src/remote/wire.h"
#include "src/sys/fs.h"

namespace boxlite::remote {
namespace {

using nlohmann::json;

Status Unsupported(const std::string& what) {
  return Status::NotSupported("unsupported: " + what + " over REST");
}

// The server's /v1/config capabilities, fetched once per runtime.
class ServerConfig {
 public:
  explicit ServerConfig(std::shared_ptr<HttpClient> client) : client_(std::move(client)) {}

  Result<json> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!config_) {
      BOXLITE_ASSIGN_OR_RETURN(json j, client_->CallJson("GET", client_->GlobalTarget("/config"),
                                                         nullptr, "read the server's config"));
      config_ = std::move(j);
    }
    return *config_;
  }

  // OK when the server says `flag` is enabled; NotSupported naming `what` otherwise.
  Status Require(const char* flag, const std::string& what) {
    BOXLITE_ASSIGN_OR_RETURN(json j, Get());
    const json* caps = j.is_object() && j.contains("capabilities") ? &j["capabilities"] : nullptr;
    if (caps && caps->is_object() && caps->value(flag, false)) return Status::OK();
    return Status::NotSupported("unsupported: this server does not offer " + what + " (" + flag + ")");
  }

 private:
  std::shared_ptr<HttpClient> client_;
  std::mutex mu_;
  std::optional<json> config_;
};

struct Shared {
  std::shared_ptr<HttpClient> client;
  std::shared_ptr<ServerConfig> config;
};

std::string BoxRoute(const std::string& id, std::string_view tail = "") {
  return "/boxes/" + EscapeComponent(id) + std::string(tail);
}

class RemoteBox final : public Box, public std::enable_shared_from_this<RemoteBox> {
 public:
  RemoteBox(Shared shared, const BoxInfo& info) : s_(std::move(shared)), id_(info.id), name_(info.name) {}

  const std::string& id() const override { return id_; }
  const std::string& name() const override { return name_; }

  Status Start() override { return Post("/start", "start box " + id_); }
  Status Stop() override {
    Status s = Post("/stop", "stop box " + id_);
    // A box the server removes when it stops (auto_delete) may be gone already: stopped.
    return s.IsNotFound() ? Status::OK() : s;
  }

  Result<std::shared_ptr<Exec>> StartExec(const ExecOptions& options) override {
    BOXLITE_ASSIGN_OR_RETURN(json request, ExecRequest(options));
    BOXLITE_ASSIGN_OR_RETURN(json started, s_.client->CallJson("POST", Target("/exec"), request,
                                                               "exec in box " + id_));
    std::string eid = started.is_object() ? started.value("execution_id", std::string()) : "";
    if (eid.empty() || eid.size() > 256) {
      return Status::ProtocolError("exec in box " + id_ + ": the server's answer has no execution_id");
    }
    auto exec = std::make_shared<RemoteExec>(s_.client, id_, eid, options.tty);
    if (options.detached) {
      exec->MarkDetached();
      return std::shared_ptr<Exec>(exec);
    }
    Status attached = exec->Attach();
    if (!attached.ok()) {
      (void)exec->Kill();  // Nobody can reach it otherwise until the server reaps it.
      return attached;
    }
    if (options.tty) BOXLITE_RETURN_IF_ERROR(exec->Resize(options.rows, options.cols));
    if (!options.open_stdin && !options.tty) BOXLITE_RETURN_IF_ERROR(exec->CloseStdin());
    return std::shared_ptr<Exec>(exec);
  }

  Result<std::shared_ptr<Exec>> AttachMain() override {
    auto exec = std::make_shared<RemoteExec>(s_.client, id_, "", false);
    BOXLITE_RETURN_IF_ERROR(exec->Attach(Target("/attach")));
    return std::shared_ptr<Exec>(exec);
  }

  Result<std::shared_ptr<Exec>> AttachExec(const std::string& execution_id) override {
    if (execution_id.empty() || execution_id.size() > 256) {
      return Status::InvalidArgument("an execution id is 1..256 characters");
    }
    auto exec = std::make_shared<RemoteExec>(s_.client, id_, execution_id, false);
    Status attached = exec->Attach();
    if (!attached.ok()) return attached.WithDefaultSubject(StatusSubject::kExec);
    return std::shared_ptr<Exec>(exec);
  }

  Result<ExecResult> Run(const ExecOptions& options) override {
    auto started = std::chrono::steady_clock::now();
    ExecOptions o = options;
    o.open_stdin = options.stdin_data.has_value();
    o.detached = false;
    BOXLITE_ASSIGN_OR_RETURN(std::shared_ptr<Exec> exec, StartExec(o));
    ExecResult result;
    Status stdin_status;
    std::thread feeder;
    if (options.stdin_data) {
      feeder = std::thread([&] {
        stdin_status = exec->WriteStdin(*options.stdin_data);
        Status closed = exec->CloseStdin();
        if (stdin_status.ok()) stdin_status = closed;
      });
    }
    Status err_status;
    std::thread err_reader([&] {
      for (;;) {
        auto chunk = exec->Read(2);
        if (!chunk.ok()) { err_status = chunk.error(); return; }
        if (chunk->empty()) return;
        result.stderr_truncated |= AppendOutput(&result.stderr_data, *chunk, options.max_output_bytes);
      }
    });
    Status out_status;
    for (;;) {
      auto chunk = exec->Read(1);
      if (!chunk.ok()) { out_status = chunk.error(); break; }
      if (chunk->empty()) break;
      result.stdout_truncated |= AppendOutput(&result.stdout_data, *chunk, options.max_output_bytes);
    }
    std::optional<std::chrono::milliseconds> limit;
    if (options.timeout_seconds) {
      // The server enforces the timeout; this bound only covers a server that does not.
      limit = std::chrono::milliseconds(static_cast<int64_t>(*options.timeout_seconds * 1000) + 5000);
    }
    auto exit = exec->Wait(limit);
    err_reader.join();
    if (feeder.joinable()) feeder.join();
    if (!exit.ok()) return exit.error();
    result.exit_code = exit->exit_code;
    result.signal = exit->signal;
    result.timed_out = exit->timed_out;
    result.error_message = exit->error_message;
    if (options.timeout_seconds && exit->exit_code == 137 && !result.timed_out) {
      double ran = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      result.timed_out = ran >= *options.timeout_seconds;
    }
    result.duration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!out_status.ok()) return out_status;
    if (!err_status.ok()) return err_status;
    return result;
  }

  Result<BoxInfo> Info() override {
    BOXLITE_ASSIGN_OR_RETURN(json j, s_.client->CallJson("GET", Target(""), nullptr, "inspect box " + id_));
    BoxInfo info = BoxInfoFromJson(j);
    if (!info.name.empty()) name_ = info.name;
    return info;
  }

  Result<BoxMetrics> Metrics() override {
    BOXLITE_ASSIGN_OR_RETURN(json j, s_.client->CallJson("GET", Target("/metrics"), nullptr,
                                                         "read the metrics of box " + id_));
    return BoxMetricsFromJson(j);
  }

  Status CopyIn(const std::string& host_path, const std::string& guest_path,
                const CopyOptions& options) override {
    if (!options.overwrite) return Unsupported("copy_in with overwrite=False");
    BOXLITE_ASSIGN_OR_RETURN(std::string dir, MakeTempDir());
    base::ScopeExit cleanup([&] { (void)sys::RemoveTree(dir); });
    std::string tar = dir + "/in.tar";
    auto [into, top] = CopyInTarget(host_path, guest_path);
    BOXLITE_RETURN_IF_ERROR(PackForCopyIn(host_path, tar, options, top));
    HttpRequest req;
    req.method = "PUT";
    req.target = Target("/files") + "?path=" + EscapeComponent(into);
    req.body_file = tar;
    req.content_type = "application/x-tar";
    auto r = s_.client->Call(req, "copy " + host_path + " into box " + id_);
    return r.ok() ? Status::OK() : r.error();
  }

  Status CopyOut(const std::string& guest_path, const std::string& host_path,
                 const CopyOptions& options) override {
    if (options.follow_symlinks) return Unsupported("copy_out with follow_symlinks=True");
    BOXLITE_ASSIGN_OR_RETURN(std::string dir, MakeTempDir());
    base::ScopeExit cleanup([&] { (void)sys::RemoveTree(dir); });
    HttpRequest req;
    req.target = Target("/files") + "?path=" + EscapeComponent(guest_path);
    req.save_to = dir + "/out.tar";
    auto r = s_.client->Call(req, "copy " + guest_path + " out of box " + id_);
    if (!r.ok()) return r.error();
    return UnpackForCopyOut(req.save_to, host_path, options).Wrap("copy " + guest_path + " to " + host_path);
  }

  Result<std::shared_ptr<Connection>> Tunnel(int) override {
    return Unsupported("tunnels (this server has no tunnel route)");
  }
  Result<std::string> ConsoleLog() override {
    return Unsupported("console logs (read them on the server's host)");
  }

  Result<SnapshotInfo> CreateSnapshot(const std::string& name, const SnapshotOptions& options) override {
    if (options.memory) return Unsupported("memory snapshots");
    BOXLITE_RETURN_IF_ERROR(s_.config->Require("snapshots_enabled", "snapshots"));
    BOXLITE_ASSIGN_OR_RETURN(json j, s_.client->CallJson("POST", Target("/snapshots"), json{{"name", name}},
                                                         "snapshot box " + id_));
    return SnapshotInfoFromJson(j);
  }

  Result<std::vector<SnapshotInfo>> ListSnapshots() override {
    BOXLITE_RETURN_IF_ERROR(s_.config->Require("snapshots_enabled", "snapshots"));
    BOXLITE_ASSIGN_OR_RETURN(json j, s_.client->CallJson("GET", Target("/snapshots"), nullptr,
                                                         "list the snapshots of box " + id_));
    std::vector<SnapshotInfo> out;
    if (j.is_object() && j.contains("snapshots") && j["snapshots"].is_array()) {
      for (const auto& e : j["snapshots"]) out.push_back(SnapshotInfoFromJson(e));
    }
    return out;
  }

  Result<std::optional<SnapshotInfo>> GetSnapshot(const std::string& name) override {
    BOXLITE_RETURN_IF_ERROR(s_.config->Require("snapshots_enabled", "snapshots"));
    auto j = s_.client->CallJson("GET", Target("/snapshots/" + EscapeComponent(name)), nullptr,
                                 "read snapshot " + name);
    if (!j.ok() && j.error().IsNotFound()) return std::optional<SnapshotInfo>();
    if (!j.ok()) return j.error();
    return std::optional<SnapshotInfo>(SnapshotInfoFromJson(*j));
  }

  Status RemoveSnapshot(const std::string& name) override {
    BOXLITE_RETURN_IF_ERROR(s_.config->Require("snapshots_enabled", "snapshots"));
    auto j = s_.client->CallJson("DELETE", Target("/snapshots/" + EscapeComponent(name)), nullptr,
                                 "remove snapshot " + name);
    return j.ok() ? Status::OK() : j.error();
  }

  Status RestoreSnapshot(const std::string& name) override {
    BOXLITE_RETURN_IF_ERROR(s_.config->Require("snapshots_enabled", "snapshots"));
    return Post("/snapshots/" + EscapeComponent(name) + "/restore", "restore snapshot " + name);
  }

  Result<std::shared_ptr<Box>> Clone(const std::string& name, const CloneOptions&) override {
    BOXLITE_RETURN_IF_ERROR(s_.config->Require("clone_enabled", "clones"));
    json body = json::object();
    if (!name.empty()) body["name"] = name;
    BOXLITE_ASSIGN_OR_RETURN(json j, s_.client->CallJson("POST", Target("/clone"), body, "clone box " + id_));
    return std::shared_ptr<Box>(std::make_shared<RemoteBox>(s_, BoxInfoFromJson(j)));
  }

  Result<std::string> Export(const std::string& dest, const ExportOptions&) override {
    BOXLITE_RETURN_IF_ERROR(s_.config->Require("export_enabled", "export"));
    std::string path = dest;
    if (sys::IsDirectory(dest)) path = sys::JoinPath(dest, (name_.empty() ? "box" : name_) + ".boxlite");
    if (sys::Exists(path)) return Status::AlreadyExists(path + " exists");
    std::string partial = path + ".partial." + std::to_string(::getpid());
    (void)::unlink(partial.c_str());
    base::ScopeExit cleanup([&] { (void)::unlink(partial.c_str()); });
    HttpRequest req;
    req.method = "POST";
    req.target = Target("/export");
    req.body = "{}";
    req.content_type = "application/json";
    req.save_to = partial;
    auto r = s_.client->Call(req, "export box " + id_);
    if (!r.ok()) return r.error();
    if (::rename(partial.c_str(), path.c_str()) != 0) return Status::IoError("rename to " + path);
    return path;
  }

  Result<std::vector<std::shared_ptr<Box>>> Fork(const ForkOptions&) override {
    return Unsupported("fork");
  }

 private:
  std::string Target(std::string_view tail) const { return s_.client->BoxTarget(BoxRoute(id_, tail)); }

  Status Post(const std::string& tail, const std::string& what) {
    auto r = s_.client->CallJson("POST", Target(tail), nullptr, what);
    return r.ok() ? Status::OK() : r.error();
  }

  Shared s_;
  std::string id_;
  std::string name_;
};

class RemoteRuntime final : public Runtime {
 public:
  RemoteRuntime(Shared shared, std::string url) : s_(std::move(shared)), url_(std::move(url)) {}

  const std::string& home_dir() const override { return url_; }

  Result<std::shared_ptr<Box>> Create(const BoxOptions& options) override {
    BOXLITE_RETURN_IF_ERROR(CheckRemoteBoxOptions(options));
    if (!options.capabilities.add.empty() || !options.capabilities.drop.empty()) {
      BOXLITE_RETURN_IF_ERROR(s_.config->Require("linux_capabilities_enabled", "Linux capabilities"));
    }
    BOXLITE_ASSIGN_OR_RETURN(json j, s_.client->CallJson("POST", s_.client->BoxTarget("/boxes"),
                                                         CreateBoxRequest(options), "create box"));
    BoxInfo info = BoxInfoFromJson(j);
    if (info.id.empty()) return Status::ProtocolError("create box: the server's answer has no box_id");
    return std::shared_ptr<Box>(std::make_shared<RemoteBox>(s_, info));
  }

  Result<std::shared_ptr<Box>> Get(std::string_view id_or_name) override {
    std::string key(id_or_name);
    auto j = s_.client->CallJson("GET", s_.client->BoxTarget(BoxRoute(key)), nullptr, "find box " + key);
    if (!j.ok()) {
      if (j.error().IsNotFound()) {
        return Status::NotFound("box not found: " + key).WithSubject(StatusSubject::kBox);
      }
      return j.error();
    }
    return std::shared_ptr<Box>(std::make_shared<RemoteBox>(s_, BoxInfoFromJson(*j)));
  }

  Result<std::vector<BoxInfo>> List() override {
    BOXLITE_ASSIGN_OR_RETURN(json j, s_.client->CallJson("GET", s_.client->BoxTarget("/boxes"), nullptr,
                                                         "list boxes"));
    std::vector<BoxInfo> out;
    if (j.is_object() && j.contains("boxes") && j["boxes"].is_array()) {
      for (const auto& b : j["boxes"]) out.push_back(BoxInfoFromJson(b));
    }
    return out;
  }

  Status Remove(std::string_view id_or_name, bool force) override {
    std::string key(id_or_name);
    auto j = s_.client->CallJson("DELETE",
                                 s_.client->BoxTarget(BoxRoute(key)) + (force ? "?force=true" : "?force=false"),
                                 nullptr, "remove box " + key);
    if (!j.ok() && j.error().IsNotFound()) {
      return Status::NotFound("box not found: " + key).WithSubject(StatusSubject::kBox);
    }
    return j.ok() ? Status::OK() : j.error();
  }

  Result<std::pair<std::shared_ptr<Box>, bool>> GetOrCreate(const BoxOptions& options) override {
    if (!options.name.empty()) {
      auto found = Get(options.name);
      if (found.ok()) return std::make_pair(*found, false);
      if (!found.error().IsNotFound()) return found.error();
    }
    auto made = Create(options);
    if (!made.ok() && made.error().IsAlreadyExists() && !options.name.empty()) {
      BOXLITE_ASSIGN_OR_RETURN(auto box, Get(options.name));  // Created meanwhile by another client.
      return std::make_pair(box, false);
    }
    if (!made.ok()) return made.error();
    return std::make_pair(*made, true);
  }

  Status Shutdown(std::optional<int>) override { return Status::OK(); }  // 0.9: a no-op.

  Result<ImageInfo> PullImage(std::string_view, const PullCallback&) override { return Images(); }
  Result<std::vector<ImageInfo>> ListImages() override { return Images(); }
  Status RemoveImage(std::string_view) override { return Images(); }
  Result<std::vector<ImageInfo>> ImportImage(const std::string&, std::string_view) override {
    return Images();
  }

  Result<std::shared_ptr<Box>> ImportBox(const std::string& archive_path, const std::string& name,
                                         bool) override {
    BOXLITE_RETURN_IF_ERROR(s_.config->Require("import_enabled", "import"));
    if (!sys::Exists(archive_path)) return Status::NotFound("no such archive: " + archive_path);
    HttpRequest req;
    req.method = "POST";
    req.target = s_.client->BoxTarget("/boxes/import") + (name.empty() ? "" : "?name=" + EscapeComponent(name));
    req.body_file = archive_path;
    req.content_type = "application/octet-stream";
    BOXLITE_ASSIGN_OR_RETURN(HttpResponse r, s_.client->Call(req, "import " + archive_path));
    BOXLITE_ASSIGN_OR_RETURN(json j, ParseBody(r.body, "import " + archive_path));
    return std::shared_ptr<Box>(std::make_shared<RemoteBox>(s_, BoxInfoFromJson(j)));
  }

  Result<VolumeInfo> CreateVolume() override {
    BOXLITE_ASSIGN_OR_RETURN(json j, s_.client->CallJson("POST", s_.client->BoxTarget("/volumes"),
                                                         json::object(), "create volume"));
    return VolumeInfoFromJson(j);
  }

  Result<std::vector<VolumeInfo>> ListVolumes() override {
    BOXLITE_ASSIGN_OR_RETURN(json j, s_.client->CallJson("GET", s_.client->BoxTarget("/volumes"), nullptr,
                                                         "list volumes"));
    std::vector<VolumeInfo> out;
    if (j.is_object() && j.contains("volumes") && j["volumes"].is_array()) {
      for (const auto& v : j["volumes"]) out.push_back(VolumeInfoFromJson(v));
    }
    return out;
  }

  Result<VolumeInfo> GetVolume(std::string_view id) override {
    std::string key(id);
    BOXLITE_ASSIGN_OR_RETURN(json j, s_.client->CallJson("GET", s_.client->BoxTarget("/volumes/" + EscapeComponent(key)),
                                                         nullptr, "find volume " + key));
    return VolumeInfoFromJson(j);
  }

  Status RemoveVolume(std::string_view id, bool force) override {
    std::string key(id);
    auto j = s_.client->CallJson("DELETE",
                                 s_.client->BoxTarget("/volumes/" + EscapeComponent(key)) +
                                     (force ? "?force=true" : "?force=false"),
                                 nullptr, "remove volume " + key);
    return j.ok() ? Status::OK() : j.error();
  }

  Result<RuntimeMetrics> Metrics() override {
    BOXLITE_ASSIGN_OR_RETURN(json j, s_.client->CallJson("GET", s_.client->GlobalTarget("/metrics"), nullptr,
                                                         "read the server's metrics"));
    return RuntimeMetricsFromJson(j);
  }

  Result<std::vector<std::pair<std::string, std::string>>> HostInfo() override {
    std::vector<std::pair<std::string, std::string>> out;
    out.emplace_back("server", url_);
    BOXLITE_ASSIGN_OR_RETURN(json config, s_.config->Get());
    if (config.is_object() && config.contains("capabilities") && config["capabilities"].is_object()) {
      for (const auto& [k, v] : config["capabilities"].items()) {
        out.emplace_back(k, v.is_boolean() ? (v.get<bool>() ? "true" : "false") : v.dump());
      }
    }
    return out;
  }

 private:
  Status Images() const {
    return Status::NotSupported("unsupported: images over REST (the server pulls the images its boxes use)");
  }

  Shared s_;
  std::string url_;
};

}  // namespace

Result<std::shared_ptr<Runtime>> OpenRemoteRuntime(const RuntimeOptions& options) {
  BOXLITE_ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint(options.url));
  BOXLITE_ASSIGN_OR_RETURN(std::string prefix, NormalizePathPrefix(options.path_prefix));
  if (options.bearer_token.find_first_of("\r\n") != std::string::npos) {
    return Status::InvalidArgument("the API key must be one line");
  }
  Shared shared;
  shared.client = std::make_shared<HttpClient>(ep, prefix, options.bearer_token);
  shared.config = std::make_shared<ServerConfig>(shared.client);
  return std::shared_ptr<Runtime>(std::make_shared<RemoteRuntime>(std::move(shared), ep.ToString()));
}

}  // namespace boxlite::remote
