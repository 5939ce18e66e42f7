// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The command table and the small informational commands.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "src/cli/command.h"

namespace boxlite::cli {

void PrintJson(const nlohmann::json& j, int indent) {
  std::string text = j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
  std::printf("%s\n", text.c_str());
}

Outcome VersionCommand(Context&, const ParsedFlags&) {
  std::printf("boxlite %s\n", kVersion);
  return Outcome{};
}

Outcome InfoCommand(Context& ctx, const ParsedFlags& flags) {
  auto rt = ctx.runtime();
  if (!rt.ok()) return Outcome{0, rt.error()};
  auto info = (*rt)->HostInfo();
  if (!info.ok()) return Outcome{0, info.error()};
  if (flags.Get("format").value_or("") == "json") {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : *info) out[key] = value;
    PrintJson(out);
    return Outcome{};
  }
  for (const auto& [key, value] : *info) std::printf("%-20s %s\n", (key + ":").c_str(), value.c_str());
  return Outcome{};
}

const std::vector<Command>& Commands() {
  static const std::vector<Command>* commands = new std::vector<Command>{
      {"run",
       "run [OPTIONS] IMAGE [COMMAND [ARG...]]",
       "Run a command in a new box",
       {
           {"rm", 0, false, false, "remove the box when the command exits"},
           {"interactive", 'i', false, false, "keep stdin open and send it to the command"},
           {"tty", 't', false, false, "allocate a terminal"},
           {"env", 'e', true, true, "set an environment variable", "K=V"},
           {"workdir", 'w', true, false, "working directory inside the box", "DIR"},
           {"user", 'u', true, false, "user (name, uid or uid:gid)", "USER"},
           {"volume", 'v', true, true, "mount a host directory", "HOST:GUEST[:ro]"},
           {"publish", 'p', true, true, "publish a guest TCP port on 127.0.0.1", "HOST:GUEST"},
           {"cpus", 0, true, false, "virtual CPUs", "N"},
           {"memory", 'm', true, false, "guest memory in MiB", "MIB"},
           {"disk-size", 0, true, false, "writable disk size in MiB", "MIB"},
           {"network", 0, true, false, "nat (default) or none", "MODE"},
           {"allow-host", 0, false, false,
            "let the box reach this host (127.0.0.1 at 10.0.2.2, the host's own addresses)"},
           {"name", 0, true, false, "name the box", "NAME"},
           {"detach", 'd', false, false, "run in the background and print the box id"},
           {"timings", 0, false, false, "print create, boot and exec times to stderr"},
       },
       true,
       RunCommand},
      {"create",
       "create [OPTIONS] IMAGE",
       "Create a background box (start it with 'boxlite start')",
       {
           {"env", 'e', true, true, "set an environment variable", "K=V"},
           {"workdir", 'w', true, false, "working directory inside the box", "DIR"},
           {"user", 'u', true, false, "user (name, uid or uid:gid)", "USER"},
           {"volume", 'v', true, true, "mount a host directory", "HOST:GUEST[:ro]"},
           {"publish", 'p', true, true, "publish a guest TCP port on 127.0.0.1", "HOST:GUEST"},
           {"cpus", 0, true, false, "virtual CPUs", "N"},
           {"memory", 'm', true, false, "guest memory in MiB", "MIB"},
           {"disk-size", 0, true, false, "writable disk size in MiB", "MIB"},
           {"network", 0, true, false, "nat (default) or none", "MODE"},
           {"allow-host", 0, false, false,
            "let the box reach this host (127.0.0.1 at 10.0.2.2, the host's own addresses)"},
           {"name", 0, true, false, "name the box", "NAME"},
       },
       false,
       CreateCommand},
      {"exec",
       "exec [OPTIONS] BOX COMMAND [ARG...]",
       "Run a command in a running box",
       {
           {"interactive", 'i', false, false, "keep stdin open and send it to the command"},
           {"tty", 't', false, false, "allocate a terminal"},
           {"env", 'e', true, true, "set an environment variable", "K=V"},
           {"workdir", 'w', true, false, "working directory inside the box", "DIR"},
           {"user", 'u', true, false, "user (name, uid or uid:gid)", "USER"},
           {"detach", 'd', false, false, "run in the background (output to the box's log)"},
       },
       true,
       ExecCommand},
      {"shell",
       "shell [OPTIONS] [BOX|IMAGE]",
       "Open a shell in a box, or in a throwaway box from an image",
       {{"shell", 0, true, false, "the shell to run (default /bin/sh)", "PATH"}},
       false,
       ShellCommand},
      {"ls",
       "ls [OPTIONS]",
       "List boxes",
       {{"format", 0, true, false, "table (default) or json", "FORMAT"},
        {"quiet", 'q', false, false, "only print ids"}},
       false,
       ListCommand},
      {"ps",
       "ps [OPTIONS]",
       "List running boxes",
       {{"all", 'a', false, false, "include stopped boxes"},
        {"format", 0, true, false, "table (default) or json", "FORMAT"},
        {"quiet", 'q', false, false, "only print ids"}},
       false,
       PsCommand},
      {"start",
       "start BOX [BOX...]",
       "Start stopped background boxes",
       {{"attach", 'a', false, false, "start even a box that is not detached"}},
       false,
       StartCommand},
      {"stop", "stop BOX [BOX...]", "Stop boxes (the disk is kept)", {}, false, StopCommand},
      {"rm",
       "rm [OPTIONS] BOX [BOX...]",
       "Remove boxes",
       {{"force", 'f', false, false, "remove running boxes too (they are killed)"}},
       false,
       RmCommand},
      {"logs", "logs BOX", "Show a box's console log", {}, false, LogsCommand},
      {"inspect", "inspect BOX [BOX...]", "Show boxes as JSON", {}, false, InspectCommand},
      {"cp",
       "cp SRC DEST",
       "Copy files between the host and a box (BOX:PATH on one side)",
       {},
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
       {{"format", 0, true, false, "table (default) or json", "FORMAT"}},
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
       "Show the accelerator, kernel, home and store size",
       {{"format", 0, true, false, "text (default) or json", "FORMAT"}},
       false,
       InfoCommand},
      {"version", "version", "Show the BoxLite version", {}, false, VersionCommand},
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
  };
  return *commands;
}

}  // namespace boxlite::cli
