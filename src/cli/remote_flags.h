// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The CLI's remote mode (docs/remote.md): which server, prefix and key the global flags,
// the environment and the profile give (per axis), and `boxlite auth`.
#pragma once

#include <optional>
#include <string>

#include "boxlite/result.h"
#include "src/remote/credentials.h"

namespace boxlite::cli {

struct RemoteFlags : remote::RemoteSettings {
  std::string credentials_path;
};

// Resolves and remembers (for `boxlite auth`) the remote settings of this command line.
Result<RemoteFlags> ResolveRemoteFlags(const std::optional<std::string>& flag_url,
                                       const std::optional<std::string>& flag_prefix,
                                       const std::optional<std::string>& flag_profile);

}  // namespace boxlite::cli
