// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// What a box's process gets before execve, from the box config (BoxOptions.security and
// .capabilities, src/protocol/messages.h): resource limits, the capability bounding set
// (Docker's way: root keeps the set as permitted and effective across execve, any other
// user gets none effective; inheritable and ambient sets are empty), and descriptors
// beyond 0, 1 and 2 marked close-on-exec.
//
// Called in the child between fork and execve: async-signal-safe, no allocation.
#pragma once

#include <cstdint>

#include "src/protocol/messages.h"

namespace boxlite::agent {

struct ProcessSecurity {
  int64_t capabilities = -1;  // -1: leave every capability.
  // The highest capability the kernel knows (/proc/sys/kernel/cap_last_cap, read by the
  // caller before fork): the bounding set is dropped up to it, not through all 64 bits.
  int last_cap = 63;
  // The starting process has already dropped its own bounding set to `capabilities`
  // (DropBoundingSet): the child inherits it and skips one prctl per capability.
  bool bounding_set_dropped = false;
  protocol::ProcessLimits limits;
  bool close_fds = true;
};

// Applies `s` to the calling process (before it drops root). On failure returns the
// errno and sets `*what` to the step that failed; 0 on success.
int ApplyProcessSecurity(const ProcessSecurity& s, const char** what);

// Drops from the calling process's bounding set every capability (up to `last_cap`) that
// `keep` (a ProcessSecurity::capabilities other than -1) leaves out. The caller keeps its
// own permitted and effective sets; only what an execve can grant shrinks, for it and for
// every child it starts after. 0 on success, else the errno.
int DropBoundingSet(uint64_t keep, int last_cap);

}  // namespace boxlite::agent
