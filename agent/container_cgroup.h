// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The cgroup a pod container's processes share inside the box (ExecRequest::cgroup,
// docs/kubernetes.md, "Limits"): "c-<name>" beneath the box's user cgroup, made on first
// use, with the container's memory, CPU and pids limits written on every exec that names
// it. The name is checked again here (protocol::ValidateExecCgroup) and only ever used as
// one path component beneath the parent's open descriptor. At most `max_cgroups` exist:
// a new one first removes the empty ones of other names (containers that ended).
// Called from the agent's one thread.
#pragma once

#include <cstddef>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"
#include "src/protocol/messages.h"

namespace boxlite::agent {

inline constexpr size_t kMaxContainerCgroups = 256;

// Opens (making it when missing) the cgroup of `c` beneath the cgroup directory
// `parent_fd`, after enabling the memory and pids controllers in the parent's
// cgroup.subtree_control, and writes its memory.max, cpu.max and pids.max ("max" for a
// 0). Without cpu.max (a kernel without CFS bandwidth control) the CPU quota is written
// as cpu.weight instead: quota/period x 100, 1 to 10000 (100 without a quota). Returns
// the cgroup's directory (O_DIRECTORY), what a child is born into.
// InvalidArgument for a bad name or limit; ResourceExhausted when `max_cgroups` others
// are in use; the errno's Status when the kernel refuses a file.
Result<base::UniqueFd> OpenContainerCgroup(int parent_fd, const protocol::ExecCgroup& c,
                                           size_t max_cgroups = kMaxContainerCgroups);

}  // namespace boxlite::agent
