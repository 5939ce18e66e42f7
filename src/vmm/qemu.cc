// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/qemu.h"

#include <fcntl.h>

#include <cerrno>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::vmm {

std::string QemuEscape(std::string_view value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

uint32_t HostTscKhz() {
  auto cpuinfo = sys::ReadFile("/proc/cpuinfo");
  if (!cpuinfo.ok()) return 0;
  for (const auto& line : base::Split(*cpuinfo, '\n')) {
    if (!line.starts_with("cpu MHz")) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string_view text = base::Trim(std::string_view(line).substr(colon + 1));
    double mhz = 0;
    if (std::from_chars(text.data(), text.data() + text.size(), mhz).ec != std::errc()) continue;
    if (mhz > 0) return static_cast<uint32_t>(std::lround(mhz * 1000));
  }
  return 0;
}

std::string KernelCommandLine(const VmConfig& config) {
  // Measured under TCG (docs/design.md): no ACPI, triple-fault reboot with -no-reboot
  // to stop, quiet console, no crypto self-tests, and an early TSC frequency so
  // calibration cannot hang on a busy host.
  std::string args =
      "console=ttyS0 reboot=t panic=-1 quiet loglevel=1 cryptomgr.notests rodata=off "
      "no_timer_check i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd";
  if (config.accel == Accel::kTcg) {
    // Without a local APIC timer the guest falls back to the PIT; measured 0.2 s faster
    // under TCG. KVM keeps the APIC timer, which multi-vCPU guests need.
    if (config.cpus == 1) args += " noapictimer";
    // TCG's TSC is the host's own counter, which QEMU never lets go backwards
    // (cpu_get_ticks keeps the largest value read), so it needs no watchdog. The
    // watchdog compares it with jiffies, and on a busy host QEMU delivers PIT ticks late:
    // with four boxes booting beside two compilers on two cores, every guest declared its
    // TSC unstable within seconds and fell back to refined-jiffies (10 ms clock steps,
    // clock_gettime a system call, sched_clock unstable). KVM guests use kvm-clock.
    args += " tsc=reliable";
  }
  if (config.tsc_khz > 0) args += base::StrFormat(" tsc_early_khz=%u", config.tsc_khz);
  if (!config.extra_kernel_args.empty()) args += " " + config.extra_kernel_args;
  return args;
}

Result<std::vector<std::string>> BuildQemuArgv(const VmConfig& config) {
  if (config.kernel.empty() || config.initramfs.empty()) {
    return Status::InvalidArgument("VM config needs a kernel and an initramfs");
  }
  if (config.disk.empty()) return Status::InvalidArgument("VM config needs a disk");
  if (config.agent_fds.empty() || config.agent_fds.size() > 30) {
    return Status::InvalidArgument("VM config needs 1..30 agent sockets");
  }
  if (config.cpus < 1 || config.cpus > 16) {
    return Status::InvalidArgument(base::StrFormat("cpus must be 1..16, not %d", config.cpus));
  }
  if (config.memory_mib < 64) {
    return Status::InvalidArgument(
        base::StrFormat("memory must be at least 64 MiB, not %d", config.memory_mib));
  }
  if (config.incoming && config.qmp_fd < 0) {
    return Status::InvalidArgument("an incoming VM needs a monitor to receive its state on");
  }
  std::vector<std::string> argv = {config.qemu_binary};
  auto add = [&argv](std::initializer_list<std::string> items) {
    for (const auto& item : items) argv.push_back(item);
  };
  std::string machine = "microvm,acpi=off,x-option-roms=off,rtc=on,isa-serial=on,pic=on,pit=on";
  if (config.ram_fd >= 0) machine += ",memory-backend=ram0";
  add({"-M", machine});
  if (config.accel == Accel::kKvm) {
    add({"-accel", "kvm", "-cpu", "host"});
  } else {
    // Without ERMS/FSRM the guest kernel and libc copy and clear memory with unrolled
    // 8-byte moves instead of `rep movsb`/`rep stosb`, which TCG runs one byte per
    // iteration: measured stdout 141 -> 400 MB/s and the raw port stream 330 -> 1165 MB/s.
    add({"-accel", "tcg", "-cpu", "max,erms=off,fsrm=off"});
  }
  add({"-m", std::to_string(config.memory_mib), "-smp", std::to_string(config.cpus)});
  add({"-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-msg", "timestamp=off"});
  if (!config.name.empty()) add({"-name", QemuEscape(config.name)});
  for (const FdSetMember& m : config.fd_sets) {
    if (m.fd < 0 || m.set < 0) return Status::InvalidArgument("bad fd set member");
    add({"-add-fd", base::StrFormat("fd=%d,set=%d", m.fd, m.set)});
  }
  if (config.ram_fd >= 0) {
    // The guest's RAM is a file we hand over (a memfd): a memory snapshot copies it, a
    // restore fills a new one, forks map one sealed file copy-on-write (share=off).
    add({"-object",
         base::StrFormat("memory-backend-file,id=ram0,size=%dM,mem-path=/proc/self/fd/%d,share=%s",
                         config.memory_mib, config.ram_fd, config.ram_shared ? "on" : "off")});
  }
  if (config.qmp_fd >= 0) {
    add({"-chardev",
         base::StrFormat("socket,id=qmp,fd=%d,server=%s%s", config.qmp_fd,
                         config.qmp_listening ? "on" : "off",
                         config.qmp_listening ? ",wait=off" : ""),
         "-mon", "chardev=qmp,mode=control"});
  }
  // Migration state without the run state: a restored VM starts paused until told `cont`.
  add({"-global", "migration.store-global-state=off"});
  if (config.incoming) add({"-incoming", "defer"});
  add({"-kernel", config.kernel, "-initrd", config.initramfs, "-append",
       KernelCommandLine(config)});
  add({"-chardev",
       "file,id=console,path=" + QemuEscape(config.console_log) +
           (config.console_append ? ",append=on" : ""),
       "-serial", "chardev:console"});
  nlohmann::json disk = {{"driver", "qcow2"},
                         {"node-name", "disk0"},
                         {"discard", "unmap"},
                         {"file", {{"driver", "file"}, {"filename", config.disk}}}};
  if (!config.disk_backing.empty()) {
    // The base image as a read-only node of its own: QEMU never opens the path the
    // overlay records (under the caller's private home).
    nlohmann::json base = {
        {"driver", "raw"},
        {"node-name", "base0"},
        {"read-only", true},
        {"file", {{"driver", "file"}, {"filename", config.disk_backing}, {"read-only", true}}}};
    add({"-blockdev", base.dump()});
    disk["backing"] = "base0";
  } else {
    // A standalone disk (an imported box): whatever backing file its header might name is
    // never opened.
    disk["backing"] = nullptr;
  }
  add({"-blockdev", disk.dump(), "-device", "virtio-blk-device,drive=disk0"});
  add({"-device",
       base::StrFormat("virtio-serial-device,max_ports=%zu", config.agent_fds.size() + 1)});
  for (size_t i = 0; i < config.agent_fds.size(); ++i) {
    std::string id = i == 0 ? "agent" : base::StrFormat("agent%zu", i);
    std::string name = i == 0 ? "boxlite.agent" : base::StrFormat("boxlite.agent.%zu", i);
    add({"-chardev",
         base::StrFormat("socket,id=%s,fd=%d,server=%s%s", id.c_str(), config.agent_fds[i],
                         config.agent_listening ? "on" : "off",
                         config.agent_listening ? ",wait=off" : ""),
         "-device",
         base::StrFormat("virtserialport,chardev=%s,name=%s,nr=%zu", id.c_str(), name.c_str(),
                         i + 1)});
  }
  for (size_t i = 0; i < config.shares.size(); ++i) {
    const Share& share = config.shares[i];
    if (share.tag.empty() || share.tag.size() > 31) {
      return Status::InvalidArgument("9p mount tag must be 1..31 bytes", share.tag);
    }
    std::string id = base::StrFormat("share%zu", i);
    add({"-fsdev",
         // multidevs=remap: inode numbers stay distinct across the file systems mounted
         // beneath a share (a pod's volumes, docs/kubernetes.md).
         base::StrFormat("local,id=%s,path=%s,security_model=none,multidevs=remap%s", id.c_str(),
                         QemuEscape(share.fd >= 0 ? base::StrFormat("/proc/self/fd/%d", share.fd)
                                                  : share.host_path)
                             .c_str(),
                         share.read_only ? ",readonly=on" : ""),
         "-device",
         base::StrFormat("virtio-9p-device,fsdev=%s,mount_tag=%s", id.c_str(),
                         QemuEscape(share.tag).c_str())});
  }
  if (config.net_fd >= 0) {
    // QEMU 7.2's stream netdev takes a connected socket as addr.type=fd; the framing is
    // a 4-byte big-endian length before each frame (src/net/stream_framing.h).
    add({"-netdev",
         base::StrFormat("stream,id=net0,server=off,addr.type=fd,addr.str=%d", config.net_fd),
         "-device", "virtio-net-device,netdev=net0,mac=" + config.mac});
  }
  if (config.free_page_reporting) {
    // A fork maps a sealed file privately (ram_shared=false): QEMU's discard punches the
    // file first, which the seal refuses, so a fork's freed pages stay; the file, shared
    // with its siblings, is never changed. The device stays: the saved state has it.
    add({"-device", "virtio-balloon-device,free-page-reporting=on"});
  }
  // QEMU's own seccomp filter: no obsolete syscalls, no privilege changes, no spawning
  // processes, no resource-control calls.
  add({"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"});
  return argv;
}

Result<sys::Subprocess> LaunchQemu(const VmConfig& config, const LaunchOptions& options) {
  BOXLITE_ASSIGN_OR_RETURN(auto argv, BuildQemuArgv(config));
  sys::SpawnOptions spawn;
  spawn.argv = std::move(argv);
  // Nothing of the caller's environment (API keys...): QEMU needs none of it.
  spawn.env = std::vector<std::string>();
  spawn.jail = options.jail;
  spawn.keep_fds = config.inherit_fds;
  spawn.die_with_parent = options.die_with_owner;
  spawn.new_session = !options.die_with_owner;
  // The VM is ours to stop: a Ctrl-C at the user's terminal goes to the foreground
  // process group, and the VM must not be part of it.
  spawn.new_process_group = true;
  spawn.stderr_fd = options.stderr_fd;
  spawn.stdout_fd = options.stderr_fd;
  auto child = sys::Subprocess::Spawn(spawn);
  if (!child.ok()) {
    if (child.error().IsNotFound()) {
      return Status::NotFound(config.qemu_binary + " is not installed",
                              "install the qemu-system-x86 package");
    }
    return child.error().Wrap("start " + config.qemu_binary);
  }
  return child;
}

}  // namespace boxlite::vmm
