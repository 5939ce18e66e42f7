// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/qemu.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

namespace boxlite::vmm {
namespace {

VmConfig BaseConfig(Accel accel) {
  VmConfig c;
  c.accel = accel;
  c.kernel = "/k/vmlinux";
  c.initramfs = "/k/initramfs.cpio";
  c.disk = "/proc/self/fd/5";
  c.console_log = "/boxes/a,b/console.log";
  c.agent_fds = {4};
  c.tsc_khz = 2596136;
  return c;
}

// The value following `flag`, or "" (the first occurrence).
std::string After(const std::vector<std::string>& argv, const std::string& flag, int nth = 0) {
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag && nth-- == 0) return argv[i + 1];
  }
  return "";
}

bool Contains(const std::vector<std::string>& argv, const std::string& item) {
  return std::find(argv.begin(), argv.end(), item) != argv.end();
}

TEST(QemuArgvTest, TcgUsesSoftwareCpuAndNoApicTimerOnOneVcpu) {
  auto argv = BuildQemuArgv(BaseConfig(Accel::kTcg)).value();
  EXPECT_EQ(argv[0], "qemu-system-x86_64");
  EXPECT_EQ(After(argv, "-accel"), "tcg");
  EXPECT_EQ(After(argv, "-cpu"), "max,erms=off,fsrm=off");
  EXPECT_TRUE(After(argv, "-M").rfind("microvm,acpi=off,x-option-roms=off", 0) == 0);
  std::string cmdline = After(argv, "-append");
  EXPECT_NE(cmdline.find("noapictimer"), std::string::npos);
  EXPECT_NE(cmdline.find("tsc_early_khz=2596136"), std::string::npos);
  EXPECT_NE(cmdline.find(" tsc=reliable"), std::string::npos);
  EXPECT_NE(cmdline.find("reboot=t"), std::string::npos);
  EXPECT_TRUE(Contains(argv, "-no-reboot"));
  EXPECT_TRUE(Contains(argv, "-nodefaults"));
}

TEST(QemuArgvTest, KvmUsesHostCpuAndKeepsApicTimer) {
  VmConfig c = BaseConfig(Accel::kKvm);
  c.cpus = 4;
  c.memory_mib = 2048;
  auto argv = BuildQemuArgv(c).value();
  EXPECT_EQ(After(argv, "-accel"), "kvm");
  EXPECT_EQ(After(argv, "-cpu"), "host");
  EXPECT_EQ(After(argv, "-smp"), "4");
  EXPECT_EQ(After(argv, "-m"), "2048");
  EXPECT_EQ(After(argv, "-append").find("noapictimer"), std::string::npos);
  // kvm-clock is the guest's clock: its TSC keeps the kernel's checks.
  EXPECT_EQ(After(argv, "-append").find("tsc=reliable"), std::string::npos);
}

TEST(QemuArgvTest, MultiVcpuTcgKeepsApicTimer) {
  VmConfig c = BaseConfig(Accel::kTcg);
  c.cpus = 2;
  EXPECT_EQ(After(BuildQemuArgv(c).value(), "-append").find("noapictimer"), std::string::npos);
}

TEST(QemuArgvTest, DevicesAreVirtioMmioOnly) {
  auto argv = BuildQemuArgv(BaseConfig(Accel::kTcg)).value();
  for (const auto& a : argv) {
    EXPECT_EQ(a.find("-pci"), std::string::npos) << a;
  }
  EXPECT_EQ(After(argv, "-device", 0), "virtio-blk-device,drive=disk0");
  EXPECT_EQ(After(argv, "-device", 1), "virtio-serial-device,max_ports=2");
  EXPECT_EQ(After(argv, "-device", 2), "virtserialport,chardev=agent,name=boxlite.agent,nr=1");
  // No NIC, no 9p unless asked; the balloon (free page reporting) is on every VM.
  EXPECT_EQ(After(argv, "-device", 3), "virtio-balloon-device,free-page-reporting=on");
  EXPECT_EQ(After(argv, "-device", 4), "");
  EXPECT_NE(After(argv, "-blockdev").find("\"filename\":\"/proc/self/fd/5\""), std::string::npos);
}

TEST(QemuArgvTest, AgentSocketConnectedOrListening) {
  VmConfig c = BaseConfig(Accel::kTcg);
  EXPECT_EQ(After(BuildQemuArgv(c).value(), "-chardev", 1), "socket,id=agent,fd=4,server=off");
  c.agent_listening = true;
  c.agent_fds = {4, 7};
  auto argv = BuildQemuArgv(c).value();
  EXPECT_EQ(After(argv, "-chardev", 1), "socket,id=agent,fd=4,server=on,wait=off");
  EXPECT_EQ(After(argv, "-chardev", 2), "socket,id=agent1,fd=7,server=on,wait=off");
  EXPECT_EQ(After(argv, "-device", 1), "virtio-serial-device,max_ports=3");
  EXPECT_EQ(After(argv, "-device", 3), "virtserialport,chardev=agent1,name=boxlite.agent.1,nr=2");
}

TEST(QemuArgvTest, CommasInPathsAreEscaped) {
  auto argv = BuildQemuArgv(BaseConfig(Accel::kTcg)).value();
  EXPECT_EQ(After(argv, "-chardev", 0), "file,id=console,path=/boxes/a,,b/console.log");
  EXPECT_EQ(QemuEscape("a,b,,c"), "a,,b,,,,c");
}

TEST(QemuArgvTest, SandboxIsAlwaysOn) {
  auto argv = BuildQemuArgv(BaseConfig(Accel::kKvm)).value();
  EXPECT_EQ(After(argv, "-sandbox"),
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
}

TEST(QemuArgvTest, SharesAndNetwork) {
  VmConfig c = BaseConfig(Accel::kTcg);
  c.shares.push_back({"m0", "/data,x", true});
  c.shares.push_back({"m1", "/rw", false});
  c.net_fd = 9;
  auto argv = BuildQemuArgv(c).value();
  EXPECT_EQ(After(argv, "-fsdev", 0),
            "local,id=share0,path=/data,,x,security_model=none,multidevs=remap,readonly=on");
  EXPECT_EQ(After(argv, "-fsdev", 1), "local,id=share1,path=/rw,security_model=none,multidevs=remap");
  EXPECT_EQ(After(argv, "-netdev"), "stream,id=net0,server=off,addr.type=fd,addr.str=9");
  EXPECT_TRUE(Contains(argv, "virtio-net-device,netdev=net0,mac=52:54:00:12:34:56"));
}

TEST(QemuArgvTest, NoNicWithoutNetworkSocket) {
  auto argv = BuildQemuArgv(BaseConfig(Accel::kTcg)).value();
  EXPECT_FALSE(Contains(argv, "-netdev"));
  for (const auto& a : argv) EXPECT_EQ(a.find("virtio-net"), std::string::npos) << a;
}

TEST(QemuArgvTest, RejectsBadConfigs) {
  VmConfig c = BaseConfig(Accel::kTcg);
  c.cpus = 0;
  EXPECT_TRUE(BuildQemuArgv(c).error().IsInvalidArgument());
  c = BaseConfig(Accel::kTcg);
  c.memory_mib = 16;
  EXPECT_TRUE(BuildQemuArgv(c).error().IsInvalidArgument());
  c = BaseConfig(Accel::kTcg);
  c.kernel.clear();
  EXPECT_TRUE(BuildQemuArgv(c).error().IsInvalidArgument());
  c = BaseConfig(Accel::kTcg);
  c.shares.push_back({std::string(40, 't'), "/x", false});
  EXPECT_TRUE(BuildQemuArgv(c).error().IsInvalidArgument());
}

TEST(QemuArgvTest, FilesComeAsFdSetsAndTheBaseIsAReadOnlyNode) {
  VmConfig c = BaseConfig(Accel::kTcg);
  c.fd_sets = {{10, 1}, {11, 1}, {12, 2}, {13, 3}};
  c.disk = "/dev/fdset/1";
  c.disk_backing = "/dev/fdset/2";
  c.console_log = "/dev/fdset/3";
  c.name = "boxlite-abc";
  auto argv = BuildQemuArgv(c).value();
  EXPECT_EQ(After(argv, "-add-fd", 0), "fd=10,set=1");
  EXPECT_EQ(After(argv, "-add-fd", 1), "fd=11,set=1");
  EXPECT_EQ(After(argv, "-add-fd", 2), "fd=12,set=2");
  EXPECT_EQ(After(argv, "-add-fd", 3), "fd=13,set=3");
  EXPECT_EQ(After(argv, "-name"), "boxlite-abc");
  auto base = nlohmann::json::parse(After(argv, "-blockdev", 0));
  EXPECT_EQ(base["node-name"], "base0");
  EXPECT_EQ(base["driver"], "raw");
  EXPECT_EQ(base["read-only"], true);
  EXPECT_EQ(base["file"]["filename"], "/dev/fdset/2");
  EXPECT_EQ(base["file"]["read-only"], true);
  auto disk = nlohmann::json::parse(After(argv, "-blockdev", 1));
  EXPECT_EQ(disk["node-name"], "disk0");
  EXPECT_EQ(disk["backing"], "base0");
  EXPECT_EQ(disk["file"]["filename"], "/dev/fdset/1");
  EXPECT_EQ(After(argv, "-chardev", 0), "file,id=console,path=/dev/fdset/3");
  // The fd sets are defined before anything that names them.
  auto at = [&](const std::string& item) {
    return std::find(argv.begin(), argv.end(), item) - argv.begin();
  };
  EXPECT_LT(at("-add-fd"), at("-blockdev"));
  EXPECT_LT(at("-add-fd"), at("-chardev"));
}

TEST(QemuArgvTest, WithoutABackingNodeTheDiskOpensNoBackingFile) {
  auto argv = BuildQemuArgv(BaseConfig(Accel::kTcg)).value();
  EXPECT_EQ(After(argv, "-blockdev", 1), "");
  // "backing": null: a backing file named in the qcow2 header is never opened.
  auto disk = nlohmann::json::parse(After(argv, "-blockdev"));
  ASSERT_TRUE(disk.contains("backing"));
  EXPECT_TRUE(disk["backing"].is_null());
  EXPECT_FALSE(Contains(argv, "-add-fd"));
}

TEST(QemuArgvTest, RejectsBadFdSetMembers) {
  VmConfig c = BaseConfig(Accel::kTcg);
  c.fd_sets = {{-1, 1}};
  EXPECT_TRUE(BuildQemuArgv(c).error().IsInvalidArgument());
}

// Memory snapshots: the monitor, RAM in a file we own, and the incoming state, for both
// accelerators (the KVM path is only unit-tested here: TCG is what these hosts run).
TEST(QemuArgvTest, MemorySnapshotDevicesForTcgAndKvm) {
  for (Accel accel : {Accel::kTcg, Accel::kKvm}) {
    VmConfig c = BaseConfig(accel);
    c.memory_mib = 1024;
    c.qmp_fd = 7;
    c.ram_fd = 8;
    c.incoming = true;
    auto argv = BuildQemuArgv(c).value();
    EXPECT_NE(After(argv, "-M").find(",memory-backend=ram0"), std::string::npos);
    EXPECT_EQ(After(argv, "-object"),
              "memory-backend-file,id=ram0,size=1024M,mem-path=/proc/self/fd/8,share=on");
    EXPECT_EQ(After(argv, "-m"), "1024");  // Must equal the backend's size.
    EXPECT_EQ(After(argv, "-mon"), "chardev=qmp,mode=control");
    EXPECT_TRUE(Contains(argv, "socket,id=qmp,fd=7,server=off"));
    EXPECT_EQ(After(argv, "-incoming"), "defer");
    EXPECT_TRUE(Contains(argv, "migration.store-global-state=off"));
    EXPECT_EQ(After(argv, "-accel"), accel == Accel::kKvm ? "kvm" : "tcg");
  }
}

TEST(QemuArgvTest, ForkMapsRamPrivatelyAndPersistentMonitorListens) {
  VmConfig c = BaseConfig(Accel::kKvm);
  c.qmp_fd = 9;
  c.qmp_listening = true;
  c.ram_fd = 10;
  c.ram_shared = false;
  auto argv = BuildQemuArgv(c).value();
  EXPECT_NE(After(argv, "-object").find(",share=off"), std::string::npos);
  EXPECT_TRUE(Contains(argv, "socket,id=qmp,fd=9,server=on,wait=off"));
  EXPECT_FALSE(Contains(argv, "-incoming"));
}

TEST(QemuArgvTest, NoMonitorOrRamFileUnlessAsked) {
  auto argv = BuildQemuArgv(BaseConfig(Accel::kTcg)).value();
  EXPECT_FALSE(Contains(argv, "-mon"));
  EXPECT_FALSE(Contains(argv, "-object"));
  EXPECT_EQ(After(argv, "-M").find("memory-backend"), std::string::npos);
  // The global state is never migrated (a restored VM waits for `cont`).
  EXPECT_TRUE(Contains(argv, "migration.store-global-state=off"));
  VmConfig incoming = BaseConfig(Accel::kTcg);
  incoming.incoming = true;  // Without a monitor nobody could feed it.
  EXPECT_FALSE(BuildQemuArgv(incoming).ok());
}

// Memory that comes back: every VM, on either accelerator and whatever its RAM (anonymous,
// a shared RAM file, a fork's private mapping: the device set must match the saved state),
// has one balloon device with free page reporting; it can be left out.
TEST(QemuArgvTest, FreePageReportingOnEveryVmForTcgAndKvm) {
  const std::string kBalloon = "virtio-balloon-device,free-page-reporting=on";
  for (Accel accel : {Accel::kTcg, Accel::kKvm}) {
    for (int ram : {-1, 0, 1}) {
      VmConfig c = BaseConfig(accel);
      if (ram >= 0) {
        c.qmp_fd = 7;
        c.ram_fd = 8;
        c.ram_shared = ram == 0;
      }
      auto argv = BuildQemuArgv(c).value();
      EXPECT_EQ(std::count(argv.begin(), argv.end(), kBalloon), 1);
      auto it = std::find(argv.begin(), argv.end(), kBalloon);
      ASSERT_NE(it, argv.begin());
      EXPECT_EQ(*(it - 1), "-device");
      EXPECT_EQ(After(argv, "-accel"), accel == Accel::kKvm ? "kvm" : "tcg");
    }
    VmConfig off = BaseConfig(accel);
    off.free_page_reporting = false;
    auto argv = BuildQemuArgv(off).value();
    for (const auto& item : argv) EXPECT_EQ(item.find("balloon"), std::string::npos) << item;
  }
}

}  // namespace
}  // namespace boxlite::vmm
