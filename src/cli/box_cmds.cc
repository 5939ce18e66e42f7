// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Commands on existing boxes: exec, shell, ls/ps, start, stop, rm, logs, inspect, cp.
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

#include "src/base/strings.h"
#include "src/cli/attach.h"
#include "src/cli/command.h"

namespace boxlite::cli {
namespace {

constexpr int kRuntimeFailure = 125;

Outcome Error(const Status& s) { return Outcome{0, s}; }

nlohmann::json InfoJson(const BoxInfo& b) {
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& p : b.ports) ports.push_back({{"host", p.host_port}, {"guest", p.guest_port}});
  nlohmann::json mounts = nlohmann::json::array();
  for (const auto& m : b.mounts) {
    mounts.push_back({{"host", m.host_path}, {"guest", m.guest_path}, {"read_only", m.read_only}});
  }
  return {{"id", b.id},
          {"name", b.name},
          {"image", b.image},
          {"state", b.state},
          {"created", b.created_unix},
          {"cpus", b.cpus},
          {"memory_mib", b.memory_mib},
          {"disk_size_mib", b.disk_size_mib},
          {"network", b.network},
          {"ports", ports},
          {"mounts", mounts},
          {"auto_remove", b.auto_remove},
          {"detach", b.detach},
          {"pid", b.pid},
          {"accel", b.accel}};
}

std::string Ago(int64_t t) {
  int64_t secs = static_cast<int64_t>(std::time(nullptr)) - t;
  if (secs < 60) return base::StrFormat("%llds ago", static_cast<long long>(secs));
  if (secs < 3600) return base::StrFormat("%lldm ago", static_cast<long long>(secs / 60));
  if (secs < 86400) return base::StrFormat("%lldh ago", static_cast<long long>(secs / 3600));
  return base::StrFormat("%lldd ago", static_cast<long long>(secs / 86400));
}

Outcome PrintBoxes(Context& ctx, const ParsedFlags& flags, bool running_only) {
  auto rt = ctx.runtime();
  if (!rt.ok()) return Error(rt.error());
  auto boxes = (*rt)->List();
  if (!boxes.ok()) return Error(boxes.error());
  std::string format = flags.Get("format").value_or("table");
  std::vector<BoxInfo> shown;
  for (const auto& b : *boxes) {
    if (!running_only || b.state == "running") shown.push_back(b);
  }
  if (format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& b : shown) out.push_back(InfoJson(b));
    PrintJson(out);
    return Outcome{};
  }
  if (format != "table") return Error(Status::InvalidArgument("--format must be table or json", format));
  if (flags.Has("quiet")) {
    for (const auto& b : shown) std::printf("%s\n", b.id.substr(0, 12).c_str());
    return Outcome{};
  }
  std::printf("%-12s  %-20s  %-30s  %-8s  %-10s  %s\n", "BOX ID", "NAME", "IMAGE", "STATE",
              "CREATED", "PORTS");
  for (const auto& b : shown) {
    std::string ports;
    for (const auto& p : b.ports) {
      if (!ports.empty()) ports += ", ";
      ports += base::StrFormat("127.0.0.1:%u->%u/tcp", p.host_port, p.guest_port);
    }
    std::printf("%-12s  %-20s  %-30s  %-8s  %-10s  %s\n", b.id.substr(0, 12).c_str(),
                b.name.c_str(), b.image.c_str(), b.state.c_str(), Ago(b.created_unix).c_str(),
                ports.c_str());
  }
  return Outcome{};
}

Result<std::shared_ptr<Box>> FindBox(Context& ctx, const std::string& name) {
  auto rt = ctx.runtime();
  if (!rt.ok()) return rt.error();
  return (*rt)->Get(name);
}

}  // namespace

Outcome ExecCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.size() < 2) {
    return Outcome{0, Status::InvalidArgument("exec needs a BOX and a COMMAND"), kRuntimeFailure};
  }
  InstallSignalForwarding();
  auto box = FindBox(ctx, flags.positional[0]);
  if (!box.ok()) return Outcome{0, box.error(), kRuntimeFailure};
  // `docker exec` semantics: a box that is not running is an error here (the SDKs start it
  // for its first command, as BoxLite 0.9's Box.exec does).
  if (auto info = (*box)->Info(); info.ok() && info->state != "running") {
    return Outcome{0,
                   Status::FailedPrecondition("box " + flags.positional[0] + " is " + info->state,
                                              "start it first (boxlite start)"),
                   kRuntimeFailure};
  }
  ExecOptions options;
  options.argv.assign(flags.positional.begin() + 1, flags.positional.end());
  options.tty = flags.Has("tty");
  options.open_stdin = flags.Has("interactive");
  if (options.tty) TerminalSize(&options.rows, &options.cols);
  for (const auto& item : flags.All("env")) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Outcome{0, Status::InvalidArgument("bad environment variable", item), kRuntimeFailure};
    }
    options.env.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  if (auto wd = flags.Get("workdir")) options.cwd = *wd;
  if (auto user = flags.Get("user")) options.user = *user;
  if (flags.Has("detach")) {
    options.detached = true;
    auto exec = (*box)->StartExec(options);
    if (!exec.ok()) return Outcome{0, exec.error(), kRuntimeFailure};
    return Outcome{};
  }
  auto exec = (*box)->StartExec(options);
  if (!exec.ok()) return Outcome{0, exec.error(), kRuntimeFailure};
  auto status = AttachExec(*exec, options.open_stdin, options.tty);
  if (!status.ok()) return Outcome{0, status.error(), kRuntimeFailure};
  return Outcome{status->exit_code, Status::OK(), 0};
}

Outcome ShellCommand(Context& ctx, const ParsedFlags& flags) {
  std::string target = flags.positional.empty() ? "boxlite/base" : flags.positional[0];
  std::string shell = flags.Get("shell").value_or("/bin/sh");
  bool tty = ::isatty(STDIN_FILENO) != 0;
  InstallSignalForwarding();
  auto rt = ctx.runtime();
  if (!rt.ok()) return Outcome{0, rt.error(), kRuntimeFailure};
  std::shared_ptr<Box> box;
  bool ephemeral = false;
  auto existing = (*rt)->Get(target);
  if (existing.ok()) {
    box = *existing;
  } else if (existing.error().IsNotFound()) {
    // Not a box: a throwaway box from that image.
    BoxOptions options;
    options.image = target;
    auto created = (*rt)->Create(options);
    if (!created.ok()) return Outcome{0, created.error(), kRuntimeFailure};
    box = *created;
    Status s = box->Start();
    if (!s.ok()) return Outcome{0, s, kRuntimeFailure};
    ephemeral = true;
  } else {
    return Outcome{0, existing.error(), kRuntimeFailure};
  }
  ExecOptions options;
  options.argv = {shell};
  options.tty = tty;
  options.open_stdin = true;
  if (tty) TerminalSize(&options.rows, &options.cols);
  auto exec = box->StartExec(options);
  if (!exec.ok()) return Outcome{0, exec.error(), kRuntimeFailure};
  auto status = AttachExec(*exec, true, tty);
  exec->reset();
  if (ephemeral) (void)box->Stop();
  if (!status.ok()) return Outcome{0, status.error(), kRuntimeFailure};
  return Outcome{status->exit_code, Status::OK(), 0};
}

Outcome ListCommand(Context& ctx, const ParsedFlags& flags) { return PrintBoxes(ctx, flags, false); }

Outcome PsCommand(Context& ctx, const ParsedFlags& flags) {
  return PrintBoxes(ctx, flags, !flags.Has("all"));
}

Outcome StartCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty()) return Error(Status::InvalidArgument("start needs a BOX"));
  for (const auto& name : flags.positional) {
    auto box = FindBox(ctx, name);
    if (!box.ok()) return Error(box.error());
    auto info = (*box)->Info();
    if (info.ok() && !info->detach && !flags.Has("attach")) {
      // A box that is not detached lives as long as the process that started it.
      return Error(Status::FailedPrecondition(
          "box " + name + " was not created with --detach, so it would stop when this command "
          "exits", "use `boxlite run -d` for background boxes, or exec into it from a program"));
    }
    Status s = (*box)->Start();
    if (!s.ok()) return Error(s);
    std::printf("%s\n", name.c_str());
  }
  return Outcome{};
}

Outcome StopCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty()) return Error(Status::InvalidArgument("stop needs a BOX"));
  for (const auto& name : flags.positional) {
    auto box = FindBox(ctx, name);
    if (!box.ok()) return Error(box.error());
    Status s = (*box)->Stop();
    if (!s.ok()) return Error(s);
    std::printf("%s\n", name.c_str());
  }
  return Outcome{};
}

Outcome RmCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty()) return Error(Status::InvalidArgument("rm needs a BOX"));
  auto rt = ctx.runtime();
  if (!rt.ok()) return Error(rt.error());
  for (const auto& name : flags.positional) {
    Status s = (*rt)->Remove(name, flags.Has("force"));
    if (!s.ok()) return Error(s);
    std::printf("%s\n", name.c_str());
  }
  return Outcome{};
}

Outcome LogsCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) return Error(Status::InvalidArgument("logs needs one BOX"));
  auto box = FindBox(ctx, flags.positional[0]);
  if (!box.ok()) return Error(box.error());
  auto log = (*box)->ConsoleLog();
  if (!log.ok()) return Error(log.error());
  std::fwrite(log->data(), 1, log->size(), stdout);
  return Outcome{};
}

Outcome InspectCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty()) return Error(Status::InvalidArgument("inspect needs a BOX"));
  nlohmann::json out = nlohmann::json::array();
  for (const auto& name : flags.positional) {
    auto box = FindBox(ctx, name);
    if (!box.ok()) return Error(box.error());
    auto info = (*box)->Info();
    if (!info.ok()) return Error(info.error());
    nlohmann::json j = InfoJson(*info);
    if (info->state == "running") {
      auto m = (*box)->Metrics();
      if (m.ok()) {
        j["metrics"] = {{"cpu_seconds", m->cpu_seconds},
                        {"memory_rss_bytes", m->memory_rss_bytes},
                        {"guest_memory_used_bytes", m->guest_memory_used_bytes},
                        {"guest_memory_total_bytes", m->guest_memory_total_bytes},
                        {"execs_run", m->execs_run},
                        {"create_seconds", m->create_seconds},
                        {"boot_seconds", m->boot_seconds}};
      }
    }
    out.push_back(j);
  }
  PrintJson(out, 2);
  return Outcome{};
}

Outcome CpCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.size() != 2) {
    return Error(Status::InvalidArgument("cp takes SRC and DEST, one of them BOX:PATH"));
  }
  auto split = [](const std::string& arg, std::string* box, std::string* path) {
    size_t colon = arg.find(':');
    if (colon == std::string::npos || colon == 0 || arg[0] == '/' || arg[0] == '.') return false;
    *box = arg.substr(0, colon);
    *path = arg.substr(colon + 1);
    return true;
  };
  std::string src_box, src_path, dst_box, dst_path;
  bool from_box = split(flags.positional[0], &src_box, &src_path);
  bool to_box = split(flags.positional[1], &dst_box, &dst_path);
  if (from_box == to_box) {
    return Error(Status::InvalidArgument("exactly one of SRC and DEST must be BOX:PATH"));
  }
  auto box = FindBox(ctx, from_box ? src_box : dst_box);
  if (!box.ok()) return Error(box.error());
  Status s = from_box ? (*box)->CopyOut(src_path, flags.positional[1])
                      : (*box)->CopyIn(flags.positional[0], dst_path);
  return Error(s);
}

}  // namespace boxlite::cli
