// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// `boxlite mcp`: the MCP server is Python (python/boxlite/mcp.py, on the official `mcp`
// package); this command execs it with the same home, forwarding its flags (declared in
// src/cli/commands.cc). The values are checked by the server itself, so the rules live in
// one place.

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "boxlite/config.h"
#include "src/cli/command.h"

namespace boxlite::cli {

namespace {

// Run by `python3 -c`: one clear line when the SDK is not installed for that Python, else
// the server's main (which reports a missing `mcp` package itself).
constexpr char kBootstrap[] =
    "import sys\n"
    "try:\n"
    "    import boxlite.mcp as m\n"
    "except ImportError as e:\n"
    "    sys.exit('boxlite mcp: the BoxLite Python SDK is not installed for ' + sys.executable +\n"
    "             ' (' + str(e) + \"): pip install 'boxlite[mcp]', or set BOXLITE_PYTHON to a \"\n"
    "             'Python that has it')\n"
    "sys.exit(m.main(sys.argv[1:]))\n";

}  // namespace

Outcome McpCommand(Context& ctx, const ParsedFlags& flags) {
  if (!flags.positional.empty()) return Usage("mcp takes no arguments");
  // The server opens the runtime itself: it gets this command's home (--home, --config).
  auto rt = ctx.runtime();
  if (!rt.ok()) return Fail(rt.error());
  if (::setenv("BOXLITE_HOME", (*rt)->home_dir().c_str(), 1) != 0) {
    return Fail(Status::Internal(std::string("setenv: ") + std::strerror(errno)));
  }
  std::string python = EnvironmentValue("BOXLITE_PYTHON").value_or("python3");
  std::vector<std::string> args = {python, "-c", kBootstrap};
  // The flags of the command's table (src/cli/commands.cc), as given.
  auto forward = [&args](const char* name, const std::optional<std::string>& value) {
    if (value) args.push_back(std::string("--") + name + "=" + *value);
  };
  forward("transport", flags.Get("transport"));
  forward("host", flags.Get("host"));
  forward("port", flags.Get("port"));
  forward("path", flags.Get("path"));
  forward("max-output-bytes", flags.Get("max-output-bytes"));
  forward("image", flags.Get("image"));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  int err = errno;
  return Fail(Status::NotFound("cannot run " + python + ": " + std::strerror(err),
                               "install Python 3 with the BoxLite SDK (pip install "
                               "'boxlite[mcp]'), or set BOXLITE_PYTHON to its interpreter"));
}

}  // namespace boxlite::cli
