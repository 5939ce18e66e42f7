// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/vm_jail.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"

namespace boxlite::vmm {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;
// Beyond guest RAM: QEMU itself, TCG's translation cache (up to 1 GiB) and boxlite-net.
constexpr uint64_t kOverheadBytes = 2048 * kMiB;
// QEMU's vCPU, I/O and 9p worker threads plus boxlite-net, with room to spare.
constexpr uint64_t kPidsMax = 1024;

std::optional<gid_t> KvmGroup() {
  struct stat st;
  if (::stat("/dev/kvm", &st) != 0) return std::nullopt;
  return st.st_gid;
}

}  // namespace

RunAs ChooseQemuRunAs(bool caller_is_root, const std::vector<ShareOwnership>& shares,
                      uid_t* owner, gid_t* group) {
  if (!caller_is_root) return RunAs::kCaller;
  std::optional<uid_t> one_owner;
  gid_t one_group = 0;
  for (const auto& s : shares) {
    if (s.read_only) continue;
    if (s.owner == 0 || (one_owner && *one_owner != s.owner)) return RunAs::kJailUser;
    if (!one_owner) {
      one_owner = s.owner;
      one_group = s.group;
    }
  }
  if (!one_owner) return RunAs::kJailUser;
  *owner = *one_owner;
  *group = one_group;
  return RunAs::kShareOwner;
}

void AddKvmGroup(Accel accel, std::optional<gid_t> kvm_group, sys::Identity* identity) {
  if (accel != Accel::kKvm || !kvm_group || *kvm_group == 0) return;
  auto& g = identity->groups;
  if (std::find(g.begin(), g.end(), *kvm_group) == g.end()) g.push_back(*kvm_group);
}

std::string CgroupLeafName(const std::string& box_id) { return "box-" + box_id; }

Result<VmJailPlan> PlanVmJail(const VmJailInputs& inputs) {
  VmJailPlan plan;
  bool root = ::geteuid() == 0;
  std::vector<ShareOwnership> owners;
  for (const auto& share : inputs.shares) {
    struct stat st;
    if ((share.fd >= 0 ? ::fstat(share.fd, &st) : ::stat(share.host_path.c_str(), &st)) != 0) {
      return sys::ErrnoStatus(errno, "share %s", share.host_path.c_str());
    }
    owners.push_back({share.host_path, share.read_only, st.st_uid, st.st_gid});
  }
  uid_t owner = 0;
  gid_t group = 0;
  RunAs run_as = ChooseQemuRunAs(root, owners, &owner, &group);
  if (root) {
    BOXLITE_ASSIGN_OR_RETURN(sys::Identity jail_user, sys::JailUserIdentity());
    sys::Identity qemu_user =
        run_as == RunAs::kShareOwner ? sys::IdentityForUid(owner, group) : jail_user;
    AddKvmGroup(inputs.accel, KvmGroup(), &qemu_user);
    if (inputs.accel == Accel::kKvm) {
      Status kvm = sys::CheckAccessAs(qemu_user, "/dev/kvm", R_OK | W_OK);
      if (!kvm.ok()) {
        return Status::FailedPrecondition(
            "/dev/kvm is not usable by " + qemu_user.name + ", which runs the VM",
            "give /dev/kvm to a group (chgrp kvm /dev/kvm; chmod 0660 /dev/kvm), or set "
            "BOXLITE_ACCEL=tcg");
      }
    }
    for (size_t i = 0; i < owners.size(); ++i) {
      const ShareOwnership& s = owners[i];
      int mode = R_OK | X_OK | (s.read_only ? 0 : W_OK);
      // What QEMU will open: the descriptor's directory itself when there is one.
      int fd = inputs.shares[i].fd;
      std::string seen = fd >= 0 ? base::StrFormat("/proc/self/fd/%d", fd) : s.path;
      if (sys::CheckAccessAs(qemu_user, seen, mode).ok()) continue;
      std::string who = base::StrFormat("%s (uid %u)", qemu_user.name.c_str(), qemu_user.uid);
      if (s.read_only) {
        return Status::FailedPrecondition(
            "share " + s.path + " is not readable by " + who + ", which runs the VM",
            "make it and its parent directories readable by that user");
      }
      return Status::FailedPrecondition(
          "read-write share " + s.path + " is not writable by " + who + ", which runs the VM",
          "a read-write share must belong to a non-root user (the same one for all of a "
          "box's read-write shares): chown -R USER " + s.path + ", or mount it read-only (:ro)");
    }
    plan.qemu.identity = qemu_user;
    plan.net.identity = jail_user;
  }
  BOXLITE_ASSIGN_OR_RETURN(plan.qemu.seccomp_filter, sys::SetidDenyFilter());
  // boxlite-net gets it too (it never needs those modes); its own allowlist stacks on top.
  plan.net.seccomp_filter = plan.qemu.seccomp_filter;
  plan.qemu.new_namespaces = true;
  plan.net.new_namespaces = true;
  // QEMU needs no network of its own (boxlite-net's socket is passed): a compromised
  // QEMU reaches neither the host's loopback services nor the outside.
  plan.qemu.new_network_namespace = true;
  // Root-started boxes share one uid (or their shares' owner's): a pid namespace with its
  // own /proc keeps each box's processes from seeing, signalling or tracing another's.
  plan.qemu.new_pid_namespace = root;
  plan.net.new_pid_namespace = root;
  // And a root of their own: /usr, a few /etc files and /dev nodes; the box's files come
  // as descriptors, so nothing of the host's homes, /tmp or /etc is visible.
  plan.qemu.minimal_root = root;
  plan.net.minimal_root = root;
  sys::CgroupLimits limits;
  limits.memory_max_bytes = static_cast<uint64_t>(std::max(inputs.memory_mib, 0)) * kMiB +
                            kOverheadBytes;
  limits.pids_max = kPidsMax;
  std::string why;
  if (auto leaf = sys::CreateCgroupLeaf(CgroupLeafName(inputs.box_id), limits, &why)) {
    plan.cgroup_dir = *leaf;
    plan.qemu.cgroup_dir = *leaf;
    plan.net.cgroup_dir = *leaf;
  } else {
    plan.notes = "no cgroup limits: " + why;
  }
  return plan;
}

}  // namespace boxlite::vmm
