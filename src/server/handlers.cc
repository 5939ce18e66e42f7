// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/server/handlers.h"

#include <sys/stat.h>
#include <time.h>

#include <csignal>
#include <cstdlib>
#include <set>

#include <nlohmann/json.hpp>

#include "boxlite/box_state.h"
#include "src/base/sha256.h"
#include "src/runtime/home_tmp.h"
#include "src/server/tar.h"

namespace boxlite::server {

using nlohmann::json;

namespace {

std::string Rfc3339(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json NullableString(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

Status FieldError(const std::string& field, const std::string& want) {
  return Status::InvalidArgument("field '" + field + "' must be " + want);
}

// Typed reads of an optional field of a JSON object.
Status GetString(const json& obj, const char* key, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::OK();
  if (!it->is_string()) return FieldError(key, "a string");
  *out = it->get<std::string>();
  return Status::OK();
}

template <typename T>
Status GetInt(const json& obj, const char* key, T* out, int64_t lo, int64_t hi) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::OK();
  if (!it->is_number_integer() && !it->is_number_unsigned()) return FieldError(key, "an integer");
  int64_t v = it->is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(
                                             it->get<uint64_t>(), INT64_MAX))
                                       : it->get<int64_t>();
  if (v < lo || v > hi) {
    return FieldError(key, "between " + std::to_string(lo) + " and " + std::to_string(hi));
  }
  *out = static_cast<T>(v);
  return Status::OK();
}

Status GetBool(const json& obj, const char* key, bool* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::OK();
  if (!it->is_boolean()) return FieldError(key, "true or false");
  *out = it->get<bool>();
  return Status::OK();
}

Status GetStringList(const json& obj, const char* key, std::optional<std::vector<std::string>>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::OK();
  if (!it->is_array()) return FieldError(key, "a list of strings");
  std::vector<std::string> v;
  for (const auto& e : *it) {
    if (!e.is_string()) return FieldError(key, "a list of strings");
    v.push_back(e.get<std::string>());
  }
  *out = std::move(v);
  return Status::OK();
}

Status GetEnv(const json& obj, const char* key, EnvList* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::OK();
  if (!it->is_object()) return FieldError(key, "an object of string values");
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) return FieldError(std::string(key) + "." + k, "a string");
    out->emplace_back(k, v.get<std::string>());
  }
  return Status::OK();
}

Status CheckKeys(const json& obj, const std::string& what, const std::set<std::string>& allowed) {
  for (const auto& [k, v] : obj.items()) {
    if (!allowed.count(k)) {
      return Status::InvalidArgument("unknown field '" + k + "' in " + what +
                                     ": remove it (this server accepts only the fields of "
                                     "openapi/serve.openapi.yaml)");
    }
  }
  return Status::OK();
}

Result<json> ParseBody(const std::string& body, bool allow_empty = true) {
  if (body.empty()) {
    if (allow_empty) return json::object();
    return Status::InvalidArgument("the request needs a JSON body");
  }
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    return Status::InvalidArgument("the request body is not valid JSON: send a JSON object");
  }
  if (!j.is_object()) return Status::InvalidArgument("the request body must be a JSON object");
  return j;
}

json VolumeJson(const VolumeInfo& v) {
  return json{{"id", v.id}, {"created_at", Rfc3339(v.created_unix)}, {"size_bytes", v.size_bytes}};
}

json SnapshotJson(const SnapshotInfo& s) {
  return json{{"id", s.id},
              {"box_id", s.box_id},
              {"name", s.name},
              {"created_at", s.created_unix},
              {"container_disk_bytes", s.container_disk_bytes},
              {"size_bytes", s.size_bytes}};
}

json BoxMetricsJson(const BoxMetrics& m) {
  json j = {{"commands_executed_total", m.commands_executed_total},
            {"exec_errors_total", m.exec_errors_total},
            {"bytes_sent_total", m.bytes_sent_total},
            {"bytes_received_total", m.bytes_received_total},
            {"cpu_percent", m.cpu_percent.value_or(0.0)},
            {"memory_bytes", m.memory_bytes.value_or(0)},
            {"network_bytes_sent", m.network_bytes_sent.value_or(0)},
            {"network_bytes_received", m.network_bytes_received.value_or(0)},
            {"network_tcp_connections", m.network_tcp_connections.value_or(0)},
            {"network_tcp_errors", m.network_tcp_errors.value_or(0)}};
  if (m.total_create_duration_ms) {
    j["boot_timing"] = {{"total_create_ms", *m.total_create_duration_ms},
                        {"guest_boot_ms", m.guest_boot_duration_ms.value_or(0)},
                        {"filesystem_setup_ms", m.stage_filesystem_setup_ms.value_or(0)},
                        {"image_prepare_ms", m.stage_image_prepare_ms.value_or(0)},
                        {"guest_rootfs_ms", m.stage_guest_rootfs_ms.value_or(0)},
                        {"box_config_ms", m.stage_box_config_ms.value_or(0)},
                        {"box_spawn_ms", m.stage_box_spawn_ms.value_or(0)},
                        {"container_init_ms", m.stage_container_init_ms.value_or(0)}};
  }
  return j;
}

Reply Empty(unsigned status) {
  Reply r;
  r.status = status;
  r.content_type.clear();
  return r;
}

const std::set<int> kAllowedSignals = {1, 2, 3, 6, 10, 12, 15, 28};

}  // namespace

Reply ErrorReply(const Status& s, const std::string& request_id) {
  Reply r;
  r.status = MapStatus(s).status;
  r.body = ErrorBody(s, request_id).dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

Reply JsonReply(unsigned status, const json& body) {
  Reply r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

json BoxJson(const BoxInfo& b) {
  json j = {{"box_id", b.id},
            {"name", NullableString(b.name)},
            {"status", b.state},
            {"created_at", Rfc3339(b.created_unix)},
            {"updated_at", Rfc3339(b.created_unix)},
            {"pid", b.pid > 0 ? json(b.pid) : json(nullptr)},
            {"image", b.image},
            {"cpus", b.cpus},
            {"memory_mib", b.memory_mib},
            {"labels", json::object()},
            {"auto_pause", b.auto_pause},
            {"auto_delete", b.auto_delete},
            {"auto_resume", b.auto_resume}};
  if (b.exit_code) j["exit_code"] = *b.exit_code;
  return j;
}

Result<BoxOptions> ParseCreateBox(const json& body) {
  static const std::set<std::string> kFields = {
      "name",   "image", "rootfs_path", "cpus",       "memory_mib", "disk_size_gb",
      "working_dir", "env", "entrypoint", "cmd",     "user",       "tty",
      "advanced", "network", "auto_pause", "auto_delete", "auto_resume", "detach"};
  if (Status s = CheckKeys(body, "CreateBoxRequest", kFields); !s.ok()) return s;
  BoxOptions o;
  o.image = "alpine:latest";
  Status s;
  int64_t disk_gb = 0;
  int64_t auto_delete = 0;
  bool has_auto_delete = body.contains("auto_delete") && !body["auto_delete"].is_null();
  if (!(s = GetString(body, "name", &o.name)).ok() ||
      !(s = GetString(body, "image", &o.image)).ok() ||
      !(s = GetString(body, "rootfs_path", &o.rootfs_path)).ok() ||
      !(s = GetInt(body, "cpus", &o.cpus, 1, 1024)).ok() ||
      !(s = GetInt(body, "memory_mib", &o.memory_mib, 1, INT32_MAX)).ok() ||
      !(s = GetInt(body, "disk_size_gb", &disk_gb, 0, int64_t{1} << 20)).ok() ||
      !(s = GetString(body, "working_dir", &o.working_dir)).ok() ||
      !(s = GetEnv(body, "env", &o.env)).ok() ||
      !(s = GetStringList(body, "entrypoint", &o.entrypoint)).ok() ||
      !(s = GetStringList(body, "cmd", &o.cmd)).ok() ||
      !(s = GetString(body, "user", &o.user)).ok() || !(s = GetBool(body, "tty", &o.tty)).ok() ||
      !(s = GetInt(body, "auto_pause", &o.auto_pause, 0, UINT32_MAX)).ok() ||
      !(s = GetInt(body, "auto_delete", &auto_delete, -1, INT64_MAX)).ok() ||
      !(s = GetBool(body, "auto_resume", &o.auto_resume)).ok()) {
    return s;
  }
  if (o.image.empty() && o.rootfs_path.empty()) o.image = "alpine:latest";
  if (!o.rootfs_path.empty()) o.image.clear();
  o.disk_size_mib = disk_gb * 1024;
  o.auto_delete = auto_delete;
  (void)has_auto_delete;
  o.auto_remove = false;
  o.detach = auto_delete == 0;
  if (Status d = GetBool(body, "detach", &o.detach); !d.ok()) return d;
  if (auto adv = body.find("advanced"); adv != body.end() && !adv->is_null()) {
    if (!adv->is_object()) return FieldError("advanced", "an object");
    if (Status k = CheckKeys(*adv, "advanced", {"capabilities"}); !k.ok()) return k;
    if (auto caps = adv->find("capabilities"); caps != adv->end() && !caps->is_null()) {
      if (!caps->is_object()) return FieldError("advanced.capabilities", "an object");
      if (Status k = CheckKeys(*caps, "advanced.capabilities", {"add", "drop"}); !k.ok()) return k;
      std::optional<std::vector<std::string>> add, drop;
      if (!(s = GetStringList(*caps, "add", &add)).ok() ||
          !(s = GetStringList(*caps, "drop", &drop)).ok()) {
        return s;
      }
      o.capabilities.add = add.value_or(std::vector<std::string>{});
      o.capabilities.drop = drop.value_or(std::vector<std::string>{});
    }
  }
  if (auto net = body.find("network"); net != body.end() && !net->is_null()) {
    if (!net->is_object()) return FieldError("network", "an object");
    if (Status k = CheckKeys(*net, "network", {"mode", "allow_net"}); !k.ok()) return k;
    std::string mode;
    std::optional<std::vector<std::string>> allow;
    if (!(s = GetString(*net, "mode", &mode)).ok() ||
        !(s = GetStringList(*net, "allow_net", &allow)).ok()) {
      return s;
    }
    if (mode.empty() || mode == "enabled" || mode == "nat") {
      o.network = "nat";
    } else if (mode == "disabled" || mode == "none") {
      o.network = "none";
    } else {
      return FieldError("network.mode", "\"enabled\" or \"disabled\"");
    }
    o.allow_net = allow.value_or(std::vector<std::string>{});
  }
  return o;
}

Api::Api(std::shared_ptr<Runtime> runtime, ServerOptions options, ReaperConfig reaper)
    : runtime_(std::move(runtime)), options_(std::move(options)), sessions_(reaper) {
  sessions_.StartReaper();
}

Api::~Api() { sessions_.Shutdown(std::chrono::seconds(5)); }

void Api::ReleaseAll() {
  std::lock_guard<std::mutex> lock(held_mu_);
  held_.clear();
}

Result<std::shared_ptr<void>> Api::TempDir(const std::string& prefix, std::string* path) {
  std::string tmp = runtime_->home_dir() + "/tmp";
  ::mkdir(tmp.c_str(), 0700);
  auto dir = runtime::TmpWorkDir::Make(tmp, prefix);
  if (!dir.ok()) return dir.error();
  auto held = std::make_shared<runtime::TmpWorkDir>(std::move(*dir));
  // A real path: extraction refuses to pass through any symlink, the home's included.
  char* real = ::realpath(held->path().c_str(), nullptr);
  *path = real != nullptr ? real : held->path();
  std::free(real);
  return std::shared_ptr<void>(held);
}

Result<std::shared_ptr<void>> Api::StagingDir(const std::string& prefix, std::string* path) {
  auto keep = TempDir(prefix, path);
  if (!keep.ok()) return keep.error();
  std::string root = *path + "/root";
  if (::mkdir(root.c_str(), 0700) != 0) {
    return Status(StatusCode::kIoError, "creating " + root, errno);
  }
  return keep;
}

Reply Api::Handle(const RequestCtx& request) {
  auto r = Dispatch(request);
  if (!r.ok()) {
    Reply e = ErrorReply(r.error(), request.request_id);
    auto eid = request.params.find("execution_id");
    if (e.status == 404 && eid != request.params.end() && sessions_.WasReaped(eid->second)) {
      // BoxLite 0.9's answer for an execution the reaper took.
      json body = json::parse(e.body);
      body["error"]["type"] = "SessionReapedError";
      body["error"]["code"] = "session_reaped";
      e = JsonReply(410, body);
    }
    return e;
  }
  return std::move(*r);
}

std::shared_ptr<Box> Api::Hold(std::shared_ptr<Box> box) {
  std::lock_guard<std::mutex> lock(held_mu_);
  auto& slot = held_[box->id()];
  if (!slot) slot = box;
  return slot;
}

void Api::Release(const std::string& id) {
  std::shared_ptr<Box> gone;
  std::lock_guard<std::mutex> lock(held_mu_);
  auto it = held_.find(id);
  if (it == held_.end()) return;
  gone = std::move(it->second);
  held_.erase(it);
}

Result<std::shared_ptr<Box>> Api::FindBox(const std::map<std::string, std::string>& params) {
  auto it = params.find("box_id");
  auto box = runtime_->Get(it == params.end() ? "" : it->second);
  if (!box.ok()) return box.error().WithDefaultSubject(StatusSubject::kBox);
  return Hold(*box);
}

Result<std::shared_ptr<ExecSession>> Api::FindExec(
    const std::map<std::string, std::string>& params) {
  auto box = FindBox(params);
  if (!box.ok()) return box.error();
  const std::string& eid = params.at("execution_id");
  bool reaped = false;
  auto session = sessions_.Get(eid, &reaped);
  if (session == nullptr || session->box_id() != (*box)->id()) {
    if (reaped) {
      return Status::NotFound("execution " + eid +
                              " was reaped (its client stayed away past the grace period, or "
                              "it ended over 5 minutes ago)")
          .WithSubject(StatusSubject::kExec);
    }
    return Status::NotFound("no execution " + eid + " in box " + params.at("box_id"))
        .WithSubject(StatusSubject::kExec);
  }
  return session;
}

Result<Reply> Api::Dispatch(const RequestCtx& q) {
  switch (q.route) {
    case RouteId::kConfig:
      return JsonReply(200, {{"capabilities",
                              {{"linux_capabilities_enabled", true},
                               {"snapshots_enabled", true},
                               {"clone_enabled", true},
                               {"export_enabled", true},
                               {"import_enabled", true}}}});
    case RouteId::kMe:
      return JsonReply(200, {{"sub", "local-anonymous"},
                             {"principal_type", "service_account"},
                             {"email", nullptr},
                             {"display_name", "boxlite serve"},
                             {"prefix", nullptr},
                             {"scopes", json::array({"boxes:read", "boxes:write", "boxes:exec"})},
                             {"expires_at", nullptr}});
    case RouteId::kMetrics: {
      auto m = runtime_->Metrics();
      if (!m.ok()) return m.error();
      return JsonReply(200, {{"boxes_created_total", m->boxes_created_total},
                             {"boxes_failed_total", m->boxes_failed_total},
                             {"boxes_stopped_total", m->boxes_stopped_total},
                             {"num_running_boxes", m->num_running_boxes},
                             {"total_commands_executed", m->total_commands_executed},
                             {"total_exec_errors", m->total_exec_errors}});
    }
    case RouteId::kVolumeCreate: {
      auto body = ParseBody(q.body);
      if (!body.ok()) return body.error();
      if (Status k = CheckKeys(*body, "CreateVolumeRequest", {}); !k.ok()) return k;
      auto v = runtime_->CreateVolume();
      if (!v.ok()) return v.error();
      return JsonReply(201, VolumeJson(*v));
    }
    case RouteId::kVolumeList: {
      auto vs = runtime_->ListVolumes();
      if (!vs.ok()) return vs.error();
      json list = json::array();
      for (const auto& v : *vs) list.push_back(VolumeJson(v));
      return JsonReply(200, {{"volumes", list}});
    }
    case RouteId::kVolumeGet: {
      auto v = runtime_->GetVolume(q.params.at("volume_id"));
      if (!v.ok()) return v.error().WithDefaultSubject(StatusSubject::kVolume);
      return JsonReply(200, VolumeJson(*v));
    }
    case RouteId::kVolumeDelete: {
      bool force = false;
      if (auto f = q.query.find("force"); f != q.query.end()) {
        auto b = ParseBoolParam(f->second);
        if (!b) return Status::InvalidArgument("force must be true or false");
        force = *b;
      }
      Status s = runtime_->RemoveVolume(q.params.at("volume_id"), force);
      if (!s.ok()) return s.WithDefaultSubject(StatusSubject::kVolume);
      return Empty(204);
    }
    case RouteId::kBoxCreate:
      return CreateBox(q);
    case RouteId::kBoxList: {
      auto list = runtime_->List();
      if (!list.ok()) return list.error();
      json boxes = json::array();
      for (const auto& b : *list) boxes.push_back(BoxJson(b));
      return JsonReply(200, {{"boxes", boxes}});
    }
    case RouteId::kBoxGet:
    case RouteId::kBoxHead: {
      auto box = FindBox(q.params);
      if (!box.ok()) return box.error();
      auto info = (*box)->Info();
      if (!info.ok()) return info.error();
      return JsonReply(200, BoxJson(*info));
    }
    case RouteId::kBoxDelete: {
      bool force = true;  // BoxLite 0.9's serve: DELETE forces unless ?force=false.
      if (auto f = q.query.find("force"); f != q.query.end()) {
        auto b = ParseBoolParam(f->second);
        if (!b) return Status::InvalidArgument("force must be true or false");
        force = *b;
      }
      auto box = FindBox(q.params);
      if (!box.ok()) return box.error();
      std::string id = (*box)->id();
      box->reset();
      Status s = runtime_->Remove(id, force);
      if (!s.ok()) return s.WithDefaultSubject(StatusSubject::kBox);
      Release(id);
      sessions_.DropBox(id);
      return Empty(204);
    }
    case RouteId::kBoxStart:
    case RouteId::kBoxStop: {
      auto box = FindBox(q.params);
      if (!box.ok()) return box.error();
      auto before = (*box)->Info();
      Status s = q.route == RouteId::kBoxStart ? (*box)->Start() : (*box)->Stop();
      if (!s.ok()) return s.WithDefaultSubject(StatusSubject::kBox);
      auto info = (*box)->Info();
      if (!info.ok()) {
        if (!before.ok()) return info.error();
        BoxInfo gone = *before;
        gone.state = "stopped";
        return JsonReply(200, BoxJson(gone));
      }
      return JsonReply(200, BoxJson(*info));
    }
    case RouteId::kBoxMetrics: {
      auto box = FindBox(q.params);
      if (!box.ok()) return box.error();
      auto m = (*box)->Metrics();
      if (!m.ok()) return m.error();
      return JsonReply(200, BoxMetricsJson(*m));
    }
    case RouteId::kExecCreate:
      return StartExec(q);
    case RouteId::kExecGet: {
      auto session = FindExec(q.params);
      if (!session.ok()) return session.error();
      json j = {{"execution_id", (*session)->id()}};
      auto code = (*session)->exit_code();
      j["status"] = code ? "completed" : "running";
      if (code) j["exit_code"] = *code;
      return JsonReply(200, j);
    }
    case RouteId::kExecDelete: {
      auto session = FindExec(q.params);
      if (!session.ok()) return session.error();
      (void)(*session)->exec().Kill();
      if (!(*session)->WaitDone(std::chrono::seconds(10))) {
        return Status::DeadlineExceeded("execution " + (*session)->id() +
                                        " did not end within 10 s of SIGKILL");
      }
      sessions_.Remove((*session)->id());
      return Empty(204);
    }
    case RouteId::kExecSignal: {
      auto body = ParseBody(q.body, false);
      if (!body.ok()) return body.error();
      if (Status k = CheckKeys(*body, "SignalRequest", {"signal"}); !k.ok()) return k;
      int sig = 0;
      if (Status s = GetInt(*body, "signal", &sig, 0, 64); !s.ok()) return s;
      if (!kAllowedSignals.count(sig)) {
        return Status::InvalidArgument("signal " + std::to_string(sig) +
                                       " is not allowed: use one of 1, 2, 3, 6, 10, 12, 15, 28 "
                                       "(DELETE the execution to kill it)");
      }
      auto session = FindExec(q.params);
      if (!session.ok()) return session.error();
      Status s = (*session)->exec().Signal(sig);
      if (!s.ok()) return s.WithDefaultSubject(StatusSubject::kExec);
      return Empty(204);
    }
    case RouteId::kExecResize: {
      auto body = ParseBody(q.body, false);
      if (!body.ok()) return body.error();
      if (Status k = CheckKeys(*body, "ResizeRequest", {"cols", "rows"}); !k.ok()) return k;
      int cols = 0, rows = 0;
      Status s;
      if (!(s = GetInt(*body, "cols", &cols, 1, 65535)).ok() ||
          !(s = GetInt(*body, "rows", &rows, 1, 65535)).ok()) {
        return s;
      }
      if (cols == 0 || rows == 0) return Status::InvalidArgument("resize needs cols and rows");
      auto session = FindExec(q.params);
      if (!session.ok()) return session.error();
      s = (*session)->exec().Resize(rows, cols);
      if (!s.ok()) return s.WithDefaultSubject(StatusSubject::kExec);
      return Empty(204);
    }
    case RouteId::kFilesPut:
      return PutFiles(q);
    case RouteId::kFilesGet:
      return GetFiles(q);
    case RouteId::kSnapshotCreate: {
      auto body = ParseBody(q.body, false);
      if (!body.ok()) return body.error();
      if (Status k = CheckKeys(*body, "CreateSnapshotRequest", {"name"}); !k.ok()) return k;
      std::string name;
      if (Status s = GetString(*body, "name", &name); !s.ok()) return s;
      if (name.empty()) return Status::InvalidArgument("a snapshot needs a \"name\"");
      auto box = FindBox(q.params);
      if (!box.ok()) return box.error();
      auto snap = (*box)->CreateSnapshot(name);
      if (!snap.ok()) return snap.error().WithDefaultSubject(StatusSubject::kSnapshot);
      return JsonReply(201, SnapshotJson(*snap));
    }
    case RouteId::kSnapshotList: {
      auto box = FindBox(q.params);
      if (!box.ok()) return box.error();
      auto snaps = (*box)->ListSnapshots();
      if (!snaps.ok()) return snaps.error();
      json list = json::array();
      for (const auto& s : *snaps) list.push_back(SnapshotJson(s));
      return JsonReply(200, {{"snapshots", list}});
    }
    case RouteId::kSnapshotGet: {
      auto box = FindBox(q.params);
      if (!box.ok()) return box.error();
      auto snap = (*box)->GetSnapshot(q.params.at("name"));
      if (!snap.ok()) return snap.error();
      if (!*snap) {
        return Status::NotFound("no snapshot " + q.params.at("name") + " of box " +
                                (*box)->id())
            .WithSubject(StatusSubject::kSnapshot);
      }
      return JsonReply(200, SnapshotJson(**snap));
    }
    case RouteId::kSnapshotDelete:
    case RouteId::kSnapshotRestore: {
      auto box = FindBox(q.params);
      if (!box.ok()) return box.error();
      Status s = q.route == RouteId::kSnapshotDelete
                     ? (*box)->RemoveSnapshot(q.params.at("name"))
                     : (*box)->RestoreSnapshot(q.params.at("name"));
      if (!s.ok()) return s.WithDefaultSubject(StatusSubject::kSnapshot);
      return Empty(204);
    }
    case RouteId::kClone: {
      auto body = ParseBody(q.body);
      if (!body.ok()) return body.error();
      if (Status k = CheckKeys(*body, "CloneBoxRequest", {"name"}); !k.ok()) return k;
      std::string name;
      if (Status s = GetString(*body, "name", &name); !s.ok()) return s;
      auto box = FindBox(q.params);
      if (!box.ok()) return box.error();
      auto clone = (*box)->Clone(name);
      if (!clone.ok()) return clone.error().WithDefaultSubject(StatusSubject::kBox);
      Hold(*clone);
      auto info = (*clone)->Info();
      if (!info.ok()) return info.error();
      return JsonReply(201, BoxJson(*info));
    }
    case RouteId::kExport: {
      auto body = ParseBody(q.body);
      if (!body.ok()) return body.error();
      if (Status k = CheckKeys(*body, "ExportBoxRequest", {}); !k.ok()) return k;
      auto box = FindBox(q.params);
      if (!box.ok()) return box.error();
      std::string dir;
      auto keep = TempDir("serve-export", &dir);
      if (!keep.ok()) return keep.error();
      auto path = (*box)->Export(dir);
      if (!path.ok()) return path.error().WithDefaultSubject(StatusSubject::kBox);
      Reply r;
      r.content_type = "application/octet-stream";
      r.file_path = *path;
      r.keep = *keep;
      return r;
    }
    case RouteId::kBoxImport: {
      std::string name;
      if (auto n = q.query.find("name"); n != q.query.end()) name = n->second;
      auto box = runtime_->ImportBox(q.upload_path, name, /*untrusted=*/true);
      if (!box.ok()) return box.error().WithDefaultSubject(StatusSubject::kBox);
      Hold(*box);
      auto info = (*box)->Info();
      if (!info.ok()) return info.error();
      return JsonReply(201, BoxJson(*info));
    }
    case RouteId::kBoxAttach:
    case RouteId::kExecAttach:
      return Status::InvalidArgument(
          "this route is a WebSocket: send an Upgrade: websocket request");
  }
  return Status::Internal("unhandled route");
}

Result<Reply> Api::CreateBox(const RequestCtx& q) {
  auto body = ParseBody(q.body);
  if (!body.ok()) return body.error();
  const std::string& key = q.idempotency_key;
  if (!key.empty()) {
    if (key.size() > 255) {
      return Status::InvalidArgument("Idempotency-Key is longer than 255 characters");
    }
    IdempotencyCache::Reply cached;
    switch (idempotency_.Begin(key, base::Sha256Hex(body->dump()), &cached)) {
      case IdempotencyCache::Outcome::kReplay: {
        Reply r;
        r.status = cached.status;
        r.body = cached.body;
        r.headers.emplace_back("Idempotent-Replayed", "true");
        return r;
      }
      case IdempotencyCache::Outcome::kMismatch: {
        Reply r = ErrorReply(Status::InvalidArgument(
                                 "Idempotency-Key '" + key +
                                 "' was used with a different request body: use a new key "
                                 "for a different box"),
                             q.request_id);
        r.status = 422;
        return r;
      }
      case IdempotencyCache::Outcome::kInFlight:
        return Status::FailedPrecondition("a request with Idempotency-Key '" + key +
                                          "' is still running: retry when it has answered");
      case IdempotencyCache::Outcome::kRun:
        break;
    }
  }
  auto fail = [&](const Status& s) -> Result<Reply> {
    if (!key.empty()) idempotency_.Abandon(key);
    return s;
  };
  auto options = ParseCreateBox(*body);
  if (!options.ok()) return fail(options.error());
  auto box = runtime_->Create(*options);
  if (!box.ok()) return fail(box.error().WithDefaultSubject(StatusSubject::kBox));
  Hold(*box);
  auto info = (*box)->Info();
  if (!info.ok()) return fail(info.error());
  Reply r = JsonReply(201, BoxJson(*info));
  r.headers.emplace_back("Location", "/v1/boxes/" + info->id);
  if (!key.empty()) idempotency_.Finish(key, {r.status, r.body});
  return r;
}

Result<Reply> Api::StartExec(const RequestCtx& q) {
  auto body = ParseBody(q.body, false);
  if (!body.ok()) return body.error();
  if (Status k = CheckKeys(*body, "ExecRequest",
                           {"command", "args", "env", "timeout_seconds", "working_dir", "tty",
                            "stdin", "user"});
      !k.ok()) {
    return k;
  }
  ExecOptions o;
  std::string command;
  std::optional<std::vector<std::string>> args;
  Status s;
  if (!(s = GetString(*body, "command", &command)).ok() ||
      !(s = GetStringList(*body, "args", &args)).ok() || !(s = GetEnv(*body, "env", &o.env)).ok() ||
      !(s = GetString(*body, "working_dir", &o.cwd)).ok() ||
      !(s = GetString(*body, "user", &o.user)).ok() || !(s = GetBool(*body, "tty", &o.tty)).ok()) {
    return s;
  }
  if (command.empty()) return Status::InvalidArgument("ExecRequest needs a \"command\"");
  o.argv.push_back(command);
  for (auto& a : args.value_or(std::vector<std::string>{})) o.argv.push_back(a);
  std::optional<double> timeout;
  if (auto t = body->find("timeout_seconds"); t != body->end() && !t->is_null()) {
    if (!t->is_number() || t->get<double>() < 0) {
      return FieldError("timeout_seconds", "a number of seconds >= 0");
    }
    timeout = t->get<double>();
  }
  std::optional<std::string> inline_stdin;
  if (auto in = body->find("stdin"); in != body->end() && !in->is_null()) {
    if (!in->is_string()) return FieldError("stdin", "a string");
    inline_stdin = in->get<std::string>();
  }
  o.open_stdin = true;
  auto box = FindBox(q.params);
  if (!box.ok()) return box.error();
  auto exec = (*box)->StartExec(o);
  if (!exec.ok()) return exec.error().WithDefaultSubject(StatusSubject::kExec);
  auto session = std::make_shared<ExecSession>(RandomHex(16), (*box)->id(), *exec, o.tty, timeout,
                                               inline_stdin);
  sessions_.Add(session);
  session->Start();
  return JsonReply(201, {{"execution_id", session->id()}});
}

Result<Api::FilesCall> Api::PrepareFiles(const RequestCtx& q, const char* what) {
  auto path = q.query.find("path");
  if (path == q.query.end() || path->second.empty() || path->second.front() != '/') {
    return Status::InvalidArgument(std::string(what) +
                                   " /files needs ?path=, an absolute path in the box");
  }
  auto box = FindBox(q.params);
  if (!box.ok()) return box.error();
  FilesCall call;
  call.box = *box;
  call.path = path->second;
  auto keep = StagingDir(std::string("serve-") + what, &call.dir);
  if (!keep.ok()) return keep.error();
  call.keep = *keep;
  call.root = call.dir + "/root";
  return call;
}

Result<Reply> Api::PutFiles(const RequestCtx& q) {
  auto call = PrepareFiles(q, "PUT");
  if (!call.ok()) return call.error();
  if (Status x = ExtractTar(q.upload_path, call->root, options_.max_upload_bytes); !x.ok()) {
    return x;
  }
  CopyOptions copy;
  copy.include_parent = false;
  copy.overwrite = true;
  Status s = call->box->CopyIn(call->root, call->path, copy);
  if (!s.ok()) return s.WithDefaultSubject(StatusSubject::kBox);
  return Empty(204);
}

Result<Reply> Api::GetFiles(const RequestCtx& q) {
  auto call = PrepareFiles(q, "GET");
  if (!call.ok()) return call.error();
  Status s = call->box->CopyOut(call->path, call->root);
  if (!s.ok()) return s.WithDefaultSubject(StatusSubject::kBox);
  std::string tar = call->dir + "/out.tar";
  if (Status t = CreateTar(call->root, tar); !t.ok()) return t;
  Reply r;
  r.content_type = "application/x-tar";
  r.file_path = tar;
  r.keep = call->keep;
  return r;
}

Result<std::shared_ptr<ExecSession>> Api::AttachTarget(
    RouteId route, const std::map<std::string, std::string>& params) {
  if (route == RouteId::kExecAttach) return FindExec(params);
  auto box = FindBox(params);
  if (!box.ok()) return box.error();
  std::string id = (*box)->id();
  auto current = sessions_.Main(id);
  if (current && !current->done()) return current;
  auto exec = (*box)->AttachMain();
  if (!exec.ok()) {
    if (current) return current;  // The ended session: its backlog and exit code.
    return exec.error().WithDefaultSubject(StatusSubject::kBox);
  }
  // With a terminal, everything arrives on stdout and stderr simply ends.
  auto session = std::make_shared<ExecSession>("main-" + id, id, *exec, /*tty=*/false,
                                               std::nullopt, std::nullopt, /*main=*/true);
  sessions_.SetMain(id, session);
  session->Start();
  return session;
}

}  // namespace boxlite::server
