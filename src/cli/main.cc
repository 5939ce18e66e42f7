// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite: the command-line front end. It parses arguments, calls the public C++ API and
// turns a Status into one line on stderr plus an exit code; nothing else lives here.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "boxlite/config.h"
#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/cli/command.h"
#include "src/cli/remote_flags.h"

namespace boxlite::cli {
namespace {

// --- Global flags (--home, --registry, --config, --debug) ---
// They may come before the command or among its own flags (up to "--", and for `run`-style
// commands up to the image, after which everything belongs to the command in the box).
struct GlobalFlags {
  std::optional<std::string> home;
  std::optional<std::string> config;
  std::vector<std::string> registries;
  bool debug = false;
  // --- Remote (docs/remote.md): --url, --path-prefix, --profile ---
  std::optional<std::string> url, path_prefix, profile;
  // --- end remote ---
};

const char* const kGlobalHelp =
    "Global options (before or after the command):\n"
    "      --home PATH          the BoxLite home (default $BOXLITE_HOME, else\n"
    "                           ~/.local/share/boxlite)\n"
    "      --registry HOST[:PORT]  search this registry for unqualified image names\n"
    "                           (repeatable; before the config's registries)\n"
    "      --config PATH        JSON: {\"home_dir\", \"image_registries\": [{\"host\",\n"
    "                           \"transport\", \"skip_verify\", \"search\", \"auth\"}]}\n"
    "      --debug              debug logging on stderr\n"
    "      --url URL            use the BoxLite server at URL (default $BOXLITE_REST_URL,\n"
    "                           else the profile's); key: $BOXLITE_API_KEY, else the profile's\n"
    "      --path-prefix P      the server's routing prefix (default\n"
    "                           $BOXLITE_REST_PATH_PREFIX, else the profile's)\n"
    "      --profile NAME       the profile in ~/.boxlite/credentials.toml (default\n"
    "                           $BOXLITE_PROFILE, else \"default\"; see 'boxlite auth')\n";

// Consumes args[*i] (and its value) when it is a global flag. Returns false when it is not.
Result<bool> TakeGlobal(const std::vector<std::string>& args, size_t* i, GlobalFlags* out) {
  const std::string& arg = args[*i];
  if (arg == "--debug") {
    out->debug = true;
    return true;
  }
  for (const char* name : {"home", "registry", "config", "url", "path-prefix", "profile"}) {
    std::string flag = std::string("--") + name;
    std::optional<std::string> value;
    if (arg == flag) {
      if (*i + 1 >= args.size()) {
        return Status::InvalidArgument("flag " + flag + " needs a value");
      }
      value = args[++*i];
    } else if (arg.starts_with(flag + "=")) {
      value = arg.substr(flag.size() + 1);
    } else {
      continue;
    }
    if (value->empty() && std::strcmp(name, "path-prefix") != 0) {
      return Status::InvalidArgument("flag " + flag + " needs a value");
    }
    if (std::strcmp(name, "url") == 0 || std::strcmp(name, "path-prefix") == 0 ||
        std::strcmp(name, "profile") == 0) {
      std::optional<std::string>& slot = name[0] == 'u' ? out->url
                                         : name[1] == 'a' ? out->path_prefix
                                                          : out->profile;
      if (slot) return Status::InvalidArgument("flag " + flag + " given more than once");
      slot = *value;
    } else if (std::strcmp(name, "registry") == 0) {
      out->registries.push_back(*value);
    } else {
      std::optional<std::string>& slot = std::strcmp(name, "home") == 0 ? out->home : out->config;
      if (slot) return Status::InvalidArgument("flag " + flag + " given more than once");
      slot = *value;
    }
    return true;
  }
  return false;
}

// Whether `arg`, one of the command's flags, takes the next argument as its value.
bool TakesNextArgument(const std::string& arg, const std::vector<FlagSpec>& specs) {
  if (arg.starts_with("--")) {
    if (arg.find('=') != std::string::npos) return false;
    for (const auto& s : specs) {
      if ("--" + s.long_name == arg) return s.takes_value;
    }
    return false;
  }
  // "-it", "-e" ...: the last letter decides, unless a value is attached ("-eK=V").
  for (size_t k = 1; k < arg.size(); ++k) {
    for (const auto& s : specs) {
      if (s.short_name != arg[k]) continue;
      if (s.takes_value) return k + 1 == arg.size();
    }
  }
  return false;
}

// Runtime options from the global flags: the config file, then --home, then --registry
// entries ahead of the config's registries.
Result<RuntimeOptions> OptionsFromGlobals(const GlobalFlags& g) {
  RuntimeOptions options;
  if (g.config) {
    BOXLITE_ASSIGN_OR_RETURN(options, LoadRuntimeConfig(*g.config));
  }
  // --home, else $BOXLITE_HOME, else the config's home_dir, else the default.
  if (g.home) {
    options.home_dir = *g.home;
  } else if (auto env_home = EnvironmentValue("BOXLITE_HOME")) {
    options.home_dir = *env_home;
  }
  // --debug beats BOXLITE_LOG (Runtime::Open applies the level).
  if (g.debug) options.log_level = "debug";
  std::vector<ImageRegistry> registries;
  for (const auto& r : g.registries) {
    BOXLITE_ASSIGN_OR_RETURN(ImageRegistry reg, ParseRegistryFlag(r));
    registries.push_back(std::move(reg));
  }
  for (auto& r : options.registries) registries.push_back(std::move(r));
  options.registries = std::move(registries);
  // A server's URL from the flag, BOXLITE_REST_URL or the profile makes the runtime remote.
  BOXLITE_ASSIGN_OR_RETURN(RemoteFlags remote, ResolveRemoteFlags(g.url, g.path_prefix, g.profile));
  options.url = remote.url;
  options.path_prefix = remote.path_prefix;
  options.bearer_token = remote.bearer_token;
  return options;
}

RuntimeOptions& GlobalRuntimeOptions() {
  static RuntimeOptions* options = new RuntimeOptions();
  return *options;
}
// --- end global flags ---

}  // namespace

Result<std::shared_ptr<Runtime>> Context::runtime() {
  if (!runtime_) {
    auto rt = Runtime::Open(GlobalRuntimeOptions());
    if (!rt.ok()) return rt.error();
    runtime_ = *rt;
  }
  return runtime_;
}

Outcome Fail(const Status& s) { return Outcome{0, s, kExitError}; }

Outcome Usage(const std::string& message) {
  return Outcome{0, Status::InvalidArgument(message), kExitUsage};
}

Outcome ForEachTarget(const std::vector<std::string>& targets, size_t from,
                      const std::function<Status(const std::string&)>& act) {
  Status first;
  for (size_t i = from; i < targets.size(); ++i) {
    Status s = act(targets[i]);
    if (s.ok()) {
      std::printf("%s\n", targets[i].c_str());
    } else if (first.ok()) {
      first = s;
    } else {
      std::fprintf(stderr, "boxlite: %s\n", s.message().c_str());
    }
  }
  if (!first.ok()) return Outcome{0, first, kExitError};
  return Outcome{};
}

namespace {

void PrintTopHelp() {
  std::printf("Usage: boxlite COMMAND [OPTIONS]\n\n"
              "Run untrusted code in local micro-VMs booted from OCI images.\n\nCommands:\n");
  for (const auto& cmd : Commands()) std::printf("  %-9s %s\n", cmd.name, cmd.summary);
  std::printf("\n%s", kGlobalHelp);
  std::printf("\nRun 'boxlite COMMAND --help' for a command's options.\n");
}

}  // namespace
}  // namespace boxlite::cli

int main(int argc, char** argv) {
  using namespace boxlite::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  GlobalFlags globals;
  auto usage_error = [](const boxlite::Status& s) {
    std::fprintf(stderr, "boxlite: %s (see 'boxlite --help')\n", s.message().c_str());
    return 64;
  };
  // Global flags before the command.
  size_t first = 0;
  while (first < args.size()) {
    auto took = TakeGlobal(args, &first, &globals);
    if (!took.ok()) return usage_error(took.error());
    if (!*took) break;
    ++first;
  }
  args.erase(args.begin(), args.begin() + static_cast<long>(std::min(first, args.size())));
  if (!args.empty()) {
    // And among the command's own flags.
    const Command* cmd = nullptr;
    for (const auto& c : Commands()) {
      if (args[0] == c.name) cmd = &c;
    }
    std::vector<std::string> kept = {args[0]};
    size_t i = 1;
    for (; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a == "--" || cmd == nullptr) break;
      auto took = TakeGlobal(args, &i, &globals);
      if (!took.ok()) return usage_error(took.error());
      if (*took) continue;
      if (!a.empty() && a[0] == '-' && a != "-") {
        kept.push_back(a);
        if (TakesNextArgument(a, cmd->flags) && i + 1 < args.size()) kept.push_back(args[++i]);
        continue;
      }
      if (cmd->stop_at_positional) break;  // The rest is the command in the box.
      kept.push_back(a);
    }
    if (i < args.size()) kept.insert(kept.end(), args.begin() + static_cast<long>(i), args.end());
    args = std::move(kept);
  }
  if (globals.debug) boxlite::base::SetLogLevel(boxlite::base::LogLevel::kDebug);
  {
    auto options = OptionsFromGlobals(globals);
    if (!options.ok()) return usage_error(options.error());
    GlobalRuntimeOptions() = std::move(*options);
  }
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
  if (std::strcmp(command->name, "serve") == 0) {
    // The server runs boxes here; a profile's URL must not turn it into a client.
    GlobalRuntimeOptions().url.clear();
    GlobalRuntimeOptions().bearer_token.clear();
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
