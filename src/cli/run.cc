// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// `boxlite run` and `create`: create a box from an image. For run, the box's main command
// (COMMAND, or the image's CMD; ENTRYPOINT kept unless --entrypoint) runs with the
// caller's stdio attached, the box stops when it ends, and run exits with its status:
// 128+N when a signal N ended it, 1 when BoxLite itself failed, 126/127 when the command
// could not run. With -d the id is printed and the box runs on until its command ends.
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

using Clock = std::chrono::steady_clock;

// HOST:GUEST[:ro|rw], VOLUME_ID:GUEST[:ro|rw] or GUEST[:ro] (anonymous volume): one
// rule for every command, in include/boxlite/config.h.
Status ParseVolume(const std::string& spec, VolumeMount* out) {
  auto m = ParseVolumeSpec(spec);
  if (!m.ok()) return m.error();
  *out = std::move(*m);
  return Status::OK();
}

// The choices of --security: BoxLite 0.9's presets, mapped onto BoxOptions.security (the
// core keeps its host jail on whatever they say).
Status ApplySecurity(const std::string& value, SecurityOptions* out) {
  if (value == "enable") {
    *out = SecurityOptions{};
  } else if (value == "disable") {
    out->jailer_enabled = false;
    out->seccomp_enabled = false;
  } else {
    return Status::InvalidArgument("--security must be enable or disable, not " +
                                   base::ShellQuote(value));
  }
  return Status::OK();
}

}  // namespace

Result<EnvList> EnvFromFlags(const ParsedFlags& flags) {
  EnvList env;
  for (const auto& item : flags.All("env")) {
    BOXLITE_ASSIGN_OR_RETURN(auto kv, ParseEnvSpec(item));
    env.push_back(std::move(kv));
  }
  return env;
}

// Where COMMAND starts among the positional arguments: after the IMAGE, or first with
// --rootfs.
size_t CommandStart(const ParsedFlags& flags) { return flags.Has("rootfs") ? 0 : 1; }

Result<BoxOptions> BoxOptionsFromFlags(const ParsedFlags& flags) {
  BoxOptions options;
  if (auto rootfs = flags.Get("rootfs")) {
    options.rootfs_path = *rootfs;
  } else if (!flags.positional.empty()) {
    options.image = flags.positional[0];
  }
  BOXLITE_ASSIGN_OR_RETURN(options.env, EnvFromFlags(flags));
  Status s;
  for (const auto& v : flags.All("volume")) {
    VolumeMount m;
    s = ParseVolume(v, &m);
    if (!s.ok()) return s;
    options.mounts.push_back(m);
  }
  for (const auto& p : flags.All("publish")) {
    BOXLITE_ASSIGN_OR_RETURN(PortForward f, ParsePortSpec(p));
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
  if (auto clients = flags.Get("max-clients")) {
    BOXLITE_ASSIGN_OR_RETURN(int64_t v, ParseNumberFlag("--max-clients", *clients,
                                                        kMinMaxClients, kMaxMaxClients));
    options.max_clients = static_cast<int>(v);
  }
  if (auto disk = flags.Get("disk-size")) {
    BOXLITE_ASSIGN_OR_RETURN(options.disk_size_mib, ParseDiskSizeFlag(*disk, kMaxDiskSizeMib));
  }
  if (auto net = flags.Get("network")) {
    // BoxLite 0.9 spells the two modes enabled/disabled.
    if (*net == "enabled") {
      options.network = "nat";
    } else if (*net == "disabled") {
      options.network = "none";
    } else {
      options.network = *net;
    }
  }
  options.allow_host = flags.Has("allow-host");
  options.allow_net = flags.All("allow-net");  // Validated with the other options.
  if (auto name = flags.Get("name")) options.name = *name;
  if (auto user = flags.Get("user")) options.user = *user;
  if (auto wd = flags.Get("workdir")) options.working_dir = *wd;
  options.capabilities.add = flags.All("cap-add");
  options.capabilities.drop = flags.All("cap-drop");
  std::optional<std::string> security = flags.Get("security");
  if (!security) {
    security = EnvironmentValue("BOXLITE_SECURITY");
  }
  if (security) {
    s = ApplySecurity(*security, &options.security);
    if (!s.ok()) return s;
  }
  for (const auto& limit : flags.All("ulimit")) {
    BOXLITE_RETURN_IF_ERROR(ApplyUlimitFlag(limit, &options.security));
  }
  options.auto_remove = flags.Has("rm");
  options.detach = flags.Has("detach");
  if (flags.Has("no-warm")) options.warm = false;  // Else the runtime's setting.
  return options;
}

// The command a box runs, BoxLite 0.9's way: COMMAND replaces the image's CMD and keeps its
// ENTRYPOINT; --entrypoint replaces the ENTRYPOINT (and drops the image's CMD, as docker).
void MainCommandFromFlags(const ParsedFlags& flags, BoxOptions* options) {
  std::vector<std::string> command;
  size_t start = CommandStart(flags);
  if (flags.positional.size() > start) {
    command.assign(flags.positional.begin() + static_cast<long>(start), flags.positional.end());
  }
  if (auto ep = flags.Get("entrypoint")) {
    options->entrypoint = std::vector<std::string>{*ep};
    options->cmd = command;
  } else if (!command.empty()) {
    options->cmd = command;
  }
}

Outcome CreateCommand(Context& ctx, const ParsedFlags& flags) {
  auto options = BoxOptionsFromFlags(flags);
  if (!options.ok()) return Fail(options.error());
  MainCommandFromFlags(flags, &*options);
  // A created box is a background box: it keeps running once started, until stopped.
  options->auto_remove = false;
  options->detach = true;
  auto rt = ctx.runtime();
  if (!rt.ok()) return Fail(rt.error());
  auto box = (*rt)->Create(*options);
  if (!box.ok()) return Fail(box.error());
  std::printf("%s\n", (*box)->id().c_str());
  return Outcome{};
}

Outcome RunCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty() && !flags.Has("rootfs")) return Usage("run needs an IMAGE");
  bool tty = flags.Has("tty");
  bool interactive = flags.Has("interactive");
  if (tty) {
    Status s = RequireTerminalStdin();
    if (!s.ok()) return Fail(s);
  }
  auto options = BoxOptionsFromFlags(flags);
  if (!options.ok()) return Fail(options.error());
  bool detach = options->detach;
  if (detach && options->auto_remove) {
    return Usage("--rm and --detach cannot be combined");
  }
  // BoxLite 0.9's (and docker's) run: COMMAND (or the image's CMD) is the box's main
  // command, and the box lives as long as it runs.
  MainCommandFromFlags(flags, &*options);
  options->tty = tty;
  InstallSignalForwarding();
  auto rt = ctx.runtime();
  if (!rt.ok()) return Fail(rt.error());
  bool timings = flags.Has("timings");
  auto t0 = Clock::now();
  auto box = (*rt)->Create(*options);
  if (!box.ok()) return Fail(box.error());
  // Nothing runs in a box whose command did not start: do not leave it behind.
  auto discard = [&] {
    if (detach) {
      (void)(*rt)->Remove((*box)->id(), true);
    } else {
      (void)(*box)->Stop();
    }
  };
  Status started = (*box)->Start();
  if (!started.ok()) {
    discard();
    return Fail(started);
  }
  auto t_started = Clock::now();
  // Read now: the box stops itself when its command ends, and a stopped box has no metrics.
  Result<BoxMetrics> start_metrics =
      timings ? (*box)->Metrics() : Result<BoxMetrics>(Status::FailedPrecondition("unused"));
  auto main = (*box)->AttachMain();
  if (!main.ok()) {
    discard();
    return Fail(main.error());
  }
  // Without -i the command's stdin is closed, as docker's: `run IMAGE sh` ends at once.
  if (!interactive) (void)(*main)->CloseStdin();
  if (tty) {
    int rows;
    int cols;
    TerminalSize(&rows, &cols);
    (void)(*main)->Resize(rows, cols);
  }
  if (detach) {
    // The box runs on without us, until its command ends.
    std::printf("%s\n", (*box)->id().c_str());
    return Outcome{};
  }
  Result<ExitStatus> status = AttachExec(*main, interactive, tty);
  auto t_done = Clock::now();
  if (timings) {
    double create = start_metrics.ok() ? start_metrics->create_seconds : 0;
    double boot = start_metrics.ok() ? start_metrics->boot_seconds : 0;
    std::fprintf(stderr,
                 "boxlite: timings: create %.3fs, boot %.3fs, exec %.3fs, total %.3fs\n", create,
                 boot, std::chrono::duration<double>(t_done - t_started).count(),
                 std::chrono::duration<double>(t_done - t0).count());
  }
  main->reset();
  // The box stops once its command has ended (and goes, with --rm); if we stopped
  // following it early (a lost connection), stop it now.
  Status stopped = (*box)->Stop();
  if (!status.ok()) return Fail(status.error());
  if (!stopped.ok()) return Fail(stopped);
  return Outcome{ExitCodeOf(*status), Status::OK(), 0};
}

}  // namespace boxlite::cli
