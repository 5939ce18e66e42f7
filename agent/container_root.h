// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// A container's root inside a box: under containerd, a pod is one box and each of its
// containers is a directory of that box holding the container's image (the shim copies it
// there, docs/kubernetes.md). An exec naming such a directory (ExecRequest::root_dir) runs
// chrooted in it, with its own /proc, a read-only /sys and the box's /dev (so /dev/shm and
// /dev/pts are the pod's), and the user resolved from its /etc/passwd and /etc/group.
//
// The mounts are made by the child in a private mount namespace of its own, just before
// the chroot: they exist only while a process of the container runs and leave nothing in
// the box's mount table, so removing a container's directory never reaches through a
// mount into the box's /dev or /proc. Not thread-safe beyond what the callers guarantee
// (the agent's loop is single-threaded).
#pragma once

#include <string>
#include <vector>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"
#include "src/protocol/messages.h"

namespace boxlite::agent {

struct ContainerRoot {
  base::UniqueFd dir;    // O_PATH | O_DIRECTORY of the root.
  std::string path;      // The same directory as the agent names it (beneath the box root).
  std::string box_root;  // The box's root as the agent names it.
  // Binds of box paths (sources, resolved inside the box's root) onto paths inside the
  // container's root (destinations, resolved inside it, so a symlink there never leads
  // out of it): made by EnterContainerRoot in the process's own mount namespace, in order.
  std::vector<protocol::ExecRequest::Mount> mounts;
};

// Opens `dir`, an absolute path inside the box, as a process chrooted at the box's root
// (`box_root_fd`, named `box_root` by the agent) would: symlinks and ".." are resolved
// inside that root, so the result is always beneath it. Makes proc, sys and dev in it when
// missing; any of them that is not a directory (a symlink included) is refused.
Result<ContainerRoot> OpenContainerRoot(int box_root_fd, const std::string& box_root,
                                        const std::string& dir);

// Checks `mounts` for the root `root` opened by OpenContainerRoot: each source exists in
// the box (a directory or a regular file), each destination is made when missing (a
// directory, or an empty file for a file source; its missing parents as directories)
// and must resolve strictly beneath the container's root and be of the source's kind.
// Destinations with "." or ".." components are refused.
Status PrepareContainerMounts(int box_root_fd, std::vector<protocol::ExecRequest::Mount> mounts,
                              ContainerRoot* root);

// What an exec request's root_dir names (and its container_mounts): nothing when
// root_dir is empty, else OpenContainerRoot's result; NotSupported off the box's machine
// (an in-process server serving a host directory starts no containers).
Result<ContainerRoot> ContainerRootOf(const protocol::ExecRequest& r, bool machine,
                                      int box_root_fd, const std::string& box_root);

// In the child after fork, before anything else touches the file system (system calls
// only): a private mount namespace, the box's /dev bound on the root's dev, the root's
// mounts bound (read-only when asked), chroot into the root, then proc on /proc and sysfs
// read-only on /sys. Returns 0, or an errno with `*step` naming the step that failed.
int EnterContainerRoot(const ContainerRoot& root, const char** step);

}  // namespace boxlite::agent
