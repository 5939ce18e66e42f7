// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The jail of one box's QEMU and boxlite-net (src/sys/jail.h has the steps; docs/security.md
// the reasons). Who they run as:
// - started by an unprivileged user: that user (in a user namespace of its own when the
//   kernel allows), exactly as before;
// - started by root: never root. boxlite-net runs as the system user "boxlite"; QEMU as the
//   owner of the box's read-write shares when they all have one non-root owner (so what the
//   guest creates there belongs to the share's owner), else as "boxlite". Every share
//   directory must be readable (read-only) or writable (read-write) by that user (QEMU gets
//   it as an open descriptor, so the directories above it do not matter), else the box
//   does not start and the error says what to do. With KVM, /dev/kvm's group is added.
// Both get a seccomp filter that refuses any setuid/setgid mode, so even the share's owner
// never gets such a file from the guest (a file's owner may set those bits without any
// capability). Both join a cgroup v2 leaf (memory.max, pids.max) where the host has one
// for us; otherwise that step is skipped and `notes` says why. Started by root, each also
// gets a pid namespace and a minimal root of its own (src/sys/jail.h).
// Thread-safety: thread-safe.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "boxlite/result.h"
#include "src/sys/jail.h"
#include "src/vmm/accel.h"
#include "src/vmm/qemu.h"

namespace boxlite::vmm {

struct ShareOwnership {
  std::string path;
  bool read_only = false;
  uid_t owner = 0;
  gid_t group = 0;
};

enum class RunAs { kCaller, kShareOwner, kJailUser };

// The rule above, without looking anything up. For kShareOwner, *owner and *group get the
// read-write shares' owner and group.
RunAs ChooseQemuRunAs(bool caller_is_root, const std::vector<ShareOwnership>& shares,
                      uid_t* owner, gid_t* group);

// Adds `kvm_group` to the identity's groups when the VM uses KVM (idempotent).
void AddKvmGroup(Accel accel, std::optional<gid_t> kvm_group, sys::Identity* identity);

struct VmJailInputs {
  std::string box_id;
  std::vector<Share> shares;
  Accel accel = Accel::kTcg;
  int memory_mib = 0;
};

struct VmJailPlan {
  sys::Jail qemu;
  sys::Jail net;
  std::string cgroup_dir;  // The leaf both join ("" none); remove it when the box stops.
  std::string notes;       // What was skipped and why (for debug logs).
};

// The name of a box's cgroup leaf (src/sys/jail.h CreateCgroupLeaf).
std::string CgroupLeafName(const std::string& box_id);

// Looks up the users, checks the shares and /dev/kvm as the chosen user, builds the filter
// and the cgroup leaf. Errors are one line with what to do.
Result<VmJailPlan> PlanVmJail(const VmJailInputs& inputs);

}  // namespace boxlite::vmm
