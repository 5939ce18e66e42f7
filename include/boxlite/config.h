// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Runtime configuration from text: registry entries, the JSON configuration file of
// `boxlite --config` (BoxLite 0.9's format), `--registry` values and `-v` volume specs.
// The CLI and the Python SDK both use these, so a rule is written once.
//
// Thread-safety: pure functions.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/options.h"
#include "boxlite/result.h"

namespace boxlite {

// Checks an ImageRegistry and returns it normalised (transport "" becomes "https").
// InvalidArgument names the field and what is wrong:
//   - host empty, a URL ("https://x"), holding '/', whitespace or an invalid port;
//   - transport other than "", "https", "http";
//   - username without password or the reverse.
Result<ImageRegistry> ValidateImageRegistry(const ImageRegistry& registry);

// The largest configuration file read (bytes).
inline constexpr size_t kMaxConfigBytes = 1 << 20;

// Parses the JSON configuration:
//   {"home_dir": "/path",
//    "image_registries": [{"host": "h:5000", "transport": "https", "skip_verify": false,
//                          "search": true,
//                          "auth": {"type": "anonymous"} | {"type": "basic", "username": "u",
//                                   "password": "p"} | {"type": "bearer", "token": "t"}}]}
// Every key is optional; unknown keys are refused (a typo must not be ignored). Each
// registry is checked by ValidateImageRegistry. Errors name the JSON path
// ("image_registries[1].auth.type").
Result<RuntimeOptions> ParseRuntimeConfig(std::string_view json);
// Reads `path` (at most kMaxConfigBytes) and parses it; errors name the file.
Result<RuntimeOptions> LoadRuntimeConfig(const std::string& path);

// A `--registry` value: host[:port], searched (search=true), https, anonymous.
Result<ImageRegistry> ParseRegistryFlag(std::string_view value);

// A `-v` value: HOST:GUEST[:ro|rw] (HOST a directory, or a volume id: no '/' in it),
// or GUEST[:ro] alone (GUEST absolute) for an anonymous volume (empty host_path). A
// relative HOST path that holds a '/' is made absolute from the working directory.
Result<VolumeMount> ParseVolumeSpec(std::string_view spec);

// Whether `text` has the form of a volume id (12 Base62 characters) .
bool LooksLikeVolumeId(std::string_view text);

// --- The environment: every BOXLITE_* variable BoxLite reads (README.md's "Environment"
// table lists exactly these; src/runtime/environment_test.cc checks it) ---
struct EnvironmentVariable {
  const char* name;
  // "runtime": ResolveRuntimeOptions reads it into RuntimeOptions; "cli": only the
  // `boxlite` command reads it (through EnvironmentValue).
  const char* read_by;
};
const std::vector<EnvironmentVariable>& EnvironmentVariables();

// The value of a variable of this process's environment; nullopt when unset or empty.
// BoxLite's own code reads BOXLITE_* variables only through this and only those listed
// by EnvironmentVariables() (another BOXLITE_ name is a programming error: nullopt).
std::optional<std::string> EnvironmentValue(std::string_view name);

// Where ResolveRuntimeOptions reads variables (tests give a map).
using EnvironmentLookup = std::function<std::optional<std::string>(std::string_view name)>;

// The one place configuration is resolved: the fields of `given` left empty (or 0) take
// their environment variable, then the default (options.h says which for each); lists
// from the environment come before the given ones. Every value is checked and
// normalised the same way whatever its source: registries by ValidateImageRegistry,
// insecure registries to host[:port] (a scheme and trailing '/' dropped), mirrors to
// http(s) URLs. An invalid value is InvalidArgument naming the variable or field and
// what it accepts. Besides BOXLITE_*, reads HOME and XDG_DATA_HOME for the default home.
Result<RuntimeOptions> ResolveRuntimeOptions(const RuntimeOptions& given,
                                             const EnvironmentLookup& env = EnvironmentValue);

}  // namespace boxlite
