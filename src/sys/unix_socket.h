// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Unix stream sockets at paths of any length. sockaddr_un holds 108 bytes, and runtime
// homes under deep temporary directories exceed that, so the directory is opened first
// and the socket is named through /proc/self/fd/<dirfd>/<name>.
#pragma once

#include <string>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"

namespace boxlite::sys {

// A listening socket bound at `path` (an existing file there is replaced).
Result<base::UniqueFd> ListenUnix(const std::string& path, int backlog = 4);
// A connected socket. NotFound/Unavailable when nobody listens.
Result<base::UniqueFd> ConnectUnix(const std::string& path);

}  // namespace boxlite::sys
