// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/remote/wire.h"

#include <time.h>

#include <cmath>
#include <initializer_list>
#include <cstdio>
#include <optional>
#include <utility>

namespace boxlite::remote {
namespace {

using nlohmann::json;

constexpr size_t kMaxMessage = 1024;  // Bytes of a server's error message kept.
constexpr size_t kMaxString = 4096;   // Bytes of any other string field kept.

// A printable, one-line, bounded copy of untrusted text.
std::string OneLine(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  if (s.size() > max) out += "...";
  return out;
}

std::string Str(const json& j, const char* key, size_t max = kMaxString) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  const auto& s = it->get_ref<const std::string&>();
  return s.size() > max ? s.substr(0, max) : s;
}

template <typename T>
std::optional<T> Num(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  if constexpr (std::is_floating_point_v<T>) {
    return it->get<T>();
  } else {
    if (it->is_number_float()) {
      double d = it->get<double>();
      if (!std::isfinite(d)) return std::nullopt;
      return static_cast<T>(d);
    }
    if (std::is_unsigned_v<T> && it->is_number_integer() && !it->is_number_unsigned() &&
        it->get<int64_t>() < 0) {
      return std::nullopt;
    }
    return it->get<T>();
  }
}

bool Bool(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

const json& Obj(const json& j, const char* key) {
  static const json kEmpty = json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

std::optional<std::vector<std::string>> StrList(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& v : *it) {
    if (v.is_string() && out.size() < 4096) out.push_back(OneLine(v.get<std::string>(), kMaxString));
  }
  return out;
}

// BoxLite 0.9's error codes (its BoxliteError::http()) and ours (StatusCodeName).
std::optional<StatusCode> CodeFromWire(std::string_view code) {
  static const std::pair<std::string_view, StatusCode> kTable[] = {
      {"invalid_argument", StatusCode::kInvalidArgument},
      {"unsupported", StatusCode::kNotSupported},
      {"not_found", StatusCode::kNotFound},
      {"session_reaped", StatusCode::kNotFound},
      {"already_exists", StatusCode::kAlreadyExists},
      {"invalid_state", StatusCode::kFailedPrecondition},
      {"stopped", StatusCode::kFailedPrecondition},
      {"image_pull_failed", StatusCode::kUnavailable},
      {"execution_failed", StatusCode::kInternal},
      {"resource_exhausted", StatusCode::kResourceExhausted},
      {"network_unavailable", StatusCode::kUnavailable},
      {"upstream_unavailable", StatusCode::kUnavailable},
      {"engine_unavailable", StatusCode::kUnavailable},
      {"storage_error", StatusCode::kIoError},
      {"database_error", StatusCode::kCorruption},
      {"metadata_error", StatusCode::kCorruption},
      {"config_error", StatusCode::kInvalidArgument},
      {"internal", StatusCode::kInternal},
      {"timeout", StatusCode::kDeadlineExceeded},
      {"unauthenticated", StatusCode::kPermissionDenied},
      {"permission_denied", StatusCode::kPermissionDenied},
  };
  for (const auto& [name, c] : kTable) {
    if (name == code) return c;
  }
  StatusCode ours = StatusCodeFromName(code);
  if (ours != StatusCode::kInternal || code == "internal") return ours;
  return std::nullopt;
}

// What a 0.9 code says the error is about (the SDKs choose their exception by it).
StatusSubject SubjectFromWire(std::string_view code, std::string_view subject) {
  if (!subject.empty()) return StatusSubjectFromName(subject);
  if (code == "image_pull_failed") return StatusSubject::kImage;
  if (code == "execution_failed" || code == "session_reaped") return StatusSubject::kExec;
  return StatusSubject::kNone;
}

StatusCode CodeFromHttpStatus(int status) {
  switch (status) {
    case 400: case 422: return StatusCode::kInvalidArgument;
    case 401: case 403: return StatusCode::kPermissionDenied;
    case 404: case 410: return StatusCode::kNotFound;
    case 409: return StatusCode::kFailedPrecondition;
    case 413: case 429: return StatusCode::kResourceExhausted;
    case 501: return StatusCode::kNotSupported;
    case 502: case 503: case 504: return StatusCode::kUnavailable;
    default: return StatusCode::kInternal;
  }
}

}  // namespace

Result<json> ParseBody(std::string_view body, std::string_view what) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status::ProtocolError(std::string(what) + ": the server's answer is not JSON",
                                 OneLine(body, 120));
  }
  return j;
}

Status StatusFromResponse(int http_status, std::string_view body, std::string_view what) {
  json j = json::parse(body, nullptr, false);
  std::string message, code, subject;
  if (!j.is_discarded() && j.is_object()) {
    const json& err = Obj(j, "error");
    message = Str(err, "message", kMaxMessage);
    code = Str(err, "code", 64);
    subject = Str(err, "subject", 64);
  }
  std::optional<StatusCode> mapped = code.empty() ? std::nullopt : CodeFromWire(code);
  StatusCode sc = mapped.value_or(CodeFromHttpStatus(http_status));
  if (message.empty()) message = "HTTP " + std::to_string(http_status);
  message = OneLine(message, kMaxMessage);
  if (sc == StatusCode::kPermissionDenied && (http_status == 401 || http_status == 403)) {
    message = "auth: " + message + " (check the API key: BOXLITE_API_KEY or 'boxlite auth login')";
  } else if (code == "unsupported" || sc == StatusCode::kNotSupported) {
    if (!message.starts_with("unsupported")) message = "unsupported: " + message;
  }
  Status s(sc, std::string(what) + ": " + message);
  return s.WithSubject(SubjectFromWire(code, subject));
}

Status CheckRemoteBoxOptions(const BoxOptions& o) {
  auto unsupported = [](const std::string& what) {
    return Status::NotSupported("unsupported: " + what);
  };
  if (!o.ports.empty()) {
    return unsupported("published ports over REST (use box.network.tunnel(port) instead)");
  }
  if (!o.mounts.empty()) {
    return unsupported("volumes over REST (the server's file system is not this machine's; "
                       "copy files in with copy_in)");
  }
  if (o.allow_host) return unsupported("allow_host over REST (the host is the server)");
  if (o.health_check.enabled) return unsupported("health checks over REST");
  if (o.max_clients != kDefaultMaxClients) {
    return unsupported("max_clients over REST (the server's process is the box's client)");
  }
  if (o.network != "nat" && o.network != "none") {
    return Status::InvalidArgument("network must be \"nat\" or \"none\", not \"" + o.network + "\"");
  }
  int64_t auto_delete = o.auto_delete.value_or(RemovesOnStop(o) ? 1 : 0);
  if (auto_delete > 0 && auto_delete <= static_cast<int64_t>(o.auto_pause)) {
    return Status::InvalidArgument("auto_delete (" + std::to_string(auto_delete) +
                                   ") must be greater than auto_pause (" +
                                   std::to_string(o.auto_pause) + ")");
  }
  return Status::OK();
}

json CreateBoxRequest(const BoxOptions& o) {
  json r = json::object();
  // max_clients has no field in the REST API (CheckRemoteBoxOptions refuses one).
  if (!o.name.empty()) r["name"] = o.name;
  if (!o.rootfs_path.empty()) {
    r["rootfs_path"] = o.rootfs_path;
  } else {
    r["image"] = o.image;
  }
  r["cpus"] = o.cpus;
  r["memory_mib"] = o.memory_mib;
  if (o.disk_size_mib > 0) r["disk_size_gb"] = (o.disk_size_mib + 1023) / 1024;
  if (!o.working_dir.empty()) r["working_dir"] = o.working_dir;
  if (!o.env.empty()) {
    json env = json::object();
    for (const auto& [k, v] : o.env) env[k] = v;
    r["env"] = env;
  }
  if (o.entrypoint) r["entrypoint"] = *o.entrypoint;
  if (o.cmd) r["cmd"] = *o.cmd;
  if (!o.user.empty()) r["user"] = o.user;
  if (o.tty) r["tty"] = true;
  if (!o.capabilities.add.empty() || !o.capabilities.drop.empty()) {
    r["advanced"] = {{"capabilities", {{"add", o.capabilities.add}, {"drop", o.capabilities.drop}}}};
  }
  json network = {{"mode", o.network == "none" ? "disabled" : "enabled"}};
  if (!o.allow_net.empty()) network["allow_net"] = o.allow_net;
  r["network"] = network;
  if (!o.secrets.empty()) {
    json secrets = json::array();
    for (const auto& s : o.secrets) {
      json e = {{"name", s.name}, {"value", s.value}};
      if (!s.placeholder.empty()) e["placeholder"] = s.placeholder;
      if (!s.hosts.empty()) e["hosts"] = s.hosts;
      secrets.push_back(e);
    }
    r["secrets"] = secrets;
  }
  r["auto_pause"] = o.auto_pause;
  r["auto_delete"] = o.auto_delete.value_or(RemovesOnStop(o) ? 1 : 0);
  r["auto_resume"] = o.auto_resume;
  if (o.detach) r["detach"] = true;
  return r;
}

Result<json> ExecRequest(const ExecOptions& o) {
  if (o.argv.empty()) return Status::InvalidArgument("exec needs a command");
  if (o.use_image_entrypoint) {
    return Status::NotSupported("unsupported: the image's entrypoint for an exec over REST");
  }
  const ExecLimits& l = o.limits;
  if (!o.cgroup.name.empty() || l.max_open_files || l.max_file_size || l.max_processes ||
      l.max_memory || l.max_cpu_time) {
    return Status::NotSupported("unsupported: an exec's own limits or cgroup over REST",
                                "run boxlite exec --ulimit/--cgroup-name on the server's host");
  }
  json r = {{"command", o.argv[0]},
            {"args", std::vector<std::string>(o.argv.begin() + 1, o.argv.end())}};
  if (!o.env.empty()) {
    json env = json::object();
    for (const auto& [k, v] : o.env) env[k] = v;
    r["env"] = env;
  }
  if (o.timeout_seconds) r["timeout_seconds"] = *o.timeout_seconds;
  if (!o.cwd.empty()) r["working_dir"] = o.cwd;
  if (!o.user.empty()) r["user"] = o.user;  // 0.9's client drops it; our server runs as it.
  r["tty"] = o.tty;
  return r;
}

BoxInfo BoxInfoFromJson(const json& j) {
  BoxInfo b;
  if (!j.is_object()) return b;
  b.id = Str(j, "box_id", 128);
  b.name = Str(j, "name", 255);
  b.state = Str(j, "status", 32);
  if (b.state.empty()) b.state = "unknown";
  b.created_unix = ParseRfc3339(Str(j, "created_at", 64));
  b.pid = Num<int>(j, "pid").value_or(0);
  b.image = Str(j, "image");
  b.cpus = Num<int>(j, "cpus").value_or(0);
  b.memory_mib = Num<int>(j, "memory_mib").value_or(0);
  b.auto_pause = Num<uint32_t>(j, "auto_pause").value_or(900);
  b.auto_delete = Num<int64_t>(j, "auto_delete").value_or(0);
  b.auto_resume = Bool(j, "auto_resume", true);
  b.auto_remove = b.auto_delete > 0;
  b.detach = true;  // A remote box lives on the server, whatever this process does.
  b.exit_code = Num<int>(j, "exit_code");
  b.entrypoint = StrList(j, "entrypoint");
  b.cmd = StrList(j, "cmd");
  return b;
}

namespace {

// Reads the counters named in `fields` from `j` into `out` (0 when absent or bad).
template <typename S>
void ReadCounters(const json& j, S* out, std::initializer_list<std::pair<const char*, uint64_t S::*>> fields) {
  for (const auto& [key, member] : fields) out->*member = Num<uint64_t>(j, key).value_or(0);
}

// The same for optional fields (unset when absent or bad).
template <typename S, typename T>
void ReadOptional(const json& j, S* out,
                  std::initializer_list<std::pair<const char*, std::optional<T> S::*>> fields) {
  for (const auto& [key, member] : fields) out->*member = Num<T>(j, key);
}

}  // namespace

BoxMetrics BoxMetricsFromJson(const json& j) {
  BoxMetrics m;
  if (!j.is_object()) return m;
  ReadCounters<BoxMetrics>(j, &m, {{"commands_executed_total", &BoxMetrics::commands_executed_total},
                                   {"exec_errors_total", &BoxMetrics::exec_errors_total},
                                   {"bytes_sent_total", &BoxMetrics::bytes_sent_total},
                                   {"bytes_received_total", &BoxMetrics::bytes_received_total}});
  m.execs_run = m.commands_executed_total;
  m.cpu_percent = Num<double>(j, "cpu_percent");
  ReadOptional<BoxMetrics, uint64_t>(j, &m, {{"memory_bytes", &BoxMetrics::memory_bytes},
                                             {"network_bytes_sent", &BoxMetrics::network_bytes_sent},
                                             {"network_bytes_received", &BoxMetrics::network_bytes_received},
                                             {"network_tcp_connections", &BoxMetrics::network_tcp_connections},
                                             {"network_tcp_errors", &BoxMetrics::network_tcp_errors}});
  m.memory_rss_bytes = m.memory_bytes.value_or(0);
  ReadOptional<BoxMetrics, int64_t>(Obj(j, "boot_timing"), &m,
                                    {{"total_create_ms", &BoxMetrics::total_create_duration_ms},
                                     {"guest_boot_ms", &BoxMetrics::guest_boot_duration_ms},
                                     {"filesystem_setup_ms", &BoxMetrics::stage_filesystem_setup_ms},
                                     {"image_prepare_ms", &BoxMetrics::stage_image_prepare_ms},
                                     {"guest_rootfs_ms", &BoxMetrics::stage_guest_rootfs_ms},
                                     {"box_config_ms", &BoxMetrics::stage_box_config_ms},
                                     {"box_spawn_ms", &BoxMetrics::stage_box_spawn_ms},
                                     {"container_init_ms", &BoxMetrics::stage_container_init_ms}});
  if (m.total_create_duration_ms) m.create_seconds = *m.total_create_duration_ms / 1000.0;
  if (m.guest_boot_duration_ms) m.boot_seconds = *m.guest_boot_duration_ms / 1000.0;
  return m;
}

RuntimeMetrics RuntimeMetricsFromJson(const json& j) {
  RuntimeMetrics m;
  if (!j.is_object()) return m;
  ReadCounters<RuntimeMetrics>(j, &m, {{"boxes_created_total", &RuntimeMetrics::boxes_created_total},
                                       {"boxes_failed_total", &RuntimeMetrics::boxes_failed_total},
                                       {"boxes_stopped_total", &RuntimeMetrics::boxes_stopped_total},
                                       {"num_running_boxes", &RuntimeMetrics::num_running_boxes},
                                       {"total_commands_executed", &RuntimeMetrics::total_commands_executed},
                                       {"total_exec_errors", &RuntimeMetrics::total_exec_errors}});
  return m;
}

VolumeInfo VolumeInfoFromJson(const json& j) {
  VolumeInfo v;
  if (!j.is_object()) return v;
  v.id = Str(j, "id", 128);
  v.created_unix = ParseRfc3339(Str(j, "created_at", 64));
  v.size_bytes = Num<uint64_t>(j, "size_bytes").value_or(0);
  return v;
}

SnapshotInfo SnapshotInfoFromJson(const json& j) {
  SnapshotInfo s;
  if (!j.is_object()) return s;
  s.id = Str(j, "id", 128);
  s.box_id = Str(j, "box_id", 128);
  s.name = Str(j, "name", 255);
  s.created_unix = Num<int64_t>(j, "created_at").value_or(0);
  s.container_disk_bytes = Num<uint64_t>(j, "container_disk_bytes").value_or(0);
  s.size_bytes = Num<uint64_t>(j, "size_bytes").value_or(0);
  return s;
}

int64_t ParseRfc3339(std::string_view text) {
  std::string s(text.substr(0, 64));
  struct tm tm = {};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return 0;
  int64_t t = static_cast<int64_t>(timegm(&tm));
  if (*rest == '.') {
    ++rest;
    while (*rest >= '0' && *rest <= '9') ++rest;
  }
  int sign = 0, hh = 0, mm = 0;
  if (*rest == '+') sign = 1;
  if (*rest == '-') sign = -1;
  if (sign != 0 && std::sscanf(rest + 1, "%2d:%2d", &hh, &mm) == 2) t -= sign * (hh * 3600 + mm * 60);
  return t;
}

}  // namespace boxlite::remote
