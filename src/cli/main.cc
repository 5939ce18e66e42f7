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

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kNotFound:
      return 2;
    case StatusCode::kInvalidArgument:
      return 64;
    case StatusCode::kUnavailable:
      return 69;
    case StatusCode::kPermissionDenied:
    case StatusCode::kAuthentication:
      return 77;
    case StatusCode::kIoError:
    case StatusCode::kResourceExhausted:
      return 74;
    case StatusCode::kCorruption:
    case StatusCode::kProtocolError:
      return 65;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists:
      return 75;
    case StatusCode::kCancelled:
      return 130;
    default:
      return 70;
  }
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
    return args.empty() ? 64 : 0;
  }
  if (args[0] == "--version" || args[0] == "-v") args[0] = "version";
  const Command* command = nullptr;
  for (const auto& cmd : Commands()) {
    if (args[0] == cmd.name) command = &cmd;
  }
  if (command == nullptr) {
    std::fprintf(stderr, "boxlite: unknown command \"%s\" (see 'boxlite --help')\n",
                 args[0].c_str());
    return 64;
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
    return 64;
  }
  Context ctx;
  Outcome outcome = command->run(ctx, *flags);
  if (!outcome.error.ok()) {
    std::fprintf(stderr, "boxlite: %s\n", outcome.error.message().c_str());
    return outcome.error_exit_code ? outcome.error_exit_code : ExitCodeFor(outcome.error);
  }
  return outcome.exit_code;
}
