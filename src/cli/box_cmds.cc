// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Commands on existing boxes: exec, shell, list/ls/ps, start, stop, restart, rm, logs,
// stats, inspect, cp.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

#include "src/base/strings.h"
#include "src/cli/attach.h"
#include "src/cli/command.h"
#include "src/cli/format.h"

namespace boxlite::cli {
namespace {


nlohmann::json InfoJson(const BoxInfo& b) {
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& p : b.ports) {
    ports.push_back({{"host", p.host_port}, {"guest", p.guest_port}, {"host_ip", p.host_ip},
                     {"protocol", p.protocol}});
  }
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
          {"accel", b.accel},
          {"failure", b.failure.empty() ? nlohmann::json() : nlohmann::json(b.failure)},
          {"health",
           {{"state", b.health.state},
            {"failures", b.health.failures},
            {"last_check", b.health.last_check_unix
                               ? nlohmann::json(Rfc3339(b.health.last_check_unix))
                               : nlohmann::json()}}}};
}


// `inspect`: BoxLite 0.9's fields (Id, Name, ..., State{...}) beside ours.
nlohmann::json InspectJson(const BoxInfo& b) {
  nlohmann::json j = InfoJson(b);
  j["warm_start"] = b.warm_start;  // Its last start restored a warm-start template.
  j["allow_net"] = b.allow_net;      // The egress allow-list (docs/networking.md).
  bool running = b.state == "running";
  j["Id"] = b.id;
  j["Name"] = b.name;
  j["Image"] = b.image;
  j["Created"] = Rfc3339(b.created_unix);
  j["Status"] = b.state;
  j["State"] = {{"Status", b.state},
                {"Running", running},
                {"Pid", running ? b.pid : 0},
                {"ExitCode", b.exit_code ? nlohmann::json(*b.exit_code) : nlohmann::json()},
                {"Error", b.failure},
                {"Health", {{"Status", b.health.state}, {"FailingStreak", b.health.failures}}}};
  j["Cpus"] = b.cpus;
  j["Memory"] = b.memory_mib;
  return j;
}

// `list --format json|yaml`: BoxLite 0.9's keys beside ours.
nlohmann::json ListJson(const BoxInfo& b) {
  nlohmann::json j = InfoJson(b);
  j["ID"] = b.id;
  j["Image"] = b.image;
  j["Status"] = b.state;
  j["CreatedAt"] = Rfc3339(b.created_unix);
  j["Names"] = b.name;
  return j;
}

nlohmann::json MetricsJson(const BoxMetrics& m) {
  return {{"cpu_seconds", m.cpu_seconds},
          {"memory_rss_bytes", m.memory_rss_bytes},
          {"guest_memory_used_bytes", m.guest_memory_used_bytes},
          {"guest_memory_total_bytes", m.guest_memory_total_bytes},
          {"execs_run", m.execs_run},
          {"create_seconds", m.create_seconds},
          {"boot_seconds", m.boot_seconds}};
}

std::string Ago(int64_t t) {
  int64_t secs = static_cast<int64_t>(std::time(nullptr)) - t;
  if (secs < 60) return base::StrFormat("%llds ago", static_cast<long long>(secs));
  if (secs < 3600) return base::StrFormat("%lldm ago", static_cast<long long>(secs / 60));
  if (secs < 86400) return base::StrFormat("%lldh ago", static_cast<long long>(secs / 3600));
  return base::StrFormat("%lldd ago", static_cast<long long>(secs / 86400));
}

Outcome PrintBoxes(Context& ctx, const ParsedFlags& flags, bool running_only) {
  auto format = FormatFlag(flags, {"table", "json", "yaml"}, "table");
  if (!format.ok()) return Usage(format.error().message());
  auto rt = ctx.runtime();
  if (!rt.ok()) return Fail(rt.error());
  auto boxes = (*rt)->List();
  if (!boxes.ok()) return Fail(boxes.error());
  std::vector<BoxInfo> shown;
  for (const auto& b : *boxes) {
    if (!running_only || b.state == "running") shown.push_back(b);
  }
  if (flags.Has("quiet")) {
    for (const auto& b : shown) std::printf("%s\n", b.id.substr(0, 12).c_str());
    return Outcome{};
  }
  if (*format != "table") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& b : shown) out.push_back(ListJson(b));
    if (*format == "json") {
      PrintJson(out);
    } else {
      PrintFormatted(out, *format);
    }
    return Outcome{};
  }
  std::printf("%-12s  %-30s  %-8s  %-10s  %-20s  %s\n", "ID", "IMAGE", "STATUS", "CREATED",
              "NAMES", "PORTS");
  for (const auto& b : shown) {
    std::string ports;
    for (const auto& p : b.ports) {
      if (!ports.empty()) ports += ", ";
      ports += base::StrFormat("%s:%u->%u/%s", p.host_ip.c_str(), p.host_port, p.guest_port,
                               p.protocol.c_str());
    }
    std::printf("%-12s  %-30s  %-8s  %-10s  %-20s  %s\n", b.id.substr(0, 12).c_str(),
                b.image.c_str(), b.state.c_str(), Ago(b.created_unix).c_str(), b.name.c_str(),
                ports.c_str());
  }
  return Outcome{};
}

// Runs `action` on every target; each failure is printed as it happens and the command
// exits 1 when any failed (BoxLite 0.9's start/stop/restart/rm).
template <typename Action>
Outcome ForEachTarget(const std::vector<std::string>& targets, Action action) {
  bool failed = false;
  for (const auto& name : targets) {
    Status s = action(name);
    if (s.ok()) {
      std::printf("%s\n", name.c_str());
      std::fflush(stdout);
    } else {
      std::fprintf(stderr, "boxlite: %s\n", s.message().c_str());
      failed = true;
    }
  }
  return Outcome{failed ? kExitError : kExitOk};
}

Result<std::shared_ptr<Box>> FindBox(Context& ctx, const std::string& name) {
  auto rt = ctx.runtime();
  if (!rt.ok()) return rt.error();
  return (*rt)->Get(name);
}

// Ctrl-C and SIGTERM end a stream (stats -s, logs -f) cleanly: blocked (when `block`)
// before the runtime starts threads, which inherit the mask, and taken between rounds.
sigset_t BlockStopSignals(bool block) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (block) pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Waits a second; true when a stop signal came meanwhile.
bool StopRequested(const sigset_t& set) {
  timespec interval{1, 0};
  int sig = sigtimedwait(&set, nullptr, &interval);
  return sig == SIGINT || sig == SIGTERM;
}

Status StartBox(Context& ctx, const std::string& name, bool attach) {
  auto box = FindBox(ctx, name);
  if (!box.ok()) return box.error();
  auto info = (*box)->Info();
  if (info.ok() && !info->detach && !attach) {
    // A box that is not detached lives as long as the process that started it.
    return Status::FailedPrecondition(
        "box " + name + " was not created with --detach, so it would stop when this command "
        "exits", "use `boxlite run -d` for background boxes, or exec into it from a program");
  }
  return (*box)->Start();
}

}  // namespace

Outcome ExecCommand(Context& ctx, const ParsedFlags& parsed) {
  ParsedFlags flags = parsed;
  std::vector<std::string> argv = flags.positional;
  // BoxLite 0.9 writes `exec [FLAGS] BOX [FLAGS] -- COMMAND...`; ours leaves the `--` out
  // and puts every flag before BOX. Flags between BOX and `--` are read as flags (no
  // command starts with '-').
  auto dashes = std::find(argv.begin(), argv.end(), "--");
  if (argv.size() >= 2 && argv[1].size() > 1 && argv[1][0] == '-' && dashes != argv.end()) {
    const Command* exec = nullptr;
    for (const auto& c : Commands()) {
      if (std::string_view(c.name) == "exec") exec = &c;
    }
    auto more = ParseFlags({argv.begin() + 1, dashes}, exec->flags, false);
    if (!more.ok()) return Usage(more.error().message());
    if (!more->positional.empty()) {
      return Usage("exec takes one BOX before --, not " + base::ShellQuote(more->positional[0]));
    }
    for (const auto& [name, values] : more->values) {
      for (const auto& v : values) flags.values[name].push_back(v);
    }
    for (const auto& [name, on] : more->switches) flags.switches[name] = on;
    argv.erase(argv.begin() + 1, dashes);
  }
  if (argv.size() >= 2 && argv[1] == "--") argv.erase(argv.begin() + 1);
  if (argv.size() < 2) return Usage("exec needs a BOX and a COMMAND");
  auto env = EnvFromFlags(flags);
  if (!env.ok()) return Fail(env.error());
  if (flags.Has("tty")) {
    Status s = RequireTerminalStdin();
    if (!s.ok()) return Fail(s);
  }
  ExecOptions options;
  // Bad limit flags are refused before the box is looked up.
  if (Status s = ApplyExecLimitFlags(flags, &options); !s.ok()) return Fail(s);
  InstallSignalForwarding();
  auto box = FindBox(ctx, argv[0]);
  if (!box.ok()) return Fail(box.error());
  // `docker exec` semantics: a box that is not running is an error here (the SDKs start it
  // for its first command, as BoxLite 0.9's Box.exec does).
  if (auto info = (*box)->Info(); info.ok() && info->state != "running") {
    return Fail(Status::FailedPrecondition("box " + argv[0] + " is " + info->state,
                                           "start it first (boxlite start)"));
  }
  options.argv.assign(argv.begin() + 1, argv.end());
  options.tty = flags.Has("tty");
  options.open_stdin = flags.Has("interactive");
  if (options.tty) TerminalSize(&options.rows, &options.cols);
  options.env = std::move(*env);
  if (auto wd = flags.Get("workdir")) options.cwd = *wd;
  if (auto user = flags.Get("user")) options.user = *user;
  if (auto root = flags.Get("rootfs-dir")) options.root_dir = *root;
  for (const auto& spec : flags.All("container-mount")) {
    auto mount = ParseContainerMount(spec);
    if (!mount.ok()) return Fail(mount.error());
    options.container_mounts.push_back(std::move(*mount));
  }
  if (!options.container_mounts.empty() && options.root_dir.empty()) {
    return Fail(Status::InvalidArgument("--container-mount needs --rootfs-dir",
                                        "name the container's root with --rootfs-dir"));
  }
  if (flags.Has("detach")) {
    options.detached = true;
    auto exec = (*box)->StartExec(options);
    if (!exec.ok()) return Fail(exec.error());
    return Outcome{};
  }
  auto exec = (*box)->StartExec(options);
  if (!exec.ok()) return Fail(exec.error());
  auto status = AttachExec(*exec, options.open_stdin, options.tty);
  if (!status.ok()) return Fail(status.error());
  return Outcome{ExitCodeOf(*status), Status::OK(), 0};
}

Outcome ShellCommand(Context& ctx, const ParsedFlags& flags) {
  std::string target = flags.positional.empty() ? "boxlite/base" : flags.positional[0];
  std::string shell = flags.Get("shell").value_or("/bin/sh");
  bool tty = ::isatty(STDIN_FILENO) != 0;
  InstallSignalForwarding();
  auto rt = ctx.runtime();
  if (!rt.ok()) return Fail(rt.error());
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
    if (!created.ok()) return Fail(created.error());
    box = *created;
    Status s = box->Start();
    if (!s.ok()) return Fail(s);
    ephemeral = true;
  } else {
    return Fail(existing.error());
  }
  ExecOptions options;
  options.argv = {shell};
  options.tty = tty;
  options.open_stdin = true;
  if (tty) TerminalSize(&options.rows, &options.cols);
  auto exec = box->StartExec(options);
  if (!exec.ok()) return Fail(exec.error());
  auto status = AttachExec(*exec, true, tty);
  exec->reset();
  if (ephemeral) (void)box->Stop();
  if (!status.ok()) return Fail(status.error());
  return Outcome{ExitCodeOf(*status), Status::OK(), 0};
}

Outcome PsCommand(Context& ctx, const ParsedFlags& flags) {
  return PrintBoxes(ctx, flags, !flags.Has("all"));
}

Outcome StartCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty()) return Usage("start needs a BOX");
  return ForEachTarget(flags.positional, [&](const std::string& name) {
    return StartBox(ctx, name, flags.Has("attach"));
  });
}

Outcome StopCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty()) return Usage("stop needs a BOX");
  return ForEachTarget(flags.positional, [&](const std::string& name) {
    auto box = FindBox(ctx, name);
    if (!box.ok()) return box.error();
    return (*box)->Stop();
  });
}

Outcome RestartCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty()) return Usage("restart needs a BOX");
  return ForEachTarget(flags.positional, [&](const std::string& name) {
    auto box = FindBox(ctx, name);
    if (!box.ok()) return box.error();
    auto info = (*box)->Info();
    if (!info.ok()) return info.error();
    if (info->state == "running") {
      Status s = (*box)->Stop();
      if (!s.ok()) return s;
    }
    return StartBox(ctx, name, false);
  });
}

Outcome RmCommand(Context& ctx, const ParsedFlags& flags) {
  bool all = flags.Has("all");
  if (flags.positional.empty() && !all) return Usage("rm needs a BOX (or --all)");
  if (!flags.positional.empty() && all) return Usage("rm takes BOX names or --all, not both");
  auto rt = ctx.runtime();
  if (!rt.ok()) return Fail(rt.error());
  std::vector<std::string> targets = flags.positional;
  if (all) {
    auto boxes = (*rt)->List();
    if (!boxes.ok()) return Fail(boxes.error());
    for (const auto& b : *boxes) targets.push_back(b.id);
  }
  return ForEachTarget(targets, [&](const std::string& name) {
    return (*rt)->Remove(name, flags.Has("force"));
  });
}

Outcome LogsCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) return Usage("logs needs one BOX");
  int64_t tail = 0;
  if (auto n = flags.Get("tail")) {
    auto v = ParseNumberFlag("--tail", *n, 0, INT64_MAX);
    if (!v.ok()) return Usage(v.error().message());
    tail = *v;
  }
  bool follow = flags.Has("follow");
  sigset_t stop_signals = BlockStopSignals(follow);
  auto box = FindBox(ctx, flags.positional[0]);
  if (!box.ok()) return Fail(box.error());
  auto log = (*box)->ConsoleLog();
  if (!log.ok()) return Fail(log.error());
  size_t start = 0;
  if (tail > 0) {
    // The start of the last `tail` lines (a final line without a newline counts).
    size_t end = log->size();
    if (end > 0 && (*log)[end - 1] == '\n') --end;
    start = end;
    for (int64_t lines = 0; start > 0; --start) {
      if ((*log)[start - 1] == '\n' && ++lines == tail) break;
    }
  }
  std::fwrite(log->data() + start, 1, log->size() - start, stdout);
  std::fflush(stdout);
  size_t printed = log->size();
  while (follow && !StopRequested(stop_signals)) {
    auto info = (*box)->Info();
    bool running = info.ok() && info->state == "running";
    auto now = (*box)->ConsoleLog();
    if (!now.ok()) return Fail(now.error());
    if (now->size() < printed) printed = 0;  // The log was cut: print it again.
    std::fwrite(now->data() + printed, 1, now->size() - printed, stdout);
    std::fflush(stdout);
    printed = now->size();
    if (!running) break;  // The box stopped: what it wrote is all there will be.
  }
  return Outcome{};
}

Outcome StatsCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) return Usage("stats needs one BOX");
  auto format = FormatFlag(flags, {"table", "json", "yaml"}, "table");
  if (!format.ok()) return Usage(format.error().message());
  bool stream = flags.Has("stream");
  sigset_t stop_signals = BlockStopSignals(stream);
  auto box = FindBox(ctx, flags.positional[0]);
  if (!box.ok()) return Fail(box.error());
  bool header = true;
  while (true) {
    auto info = (*box)->Info();
    if (!info.ok()) return Fail(info.error());
    if (info->state != "running") {
      if (stream && !header) return Outcome{};  // The box stopped: the stream ends.
      return Fail(Status::FailedPrecondition("box " + flags.positional[0] + " is " + info->state,
                                             "start it first: boxlite start " +
                                                 flags.positional[0]));
    }
    auto metrics = (*box)->Metrics();
    if (!metrics.ok()) {
      auto again = (*box)->Info();
      if (stream && !header && again.ok() && again->state != "running") return Outcome{};
      return Fail(metrics.error());
    }
    nlohmann::json j = MetricsJson(*metrics);
    j["id"] = info->id;
    j["name"] = info->name;
    if (*format == "json") {
      PrintJson(j);  // One line per sample.
    } else if (*format == "yaml") {
      if (stream) std::fputs("---\n", stdout);
      std::fputs(ToYaml(j).c_str(), stdout);
    } else {
      if (header) {
        std::printf("%-12s  %-20s  %10s  %12s  %25s  %6s\n", "ID", "NAME", "CPU TIME",
                    "MEM (HOST)", "GUEST MEM USED / TOTAL", "EXECS");
      }
      std::string guest = base::HumanBytes(metrics->guest_memory_used_bytes) + " / " +
                          base::HumanBytes(metrics->guest_memory_total_bytes);
      std::printf("%-12s  %-20s  %9.2fs  %12s  %25s  %6llu\n", info->id.substr(0, 12).c_str(),
                  info->name.c_str(), metrics->cpu_seconds,
                  base::HumanBytes(metrics->memory_rss_bytes).c_str(), guest.c_str(),
                  static_cast<unsigned long long>(metrics->execs_run));
    }
    std::fflush(stdout);
    header = false;
    if (!stream || StopRequested(stop_signals)) return Outcome{};
  }
}

Outcome InspectCommand(Context& ctx, const ParsedFlags& flags) {
  auto format = FormatFlag(flags, {"json", "yaml"}, "json", /*templates=*/true);
  if (!format.ok()) return Usage(format.error().message());
  std::vector<std::string> targets = flags.positional;
  if (flags.Has("latest")) {
    if (!targets.empty()) return Usage("inspect takes BOX names or --latest, not both");
    auto rt = ctx.runtime();
    if (!rt.ok()) return Fail(rt.error());
    auto boxes = (*rt)->List();
    if (!boxes.ok()) return Fail(boxes.error());
    if (boxes->empty()) return Fail(Status::NotFound("there are no boxes to inspect"));
    auto latest = std::max_element(boxes->begin(), boxes->end(), [](const auto& a, const auto& b) {
      return a.created_unix < b.created_unix;
    });
    targets.push_back(latest->id);
  }
  if (targets.empty()) return Usage("inspect needs a BOX (or --latest)");
  nlohmann::json out = nlohmann::json::array();
  bool failed = false;
  for (const auto& name : targets) {
    auto box = FindBox(ctx, name);
    Result<BoxInfo> info = box.ok() ? (*box)->Info() : Result<BoxInfo>(box.error());
    if (!info.ok()) {
      std::fprintf(stderr, "boxlite: %s\n", info.error().message().c_str());
      failed = true;
      continue;
    }
    nlohmann::json j = InspectJson(*info);
    if (info->state == "running") {
      auto m = (*box)->Metrics();
      if (m.ok()) j["metrics"] = MetricsJson(*m);
    }
    if (*format != "json" && *format != "yaml") {
      auto text = RenderTemplate(*format, j);
      if (!text.ok()) return Usage(text.error().message());
      std::printf("%s\n", text->c_str());
      continue;
    }
    out.push_back(j);
  }
  if (*format == "json" || *format == "yaml") PrintFormatted(out, *format);
  return Outcome{failed ? kExitError : kExitOk};
}

Outcome CpCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.size() != 2) return Usage("cp takes SRC and DEST, one of them BOX:PATH");
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
    return Fail(Status::InvalidArgument("exactly one of SRC and DEST must be BOX:PATH"));
  }
  CopyOptions options;
  options.follow_symlinks = flags.Has("follow-symlinks");
  options.overwrite = !flags.Has("no-overwrite");
  options.include_parent = flags.Switch("include-parent").value_or(true);
  auto box = FindBox(ctx, from_box ? src_box : dst_box);
  if (!box.ok()) return Fail(box.error());
  Status s = from_box ? (*box)->CopyOut(src_path, flags.positional[1], options)
                      : (*box)->CopyIn(flags.positional[0], dst_path, options);
  return s.ok() ? Outcome{} : Fail(s);
}

}  // namespace boxlite::cli
