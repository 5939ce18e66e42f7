// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The QEMU backend: a VmConfig describes one micro-VM; BuildQemuArgv turns it into a
// `qemu-system-x86_64 -M microvm` command line (virtio-mmio devices, PVH vmlinux,
// initramfs, one virtio-blk disk, the agent's virtio-serial port, 9p shares, a user-mode
// network attached over an inherited socket, the console to a file, a balloon that only
// reports freed pages) with QEMU's seccomp sandbox
// and no device the box does not need. Launch starts it supervised: the VM dies with its
// owner unless it is detached.
//
// Files and sockets are handed to QEMU as inherited descriptors: fd sets (`-add-fd`, named
// /dev/fdset/N: QEMU dups the member whose access mode it needs and opens nothing by path)
// for the disk, its base image and the console, /proc/self/fd/N for the kernel and
// initramfs. So an ephemeral box leaves nothing on disk even when its owner is killed, and a
// QEMU jailed as another user (src/vmm/vm_jail.h) needs no access to the box's directory.
// Thread-safety: BuildQemuArgv is pure; a VmHandle is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "boxlite/result.h"
#include "src/sys/subprocess.h"
#include "src/vmm/accel.h"

namespace boxlite::vmm {

struct Share {
  std::string tag;        // 9p mount tag the guest mounts.
  std::string host_path;  // Directory on the host.
  bool read_only = false;
  // The directory, open (list it in inherit_fds too): QEMU then gets /proc/self/fd/N,
  // needs no access to the directories above it and shares exactly the directory the
  // caller checked. -1: host_path.
  int fd = -1;
};

// One member of a QEMU fd set: QEMU picks the member whose O_ACCMODE matches its open.
struct FdSetMember {
  int fd = -1;
  int set = 0;
};

struct VmConfig {
  std::string qemu_binary = "qemu-system-x86_64";
  Accel accel = Accel::kTcg;
  int cpus = 1;
  int memory_mib = 1024;
  std::string kernel;     // Uncompressed vmlinux with a PVH note.
  std::string initramfs;  // Holds the agent as /init.
  uint32_t tsc_khz = 0;   // Host TSC frequency for tsc_early_khz; 0 omits it.
  std::string extra_kernel_args;
  std::string disk;       // qcow2 overlay path (or /dev/fdset/N).
  // The overlay's raw backing image as a read-only node of its own (or /dev/fdset/N);
  // empty: QEMU opens the path recorded in the overlay.
  std::string disk_backing;
  std::string console_log;  // File the serial console is written to.
  // The agent channels, one virtio-serial port each ("boxlite.agent", then
  // "boxlite.agent.1", ...): inherited descriptors. When `agent_listening`, they are
  // listening sockets QEMU accepts a client on at a time (persistent boxes, several host
  // processes); otherwise one end of a connected socket pair (ephemeral boxes).
  std::vector<int> agent_fds;
  bool agent_listening = false;
  bool console_append = false;  // Keep earlier boots' console output.
  std::vector<Share> shares;
  // User-mode networking: an inherited stream socket whose peer is the network helper
  // (NetHelper::qemu_end, src/vmm/net_helper.h); list it in inherit_fds too. -1: no NIC.
  int net_fd = -1;
  std::string mac = "52:54:00:12:34:56";
  // Descriptors the QEMU process inherits (the agent socket, disk, console...).
  std::vector<int> inherit_fds;
  // Fd sets (list their descriptors in inherit_fds too).
  std::vector<FdSetMember> fd_sets;
  // Shown by `ps` and in QEMU's messages: "boxlite-<box id>".
  std::string name;
  // --- Memory snapshots (src/runtime/box_memory.cc) ---
  // QEMU's monitor (QMP) on an inherited stream socket (list it in inherit_fds too): a
  // listening socket when `qmp_listening` (persistent boxes: qmp.sock, one client at a
  // time), else one end of a connected pair. -1: no monitor.
  int qmp_fd = -1;
  bool qmp_listening = false;
  // Guest RAM in a memory-backend-file on this inherited descriptor (a memfd of exactly
  // memory_mib; list it in inherit_fds too), reopened as /proc/self/fd/N. -1: anonymous RAM.
  int ram_fd = -1;
  // share=on: the guest writes into the file (it can be saved by copying the file, with
  // x-ignore-shared). false: a private copy-on-write mapping of it (forks of one sealed
  // file: the guest's writes stay in QEMU's own memory).
  bool ram_shared = true;
  // Start paused, waiting for `migrate-incoming` on the monitor (-incoming defer).
  bool incoming = false;
  // --- Memory that comes back (docs/benchmarks.md, "Density") ---
  // A virtio-balloon device with free page reporting: the guest kernel reports pages it
  // has freed and QEMU discards them (madvise, and a hole punched in a RAM file), so a
  // box's RSS falls after its processes free memory. The balloon is never inflated. Part
  // of the device set, so of template keys and memory snapshot checks.
  bool free_page_reporting = true;
};

// The kernel command line for a config (exposed for tests and `boxlite info`).
std::string KernelCommandLine(const VmConfig& config);
Result<std::vector<std::string>> BuildQemuArgv(const VmConfig& config);

// Escapes a value for QEMU's option syntax ("a,b" -> "a,,b").
std::string QemuEscape(std::string_view value);

// The host's TSC frequency in kHz from /proc/cpuinfo, or 0 when unknown.
uint32_t HostTscKhz();

struct LaunchOptions {
  bool die_with_owner = true;  // PR_SET_PDEATHSIG; false for detached boxes.
  int stderr_fd = -1;          // Where QEMU's own messages go; -1 discards them.
  sys::Jail jail;              // src/vmm/vm_jail.h plans it.
};

// Starts QEMU in `options.jail` with an empty environment. The result owns the process: destroying it kills the VM unless Detach()ed.
Result<sys::Subprocess> LaunchQemu(const VmConfig& config, const LaunchOptions& options);

}  // namespace boxlite::vmm
