// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The one place BOXLITE_* environment variables are read (include/boxlite/config.h):
// the table of every variable, and ResolveRuntimeOptions, which Runtime::Open calls.
// Everything past Runtime::Open reads RuntimeOptions, never the environment.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "boxlite/config.h"
#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/image/registry_client.h"
#include "src/sys/fs.h"

namespace boxlite {
namespace {

// The names, one each; README.md's "Environment" table has a row for each of them.
constexpr char kHome[] = "BOXLITE_HOME";
constexpr char kDataDir[] = "BOXLITE_DATA_DIR";
constexpr char kMirrors[] = "BOXLITE_REGISTRY_MIRRORS";
constexpr char kInsecure[] = "BOXLITE_INSECURE_REGISTRIES";
constexpr char kLog[] = "BOXLITE_LOG";
constexpr char kAccel[] = "BOXLITE_ACCEL";
constexpr char kBootTimeout[] = "BOXLITE_BOOT_TIMEOUT";
constexpr char kConsoleDir[] = "BOXLITE_CONSOLE_DIR";
constexpr char kNetHelper[] = "BOXLITE_NET_HELPER";
constexpr char kConsoleHelper[] = "BOXLITE_CONSOLE_HELPER";
constexpr char kDnsServers[] = "BOXLITE_DNS_SERVERS";
constexpr char kWarm[] = "BOXLITE_WARM";

constexpr int kDefaultBootTimeoutS = 120;
constexpr int kMaxBootTimeoutS = 86400;

// One setting: the value given through the API wins, else the variable's. `source`
// names where the value came from, for errors.
struct Setting {
  std::string value;
  std::string source;
};

Setting Pick(const std::string& given, const char* field, const char* var,
             const EnvironmentLookup& env) {
  if (!given.empty()) return {given, std::string("RuntimeOptions.") + field};
  if (auto v = env(var)) return {*v, var};
  return {"", ""};
}

// Entries of a list variable: comma-separated (DNS servers also by blanks).
std::vector<std::string> ListFrom(const EnvironmentLookup& env, const char* var,
                                  bool blanks_separate) {
  auto value = env(var);
  if (!value) return {};
  std::string text = *value;
  if (blanks_separate) {
    for (char& c : text) {
      if (c == ' ' || c == '\t' || c == '\n') c = ',';
    }
  }
  return image::SplitList(text);
}

// host[:port] as a registry is named in references; "http://host:port/" is accepted.
Result<std::string> NormalizeInsecureRegistry(std::string_view entry) {
  std::string host(entry);
  for (const char* scheme : {"http://", "https://"}) {
    if (host.starts_with(scheme)) host = host.substr(std::string_view(scheme).size());
  }
  while (!host.empty() && host.back() == '/') host.pop_back();
  ImageRegistry check;
  check.host = host;
  BOXLITE_RETURN_IF_ERROR(ValidateImageRegistry(check).status());
  return host;
}

Result<std::string> NormalizeMirror(std::string_view entry) {
  return image::NormalizeMirrorUrl(std::string(entry));
}

// A registry list: the variable's entries, then the API's, each trimmed and normalised
// by `normalize` (errors name their source), empty ones skipped, each kept once (so
// resolving resolved options changes nothing).
Result<std::vector<std::string>> MergeList(const EnvironmentLookup& env, const char* var,
                                           const std::vector<std::string>& given,
                                           const char* field,
                                           Result<std::string> (*normalize)(std::string_view)) {
  std::vector<std::string> out;
  auto add = [&](const std::vector<std::string>& entries, const std::string& source) -> Status {
    for (const auto& entry : entries) {
      std::string_view trimmed = base::Trim(entry);
      if (trimmed.empty()) continue;
      auto normal = normalize(trimmed);
      if (!normal.ok()) return normal.error().Wrap(source);
      if (std::find(out.begin(), out.end(), *normal) == out.end()) out.push_back(*normal);
    }
    return Status::OK();
  };
  BOXLITE_RETURN_IF_ERROR(add(ListFrom(env, var, false), var));
  BOXLITE_RETURN_IF_ERROR(add(given, std::string("RuntimeOptions.") + field));
  return out;
}

Result<std::string> ResolveHome(const RuntimeOptions& given, const EnvironmentLookup& env) {
  if (!given.home_dir.empty()) return given.home_dir;
  if (auto v = env(kHome)) return *v;
  if (auto xdg = env("XDG_DATA_HOME")) return sys::JoinPath(*xdg, "boxlite");
  auto home = env("HOME");
  return sys::JoinPath(home ? *home : "/tmp", ".local/share/boxlite");
}

Result<std::string> ResolveLogLevel(const RuntimeOptions& given, const EnvironmentLookup& env) {
  Setting s = Pick(given.log_level, "log_level", kLog, env);
  if (s.value.empty()) return std::string();
  base::LogLevel level;
  if (!base::ParseLogLevel(s.value, &level)) {
    return Status::InvalidArgument(s.source + " must be error, warn, info, debug or trace, not \"" +
                                   s.value + "\"");
  }
  return s.value;
}

Result<std::string> ResolveAccel(const RuntimeOptions& given, const EnvironmentLookup& env) {
  Setting s = Pick(given.accel, "accel", kAccel, env);
  if (s.value.empty()) return std::string();
  std::string accel = base::ToLower(s.value);
  if (accel != "kvm" && accel != "tcg") {
    return Status::InvalidArgument(s.source + " must be kvm or tcg, not \"" + s.value + "\"",
                                   "unset it to choose by what the host offers");
  }
  return accel;
}

Result<int> ResolveBootTimeout(const RuntimeOptions& given, const EnvironmentLookup& env) {
  auto range = [](const std::string& source, const std::string& value) {
    return Status::InvalidArgument(
        base::StrFormat("%s must be a number of seconds from 1 to %d, not \"%s\"", source.c_str(),
                        kMaxBootTimeoutS, value.c_str()));
  };
  if (given.boot_timeout_s != 0) {
    if (given.boot_timeout_s < 0 || given.boot_timeout_s > kMaxBootTimeoutS) {
      return range("RuntimeOptions.boot_timeout_s", std::to_string(given.boot_timeout_s));
    }
    return given.boot_timeout_s;
  }
  auto v = env(kBootTimeout);
  if (!v) return kDefaultBootTimeoutS;
  auto seconds = base::ParseUint(base::Trim(*v));
  if (!seconds || *seconds == 0 || *seconds > static_cast<uint64_t>(kMaxBootTimeoutS)) {
    return range(kBootTimeout, *v);
  }
  return static_cast<int>(*seconds);
}

// Warm start: RuntimeOptions.warm when given, else BOXLITE_WARM (0 or 1), else on.
Result<bool> ResolveWarm(const RuntimeOptions& given, const EnvironmentLookup& env) {
  if (given.warm) return *given.warm;
  auto v = env(kWarm);
  if (!v) return true;
  std::string_view value = base::Trim(*v);
  if (value == "1") return true;
  if (value == "0") return false;
  return Status::InvalidArgument(std::string(kWarm) + " must be 0 or 1, not \"" + *v + "\"",
                                 "unset it to use warm start");
}

}  // namespace

const std::vector<EnvironmentVariable>& EnvironmentVariables() {
  static const std::vector<EnvironmentVariable> kVariables = {
      {kHome, "runtime"},        {"BOXLITE_SECURITY", "cli"}, {kMirrors, "runtime"},
      {kInsecure, "runtime"},    {kAccel, "runtime"},         {kLog, "runtime"},
      {kDataDir, "runtime"},     {kBootTimeout, "runtime"},   {kConsoleDir, "runtime"},
      {kNetHelper, "runtime"},   {kConsoleHelper, "runtime"}, {kDnsServers, "runtime"},
      {kWarm, "runtime"},
      {"BOXLITE_PYTHON", "cli"},  // `boxlite mcp`'s interpreter (src/cli/mcp_cmd.cc)
      // Remote runtimes (docs/remote.md): the CLI's server, prefix, key and profile.
      {"BOXLITE_REST_URL", "cli"}, {"BOXLITE_REST_PATH_PREFIX", "cli"},
      {"BOXLITE_API_KEY", "cli"},  {"BOXLITE_PROFILE", "cli"},
      // `boxlite serve` (src/cli/serve_cmd.cc, src/server/exec_session.cc; docs/server.md).
      {"BOXLITE_SERVE_API_KEY", "cli"},
      {"BOXLITE_SERVE_HEADER_TIMEOUT", "cli"},
      {"BOXLITE_REAPER_TICK", "cli"},
      {"BOXLITE_RECONNECT_GRACE", "cli"},
      {"BOXLITE_SHUTDOWN_GRACE", "cli"},
      {"BOXLITE_MAX_SESSION_LIFETIME", "cli"},
      {"BOXLITE_COMPLETED_EXEC_TTL", "cli"},
  };
  return kVariables;
}

std::optional<std::string> EnvironmentValue(std::string_view name) {
  if (name.starts_with("BOXLITE_")) {
    bool listed = false;
    for (const auto& v : EnvironmentVariables()) listed = listed || name == v.name;
    if (!listed) {
      BOXLITE_LOG(kError, "%.*s is not a BoxLite variable (src/runtime/environment.cc)",
                  static_cast<int>(name.size()), name.data());
      return std::nullopt;
    }
  }
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

Result<RuntimeOptions> ResolveRuntimeOptions(const RuntimeOptions& given,
                                             const EnvironmentLookup& env) {
  RuntimeOptions out = given;
  BOXLITE_ASSIGN_OR_RETURN(out.home_dir, ResolveHome(given, env));
  out.data_dir = Pick(given.data_dir, "data_dir", kDataDir, env).value;
  BOXLITE_ASSIGN_OR_RETURN(out.registry_mirrors,
                           MergeList(env, kMirrors, given.registry_mirrors, "registry_mirrors",
                                     NormalizeMirror));
  BOXLITE_ASSIGN_OR_RETURN(out.insecure_registries,
                           MergeList(env, kInsecure, given.insecure_registries,
                                     "insecure_registries", NormalizeInsecureRegistry));
  out.registries.clear();
  for (size_t i = 0; i < given.registries.size(); ++i) {
    auto valid = ValidateImageRegistry(given.registries[i]);
    if (!valid.ok()) {
      return valid.error().Wrap(base::StrFormat("RuntimeOptions.registries[%zu]", i));
    }
    out.registries.push_back(std::move(valid).value());
  }
  BOXLITE_ASSIGN_OR_RETURN(out.log_level, ResolveLogLevel(given, env));
  BOXLITE_ASSIGN_OR_RETURN(out.accel, ResolveAccel(given, env));
  BOXLITE_ASSIGN_OR_RETURN(out.boot_timeout_s, ResolveBootTimeout(given, env));
  out.console_dir = Pick(given.console_dir, "console_dir", kConsoleDir, env).value;
  out.net_helper = Pick(given.net_helper, "net_helper", kNetHelper, env).value;
  out.console_helper = Pick(given.console_helper, "console_helper", kConsoleHelper, env).value;
  if (given.dns_servers.empty()) out.dns_servers = ListFrom(env, kDnsServers, true);
  BOXLITE_ASSIGN_OR_RETURN(bool warm, ResolveWarm(given, env));
  out.warm = warm;
  return out;
}

}  // namespace boxlite
