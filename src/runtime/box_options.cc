// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// ValidateBoxOptions (include/boxlite/options.h): the one place that decides whether box
// options are acceptable. Runtime::Create, the CLI (through Create) and the Python SDK
// (python/src/options_dict.cc, as options are built) all call it, so a rule or its message
// is written once.
#include <arpa/inet.h>

#include <string>
#include <string_view>

#include "boxlite/config.h"
#include "boxlite/options.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/net/egress_rules.h"
#include "src/runtime/box_secrets.h"
#include "src/runtime/exec_env.h"
#include "src/sys/fs.h"

namespace boxlite {
namespace {

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

Status NoNul(const char* what, std::string_view value) {
  if (!HasNul(value)) return Status::OK();
  return Status::InvalidArgument(std::string(what) + " must not contain NUL bytes");
}

// `name|uid[:group|gid]`, as the agent resolves it in the box.
Status CheckUser(const std::string& user) {
  BOXLITE_RETURN_IF_ERROR(NoNul("user", user));
  if (user.empty()) return Status::OK();
  size_t colon = user.find(':');
  bool bad = colon == 0 || (colon != std::string::npos &&
                            (colon + 1 == user.size() || user.find(':', colon + 1) != std::string::npos));
  if (bad) {
    return Status::InvalidArgument("user must be name|uid[:group|gid], not \"" + user + "\"");
  }
  return Status::OK();
}

Status CheckCommand(const char* what, const std::optional<std::vector<std::string>>& argv) {
  if (!argv) return Status::OK();
  for (const auto& arg : *argv) BOXLITE_RETURN_IF_ERROR(NoNul(what, arg));
  return Status::OK();
}

}  // namespace

Status ValidateBoxOptions(const BoxOptions& o) {
  if (o.image.empty() && o.rootfs_path.empty()) {
    return Status::InvalidArgument("a box needs an image (or rootfs_path)");
  }
  BOXLITE_RETURN_IF_ERROR(NoNul("image", o.image));
  BOXLITE_RETURN_IF_ERROR(NoNul("rootfs_path", o.rootfs_path));
  if (o.cpus < kMinCpus || o.cpus > kMaxCpus) {
    return Status::InvalidArgument(
        base::StrFormat("cpus must be from %d to %d, not %d", kMinCpus, kMaxCpus, o.cpus));
  }
  if (o.memory_mib < kMinMemoryMib || o.memory_mib > kMaxMemoryMib) {
    return Status::InvalidArgument(base::StrFormat("memory_mib must be from %d to %d, not %d",
                                                   kMinMemoryMib, kMaxMemoryMib, o.memory_mib));
  }
  if (o.max_clients < kMinMaxClients || o.max_clients > kMaxMaxClients) {
    return Status::InvalidArgument(
        base::StrFormat("max_clients must be from %d to %d, not %d", kMinMaxClients,
                        kMaxMaxClients, o.max_clients),
        "each client is one virtio-serial port of the VM, which has 31, one the console's");
  }
  if (o.disk_size_mib < 0 || o.disk_size_mib > kMaxDiskSizeMib) {
    return Status::InvalidArgument(
        base::StrFormat("disk_size must be from 0 to %lld MiB (0: the default), not %lld",
                        static_cast<long long>(kMaxDiskSizeMib),
                        static_cast<long long>(o.disk_size_mib)));
  }
  if (o.network != "nat" && o.network != "none") {
    return Status::InvalidArgument("network must be \"nat\" or \"none\" (NetworkSpec mode \"enabled\" "
                                   "or \"disabled\"), not \"" + o.network + "\"");
  }
  if (o.allow_host && o.network != "nat") {
    return Status::InvalidArgument("allow_host needs network \"nat\"");
  }
  if (!o.allow_net.empty()) {
    // The one parser of the patterns (src/net/egress_rules.h), also boxlite-net's.
    if (o.network != "nat") {
      return Status::InvalidArgument(
          "allow_net needs network \"nat\" (NetworkSpec mode \"enabled\")");
    }
    auto rules = net::EgressRules::Parse(o.allow_net);
    if (!rules.ok()) return rules.error();
  }
  BOXLITE_RETURN_IF_ERROR(runtime::ValidateSecrets(o.secrets, o.network));
  if (!o.name.empty() && !runtime::IsValidBoxName(o.name)) {
    return Status::InvalidArgument("box name \"" + o.name +
                                   "\" must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 63)");
  }
  for (const auto& [key, value] : o.env) {
    if (key.empty() || key.find('=') != std::string::npos || HasNul(key)) {
      return Status::InvalidArgument(
          "environment variable names must be non-empty, without '=' or NUL", key);
    }
    if (HasNul(value)) {
      return Status::InvalidArgument("environment variable values must not contain NUL", key);
    }
  }
  for (const auto& m : o.mounts) {
    // An empty host path is an anonymous volume, a volume id names one (the runtime's
    // ResolveVolumes makes and finds them, src/runtime/volumes.h).
    bool volume = m.host_path.empty() ||
                  (m.host_path.find('/') == std::string::npos && LooksLikeVolumeId(m.host_path));
    if (!volume && (m.host_path[0] != '/' || HasNul(m.host_path))) {
      return Status::InvalidArgument("mount host path must be absolute (or a volume id)",
                                     m.host_path);
    }
    if (!volume && !sys::Exists(m.host_path)) {
      return Status::InvalidArgument("mount host path does not exist: create it or fix the path",
                                     m.host_path);
    }
    if (m.guest_path.empty() || m.guest_path[0] != '/' || m.guest_path == "/" ||
        HasNul(m.guest_path)) {
      return Status::InvalidArgument("mount guest path must be absolute and not /", m.guest_path);
    }
  }
  for (const auto& p : o.ports) {
    if (p.guest_port == 0) return Status::InvalidArgument("port mapping needs a guest port");
    in_addr ip{};
    if (::inet_pton(AF_INET, p.host_ip.c_str(), &ip) != 1) {
      return Status::InvalidArgument("port " + std::to_string(p.guest_port) + ": host_ip " +
                                         base::ShellQuote(p.host_ip) + " is not an IPv4 address",
                                     "give one such as 127.0.0.1 (the default) or 0.0.0.0 (all)");
    }
  }
  if (!o.ports.empty() && o.network != "nat") {
    return Status::InvalidArgument("published ports need network \"nat\"");
  }
  BOXLITE_RETURN_IF_ERROR(NoNul("working_dir", o.working_dir));
  if (!o.working_dir.empty() && o.working_dir[0] != '/') {
    return Status::InvalidArgument("working_dir must be absolute", o.working_dir);
  }
  BOXLITE_RETURN_IF_ERROR(CheckUser(o.user));
  BOXLITE_RETURN_IF_ERROR(CheckCommand("entrypoint", o.entrypoint));
  BOXLITE_RETURN_IF_ERROR(CheckCommand("cmd", o.cmd));
  if (o.entrypoint && !o.entrypoint->empty() && o.entrypoint->front().empty()) {
    return Status::InvalidArgument("entrypoint's program (its first element) must not be empty");
  }
  if (o.entrypoint && o.entrypoint->empty() && o.cmd && !o.cmd->empty() && o.cmd->front().empty()) {
    return Status::InvalidArgument("cmd's program (its first element) must not be empty");
  }
  if (o.auto_pause > 0) {
    return Status::NotSupported(
        "AutoPause is only supported by REST runtimes: leave auto_pause unset (or 0) for a "
        "local box");
  }
  if (o.auto_delete && *o.auto_delete < 0) {
    return Status::InvalidArgument(base::StrFormat(
        "auto_delete must be 0 (keep the box) or a number of seconds > 0, not %lld",
        static_cast<long long>(*o.auto_delete)));
  }
  if (o.detach && RemovesOnStop(o)) {
    return Status::InvalidArgument(
        "remove-on-stop is incompatible with detach=true: give auto_remove=False (or "
        "auto_delete=0) to a detached box");
  }
  // Security, capabilities, health check (src/runtime/advanced_options.cc).
  BOXLITE_RETURN_IF_ERROR(ValidateAdvancedOptions(o));
  return Status::OK();
}

}  // namespace boxlite
