// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// `boxlite run` and `create`: create a box from an image (and for run, run one command in
// it with the caller's stdio attached and exit with the command's status; 128+N when a
// signal N ended it, 1 when BoxLite itself failed, 126/127 when the command could not run).
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
  options.auto_remove = flags.Has("rm");
  options.detach = flags.Has("detach");
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
  if (flags.Has("tty")) {
    Status s = RequireTerminalStdin();
    if (!s.ok()) return Fail(s);
  }
  auto options = BoxOptionsFromFlags(flags);
  if (!options.ok()) return Fail(options.error());
  bool detach = options->detach;
  if (detach && options->auto_remove) {
    return Usage("--rm and --detach cannot be combined");
  }
  BoxOptions main_command;
  MainCommandFromFlags(flags, &main_command);
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
  if (main_command.entrypoint) {
    exec_options.argv = *main_command.entrypoint;
    exec_options.argv.insert(exec_options.argv.end(), main_command.cmd->begin(),
                             main_command.cmd->end());
  } else {
    exec_options.argv = main_command.cmd.value_or(std::vector<std::string>{});
    exec_options.use_image_entrypoint = true;
  }
  exec_options.tty = flags.Has("tty");
  exec_options.open_stdin = flags.Has("interactive");
  if (exec_options.tty) TerminalSize(&exec_options.rows, &exec_options.cols);
  if (detach) {
    // The command runs in the background with its output in the box's log; the VM
    // outlives us.
    if (exec_options.tty || exec_options.open_stdin) {
      return Usage("--detach cannot be combined with -i or -t");
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
  return Outcome{ExitCodeOf(*status), Status::OK(), 0};
}

}  // namespace boxlite::cli
