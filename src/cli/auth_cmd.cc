// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// `boxlite auth login|logout|status|whoami`: API-key profiles for remote servers, kept in
// ~/.boxlite/credentials.toml (BoxLite 0.9's file), and the global remote flags.
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "boxlite/config.h"
#include "src/base/macros.h"
#include "src/cli/command.h"
#include "src/cli/remote_flags.h"
#include "src/remote/endpoint.h"
#include "src/remote/http.h"

namespace boxlite::cli {
namespace {

constexpr const char* kDefaultLoginUrl = "http://localhost:8100";  // BoxLite 0.9's.
constexpr size_t kMaxKey = 4096;

RemoteFlags& Current() {
  static RemoteFlags* flags = new RemoteFlags();
  return *flags;
}

// GET /v1/me with this url, prefix and key.
Result<nlohmann::json> WhoAmI(const std::string& url, const std::string& prefix, const std::string& key) {
  BOXLITE_ASSIGN_OR_RETURN(remote::Endpoint ep, remote::ParseEndpoint(url));
  BOXLITE_ASSIGN_OR_RETURN(std::string p, remote::NormalizePathPrefix(prefix));
  remote::HttpClient client(ep, p, key);
  return client.CallJson("GET", client.GlobalTarget("/me"), nullptr, "ask " + ep.ToString() + " who we are");
}

std::string Field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

Outcome Login(const ParsedFlags& flags) {
  const RemoteFlags& r = Current();
  std::string method = flags.Get("method").value_or("api-key");
  if (method == "browser" || method == "device") {
    return Fail(Status::NotSupported("unsupported: --method " + method +
                                     ": this build logs in with API keys only (--api-key-stdin)"));
  }
  if (method != "api-key") return Usage("--method must be api-key, browser or device");
  if (!flags.Has("api-key-stdin")) {
    return Usage("pass the key on stdin: printf %s \"$KEY\" | boxlite auth login --api-key-stdin");
  }
  std::string key((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) key.pop_back();
  if (key.empty()) return Fail(Status::InvalidArgument("no API key on stdin"));
  if (key.size() > kMaxKey || key.find_first_of("\r\n\t ") != std::string::npos) {
    return Fail(Status::InvalidArgument("the API key must be one word of at most 4096 bytes"));
  }
  auto profiles = remote::LoadCredentials(r.credentials_path);
  if (!profiles.ok()) return Fail(profiles.error());
  auto existing = profiles->find(r.profile);
  std::string url = r.url_source == "flag" || r.url_source == "env" ? r.url
                    : existing != profiles->end() && !existing->second.url.empty() ? existing->second.url
                                                                                   : kDefaultLoginUrl;
  // The key is checked before it is kept: a wrong one leaves the file as it was.
  auto me = WhoAmI(url, r.path_prefix, key);
  if (!me.ok()) return Fail(me.error().Wrap("log in to " + url));
  remote::Profile profile{url, key, r.path_prefix, "api-key"};
  Status saved = remote::SaveProfile(r.credentials_path, r.profile, profile);
  if (!saved.ok()) return Fail(saved);
  std::string who = Field(*me, "sub");
  std::printf("Logged in to %s%s%s (profile %s, saved in %s)\n", url.c_str(), who.empty() ? "" : " as ",
              who.c_str(), r.profile.c_str(), r.credentials_path.c_str());
  return Outcome{};
}

Outcome Logout(const ParsedFlags& flags) {
  const RemoteFlags& r = Current();
  auto profiles = remote::LoadCredentials(r.credentials_path);
  if (!profiles.ok()) return Fail(profiles.error());
  auto it = profiles->find(r.profile);
  if (it == profiles->end()) {
    return Fail(Status::NotFound("not logged in: no profile '" + r.profile + "' in " + r.credentials_path));
  }
  if (!flags.Has("yes")) {
    if (!::isatty(STDIN_FILENO)) return Usage("pass -y to log out without a question");
    std::printf("Log out of %s (profile %s)? [y/N] ", it->second.url.c_str(), r.profile.c_str());
    std::fflush(stdout);
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") return Outcome{1, Status::OK(), 0};
  }
  Status removed = remote::RemoveProfile(r.credentials_path, r.profile);
  if (!removed.ok()) return Fail(removed);
  std::printf("Logged out of profile %s\n", r.profile.c_str());
  return Outcome{};
}

Outcome StatusCmd() {
  const RemoteFlags& r = Current();
  if (r.url.empty() && r.bearer_token.empty()) {
    std::printf("Not logged in (profile %s; run 'boxlite auth login --api-key-stdin')\n", r.profile.c_str());
    return Outcome{1, Status::OK(), 0};
  }
  auto source = [](const std::string& s) {
    return s == "env" ? std::string(" (from the environment)") : s == "flag" ? " (from --url)" : s == "profile" ? " (from the profile)" : "";
  };
  std::printf("Profile:     %s\n", r.profile.c_str());
  std::printf("Server:      %s%s\n", r.url.empty() ? "(none)" : r.url.c_str(), source(r.url_source).c_str());
  if (!r.path_prefix.empty()) std::printf("Path prefix: %s\n", r.path_prefix.c_str());
  std::printf("API key:     %s%s\n", r.bearer_token.empty() ? "(none)" : remote::MaskKey(r.bearer_token).c_str(),
              source(r.key_source).c_str());
  std::printf("Credentials: %s\n", r.credentials_path.c_str());
  return Outcome{};
}

Outcome WhoAmICmd(const ParsedFlags& flags) {
  const RemoteFlags& r = Current();
  auto format = FormatFlag(flags, {"text", "json"}, "text");
  if (!format.ok()) return Usage(format.error().message());
  if (r.url.empty()) {
    return Fail(Status::InvalidArgument(
        "no server: pass --url, set BOXLITE_REST_URL or run 'boxlite auth login'"));
  }
  auto me = WhoAmI(r.url, r.path_prefix, r.bearer_token);
  if (!me.ok()) return Fail(me.error());
  if (*format == "json") {
    PrintJson(*me, 2);
    return Outcome{};
  }
  for (const char* key : {"sub", "principal_type", "email", "display_name", "scopes", "expires_at"}) {
    std::string v = Field(*me, key);
    if (!v.empty()) std::printf("%-15s %s\n", (std::string(key) + ":").c_str(), v.c_str());
  }
  std::printf("%-15s %s\n", "server:", r.url.c_str());
  return Outcome{};
}

}  // namespace

Result<RemoteFlags> ResolveRemoteFlags(const std::optional<std::string>& flag_url,
                                       const std::optional<std::string>& flag_prefix,
                                       const std::optional<std::string>& flag_profile) {
  RemoteFlags out;
  std::string home = EnvironmentValue("HOME").value_or("");
  if (home.empty()) {
    const struct passwd* pw = ::getpwuid(::getuid());
    home = pw != nullptr && pw->pw_dir != nullptr ? pw->pw_dir : "/";
  }
  out.credentials_path = remote::CredentialsPathIn(home);
  auto profiles = remote::LoadCredentials(out.credentials_path);
  if (!profiles.ok()) return profiles.error();
  static_cast<remote::RemoteSettings&>(out) = remote::ResolveRemoteSettings(
      flag_url, flag_prefix, flag_profile, *profiles,
      [](const char* name) { return EnvironmentValue(name); });
  Current() = out;
  return out;
}

Outcome AuthCommand(Context&, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) return Usage("auth needs one of login, logout, status, whoami");
  const std::string& sub = flags.positional[0];
  if (sub == "login") return Login(flags);
  if (sub == "logout") return Logout(flags);
  if (sub == "status") return StatusCmd();
  if (sub == "whoami") return WhoAmICmd(flags);
  return Usage("unknown auth command '" + sub + "' (login, logout, status or whoami)");
}

}  // namespace boxlite::cli
