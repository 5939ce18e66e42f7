// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The jail every box's QEMU and boxlite-net start in (docs/security.md): what a child
// does between fork and exec to give up everything it does not need. A Jail is a plan,
// made before fork; Subprocess::Spawn (src/sys/subprocess.h) carries it out in the child
// with system calls only, in this order:
//   (cloned into a new pid namespace, root only) -> join the cgroup leaf (if any) -> new
//   user namespace (unprivileged callers, if the kernel allows) -> new mount/ipc/uts
//   namespaces (a /proc of its own with the pid namespace, or a minimal root) -> drop the
//   bounding set and ambient
//   capabilities -> switch to `identity` (root callers) -> no capabilities left at all ->
//   no_new_privs -> the seccomp filter -> close every descriptor but 0-2 and the passed
//   ones -> exec with the explicit environment.
// Any step that fails stops the child before exec (the spawn then fails with that errno),
// except the namespaces of an unprivileged caller, which the kernel may refuse (they are
// skipped then; JailReport says what the child got).
// Thread-safety: the functions here are thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "boxlite/result.h"
#include "boxlite/status.h"

namespace boxlite::sys {

// Who a jailed process runs as.
struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // Supplementary groups.
  std::string name;           // For messages ("boxlite", "alice", "uid 1000").
};

struct Jail {
  // Switch to this identity (needs root); nullopt keeps the caller's.
  std::optional<Identity> identity;
  // A seccomp program (raw BPF) installed before exec, under whatever filter the program
  // adds itself; empty: none. SetidDenyFilter() makes the one QEMU gets.
  std::vector<uint8_t> seccomp_filter;
  // New mount, ipc and uts namespaces. As root directly; otherwise inside a new user
  // namespace mapping only the caller's uid and gid, when the kernel allows one.
  bool new_namespaces = true;
  // With new_namespaces, for a root caller: also a new pid namespace of which the child is
  // the first process, with its own /proc (the caller still sees the child's real pid;
  // signals without a handler in the child, other than SIGKILL/SIGSTOP, do not reach it).
  bool new_pid_namespace = false;
  // With new_pid_namespace: the child's root is a read-only tmpfs holding only /usr (read
  // only; /bin, /lib... as on the host), /etc/ld.so.cache, resolv.conf, hosts, nsswitch.conf
  // and localtime, the /dev nodes null, zero, full, random, urandom and kvm, and its own
  // /proc. Whatever else it needs comes as descriptors; the program is exec'd from one.
  bool minimal_root = false;
  // With new_namespaces: also an empty network namespace (for a program that needs no
  // network of its own: QEMU reaches boxlite-net over a passed socket).
  bool new_network_namespace = false;
  // A cgroup v2 directory to move into before anything else ("" : stay).
  std::string cgroup_dir;
};

// A seccomp program (raw BPF, native architecture, made with libseccomp; default: allow)
// that fails with EPERM every chmod/fchmod/fchmodat/fchmodat2/open/openat/creat/mkdir/
// mkdirat/mknod/mknodat whose mode has S_ISUID or S_ISGID, so the program can never make a
// setuid/setgid file (9p shares), and openat2 with ENOSYS (its mode is out of reach of a
// filter; callers fall back to openat) and io_uring_setup with ENOSYS (io_uring's openat
// would bypass the filter; QEMU falls back to epoll). The functions below live in
// boxlite_jail.
Result<std::vector<uint8_t>> SetidDenyFilter();
// The raw BPF program of a libseccomp filter context (a scmp_filter_ctx), for a process
// that must install it where it cannot call libseccomp (after fork).
Result<std::vector<uint8_t>> ExportSeccompProgram(void* ctx);

// The identity for a name in the user database, with its primary group and no
// supplementary group; NotFound when there is no such user.
Result<Identity> LookupIdentity(const std::string& user);
// The identity owning uid (the user database's primary group, else `fallback_gid`).
Identity IdentityForUid(uid_t uid, gid_t fallback_gid);

// The system user root-started VMs run as, created when missing (useradd --system);
// a clear error naming the command to run when that fails.
constexpr char kJailUser[] = "boxlite";
Result<Identity> JailUserIdentity();

// Whether `identity` may access `path` with `mode` (R_OK|W_OK|X_OK, as access(2)),
// checked by a short-lived child that switches to it (needs root): every directory on
// the way and ACLs count. OK, or the errno as a Status.
Status CheckAccessAs(const Identity& identity, const std::string& path, int mode);

// A cgroup v2 leaf with memory.max and pids.max, under /sys/fs/cgroup/boxlite (root) or
// the caller's own cgroup when delegated to it. nullopt with `why` set when the host has
// no such cgroup for us (v1 hierarchy, controllers not enabled, not writable).
struct CgroupLimits {
  uint64_t memory_max_bytes = 0;
  uint64_t pids_max = 0;
};
std::optional<std::string> CreateCgroupLeaf(const std::string& name, const CgroupLimits& limits,
                                            std::string* why);
// Removes a leaf made by CreateCgroupLeaf once its processes are gone (best effort).
void RemoveCgroupLeaf(const std::string& dir);
// Where CreateCgroupLeaf puts `name` for root (so another process can remove it).
std::string RootCgroupLeaf(const std::string& name);

}  // namespace boxlite::sys
