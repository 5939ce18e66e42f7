// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// RemoteRuntime: the Runtime, Box and Exec interfaces over a `boxlite serve` (BoxLite
// 0.9's REST + WebSocket API; docs/remote.md). Runtime::Open returns one when
// RuntimeOptions::url is set, so the CLI, the Python SDK and every other front end drive a
// remote server with the calls they use locally. What the API cannot do (published
// ports, images, tunnels, console logs, forks, ...) fails with NotSupported
// ("unsupported: ...").
#pragma once

#include <memory>

#include "boxlite/options.h"
#include "boxlite/result.h"
#include "boxlite/runtime.h"

namespace boxlite::remote {

// A runtime for options.url, options.path_prefix and options.bearer_token. Nothing is
// sent yet: an unreachable server shows on the first call.
Result<std::shared_ptr<Runtime>> OpenRemoteRuntime(const RuntimeOptions& options);

}  // namespace boxlite::remote
