// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite: the command-line front end. It parses arguments, calls the public C++ API and
// turns a Status into one line on stderr plus an exit code; nothing else lives here.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "src/cli/command.h"

namespace boxlite::cli {

Result<std::shared_ptr<Runtime>> Context::runtime() {
  if (!runtime_) {
    auto rt = Runtime::Open(RuntimeOptions{});
    if (!rt.ok()) return rt.error();
    runtime_ = *rt;
  }
  return runtime_;
}

Outcome Fail(const Status& s) { return Outcome{0, s, kExitError}; }

Outcome Usage(const std::string& message) {
  return Outcome{0, Status::InvalidArgument(message), kExitUsage};
}

namespace {

void PrintTopHelp() {
  std::printf("Usage: boxlite COMMAND [OPTIONS]\n\n"
              "Run untrusted code in local micro-VMs booted from OCI images.\n\nCommands:\n");
  for (const auto& cmd : Commands()) std::printf("  %-9s %s\n", cmd.name, cmd.summary);
  std::printf("\nRun 'boxlite COMMAND --help' for a command's options.\n");
}

}  // namespace
}  // namespace boxlite::cli

int main(int argc, char** argv) {
  using namespace boxlite::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    PrintTopHelp();
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] == "--version" || args[0] == "-v") args[0] = "version";
  const Command* command = nullptr;
  for (const auto& cmd : Commands()) {
    if (args[0] == cmd.name) command = &cmd;
  }
  if (command == nullptr) {
    std::fprintf(stderr, "boxlite: unknown command \"%s\" (see 'boxlite --help')\n",
                 args[0].c_str());
    return kExitUsage;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const auto& a : rest) {
    if (a == "--") break;
    if (a == "--help" || a == "-h") {
      std::fputs(FormatHelp(command->usage, command->summary, command->flags).c_str(), stdout);
      return 0;
    }
    if (command->stop_at_positional && !a.empty() && a[0] != '-') break;
  }
  auto flags = ParseFlags(rest, command->flags, command->stop_at_positional);
  if (!flags.ok()) {
    std::fprintf(stderr, "boxlite %s: %s (see 'boxlite %s --help')\n", command->name,
                 flags.error().message().c_str(), command->name);
    return kExitUsage;
  }
  Context ctx;
  Outcome outcome = command->run(ctx, *flags);
  if (!outcome.error.ok()) {
    if (outcome.error_exit_code == kExitUsage) {
      std::fprintf(stderr, "boxlite %s: %s (see 'boxlite %s --help')\n", command->name,
                   outcome.error.message().c_str(), command->name);
      return kExitUsage;
    }
    std::fprintf(stderr, "boxlite: %s\n", outcome.error.message().c_str());
    return outcome.error_exit_code ? outcome.error_exit_code : ExitCodeFor(outcome.error);
  }
  return outcome.exit_code;
}
