// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// What the agent does as PID 1 before and while serving: mounting the early file
// systems, finding the agent port, mounting and preparing the box's root file system,
// applying the box configuration, and powering off. Called from the agent's one thread.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "boxlite/status.h"
#include "src/base/unique_fd.h"
#include "src/protocol/messages.h"

namespace boxlite::agent {

// Where the box disk is mounted; every exec chroots here.
constexpr char kRootfs[] = "/run/rootfs";

// Mounts /proc, /sys, /dev, /dev/pts, /dev/shm, /tmp and /run of the initramfs and points
// stdout/stderr at the console.
Status MountEarly();
// The cgroup of all user processes (its pids.max is the box's pids limit).
constexpr char kUserCgroup[] = "/sys/fs/cgroup/box";
// The agent's nice value: above the box's processes, which run at 0 in a cgroup of
// the lowest cpu.weight.
constexpr int kAgentNice = -10;
// The directory of the cgroup the next exec is born into (clone3's CLONE_INTO_CGROUP;
// or its cgroup.procs, written by the child): a child of kUserCgroup of its own (one
// left empty by an earlier exec is reused), so that the CPU is shared between execs, not
// between processes, and a fork bomb in one exec leaves the next one its share;
// kUserCgroup itself when the kernel has no cpu controller. The descriptor is the
// agent's own (kept open) or one opened into *owned; -1 on failure. *id is set to the
// cgroup's number (kUserCgroup/e<id>), or -1 when it is not one of those.
//
// A cgroup that ReleaseExecCgroup() found empty is taken without reading anything: an
// exec then spends no system call here. Otherwise each known cgroup's cgroup.events is
// read until an empty one is found.
int ExecCgroupDir(base::UniqueFd* owned, int* id);
// The process an exec started in cgroup `id` has been reaped: its cgroup.events is read
// now, and the cgroup is kept as known empty when no process (a descendant still
// running) is left in it. Call it after the exit event has left, where it delays no
// answer. Only the agent puts processes into these cgroups (clone3, or the child's own
// write of cgroup.procs), so a cgroup stays empty until ExecCgroupDir() hands it out;
// a process a user in the box moved there by hand only shares the next exec's CPU share.
void ReleaseExecCgroup(int id);

// The /dev paths of the agent's virtio-serial ports: "boxlite.agent" first, then
// "boxlite.agent.1", "boxlite.agent.2", ... in order.
Status FindAgentPorts(std::vector<std::string>* paths);
// Mounts the box disk (/dev/vda, ext4) at kRootfs and starts growing it to fill the disk
// in a child process (EXT4_IOC_RESIZE_FS).
Status MountRootfs();
// Returns once the root file system has grown to the disk's size. Call before anything
// that writes to it on behalf of the user (exec, put_file).
void WaitForRootfs();
// Tells boot bookkeeping that PID 1 reaped `pid`, so nothing waits for it (or for a
// later process that reuses its number).
void NoteChildReaped(pid_t pid);
// Mounts /proc, /sys, /dev, /dev/pts, /dev/shm inside kRootfs.
Status PrepareRootfs();
// Applies the once-per-boot configuration from the host's hello.
Status ApplyBoxConfig(const protocol::BoxConfig& config);
// After a memory restore or a fork (op "refresh"): credits the host's entropy to the
// kernel's pool and reseeds it, steps the wall clock, and takes the new hostname (also
// in /etc/hosts).
Status ApplyRefresh(const protocol::RefreshRequest& refresh);
// Logs to the console (the box's console.log on the host).
void ConsoleLog(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Flushes file systems and stops the VM. Never returns.
[[noreturn]] void PowerOff();
// Logs the failure and stops the VM (PID 1 must never exit). Never returns.
[[noreturn]] void Fatal(const Status& status);

}  // namespace boxlite::agent
