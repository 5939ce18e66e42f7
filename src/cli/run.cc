// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// `boxlite run`: create a box from an image, run one command in it with the caller's
// stdio attached, and exit with the command's status (docker's conventions: 125 when
// BoxLite itself failed, 126/127 when the command could not run).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "boxlite/config.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/cli/attach.h"
#include "src/cli/command.h"

namespace boxlite::cli {
namespace {

constexpr int kRuntimeFailure = 125;

using Clock = std::chrono::steady_clock;

Outcome Fail(const Status& s) { return Outcome{0, s, kRuntimeFailure}; }

Status ParseEnv(const std::vector<std::string>& items, EnvList* out) {
  for (const auto& item : items) {
    size_t eq = item.find('=');
    if (eq == 0) return Status::InvalidArgument("bad environment variable", item);
    if (eq == std::string::npos) {
      // docker: "-e NAME" passes the caller's value through when it is set.
      if (const char* v = std::getenv(item.c_str())) out->emplace_back(item, v);
      continue;
    }
    out->emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return Status::OK();
}

// HOST:GUEST[:ro|rw], VOLUME_ID:GUEST[:ro|rw] or GUEST[:ro] (anonymous volume): one
// rule for every command, in include/boxlite/config.h.
Status ParseVolume(const std::string& spec, VolumeMount* out) {
  auto m = ParseVolumeSpec(spec);
  if (!m.ok()) return m.error();
  *out = std::move(*m);
  return Status::OK();
}

Status ParsePort(const std::string& spec, PortForward* out) {
  auto parts = base::Split(spec, ':');
  if (parts.size() != 2) return Status::InvalidArgument("port must be HOST:GUEST", spec);
  auto host = base::ParseUint(parts[0]);
  auto guest = base::ParseUint(parts[1]);
  if (!host || !guest || *host > 65535 || *guest == 0 || *guest > 65535) {
    return Status::InvalidArgument("ports must be numbers in 1..65535", spec);
  }
  out->host_port = static_cast<uint16_t>(*host);
  out->guest_port = static_cast<uint16_t>(*guest);
  return Status::OK();
}

}  // namespace

Result<BoxOptions> BoxOptionsFromFlags(const ParsedFlags& flags) {
  BoxOptions options;
  options.image = flags.positional.empty() ? "" : flags.positional[0];
  Status s = ParseEnv(flags.All("env"), &options.env);
  if (!s.ok()) return s;
  for (const auto& v : flags.All("volume")) {
    VolumeMount m;
    s = ParseVolume(v, &m);
    if (!s.ok()) return s;
    options.mounts.push_back(m);
  }
  for (const auto& p : flags.All("publish")) {
    PortForward f;
    s = ParsePort(p, &f);
    if (!s.ok()) return s;
    options.ports.push_back(f);
  }
  if (auto cpus = flags.Get("cpus")) {
    BOXLITE_ASSIGN_OR_RETURN(int64_t v, ParseNumberFlag("--cpus", *cpus, kMinCpus, kMaxCpus));
    options.cpus = static_cast<int>(v);
  }
  if (auto mem = flags.Get("memory")) {
    BOXLITE_ASSIGN_OR_RETURN(
        int64_t v, ParseNumberFlag("--memory", *mem, kMinMemoryMib, kMaxMemoryMib, "MiB"));
    options.memory_mib = static_cast<int>(v);
  }
  if (auto disk = flags.Get("disk-size")) {
    BOXLITE_ASSIGN_OR_RETURN(options.disk_size_mib,
                             ParseNumberFlag("--disk-size", *disk, 0, kMaxDiskSizeMib, "MiB"));
  }
  if (auto net = flags.Get("network")) options.network = *net;
  options.allow_host = flags.Has("allow-host");
  if (auto name = flags.Get("name")) options.name = *name;
  if (auto user = flags.Get("user")) options.user = *user;
  if (auto wd = flags.Get("workdir")) options.working_dir = *wd;
  options.auto_remove = flags.Has("rm");
  options.detach = flags.Has("detach");
  return options;
}

Outcome CreateCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) {
    return Outcome{0, Status::InvalidArgument("create takes exactly one IMAGE")};
  }
  auto options = BoxOptionsFromFlags(flags);
  if (!options.ok()) return Outcome{0, options.error()};
  // A created box is a background box: it keeps running once started, until stopped.
  options->auto_remove = false;
  options->detach = true;
  auto rt = ctx.runtime();
  if (!rt.ok()) return Outcome{0, rt.error()};
  auto box = (*rt)->Create(*options);
  if (!box.ok()) return Outcome{0, box.error()};
  std::printf("%s\n", (*box)->id().c_str());
  return Outcome{};
}

Outcome RunCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty()) {
    return Outcome{0, Status::InvalidArgument("run needs an IMAGE (see 'boxlite run --help')"),
                   kRuntimeFailure};
  }
  auto options = BoxOptionsFromFlags(flags);
  if (!options.ok()) return Fail(options.error());
  bool detach = options->detach;
  if (detach && options->auto_remove) {
    return Fail(Status::InvalidArgument("--rm and --detach cannot be combined"));
  }
  // run's command is the exec below (`docker run` semantics), so the box starts no main
  // command of its own: the image's CMD would run beside it.
  if (!options->entrypoint && !options->cmd) {
    options->entrypoint.emplace();
    options->cmd.emplace();
  }
  InstallSignalForwarding();
  auto rt = ctx.runtime();
  if (!rt.ok()) return Fail(rt.error());
  bool timings = flags.Has("timings");
  auto t0 = Clock::now();
  auto box = (*rt)->Create(*options);
  if (!box.ok()) return Fail(box.error());
  Status started = (*box)->Start();
  if (!started.ok()) {
    if (options->auto_remove) (void)(*box)->Stop();
    return Fail(started);
  }
  auto t_started = Clock::now();

  ExecOptions exec_options;
  exec_options.argv.assign(flags.positional.begin() + 1, flags.positional.end());
  exec_options.use_image_entrypoint = true;
  exec_options.tty = flags.Has("tty");
  exec_options.open_stdin = flags.Has("interactive");
  if (exec_options.tty) TerminalSize(&exec_options.rows, &exec_options.cols);
  if (detach) {
    // The command runs in the background with its output in the box's log; the VM
    // outlives us.
    if (exec_options.tty || exec_options.open_stdin) {
      return Fail(Status::InvalidArgument("--detach cannot be combined with -i or -t"));
    }
    exec_options.detached = true;
    auto exec = (*box)->StartExec(exec_options);
    if (!exec.ok()) {
      // Nothing runs in it: do not leave a background box behind.
      (void)(*rt)->Remove((*box)->id(), true);
      return Fail(exec.error());
    }
    std::printf("%s\n", (*box)->id().c_str());
    return Outcome{};
  }
  auto exec = (*box)->StartExec(exec_options);
  if (!exec.ok()) {
    (void)(*box)->Stop();
    return Fail(exec.error());
  }
  Result<ExitStatus> status = AttachExec(*exec, exec_options.open_stdin, exec_options.tty);
  auto t_done = Clock::now();
  if (timings) {
    auto metrics = (*box)->Metrics();
    double create = metrics.ok() ? metrics->create_seconds : 0;
    double boot = metrics.ok() ? metrics->boot_seconds : 0;
    std::fprintf(stderr,
                 "boxlite: timings: create %.3fs, boot %.3fs, exec %.3fs, total %.3fs\n", create,
                 boot, std::chrono::duration<double>(t_done - t_started).count(),
                 std::chrono::duration<double>(t_done - t0).count());
  }
  exec->reset();
  // Like a container whose main process ended: the box stops (and goes, with --rm).
  Status stopped = (*box)->Stop();
  if (!status.ok()) return Fail(status.error());
  if (!stopped.ok()) return Fail(stopped);
  return Outcome{status->exit_code, Status::OK(), 0};
}

}  // namespace boxlite::cli
