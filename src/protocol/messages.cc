// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/protocol/messages.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>
#include <vector>

#include "src/base/macros.h"
#include "src/base/strings.h"

namespace boxlite::protocol {
namespace {

Status Missing(std::string_view key) {
  return Status::InvalidArgument(base::StrFormat("missing field \"%.*s\"",
                                                 static_cast<int>(key.size()), key.data()));
}

Status Mistyped(std::string_view key, const char* want) {
  return Status::InvalidArgument(base::StrFormat(
      "field \"%.*s\" must be %s", static_cast<int>(key.size()), key.data(), want));
}

Status BadBytes(std::string_view key, const Status& why) {
  return Status::InvalidArgument(base::StrFormat("field \"%.*s\": %s", static_cast<int>(key.size()),
                                                 key.data(), why.message().c_str()));
}

// Paths, argv and env become C strings: a NUL would silently cut them short.
Status NoNul(std::string_view key, const std::string& s) {
  if (s.find('\0') == std::string::npos) return Status::OK();
  return Status::InvalidArgument(base::StrFormat("field \"%.*s\" contains a NUL byte",
                                                 static_cast<int>(key.size()), key.data()));
}

Status NoNul(std::string_view key, const std::vector<std::string>& v) {
  for (const auto& s : v) BOXLITE_RETURN_IF_ERROR(NoNul(key, s));
  return Status::OK();
}

Json LimitsToJson(const ProcessLimits& l) {
  return {{"nofile", l.nofile}, {"fsize", l.fsize}, {"nproc", l.nproc}, {"as", l.as},
          {"cpu", l.cpu}};
}

Status LimitsFromJson(const Json& j, ProcessLimits* l) {
  for (auto [key, field] : {std::pair{"nofile", &l->nofile}, {"fsize", &l->fsize},
                            {"nproc", &l->nproc}, {"as", &l->as}, {"cpu", &l->cpu}}) {
    BOXLITE_RETURN_IF_ERROR(GetInt(j, key, field));
    if (*field < 0) return Status::InvalidArgument(std::string("limits.") + key + " is negative");
  }
  return Status::OK();
}

const Json* Find(const Json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

// Base64 of at most kMaxByteString bytes (OpenSSL's encoder, no line breaks).
std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Decodes canonical padded base64 only: what Base64() produces for some bytes.
bool FromBase64(std::string_view text, std::string* out) {
  if (text.size() % 4 != 0 || text.size() > 4 * ((kMaxByteString + 2) / 3)) return false;
  std::string bytes(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return false;
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  if (static_cast<size_t>(n) < pad) return false;
  bytes.resize(static_cast<size_t>(n) - pad);
  if (bytes.size() > kMaxByteString) return false;
  // Rejects what the decoder tolerates (surrounding blanks, stray padding bits).
  if (Base64(bytes) != text) return false;
  *out = std::move(bytes);
  return true;
}

}  // namespace

bool IsUtf8(std::string_view s) {
  // The serialiser's own check: dropping and replacing invalid sequences give the same
  // text exactly when there are none.
  Json j = std::string(s);
  return j.dump(-1, ' ', false, Json::error_handler_t::ignore) ==
         j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json BytesToJson(std::string_view bytes) {
  if (IsUtf8(bytes)) return std::string(bytes);
  return Json{{"b64", Base64(bytes)}};
}

Status BytesFromJson(const Json& value, std::string* out) {
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (s.size() > kMaxByteString) return Status::InvalidArgument("string longer than 1 MiB");
    *out = s;
    return Status::OK();
  }
  if (value.is_object() && value.size() == 1) {
    auto it = value.find("b64");
    if (it != value.end() && it->is_string()) {
      if (FromBase64(it->get_ref<const std::string&>(), out)) return Status::OK();
      return Status::InvalidArgument("\"b64\" is not canonical base64 of at most 1 MiB");
    }
  }
  return Status::InvalidArgument("not a string or {\"b64\": ...}");
}

std::string Dump(Json j, int indent) {
  // Iterative walk: a message may nest deeper than the stack is worth spending on.
  std::vector<Json*> todo = {&j};
  while (!todo.empty()) {
    Json* v = todo.back();
    todo.pop_back();
    if (v->is_string()) {
      const auto& s = v->get_ref<const std::string&>();
      if (!IsUtf8(s)) *v = BytesToJson(std::string(s));
    } else if (v->is_structured()) {
      for (auto& child : *v) todo.push_back(&child);
    }
  }
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Result<Json> ParseObject(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::ProtocolError("payload is not valid JSON");
  if (!j.is_object()) return Status::ProtocolError("payload is not a JSON object");
  return j;
}

Status GetString(const Json& j, std::string_view key, std::string* out, bool required) {
  const Json* v = Find(j, key);
  if (v == nullptr) return required ? Missing(key) : Status::OK();
  std::string bytes;
  Status s = BytesFromJson(*v, &bytes);
  if (!s.ok()) return BadBytes(key, s);
  *out = std::move(bytes);
  return Status::OK();
}

Status GetBool(const Json& j, std::string_view key, bool* out, bool required) {
  const Json* v = Find(j, key);
  if (v == nullptr) return required ? Missing(key) : Status::OK();
  if (!v->is_boolean()) return Mistyped(key, "a boolean");
  *out = v->get<bool>();
  return Status::OK();
}

Status GetInt(const Json& j, std::string_view key, int64_t* out, bool required) {
  const Json* v = Find(j, key);
  if (v == nullptr) return required ? Missing(key) : Status::OK();
  if (v->is_number_integer()) {
    *out = v->get<int64_t>();
    return Status::OK();
  }
  if (v->is_number_unsigned() && v->get<uint64_t>() <= INT64_MAX) {
    *out = static_cast<int64_t>(v->get<uint64_t>());
    return Status::OK();
  }
  return Mistyped(key, "an integer");
}

Status GetStrings(const Json& j, std::string_view key, std::vector<std::string>* out,
                  bool required) {
  const Json* v = Find(j, key);
  if (v == nullptr) return required ? Missing(key) : Status::OK();
  if (!v->is_array()) return Mistyped(key, "an array of strings");
  std::vector<std::string> result;
  result.reserve(v->size());
  for (const auto& item : *v) {
    std::string bytes;
    Status s = BytesFromJson(item, &bytes);
    if (!s.ok()) return BadBytes(key, s);
    result.push_back(std::move(bytes));
  }
  *out = std::move(result);
  return Status::OK();
}

Json ToJson(const BoxConfig& m) {
  Json mounts = Json::array();
  for (const auto& mount : m.mounts) {
    mounts.push_back(
        {{"tag", mount.tag}, {"guest_path", mount.guest_path}, {"read_only", mount.read_only}});
  }
  return {{"hostname", m.hostname},
          {"grow_rootfs", m.grow_rootfs},
          {"mounts", mounts},
          {"network",
           {{"mode", m.network.mode},
            {"address", m.network.address},
            {"gateway", m.network.gateway},
            {"dns", m.network.dns}}},
          {"pids_max", m.pids_max},
          {"clock_unix_ns", m.clock_unix_ns},
          {"capabilities", m.capabilities},
          {"limits", LimitsToJson(m.limits)},
          {"close_fds", m.close_fds},
          {"trusted_ca_pem", m.trusted_ca_pem}};
}

Status FromJson(const Json& j, BoxConfig* m) {
  BOXLITE_RETURN_IF_ERROR(GetString(j, "hostname", &m->hostname));
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "grow_rootfs", &m->grow_rootfs));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "pids_max", &m->pids_max));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "clock_unix_ns", &m->clock_unix_ns));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "capabilities", &m->capabilities));
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "close_fds", &m->close_fds));
  BOXLITE_RETURN_IF_ERROR(GetString(j, "trusted_ca_pem", &m->trusted_ca_pem));
  if (const Json* limits = Find(j, "limits")) {
    BOXLITE_RETURN_IF_ERROR(LimitsFromJson(*limits, &m->limits));
  }
  if (m->capabilities < -1) return Status::InvalidArgument("capabilities is negative");
  if (const Json* mounts = Find(j, "mounts")) {
    if (!mounts->is_array()) return Mistyped("mounts", "an array");
    for (const auto& item : *mounts) {
      MountSpec spec;
      BOXLITE_RETURN_IF_ERROR(GetString(item, "tag", &spec.tag, true));
      BOXLITE_RETURN_IF_ERROR(GetString(item, "guest_path", &spec.guest_path, true));
      BOXLITE_RETURN_IF_ERROR(GetBool(item, "read_only", &spec.read_only));
      m->mounts.push_back(std::move(spec));
    }
  }
  if (const Json* net = Find(j, "network")) {
    BOXLITE_RETURN_IF_ERROR(GetString(*net, "mode", &m->network.mode));
    BOXLITE_RETURN_IF_ERROR(GetString(*net, "address", &m->network.address));
    BOXLITE_RETURN_IF_ERROR(GetString(*net, "gateway", &m->network.gateway));
    BOXLITE_RETURN_IF_ERROR(GetStrings(*net, "dns", &m->network.dns));
  }
  return Status::OK();
}

Json ToJson(const HelloRequest& m) {
  Json j = {{"version", m.version}, {"config", ToJson(m.config)}};
  if (m.attach) j["attach"] = true;
  return j;
}

Status FromJson(const Json& j, HelloRequest* m) {
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "version", &m->version, true));
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "attach", &m->attach, false));
  if (const Json* config = Find(j, "config")) return FromJson(*config, &m->config);
  return Status::OK();
}

Json ToJson(const HelloResponse& m) {
  return {{"version", m.version},
          {"agent_version", m.agent_version},
          {"kernel", m.kernel},
          {"uptime_ms", m.uptime_ms},
          {"config_ms", m.config_ms}};
}

Status FromJson(const Json& j, HelloResponse* m) {
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "version", &m->version, true));
  BOXLITE_RETURN_IF_ERROR(GetString(j, "agent_version", &m->agent_version));
  BOXLITE_RETURN_IF_ERROR(GetString(j, "kernel", &m->kernel));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "uptime_ms", &m->uptime_ms));
  return GetInt(j, "config_ms", &m->config_ms);
}

Json ToJson(const ExecRequest& m) {
  // Fields at their defaults are left out (docs/protocol.md): the agent parses every exec
  // request under emulation, where each field costs. "window" always goes: the host's
  // channel reads it to know the credit it granted.
  Json j = {{"argv", m.argv}, {"window", m.window}};
  if (!m.env.empty()) j["env"] = m.env;
  if (!m.cwd.empty()) j["cwd"] = m.cwd;
  if (!m.user.empty()) j["user"] = m.user;
  if (m.tty) {
    j["tty"] = true;
    j["rows"] = m.rows;
    j["cols"] = m.cols;
  }
  if (m.stdin_open) j["stdin"] = true;
  if (m.detached) j["detached"] = true;
  if (m.main) j["main"] = true;
  if (m.main_optional) j["main_optional"] = true;
  if (!m.root_dir.empty()) j["root_dir"] = m.root_dir;
  if (!m.container_mounts.empty()) {
    Json mounts = Json::array();
    for (const auto& mount : m.container_mounts) {
      mounts.push_back({{"source", mount.source},
                        {"destination", mount.destination},
                        {"read_only", mount.read_only}});
    }
    j["container_mounts"] = std::move(mounts);
  }
  const ProcessLimits& l = m.limits;
  if (l.nofile != 0 || l.fsize != 0 || l.nproc != 0 || l.as != 0 || l.cpu != 0) {
    j["limits"] = LimitsToJson(l);
  }
  if (!m.cgroup.name.empty()) {
    j["cgroup"] = {{"name", m.cgroup.name},
                   {"memory_max", m.cgroup.memory_max},
                   {"cpu_quota", m.cgroup.cpu_quota},
                   {"cpu_period", m.cgroup.cpu_period},
                   {"pids_max", m.cgroup.pids_max}};
  }
  return j;
}

Status FromJson(const Json& j, ExecRequest* m) {
  BOXLITE_RETURN_IF_ERROR(GetStrings(j, "argv", &m->argv, true));
  if (m->argv.empty()) return Status::InvalidArgument("exec: argv is empty");
  BOXLITE_RETURN_IF_ERROR(GetStrings(j, "env", &m->env));
  BOXLITE_RETURN_IF_ERROR(GetString(j, "cwd", &m->cwd));
  BOXLITE_RETURN_IF_ERROR(GetString(j, "user", &m->user));
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "tty", &m->tty));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "rows", &m->rows));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "cols", &m->cols));
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "stdin", &m->stdin_open));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "window", &m->window));
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "detached", &m->detached));
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "main", &m->main));
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "main_optional", &m->main_optional));
  BOXLITE_RETURN_IF_ERROR(GetString(j, "root_dir", &m->root_dir));
  BOXLITE_RETURN_IF_ERROR(NoNul("root_dir", m->root_dir));
  if (const Json* mounts = Find(j, "container_mounts")) {
    if (!mounts->is_array()) return Mistyped("container_mounts", "an array");
    if (mounts->size() > kMaxContainerMounts) {
      return Status::InvalidArgument("exec: more container mounts than the agent takes",
                                     std::to_string(kMaxContainerMounts));
    }
    std::vector<ExecRequest::Mount> parsed;
    for (const auto& item : *mounts) {
      ExecRequest::Mount mount;
      BOXLITE_RETURN_IF_ERROR(GetString(item, "source", &mount.source, true));
      BOXLITE_RETURN_IF_ERROR(GetString(item, "destination", &mount.destination, true));
      BOXLITE_RETURN_IF_ERROR(GetBool(item, "read_only", &mount.read_only));
      BOXLITE_RETURN_IF_ERROR(NoNul("container_mounts", mount.source));
      BOXLITE_RETURN_IF_ERROR(NoNul("container_mounts", mount.destination));
      parsed.push_back(std::move(mount));
    }
    m->container_mounts = std::move(parsed);
  }
  if (!m->container_mounts.empty() && m->root_dir.empty()) {
    return Status::InvalidArgument("exec: container mounts need a container root (root_dir)");
  }
  if (const Json* limits = Find(j, "limits")) {
    BOXLITE_RETURN_IF_ERROR(LimitsFromJson(*limits, &m->limits));
    BOXLITE_RETURN_IF_ERROR(ValidateProcessLimits(m->limits, kMaxExecNofile).Wrap("exec"));
  }
  if (const Json* cgroup = Find(j, "cgroup")) {
    BOXLITE_RETURN_IF_ERROR(GetString(*cgroup, "name", &m->cgroup.name));
    BOXLITE_RETURN_IF_ERROR(GetInt(*cgroup, "memory_max", &m->cgroup.memory_max));
    BOXLITE_RETURN_IF_ERROR(GetInt(*cgroup, "cpu_quota", &m->cgroup.cpu_quota));
    BOXLITE_RETURN_IF_ERROR(GetInt(*cgroup, "cpu_period", &m->cgroup.cpu_period));
    BOXLITE_RETURN_IF_ERROR(GetInt(*cgroup, "pids_max", &m->cgroup.pids_max));
    BOXLITE_RETURN_IF_ERROR(ValidateExecCgroup(m->cgroup).Wrap("exec"));
  }
  BOXLITE_RETURN_IF_ERROR(NoNul("argv", m->argv));
  BOXLITE_RETURN_IF_ERROR(NoNul("env", m->env));
  BOXLITE_RETURN_IF_ERROR(NoNul("cwd", m->cwd));
  BOXLITE_RETURN_IF_ERROR(NoNul("user", m->user));
  if (m->detached && (m->tty || m->stdin_open)) {
    return Status::InvalidArgument("exec: a detached process has no terminal or stdin");
  }
  if (m->rows < 0 || m->rows > 65535 || m->cols < 0 || m->cols > 65535) {
    return Status::InvalidArgument("exec: rows and cols must be in [0, 65535]");
  }
  if (m->window < 0 || m->window > INT32_MAX) {
    return Status::InvalidArgument("exec: window out of range");
  }
  return Status::OK();
}

Json ToJson(const ExecResponse& m) {
  Json j = {{"pid", m.pid}};
  if (m.stdin_window != 0) j["stdin_window"] = m.stdin_window;  // Absent: no stdin.
  return j;
}

Status FromJson(const Json& j, ExecResponse* m) {
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "pid", &m->pid, true));
  return GetInt(j, "stdin_window", &m->stdin_window);
}

Json ToJson(const ExitEvent& m) {
  Json j = {{"event", "exit"}, {"exit_code", m.exit_code}};
  if (m.signal != 0) j["signal"] = m.signal;  // Absent: not killed by a signal.
  if (!m.error.empty()) j["error"] = m.error;
  return j;
}

Status FromJson(const Json& j, ExitEvent* m) {
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "exit_code", &m->exit_code, true));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "signal", &m->signal));
  return GetString(j, "error", &m->error);
}

Json ToJson(const SignalRequest& m) { return {{"target", m.target}, {"signal", m.signal}}; }

Status FromJson(const Json& j, SignalRequest* m) {
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "target", &m->target, true));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "signal", &m->signal, true));
  if (m->signal <= 0 || m->signal >= 65) return Status::InvalidArgument("signal out of range");
  return Status::OK();
}

Json ToJson(const ResizeRequest& m) {
  return {{"target", m.target}, {"rows", m.rows}, {"cols", m.cols}};
}

Status FromJson(const Json& j, ResizeRequest* m) {
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "target", &m->target, true));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "rows", &m->rows, true));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "cols", &m->cols, true));
  if (m->rows <= 0 || m->rows > 65535 || m->cols <= 0 || m->cols > 65535) {
    return Status::InvalidArgument("resize: rows and cols must be in [1, 65535]");
  }
  return Status::OK();
}

Json ToJson(const FileInfo& m) {
  Json j = {{"path", m.path}, {"kind", m.kind}, {"mode", m.mode}, {"uid", m.uid},
            {"gid", m.gid},   {"size", m.size}, {"mtime", m.mtime}};
  if (!m.target.empty()) j["target"] = m.target;
  return j;
}

Status FromJson(const Json& j, FileInfo* m) {
  BOXLITE_RETURN_IF_ERROR(GetString(j, "path", &m->path, true));
  BOXLITE_RETURN_IF_ERROR(GetString(j, "kind", &m->kind));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "mode", &m->mode));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "uid", &m->uid));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "gid", &m->gid));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "size", &m->size));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "mtime", &m->mtime));
  BOXLITE_RETURN_IF_ERROR(GetString(j, "target", &m->target));
  BOXLITE_RETURN_IF_ERROR(NoNul("path", m->path));
  BOXLITE_RETURN_IF_ERROR(NoNul("target", m->target));
  if (m->mode < 0 || m->mode > 07777) return Status::InvalidArgument("mode out of range");
  if (m->size < 0) return Status::InvalidArgument("size must not be negative");
  return Status::OK();
}

Json ToJson(const StatRequest& m) {
  Json j = {{"path", m.path}};
  if (m.follow) j["follow"] = true;
  return j;
}

Status FromJson(const Json& j, StatRequest* m) {
  BOXLITE_RETURN_IF_ERROR(GetString(j, "path", &m->path, true));
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "follow", &m->follow));
  return NoNul("path", m->path);
}

Json ToJson(const ListDirRequest& m) { return {{"path", m.path}, {"offset", m.offset}}; }

Status FromJson(const Json& j, ListDirRequest* m) {
  BOXLITE_RETURN_IF_ERROR(GetString(j, "path", &m->path, true));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "offset", &m->offset));
  if (m->offset < 0) return Status::InvalidArgument("list_dir: offset must not be negative");
  return NoNul("path", m->path);
}

Json ToJson(const ListDirResponse& m) {
  Json entries = Json::array();
  for (const auto& entry : m.entries) entries.push_back(ToJson(entry));
  return {{"entries", std::move(entries)}, {"next_offset", m.next_offset}};
}

Status FromJson(const Json& j, ListDirResponse* m) {
  const Json* entries = Find(j, "entries");
  if (entries == nullptr) return Missing("entries");
  if (!entries->is_array()) return Mistyped("entries", "an array");
  if (entries->size() > kListDirMaxEntries) {
    return Status::InvalidArgument(base::StrFormat("list_dir: a page of %zu entries; at most %zu",
                                                   entries->size(), kListDirMaxEntries));
  }
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "next_offset", &m->next_offset, true));
  if (m->next_offset < -1 || m->next_offset == 0) {
    return Status::InvalidArgument("list_dir: next_offset must be -1 or positive");
  }
  m->entries.clear();
  m->entries.reserve(entries->size());
  for (const auto& item : *entries) {
    FileInfo info;
    BOXLITE_RETURN_IF_ERROR(FromJson(item, &info));
    m->entries.push_back(std::move(info));
  }
  return Status::OK();
}

Json ToJson(const GetFileRequest& m) { return {{"path", m.path}, {"window", m.window}}; }

Status FromJson(const Json& j, GetFileRequest* m) {
  BOXLITE_RETURN_IF_ERROR(GetString(j, "path", &m->path, true));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "window", &m->window));
  if (m->window < 0 || m->window > INT32_MAX) {
    return Status::InvalidArgument("get_file: window out of range");
  }
  return NoNul("path", m->path);
}

Json ToJson(const FreezeRequest& m) { return {{"thaw_after_ms", m.thaw_after_ms}}; }
Json ToJson(const FreezeResponse& m) { return {{"frozen", m.frozen}}; }

Status FromJson(const Json& j, FreezeRequest* m) {
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "thaw_after_ms", &m->thaw_after_ms));
  if (m->thaw_after_ms < 1 || m->thaw_after_ms > kMaxThawAfterMs) {
    return Status::InvalidArgument("freeze: thaw_after_ms must be 1..60000");
  }
  return Status::OK();
}

Status FromJson(const Json& j, FreezeResponse* m) {
  return GetBool(j, "frozen", &m->frozen, true);
}

namespace {

// Metrics fields: each a required count or one a guest may leave out.
struct CountField {
  const char* key;
  int64_t* required;
  std::optional<int64_t>* optional;
};

std::array<CountField, 12> CountFields(GuestMetrics& m) {
  return {{{"mem_total", &m.mem_total, nullptr},
           {"mem_available", &m.mem_available, nullptr},
           {"processes", &m.processes, nullptr},
           {"execs_running", &m.execs_running, nullptr},
           {"uptime_ms", &m.uptime_ms, nullptr},
           {"cpu_busy_ticks", nullptr, &m.cpu_busy_ticks},
           {"cpu_idle_ticks", nullptr, &m.cpu_idle_ticks},
           {"ticks_per_second", nullptr, &m.ticks_per_second},
           {"net_rx_bytes", nullptr, &m.net_rx_bytes},
           {"net_tx_bytes", nullptr, &m.net_tx_bytes},
           {"tcp_opens", nullptr, &m.tcp_opens},
           {"tcp_errors", nullptr, &m.tcp_errors}}};
}

Status CheckCount(const char* key, int64_t v) {
  if (v >= 0 && v <= kMaxGuestCount) return Status::OK();
  return Status::InvalidArgument(base::StrFormat("metrics: \"%s\" is out of range", key));
}

}  // namespace

Json ToJson(const GuestMetrics& m) {
  GuestMetrics copy = m;
  Json j = Json::object();
  for (const auto& f : CountFields(copy)) {
    if (f.required != nullptr) j[f.key] = *f.required;
    if (f.optional != nullptr && f.optional->has_value()) j[f.key] = **f.optional;
  }
  return j;
}

Status FromJson(const Json& j, GuestMetrics* m) {
  GuestMetrics out;
  for (const auto& f : CountFields(out)) {
    if (f.optional != nullptr && Find(j, f.key) == nullptr) continue;
    int64_t v = 0;
    BOXLITE_RETURN_IF_ERROR(GetInt(j, f.key, &v, true));
    BOXLITE_RETURN_IF_ERROR(CheckCount(f.key, v));
    if (f.required != nullptr) *f.required = v;
    if (f.optional != nullptr) *f.optional = v;
  }
  if (out.mem_available > out.mem_total) {
    return Status::InvalidArgument("metrics: mem_available is above mem_total");
  }
  *m = out;
  return Status::OK();
}

std::string EncodeRequest(std::string_view op, Json body) {
  if (!body.is_object()) body = Json::object();
  body["op"] = op;
  return Dump(std::move(body));
}

std::string EncodeOkResponse(Json body) {
  if (!body.is_object()) body = Json::object();
  body["ok"] = true;
  return Dump(std::move(body));
}

std::string EncodeErrorResponse(const Status& status) {
  Json j = {{"ok", false},
            {"error",
             {{"code", std::string(StatusCodeName(status.code()))},
              {"message", status.message()}}}};
  return Dump(std::move(j));
}

Result<Json> DecodeResponse(std::string_view payload) {
  BOXLITE_ASSIGN_OR_RETURN(Json j, ParseObject(payload));
  bool ok = false;
  BOXLITE_RETURN_IF_ERROR(GetBool(j, "ok", &ok, true));
  if (ok) return j;
  const Json* err = Find(j, "error");
  if (err == nullptr) return Status::ProtocolError("error response without \"error\"");
  std::string code;
  std::string message;
  BOXLITE_RETURN_IF_ERROR(GetString(*err, "code", &code));
  BOXLITE_RETURN_IF_ERROR(GetString(*err, "message", &message));
  StatusCode sc = StatusCodeFromName(code);
  if (sc == StatusCode::kOk) sc = StatusCode::kInternal;
  return Status(sc, message);
}

Json ToJson(const RefreshRequest& m) {
  return {{"entropy", m.entropy},
          {"clock_unix_ns", m.clock_unix_ns},
          {"hostname", m.hostname},
          {"box_id", m.box_id}};
}

Status FromJson(const Json& j, RefreshRequest* m) {
  BOXLITE_RETURN_IF_ERROR(GetString(j, "entropy", &m->entropy, true));
  BOXLITE_RETURN_IF_ERROR(GetInt(j, "clock_unix_ns", &m->clock_unix_ns, true));
  BOXLITE_RETURN_IF_ERROR(GetString(j, "hostname", &m->hostname, true));
  BOXLITE_RETURN_IF_ERROR(GetString(j, "box_id", &m->box_id, true));
  if (m->entropy.size() != kRefreshEntropyBytes) {
    return Status::InvalidArgument("refresh: entropy must be 64 bytes");
  }
  // A hostname the kernel takes (HOST_NAME_MAX), with no byte that breaks /etc/hosts.
  if (m->hostname.empty() || m->hostname.size() > 64 ||
      m->hostname.find_first_of(std::string_view(" \t\n\0", 4)) != std::string::npos) {
    return Status::InvalidArgument("refresh: bad hostname");
  }
  if (m->box_id.size() > 64) return Status::InvalidArgument("refresh: bad box id");
  return Status::OK();
}

Status ValidateExecCgroup(const ExecCgroup& c) {
  if (c.name.empty()) {
    if (c.memory_max != 0 || c.cpu_quota != 0 || c.cpu_period != 0 || c.pids_max != 0) {
      return Status::InvalidArgument("cgroup limits need a cgroup name");
    }
    return Status::OK();
  }
  // One path component of the guest's cgroup tree: never "." or "..", no "/".
  auto allowed = [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-';
  };
  if (c.name.size() > 128 || !std::isalnum(static_cast<unsigned char>(c.name[0])) ||
      !std::all_of(c.name.begin(), c.name.end(), allowed)) {
    return Status::InvalidArgument("cgroup name must be " + std::string(kExecCgroupNameRule),
                                   c.name.size() > 128 ? c.name.substr(0, 128) + "..." : c.name);
  }
  auto bounded = [](const char* what, int64_t v, int64_t lo, int64_t hi) {
    if (v == 0 || (v >= lo && v <= hi)) return Status::OK();
    return Status::InvalidArgument(
        base::StrFormat("cgroup %s must be 0 (none) or from %lld to %lld, not %lld", what,
                        static_cast<long long>(lo), static_cast<long long>(hi),
                        static_cast<long long>(v)));
  };
  BOXLITE_RETURN_IF_ERROR(
      bounded("memory_max", c.memory_max, kMinCgroupMemory, kMaxCgroupMemory));
  BOXLITE_RETURN_IF_ERROR(bounded("cpu_quota", c.cpu_quota, kMinCpuQuota, kMaxCpuQuota));
  BOXLITE_RETURN_IF_ERROR(bounded("cpu_period", c.cpu_period, kMinCpuPeriod, kMaxCpuPeriod));
  BOXLITE_RETURN_IF_ERROR(bounded("pids_max", c.pids_max, 1, kMaxCgroupPids));
  if (c.cpu_period != 0 && c.cpu_quota == 0) {
    return Status::InvalidArgument("cgroup cpu_period needs a cpu_quota");
  }
  return Status::OK();
}

Status ValidateProcessLimits(const ProcessLimits& l, int64_t max_nofile) {
  for (auto [key, v] : {std::pair{"nofile", l.nofile}, {"fsize", l.fsize}, {"nproc", l.nproc},
                        {"as", l.as}, {"cpu", l.cpu}}) {
    if (v < 0) return Status::InvalidArgument(std::string("limits.") + key + " is negative");
  }
  if (l.nofile > max_nofile) {
    return Status::InvalidArgument(
        base::StrFormat("limits.nofile must be at most %lld (the guest's fs.nr_open), not %lld",
                        static_cast<long long>(max_nofile), static_cast<long long>(l.nofile)));
  }
  return Status::OK();
}

}  // namespace boxlite::protocol
