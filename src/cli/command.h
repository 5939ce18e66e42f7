// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The CLI's command table (crun style): each subcommand is one function over the public
// API that returns the process exit code. Errors are printed once, by main, as one line.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "boxlite/boxlite.h"
#include "src/cli/exit_code.h"
#include "src/cli/flags.h"

namespace boxlite::cli {

struct Context {
  std::string program = "boxlite";
  // Opened on first use so `boxlite --help` works without a home directory.
  Result<std::shared_ptr<Runtime>> runtime();

 private:
  std::shared_ptr<Runtime> runtime_;
};

// A command's outcome: the exit code, or an error main prints as "boxlite: <message>".
struct Outcome {
  int exit_code = 0;
  Status error;
  // Exit code for `error`; 0 means "derive from the status code".
  int error_exit_code = 0;
};

// A failed command (exit 1), and a wrong command line (exit 2; main adds a pointer to
// the command's --help).
Outcome Fail(const Status& s);
Outcome Usage(const std::string& message);

// Applies `act` to targets[from..]: each one done is printed on stdout; every target is
// tried, and the first failure is returned (exit 1) after the others are printed on stderr.
Outcome ForEachTarget(const std::vector<std::string>& targets, size_t from,
                      const std::function<Status(const std::string&)>& act);

// Prints `j` and a newline on stdout. Strings are bytes (names, paths, guest text):
// sequences that are not UTF-8 are printed as U+FFFD, never thrown on.
void PrintJson(const nlohmann::json& j, int indent = -1);

struct Command {
  const char* name;
  const char* usage;    // After "boxlite ".
  const char* summary;  // One line for `boxlite --help`.
  std::vector<FlagSpec> flags;
  bool stop_at_positional;
  Outcome (*run)(Context& ctx, const ParsedFlags& flags);
};

const std::vector<Command>& Commands();

// The --format value among `allowed` (else a usage error naming them); `fallback` when
// the flag is absent. A value starting with "{{" is a Go template when templates are
// allowed.
Result<std::string> FormatFlag(const ParsedFlags& flags, const std::vector<std::string>& allowed,
                               const std::string& fallback, bool templates = false);

// Prints a json/yaml document on stdout.
void PrintFormatted(const nlohmann::json& value, const std::string& format);

// Box options from `run`-style flags (the first positional is the image).
Result<BoxOptions> BoxOptionsFromFlags(const ParsedFlags& flags);

// The -e flags (ParseEnvSpec: K=V, or a bare K copying this process's value).
Result<EnvList> EnvFromFlags(const ParsedFlags& flags);

// Command implementations.
Outcome RunCommand(Context& ctx, const ParsedFlags& flags);
Outcome VersionCommand(Context& ctx, const ParsedFlags& flags);
// `boxlite mcp` (src/cli/mcp_cmd.cc): execs the Python MCP server.
Outcome McpCommand(Context& ctx, const ParsedFlags& flags);
Outcome NetworkCommand(Context& ctx, const ParsedFlags& flags);  // network_cmds.cc
Outcome InfoCommand(Context& ctx, const ParsedFlags& flags);
Outcome PullCommand(Context& ctx, const ParsedFlags& flags);
Outcome ImagesCommand(Context& ctx, const ParsedFlags& flags);
Outcome RmiCommand(Context& ctx, const ParsedFlags& flags);
Outcome ImportCommand(Context& ctx, const ParsedFlags& flags);
// Boxes as .boxlite archives (src/cli/archive_cmds.cc).
Outcome ExportCommand(Context& ctx, const ParsedFlags& flags);
Outcome ImportBoxCommand(Context& ctx, const ParsedFlags& flags);
Outcome ExecCommand(Context& ctx, const ParsedFlags& flags);
Outcome CreateCommand(Context& ctx, const ParsedFlags& flags);
Outcome ShellCommand(Context& ctx, const ParsedFlags& flags);
Outcome PsCommand(Context& ctx, const ParsedFlags& flags);
Outcome StartCommand(Context& ctx, const ParsedFlags& flags);
Outcome StopCommand(Context& ctx, const ParsedFlags& flags);
Outcome RmCommand(Context& ctx, const ParsedFlags& flags);
Outcome LogsCommand(Context& ctx, const ParsedFlags& flags);
Outcome InspectCommand(Context& ctx, const ParsedFlags& flags);
Outcome CpCommand(Context& ctx, const ParsedFlags& flags);
Outcome VolumeCommand(Context& ctx, const ParsedFlags& flags);  // src/cli/volume_cmds.cc
Outcome RestartCommand(Context& ctx, const ParsedFlags& flags);
Outcome StatsCommand(Context& ctx, const ParsedFlags& flags);
// Snapshots and clones (src/cli/snapshot_cmds.cc).
Outcome SnapshotCommand(Context& ctx, const ParsedFlags& flags);
Outcome CloneCommand(Context& ctx, const ParsedFlags& flags);
// `boxlite serve`: the REST + WebSocket server (src/cli/serve_cmd.cc, src/server).
Outcome ServeCommand(Context& ctx, const ParsedFlags& flags);
// Remote profiles (src/cli/auth_cmd.cc).
Outcome AuthCommand(Context& ctx, const ParsedFlags& flags);

}  // namespace boxlite::cli
