// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The CLI's remote settings (docs/remote.md, "Profiles"): profiles in
// ~/.boxlite/credentials.toml (BoxLite 0.9's file; one TOML table per profile, written
// 0600 atomically), and which server, prefix and key a command uses, decided per axis.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "boxlite/result.h"
#include "boxlite/status.h"

namespace boxlite::remote {

struct Profile {
  std::string url;
  std::string api_key;
  std::string path_prefix;
  std::string auth_method;  // "api-key" (the only one this build writes).
};

using Profiles = std::map<std::string, Profile>;

// <home>/.boxlite/credentials.toml (BoxLite 0.9's place), `home` being the user's home.
std::string CredentialsPathIn(const std::string& home);

// Profiles from the file's text: each top-level table is one. InvalidArgument naming the
// file and the line for bad TOML. Keys other than those of Profile are ignored here and
// kept by SaveProfile.
Result<Profiles> ParseCredentials(std::string_view text, std::string_view path);
// The file's profiles; none when it does not exist.
Result<Profiles> LoadCredentials(const std::string& path);
// Adds or replaces `name` (other profiles and unknown keys are kept); the file and its
// directory are created 0600/0700, and the file is replaced atomically.
Status SaveProfile(const std::string& path, const std::string& name, const Profile& profile);
// Removes `name`; NotFound when the file has no such profile.
Status RemoveProfile(const std::string& path, const std::string& name);

// Where a command's remote settings came from, per axis.
struct RemoteSettings {
  std::string url, path_prefix, bearer_token;
  std::string profile;      // The profile consulted (exists or not).
  std::string url_source;   // "flag", "env", "profile", or "" (no URL: local).
  std::string key_source;   // "env", "profile", or "".
};

// The settings of a command: URL from the --url flag, else BOXLITE_REST_URL, else the
// profile; prefix from --path-prefix, else BOXLITE_REST_PATH_PREFIX, else the profile;
// bearer from BOXLITE_API_KEY, else the profile. The profile is --profile, else
// BOXLITE_PROFILE, else "default". `env` returns a variable's value (nullopt: unset).
RemoteSettings ResolveRemoteSettings(
    const std::optional<std::string>& flag_url, const std::optional<std::string>& flag_prefix,
    const std::optional<std::string>& flag_profile, const Profiles& profiles,
    const std::function<std::optional<std::string>(const char*)>& env);

// "abcd…wxyz" for display: the key's first and last 4 characters (all masked when short).
std::string MaskKey(std::string_view key);

}  // namespace boxlite::remote
