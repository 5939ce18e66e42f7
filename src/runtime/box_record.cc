// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/box_record.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/protocol/messages.h"
#include "src/runtime/box_state.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

using Json = nlohmann::json;

Json EnvToJson(const EnvList& env) {
  Json out = Json::array();
  for (const auto& [k, v] : env) out.push_back({k, v});
  return out;
}

// Reads `key` into `out` when present with the right type; the record is ours, but a
// hand-edited or truncated file must not crash the reader. Strings are byte strings
// (names, paths and env from the command line need not be UTF-8): saved with
// protocol::Dump, read in either of its forms.
template <typename T>
void Read(const Json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end()) return;
  if constexpr (std::is_same_v<T, std::string>) {
    (void)protocol::BytesFromJson(*it, out);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (it->is_boolean()) *out = it->template get<bool>();
  } else {
    if (it->is_number_integer()) *out = it->template get<T>();
  }
}

Json PortsToJson(const std::vector<PortForward>& ports) {
  Json out = Json::array();
  for (const auto& p : ports) {
    out.push_back({{"host", p.host_port}, {"guest", p.guest_port}, {"host_ip", p.host_ip}});
  }
  return out;
}

std::vector<PortForward> PortsFromJson(const Json& j) {
  std::vector<PortForward> out;
  if (!j.is_array()) return out;
  for (const auto& p : j) {
    PortForward f;
    Read(p, "host", &f.host_port);
    Read(p, "guest", &f.guest_port);
    if (auto ip = p.find("host_ip"); ip != p.end() && ip->is_string()) f.host_ip = ip->get<std::string>();
    out.push_back(f);
  }
  return out;
}

// BoxOptions.security, .capabilities and .health_check, under "advanced".
Json AdvancedToJson(const BoxOptions& o) {
  const SecurityOptions& s = o.security;
  auto limit = [](const std::optional<uint64_t>& v) { return v ? Json(*v) : Json(nullptr); };
  return {{"security",
           {{"jailer_enabled", s.jailer_enabled}, {"seccomp_enabled", s.seccomp_enabled},
            {"max_open_files", limit(s.max_open_files)}, {"max_file_size", limit(s.max_file_size)},
            {"max_processes", limit(s.max_processes)}, {"max_memory", limit(s.max_memory)},
            {"max_cpu_time", limit(s.max_cpu_time)}, {"network_enabled", s.network_enabled},
            {"close_fds", s.close_fds}}},
          {"capabilities", {{"add", o.capabilities.add}, {"drop", o.capabilities.drop}}},
          {"health_check",
           {{"enabled", o.health_check.enabled}, {"interval_s", o.health_check.interval_s},
            {"timeout_s", o.health_check.timeout_s}, {"retries", o.health_check.retries},
            {"start_period_s", o.health_check.start_period_s}}}};
}

void AdvancedFromJson(const Json& j, BoxOptions* o) {
  if (!j.is_object()) return;
  const Json& s = j.value("security", Json::object());
  if (s.is_object()) {
    SecurityOptions& sec = o->security;
    Read(s, "jailer_enabled", &sec.jailer_enabled);
    Read(s, "seccomp_enabled", &sec.seccomp_enabled);
    Read(s, "network_enabled", &sec.network_enabled);
    Read(s, "close_fds", &sec.close_fds);
    for (auto [key, field] : {std::pair{"max_open_files", &sec.max_open_files},
                              {"max_file_size", &sec.max_file_size},
                              {"max_processes", &sec.max_processes},
                              {"max_memory", &sec.max_memory}, {"max_cpu_time", &sec.max_cpu_time}}) {
      auto it = s.find(key);
      if (it != s.end() && it->is_number_unsigned()) *field = it->get<uint64_t>();
    }
  }
  const Json& c = j.value("capabilities", Json::object());
  for (auto [key, list] : {std::pair{"add", &o->capabilities.add}, {"drop", &o->capabilities.drop}}) {
    auto it = c.is_object() ? c.find(key) : c.end();
    if (!c.is_object() || it == c.end() || !it->is_array()) continue;
    for (const auto& name : *it) {
      if (name.is_string()) list->push_back(name.get<std::string>());
    }
  }
  const Json& h = j.value("health_check", Json::object());
  if (h.is_object()) {
    Read(h, "enabled", &o->health_check.enabled);
    Read(h, "interval_s", &o->health_check.interval_s);
    Read(h, "timeout_s", &o->health_check.timeout_s);
    Read(h, "retries", &o->health_check.retries);
    Read(h, "start_period_s", &o->health_check.start_period_s);
  }
}

}  // namespace

Json BoxOptionsToJson(const BoxOptions& o) {
  Json mounts = Json::array();
  for (const auto& m : o.mounts) {
    mounts.push_back({{"host", m.host_path}, {"guest", m.guest_path}, {"read_only", m.read_only}});
  }
  Json opts = {{"image", o.image}, {"rootfs_path", o.rootfs_path}, {"cpus", o.cpus},
               {"memory_mib", o.memory_mib}, {"disk_size_mib", o.disk_size_mib},
               {"env", EnvToJson(o.env)}, {"mounts", mounts}, {"ports", PortsToJson(o.ports)},
               {"network", o.network}, {"allow_host", o.allow_host},
               {"allow_net", o.allow_net},
               {"working_dir", o.working_dir}, {"user", o.user},
               {"auto_remove", o.auto_remove}, {"detach", o.detach}, {"tty", o.tty},
               {"auto_pause", o.auto_pause}, {"auto_resume", o.auto_resume},
               {"max_clients", o.max_clients},
               {"advanced", AdvancedToJson(o)}};
  if (o.auto_delete) opts["auto_delete"] = *o.auto_delete;
  if (o.warm) opts["warm"] = *o.warm;  // Warm start (templates.h): the box's choice.
  if (o.entrypoint) opts["entrypoint"] = *o.entrypoint;
  if (o.cmd) opts["cmd"] = *o.cmd;
  // Secrets: names, hosts and placeholders only; the values live in the box directory's
  // secrets.json (src/runtime/box_secrets.h), never in the record `inspect` shows.
  if (!o.secrets.empty()) {
    Json secrets = Json::array();
    for (const auto& s : o.secrets) {
      secrets.push_back({{"name", s.name}, {"hosts", s.hosts}, {"placeholder", s.placeholder}});
    }
    opts["secrets"] = secrets;
  }
  return opts;
}

BoxOptions BoxOptionsFromJson(const Json& o) {
  BoxOptions b;
  if (!o.is_object()) return b;
  Read(o, "image", &b.image);
  Read(o, "rootfs_path", &b.rootfs_path);
  Read(o, "cpus", &b.cpus);
  Read(o, "memory_mib", &b.memory_mib);
  Read(o, "disk_size_mib", &b.disk_size_mib);
  Read(o, "network", &b.network);
  Read(o, "allow_host", &b.allow_host);
  if (auto v = o.find("allow_net"); v != o.end() && v->is_array()) {
    for (const auto& p : *v) {
      if (p.is_string()) b.allow_net.push_back(p.get<std::string>());
    }
  }
  Read(o, "working_dir", &b.working_dir);
  Read(o, "user", &b.user);
  Read(o, "auto_remove", &b.auto_remove);
  Read(o, "detach", &b.detach);
  Read(o, "tty", &b.tty);
  Read(o, "auto_pause", &b.auto_pause);
  Read(o, "auto_resume", &b.auto_resume);
  Read(o, "max_clients", &b.max_clients);  // Absent (an older record): the default, 4.
  if (auto v = o.find("auto_delete"); v != o.end() && v->is_number_integer()) {
    b.auto_delete = v->get<int64_t>();
  }
  if (auto v = o.find("warm"); v != o.end() && v->is_boolean()) b.warm = v->get<bool>();
  for (auto [key, out] : {std::pair{"entrypoint", &b.entrypoint}, std::pair{"cmd", &b.cmd}}) {
    auto it = o.find(key);
    if (it == o.end() || !it->is_array()) continue;
    out->emplace();
    for (const auto& v : *it) {
      std::string bytes;
      if (protocol::BytesFromJson(v, &bytes).ok()) (*out)->push_back(std::move(bytes));
    }
  }
  AdvancedFromJson(o.value("advanced", Json::object()), &b);
  if (auto secrets = o.find("secrets"); secrets != o.end() && secrets->is_array()) {
    for (const auto& s : *secrets) {
      Secret secret;
      Read(s, "name", &secret.name);
      if (auto h = s.find("hosts"); h != s.end() && h->is_array()) {
        for (const auto& host : *h) {
          if (host.is_string()) secret.hosts.push_back(host.get<std::string>());
        }
      }
      Read(s, "placeholder", &secret.placeholder);
      b.secrets.push_back(std::move(secret));  // The value: LoadSecretValues.
    }
  }
  if (auto env = o.find("env"); env != o.end() && env->is_array()) {
    for (const auto& kv : *env) {
      std::string k, v;
      if (kv.is_array() && kv.size() == 2 && protocol::BytesFromJson(kv[0], &k).ok() &&
          protocol::BytesFromJson(kv[1], &v).ok()) {
        b.env.emplace_back(std::move(k), std::move(v));
      }
    }
  }
  if (auto mounts = o.find("mounts"); mounts != o.end() && mounts->is_array()) {
    for (const auto& m : *mounts) {
      VolumeMount vm;
      Read(m, "host", &vm.host_path);
      Read(m, "guest", &vm.guest_path);
      Read(m, "read_only", &vm.read_only);
      b.mounts.push_back(vm);
    }
  }
  b.ports = PortsFromJson(o.value("ports", Json::array()));
  return b;
}

Json ImageConfigToJson(const image::ImageConfig& c) {
  return {{"env", c.env}, {"entrypoint", c.entrypoint}, {"cmd", c.cmd},
          {"working_dir", c.working_dir}, {"user", c.user}};
}

image::ImageConfig ImageConfigFromJson(const Json& img) {
  image::ImageConfig c;
  if (!img.is_object()) return c;
  Read(img, "working_dir", &c.working_dir);
  Read(img, "user", &c.user);
  for (auto [key, out] : {std::pair{"env", &c.env}, std::pair{"entrypoint", &c.entrypoint},
                          std::pair{"cmd", &c.cmd}}) {
    auto it = img.find(key);
    if (it == img.end() || !it->is_array()) continue;
    for (const auto& v : *it) {
      std::string bytes;
      if (protocol::BytesFromJson(v, &bytes).ok()) out->push_back(std::move(bytes));
    }
  }
  return c;
}

int AgentPorts(const BoxOptions& options, bool persistent) {
  if (!persistent) return 1;
  return std::clamp(options.max_clients, kMinMaxClients, kMaxMaxClients);
}

std::string BoxDir(const std::string& boxes_dir, const std::string& id) {
  return sys::JoinPath(boxes_dir, id);
}

Status SaveRecord(const std::string& dir, const BoxRecord& r) {
  Json j = {
      {"version", 1},
      {"id", r.id},
      {"name", r.name},
      {"created", r.created_unix},
      {"options", BoxOptionsToJson(r.options)},
      {"image", ImageConfigToJson(r.image_config)},
      {"disk_size_mib", r.disk_size_mib},
      {"vm",
       {{"pid", r.pid}, {"start_time", r.pid_start_time}, {"net_pid", r.net_pid},
        {"net_start_time", r.net_pid_start_time}, {"ports", PortsToJson(r.bound_ports)}, {"accel", r.accel},
        {"create_seconds", r.create_seconds}, {"boot_seconds", r.boot_seconds},
        {"console_offset", r.console_offset}}},
  };
  if (r.exit_code) j["exit_code"] = *r.exit_code;
  if (!r.phase.empty()) j["phase"] = r.phase;
  // Warm start (templates.h): how the box's current VM started.
  j["vm"]["warm_start"] = r.warm_start;
  if (!r.failure.empty()) j["failure"] = r.failure;
  j["image"]["reference"] = r.image_reference;
  j["image"]["rootfs_path"] = r.rootfs_path;
  j["image"]["rootfs_bytes"] = r.rootfs_bytes;
  if (r.standalone_disk) j["standalone_disk"] = true;
  return sys::WriteFileAtomic(sys::JoinPath(dir, "box.json"), protocol::Dump(std::move(j), 2) + "\n",
                              0600);
}

Result<BoxRecord> LoadRecord(const std::string& dir) {
  BOXLITE_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(sys::JoinPath(dir, "box.json")));
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Corruption("box record is not valid JSON", dir + "/box.json");
  }
  BoxRecord r;
  Read(j, "id", &r.id);
  Read(j, "name", &r.name);
  Read(j, "created", &r.created_unix);
  if (r.id.empty()) return Status::Corruption("box record has no id", dir);
  r.options = BoxOptionsFromJson(j.value("options", Json::object()));
  r.options.name = r.name;
  const Json& img = j.value("image", Json::object());
  if (img.is_object()) {
    Read(img, "reference", &r.image_reference);
    Read(img, "rootfs_path", &r.rootfs_path);
    Read(img, "rootfs_bytes", &r.rootfs_bytes);
    r.image_config = ImageConfigFromJson(img);
  }
  Read(j, "standalone_disk", &r.standalone_disk);
  Read(j, "disk_size_mib", &r.disk_size_mib);
  if (auto code = j.find("exit_code"); code != j.end() && code->is_number_integer()) {
    r.exit_code = code->get<int>();
  }
  Read(j, "phase", &r.phase);
  Read(j, "failure", &r.failure);
  if (r.phase != kPhaseStopping && r.phase != kPhaseFailed) r.phase.clear();
  const Json& vm = j.value("vm", Json::object());
  if (vm.is_object()) {
    Read(vm, "pid", &r.pid);
    Read(vm, "start_time", &r.pid_start_time);
    Read(vm, "net_pid", &r.net_pid);
    Read(vm, "net_start_time", &r.net_pid_start_time);
    Read(vm, "accel", &r.accel);
    Read(vm, "console_offset", &r.console_offset);
    Read(vm, "warm_start", &r.warm_start);
    if (auto c = vm.find("create_seconds"); c != vm.end() && c->is_number()) {
      r.create_seconds = c->get<double>();
    }
    if (auto b = vm.find("boot_seconds"); b != vm.end() && b->is_number()) {
      r.boot_seconds = b->get<double>();
    }
    r.bound_ports = PortsFromJson(vm.value("ports", Json::array()));
  }
  return r;
}

Status SaveHealth(const std::string& dir, const HealthStatus& health) {
  Json j = {{"state", health.state},
            {"failures", health.failures},
            {"last_check", health.last_check_unix}};
  return sys::WriteFileAtomic(sys::JoinPath(dir, "health.json"),
                              protocol::Dump(std::move(j)) + "\n", 0600);
}

std::optional<HealthStatus> LoadHealth(const std::string& dir) {
  auto text = sys::ReadFile(sys::JoinPath(dir, "health.json"));
  if (!text.ok() || text->size() > 4096) return std::nullopt;
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  HealthStatus h;
  Read(j, "state", &h.state);
  Read(j, "failures", &h.failures);
  Read(j, "last_check", &h.last_check_unix);
  if (h.state != "none" && h.state != "starting" && h.state != "healthy" &&
      h.state != "unhealthy") {
    return std::nullopt;
  }
  if (h.failures < 0 || h.last_check_unix < 0) return std::nullopt;
  return h;
}

std::vector<BoxRecord> LoadAllRecords(const std::string& boxes_dir) {
  std::vector<BoxRecord> out;
  auto names = sys::ListDir(boxes_dir);
  if (!names.ok()) return out;
  for (const auto& name : *names) {
    if (name.empty() || name[0] == '.') continue;
    auto r = LoadRecord(BoxDir(boxes_dir, name));
    if (r.ok()) out.push_back(std::move(r).value());
  }
  return out;
}

uint64_t ProcessStartTime(int pid) {
  if (pid <= 0) return 0;
  auto stat = sys::ReadFile(base::StrFormat("/proc/%d/stat", pid));
  if (!stat.ok()) return 0;
  size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return 0;
  // After ") " come fields 3..; the start time is field 22.
  auto fields = base::Split(stat->substr(close + 2), ' ');
  if (fields.size() < 20) return 0;
  if (fields[0] == "Z" || fields[0] == "X") return 0;  // A zombie is not alive.
  return base::ParseUint(fields[19]).value_or(0);
}

bool SameProcessAlive(int pid, uint64_t start_time) {
  return pid > 0 && start_time != 0 && ProcessStartTime(pid) == start_time;
}

}  // namespace boxlite::runtime
