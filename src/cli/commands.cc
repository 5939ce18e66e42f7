// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The command table and the small informational commands.
#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "src/base/strings.h"
#include "src/cli/command.h"
#include "src/cli/format.h"

namespace boxlite::cli {

void PrintJson(const nlohmann::json& j, int indent) {
  std::printf("%s\n", ToJson(j, indent).c_str());
}

Result<std::string> FormatFlag(const ParsedFlags& flags, const std::vector<std::string>& allowed,
                               const std::string& fallback, bool templates) {
  auto format = flags.Get("format");
  if (!format) return fallback;
  if (std::find(allowed.begin(), allowed.end(), *format) != allowed.end()) return *format;
  if (templates && format->find("{{") != std::string::npos) {
    Status s = CheckTemplate(*format);
    if (!s.ok()) return s;
    return *format;
  }
  std::string choices;
  for (size_t i = 0; i < allowed.size(); ++i) {
    if (i > 0) choices += (i + 1 == allowed.size() && !templates) ? " or " : ", ";
    choices += allowed[i];
  }
  if (templates) choices += " or a Go template such as '{{.State.Status}}'";
  return Status::InvalidArgument("--format must be " + choices + ", not " +
                                 base::ShellQuote(*format));
}

void PrintFormatted(const nlohmann::json& value, const std::string& format) {
  if (format == "yaml") {
    std::fputs(ToYaml(value).c_str(), stdout);
  } else {
    PrintJson(value, 2);
  }
}

Outcome VersionCommand(Context&, const ParsedFlags&) {
  std::printf("boxlite %s\n", kVersion);
  return Outcome{};
}

Outcome InfoCommand(Context& ctx, const ParsedFlags& flags) {
  auto format = FormatFlag(flags, {"text", "table", "json", "yaml"}, "text");
  if (!format.ok()) return Usage(format.error().message());
  auto rt = ctx.runtime();
  if (!rt.ok()) return Fail(rt.error());
  auto info = (*rt)->HostInfo();
  if (!info.ok()) return Fail(info.error());
  auto boxes = (*rt)->List();
  if (!boxes.ok()) return Fail(boxes.error());
  auto images = (*rt)->ListImages();
  // A remote runtime has no image store (docs/remote.md): no images to count.
  if (!images.ok() && images.error().IsNotSupported()) images = std::vector<ImageInfo>{};
  if (!images.ok()) return Fail(images.error());
  // BoxLite 0.9's camelCase fields, then ours (snake_case) beside them.
  nlohmann::json out = nlohmann::json::object();
  std::string accel;
  for (const auto& [key, value] : *info) {
    if (key == "accelerator") accel = value;
  }
  struct utsname uts {};
  ::uname(&uts);
  int64_t running = 0, stopped = 0, configured = 0;
  for (const auto& b : *boxes) {
    if (b.state == "running") ++running;
    if (b.state == "stopped") ++stopped;
    if (b.state == "configured" || b.state == "created") ++configured;
  }
  out["version"] = kVersion;
  out["homeDir"] = (*rt)->home_dir();
  out["virtualization"] = accel;
  out["os"] = "linux";
  out["arch"] = uts.machine;
  out["boxesTotal"] = boxes->size();
  out["boxesRunning"] = running;
  out["boxesStopped"] = stopped;
  out["boxesConfigured"] = configured;
  out["imagesCount"] = images->size();
  for (const auto& [key, value] : *info) out[key] = value;
  if (*format == "json" || *format == "yaml") {
    PrintFormatted(out, *format);
    return Outcome{};
  }
  for (const auto& [key, value] : out.items()) {
    std::string text = value.is_string() ? value.get<std::string>() : ToJson(value);
    std::printf("%-20s %s\n", (key + ":").c_str(), text.c_str());
  }
  return Outcome{};
}

namespace {

// Flag groups shared by run, create and exec (BoxLite 0.9's groups).
std::vector<FlagSpec> Concat(std::initializer_list<std::vector<FlagSpec>> groups) {
  std::vector<FlagSpec> out;
  for (const auto& g : groups) out.insert(out.end(), g.begin(), g.end());
  return out;
}

const std::vector<FlagSpec> kEnvFlags = {
    {"env", 'e', true, true, "set an environment variable (a bare K copies this shell's value)",
     "K=V|K"},
    {"workdir", 'w', true, false, "working directory inside the box", "DIR"},
    {"user", 'u', true, false, "user (name, uid or uid:gid)", "USER"},
};

const std::vector<FlagSpec> kTerminalFlags = {
    {"interactive", 'i', false, false, "keep stdin open and send it to the command"},
    {"tty", 't', false, false, "allocate a terminal (stdin must be one)"},
};

const std::vector<FlagSpec> kBoxFlags = {
    {"rootfs", 0, true, false,
     "boot from a local OCI layout directory instead of an IMAGE (then no IMAGE is given)",
     "PATH"},
    {"entrypoint", 0, true, false, "run this executable instead of the image's ENTRYPOINT",
     "EXEC"},
    {"volume", 'v', true, true, "mount a host directory", "HOST:GUEST[:ro]"},
    {"publish", 'p', true, true,
     "publish a guest TCP port on 127.0.0.1 (a bare GUEST_PORT gets a free host port)",
     "[HOST_PORT:]GUEST_PORT[/tcp]"},
    {"cpus", 0, true, false, "virtual CPUs", "N"},
    {"memory", 'm', true, false, "guest memory in MiB", "MIB"},
    {"disk-size", 0, true, false,
     "writable disk size in GiB (BoxLite 0.9's unit), or with a unit: 512M, 512MiB, 2G, 2GiB",
     "GB"},
    {"network", 0, true, false, "nat or enabled (default), none or disabled", "MODE"},
    {"allow-host", 0, false, false,
     "let the box reach this host (127.0.0.1 at 10.0.2.2, the host's own addresses)"},
    {"allow-net", 0, true, true,
     "egress allow-list: only these hosts, *.domains, addresses or CIDRs, each with an "
     "optional :PORT (repeatable; docs/networking.md)",
     "PATTERN"},
    {"name", 0, true, false, "name the box", "NAME"},
    {"cap-add", 0, true, true, "add a Linux capability to the box's processes (ALL: every one)",
     "CAP"},
    {"cap-drop", 0, true, true, "drop a Linux capability (ALL: every one)", "CAP"},
    // Resource limits (ApplyUlimitFlag; the containerd shim maps config.json's rlimits).
    {"ulimit", 0, true, true,
     "a resource limit of the box's processes, soft and hard alike: nofile, fsize, nproc, as "
     "or cpu (repeatable)",
     "NAME=N"},
    {"security", 0, true, false,
     "BoxLite 0.9's security preset [env BOXLITE_SECURITY]; the host jail stays on either way",
     "enable|disable"},
    {"max-clients", 0, true, false,
     "a background box: how many processes may use it at once (each exec holds one), 1 to "
     "30, default 4",
     "N"},
    // Warm start (docs/snapshots.md).
    {"no-warm", 0, false, false,
     "boot the box instead of restoring a warm-start template [all boxes: env BOXLITE_WARM=0]"},
};

const std::vector<FlagSpec> kListFlags = {
    {"all", 'a', false, false, "include boxes that are not running"},
    {"format", 0, true, false, "table (default), json or yaml", "FORMAT"},
    {"quiet", 'q', false, false, "only print ids"},
};

}  // namespace

const std::vector<Command>& Commands() {
  static const std::vector<Command>* commands = new std::vector<Command>{
      {"run",
       "run [OPTIONS] IMAGE|--rootfs PATH [COMMAND [ARG...]]",
       "Run a command in a new box",
       Concat({{{"rm", 0, false, false, "remove the box when the command exits"}},
               kTerminalFlags,
               kEnvFlags,
               kBoxFlags,
               {{"detach", 'd', false, false, "run in the background and print the box id"},
                {"timings", 0, false, false, "print create, boot and exec times to stderr"}}}),
       true,
       RunCommand},
      {"create",
       "create [OPTIONS] [IMAGE] [COMMAND [ARG...]]",
       "Create a background box and print its id (start it with 'boxlite start')",
       Concat({kEnvFlags,
               kBoxFlags,
               {{"detach", 'd', false, false, "accepted for BoxLite 0.9: created boxes are always "
                                              "background boxes"}}}),
       true,
       CreateCommand},
      {"exec",
       "exec [OPTIONS] BOX [--] COMMAND [ARG...]",
       "Run a command in a running box",
       Concat({kTerminalFlags,
               kEnvFlags,
               {{"detach", 'd', false, false, "run in the background (output to the box's log)"},
                {"rootfs-dir", 0, true, false,
                 "run chrooted in this directory of the box (a container's root), with /proc, "
                 "/sys and the box's /dev mounted there",
                 "PATH"},
                {"container-mount", 0, true, true,
                 "with --rootfs-dir: bind SRC (a path of the box) on DST inside the "
                 "container's root (made when missing), read-only with :ro",
                 "SRC:DST[:ro]"},
                {"ulimit", 0, true, true,
                 "a resource limit of this command, replacing the box's: nofile, fsize, "
                 "nproc, as or cpu (repeatable)",
                 "NAME=N"},
                {"cgroup-name", 0, true, false,
                 "run in this cgroup of the box, shared with the other commands naming it "
                 "(a container's), with the limits below",
                 "NAME"},
                {"memory", 'm', true, false, "with --cgroup-name: the cgroup's memory.max",
                 "MIB"},
                {"cpu-quota", 0, true, false,
                 "with --cgroup-name: microseconds of CPU per period (cpu.max, else cpu.weight)",
                 "US"},
                {"cpu-period", 0, true, false,
                 "with --cgroup-name: the CPU period, 1000 to 1000000 (default 100000)", "US"},
                {"pids-limit", 0, true, false, "with --cgroup-name: the cgroup's pids.max",
                 "N"}}}),
       true,
       ExecCommand},
      {"shell",
       "shell [OPTIONS] [BOX|IMAGE]",
       "Open a shell in a box, or in a throwaway box from an image",
       {{"shell", 0, true, false, "the shell to run (default /bin/sh)", "PATH"}},
       false,
       ShellCommand},
      {"list", "list [OPTIONS]", "List running boxes (-a: all boxes)", kListFlags, false,
       PsCommand},
      {"ls", "ls [OPTIONS]", "List running boxes (-a: all boxes); alias of list", kListFlags,
       false, PsCommand},
      {"ps", "ps [OPTIONS]", "List running boxes (-a: all boxes)", kListFlags, false, PsCommand},
      {"start",
       "start BOX [BOX...]",
       "Start stopped background boxes",
       {{"attach", 'a', false, false, "start even a box that is not detached"}},
       false,
       StartCommand},
      {"stop", "stop BOX [BOX...]", "Stop boxes (the disk is kept)", {}, false, StopCommand},
      {"restart", "restart BOX [BOX...]", "Stop boxes and start them again", {}, false,
       RestartCommand},
      {"rm",
       "rm [OPTIONS] BOX [BOX...]",
       "Remove boxes",
       {{"force", 'f', false, false, "remove running boxes too (they are killed)"},
        {"all", 'a', false, false, "remove every box (running ones only with -f)"}},
       false,
       RmCommand},
      {"logs",
       "logs [OPTIONS] BOX",
       "Show a box's console log",
       {{"tail", 'n', true, false, "only the last N lines (0, the default: all)", "N"},
        {"follow", 'f', false, false, "keep printing new output until Ctrl-C or the box stops"}},
       false,
       LogsCommand},
      {"stats",
       "stats [OPTIONS] BOX",
       "Show a box's resource use",
       {{"format", 0, true, false, "table (default), json or yaml", "FORMAT"},
        {"stream", 's', false, false, "repeat every second until Ctrl-C or the box stops"}},
       false,
       StatsCommand},
      {"inspect",
       "inspect [OPTIONS] [BOX...]",
       "Show boxes as JSON",
       {{"format", 'f', true, false, "json (default), yaml, or a Go template: '{{.State.Status}}'",
         "FORMAT"},
        {"latest", 'l', false, false, "the most recently created box"}},
       false,
       InspectCommand},
      {"cp",
       "cp [OPTIONS] SRC DEST",
       "Copy files between the host and a box (BOX:PATH on one side)",
       {{"follow-symlinks", 'L', false, false, "copy what symbolic links in SRC point to"},
        {"no-overwrite", 0, false, false, "fail instead of replacing existing files"},
        {"include-parent", 0, false, false,
         "copy a directory SRC as itself (true, default) or only its contents (false)", "",
         true}},
       false,
       CpCommand},
      {"pull",
       "pull [OPTIONS] IMAGE",
       "Download an image from a registry",
       {{"quiet", 'q', false, false, "no progress output"}},
       false,
       PullCommand},
      {"images",
       "images [OPTIONS]",
       "List local images",
       {{"format", 0, true, false, "table (default), json or yaml", "FORMAT"},
        {"quiet", 'q', false, false, "only print image ids"},
        {"all", 'a', false, false, "accepted for BoxLite 0.9: every image is always listed"}},
       false,
       ImagesCommand},
      {"rmi", "rmi IMAGE [IMAGE...]", "Remove images", {}, false, RmiCommand},
      {"import",
       "import [OPTIONS] FILE|DIR",
       "Import a docker-save tarball or an OCI layout",
       {{"tag", 't', true, false, "name the imported image", "NAME"}},
       false,
       ImportCommand},
      {"info",
       "info [OPTIONS]",
       "Show the version, accelerator, kernel, home and counts of boxes and images",
       {{"format", 0, true, false, "text (default), json or yaml", "FORMAT"}},
       false,
       InfoCommand},
      {"version", "version", "Show the BoxLite version", {}, false, VersionCommand},
      // The REST + WebSocket server (src/cli/serve_cmd.cc, docs/server.md).
      {"serve",
       "serve [--host 127.0.0.1] [--port 8100] [--api-key KEY]",
       "Serve this host's boxes over BoxLite 0.9's REST + WebSocket API",
       {{"host", 0, true, false,
         "the address to bind (default 127.0.0.1; any other needs an API key)", "ADDR"},
        {"port", 0, true, false, "the port (default 8100; 0 picks a free one)", "PORT"},
        {"api-key", 0, true, false,
         "require 'Authorization: Bearer KEY' [env BOXLITE_SERVE_API_KEY]", "KEY"},
        {"max-upload-bytes", 0, true, false,
         "the largest upload (file tars, imported boxes; default 4 GiB)", "N"},
        {"max-connections", 0, true, false, "open connections at most (default 256)", "N"},
        {"print-routes", 0, false, false, "print the served routes and exit"}},
       false,
       ServeCommand},
      // Remote servers: API-key profiles (src/cli/auth_cmd.cc, docs/remote.md).
      {"auth",
       "auth login [--url URL] --api-key-stdin | logout [-y] | status | whoami [--format json]",
       "Log in to a BoxLite server (profiles in ~/.boxlite/credentials.toml)",
       {{"api-key-stdin", 0, false, false, "login: read the API key from stdin"},
        {"method", 0, true, false, "login: api-key (the only one this build has)", "METHOD"},
        {"yes", 'y', false, false, "logout: do not ask"},
        {"format", 0, true, false, "whoami: text (default) or json", "FORMAT"}},
       false,
       AuthCommand},
      // The MCP server (src/cli/mcp_cmd.cc, python/boxlite/mcp.py).
      {"mcp",
       "mcp [--transport stdio|http] [--port N] [OPTIONS]",
       "Serve boxes to AI agents over MCP (needs the Python SDK with 'boxlite[mcp]')",
       {{"transport", 0, true, false,
         "stdio (default) or http (streamable HTTP on the loopback)", "NAME"},
        {"host", 0, true, false, "http: the loopback address to bind (default 127.0.0.1)",
         "ADDR"},
        {"port", 0, true, false, "http: the port (default 8000; 0 picks a free one)", "PORT"},
        {"path", 0, true, false, "http: the endpoint path (default /mcp)", "PATH"},
        {"max-output-bytes", 0, true, false, "the most bytes of each output a tool returns",
         "N"},
        {"image", 0, true, false, "create_box's default image (default python:slim)",
         "IMAGE"}},
       false,
       McpCommand},
      // Volumes (src/cli/volume_cmds.cc).
      {"volume",
       "volume create | ls|list [-q] [--format table|json] | get|inspect ID | rm|delete [-f] "
       "ID...",
       "Manage volumes (directories under the home that boxes mount by id)",
       {{"quiet", 'q', false, false, "ls: only print ids"},
        {"format", 0, true, false, "ls, get: table (default) or json", "FORMAT"},
        {"force", 'f', false, false, "rm: remove volumes boxes still mount"}},
       false,
       VolumeCommand},
      // Snapshots and clones (src/cli/snapshot_cmds.cc).
      {"snapshot",
       "snapshot create [--memory] BOX NAME | ls|list [-q] [--format table|json] BOX | "
       "rm BOX NAME... | restore BOX NAME",
       "Manage a box's snapshots (restore needs a stopped box)",
       {{"memory", 0, false, false, "create: also save memory (restore resumes it running)"},
        {"quiet", 'q', false, false, "ls: only print names"},
        {"format", 0, true, false, "create, ls: table (default) or json", "FORMAT"}},
       false,
       SnapshotCommand},
      // Tunnels (src/cli/network_cmds.cc).
      {"network",
       "network tunnel BOX PORT",
       "Connect stdin and stdout to TCP PORT inside a running box (like nc)",
       {},
       false,
       NetworkCommand},
      {"clone",
       "clone [--name NAME] BOX",
       "Create a stopped copy of a box (its disk and options)",
       {{"name", 0, true, false, "name the new box", "NAME"}},
       false,
       CloneCommand},
      // Boxes as .boxlite archives (src/cli/archive_cmds.cc).
      {"export",
       "export BOX [DEST]",
       "Write a box (its disk, flattened, and options) to a .boxlite archive",
       {},
       false,
       ExportCommand},
      {"import-box",
       "import-box [OPTIONS] FILE",
       "Import a .boxlite archive as a new stopped box",
       {{"name", 0, true, false, "name the new box (default: the archive's, when free)", "NAME"},
        {"untrusted", 0, false, false,
         "refuse archives asking for host mounts, host access, published ports or host paths"}},
       false,
       ImportBoxCommand},
  };
  return *commands;
}

}  // namespace boxlite::cli
