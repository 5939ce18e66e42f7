// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Guest RAM as a file BoxLite owns (src/vmm/qemu.h VmConfig::ram_fd): a memfd per box,
// copied sparsely into a memory snapshot and back, sealed when several forks map it.
//
// A memfd's inode is mode 0777, so a QEMU jailed as another user (src/vmm/vm_jail.h) can
// reopen the inherited descriptor as /proc/self/fd/N. Another process (a detached box's
// next user) reaches a running box's RAM through /proc/<qemu pid>/fd: OpenGuestRamOf finds
// the memfd by its name and checks its size.
//
// Thread-safety: the functions are thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"

namespace boxlite::vmm {

// The memfd name every box's RAM carries (shown as "/memfd:boxlite-ram (deleted)").
inline constexpr const char* kGuestRamName = "boxlite-ram";

// A new memfd of `bytes` bytes (all holes), close-on-exec, sealable.
Result<base::UniqueFd> CreateGuestRam(uint64_t bytes);

// Copies `bytes` bytes of `src` into `dst` (truncated to that size first), writing only
// regions holding data that is not all zeros: holes stay holes. Returns the bytes written.
Result<uint64_t> SparseCopy(int src, int dst, uint64_t bytes);

// Seals a memfd against writes, shrinking and growing: it can then be mapped privately
// (copy-on-write) by several VMs, none able to change what the others read.
Status SealGuestRam(int fd);

// The guest RAM memfd of running QEMU `pid`, opened read-only; NotFound when it has none
// of `bytes` bytes.
Result<base::UniqueFd> OpenGuestRamOf(pid_t pid, uint64_t bytes);

}  // namespace boxlite::vmm
