// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The process's limit of open descriptors (RLIMIT_NOFILE). A running box holds about seven
// descriptors in the process that runs it (its QEMU's pidfd, the agent and monitor
// sockets, its console and QEMU log files, its disk overlay, an eventfd), so the soft
// limit most shells start with, 1024, would stop one process near 140 boxes.
#pragma once

#include <sys/resource.h>

namespace boxlite::sys {

// Raises the soft limit to the hard one (never the hard limit itself), as the Go and Java
// runtimes do at start. Runtime::Open calls it. Returns the soft limit in force after,
// or 0 when the limits cannot be read. Safe to call from any thread, any number of times.
rlim_t RaiseOpenFileLimit();

}  // namespace boxlite::sys
