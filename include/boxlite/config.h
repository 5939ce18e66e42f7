// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Runtime configuration from text: registry entries, the JSON configuration file of
// `boxlite --config` (BoxLite 0.9's format), `--registry` values and `-v` volume specs.
// The CLI and the Python SDK both use these, so a rule is written once.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

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

}  // namespace boxlite
