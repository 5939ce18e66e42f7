// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Booting a box's VM (BoxImpl::LaunchLocked), as named steps that run in order and fill
// one LaunchPlan:
//   PrepareLaunchLocked   guest assets, accelerator, image, disk size
//   OpenBoxFilesLocked    the disk overlay (src/vmm/disk.h), console and QEMU logs, the
//                         agent's sockets
//   AttachDevicesLocked   disks, console writer, kernel and initramfs as descriptors
//   ShareMountsLocked     9p shares and the guest's mount list
//   PlanJailLocked        who QEMU and boxlite-net run as (src/vmm/vm_jail.h)
//   StartNetworkLocked    boxlite-net and the guest network plan (src/net/guest_network.h)
//   StartVmLocked         QEMU
//   SaveLaunchRecordLocked  a persistent box's record with the VM's pids
//   GreetGuestLocked      the agent channel and the hello that configures the guest
//   FinishLaunchLocked    timings, the main command, health checks
// Rollback: until QEMU runs, everything started is owned by the plan (descriptors, the
// network helper's process) and goes with it when a step fails. From QEMU on, a failed
// step calls RollBackLaunchLocked, which stops the VM and the helper and marks the box
// stopped. The stage timings are those of BoxMetrics (docs/metrics.md).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/base/strings.h"
#include "src/runtime/box_impl.h"
#include "src/runtime/box_secrets.h"
#include "src/runtime/console_log.h"
#include "src/runtime/home_tmp.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/sys/unix_socket.h"
#include "src/vmm/disk.h"
#include "src/vmm/net_helper.h"
#include "src/vmm/qemu.h"
#include "src/vmm/vm_jail.h"

namespace boxlite::runtime {
namespace {

constexpr int64_t kMiB = 1024 * 1024;
// User processes in a box share this many pids: a fork bomb stalls inside its box.
constexpr int64_t kDefaultPidsMax = 4096;

int64_t Millis(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// Creates a file that only its descriptor names: opened, then unlinked at once.
Result<base::UniqueFd> AnonymousFile(const std::string& dir, const std::string& name) {
  std::string path = sys::JoinPath(dir, name);
  BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(path, O_RDWR | O_CREAT | O_EXCL, 0600));
  ::unlink(path.c_str());
  return fd;
}

}  // namespace

// What the steps hand on to each other. Owns every descriptor and process started before
// QEMU: a step that fails returns, and these close or end with the plan.
struct BoxImpl::LaunchPlan {
  LaunchStages stages;
  Clock::time_point t0 = Clock::now();
  Clock::time_point t_image, t_files, t_launched;
  Clock::duration kernel_open{};  // Counted in guest rootfs, not box config.
  vmm::GuestAssets assets;
  vmm::AccelChoice accel;
  std::string tmp;              // <home>/tmp: an ephemeral box's files, unlinked when open.
  // Held while files of this box exist by name in tmp/: a sweep spares them
  // (src/runtime/home_tmp.h).
  std::optional<sys::FileLock> tmp_window;
  std::string backing;          // The base image the overlay reads through to.
  base::UniqueFd disk;          // The overlay, until QEMU holds it.
  std::vector<base::UniqueFd> guest_ends;  // The agent sockets' ends QEMU gets.
  base::UniqueFd host_end;      // An ephemeral box's end of the agent channel.
  std::vector<base::UniqueFd> passed;      // Other descriptors QEMU inherits.
  vmm::VmConfig config;
  protocol::BoxConfig box_config;
  vmm::VmJailPlan jail;
  std::optional<vmm::NetHelper> net;
  MemoryLaunch memory;  // The monitor, RAM and (restores) image (box_memory.cc).
  WarmChoice warm;  // Warm start (box_warm.cc).

  // The launch's timeline: each step's end (logged at debug level when the box is up).
  std::vector<std::pair<const char*, Clock::time_point>> timeline;
  int64_t guest_uptime_ms = -1;  // The guest's clock when it answered the hello.
  void Mark(const char* step) { timeline.emplace_back(step, Clock::now()); }

  // Keeps `fd` open until QEMU is started and lists it for QEMU to inherit.
  int Pass(base::UniqueFd fd) {
    config.inherit_fds.push_back(fd.get());
    passed.push_back(std::move(fd));
    return passed.back().get();
  }
};

Status BoxImpl::LaunchLocked(const MemoryImage* image) {
  // Warm start (box_warm.cc): a template that does not restore is removed and the box
  // boots instead.
  std::string failed_template;
  Status launched = LaunchOnceLocked(image, image ? nullptr : &failed_template);
  if (launched.ok() || failed_template.empty()) return launched;
  DropWarmTemplateLocked(failed_template, launched);
  return LaunchOnceLocked(image, nullptr);
}

Status BoxImpl::LaunchOnceLocked(const MemoryImage* image, std::string* failed_template) {
  LaunchPlan plan;
  plan.memory.image = image;
  BOXLITE_RETURN_IF_ERROR(PrepareLaunchLocked(plan));
  if (failed_template) {
    // The template of this boot, when there is one, is the image.
    BOXLITE_RETURN_IF_ERROR(ChooseWarmLocked(plan.assets, plan.accel.accel, &plan.warm));
    if (plan.warm.restore) image = plan.memory.image = &plan.warm.image;
  }
  // A failure from here on with a template in use: the caller drops it and boots.
  base::ScopeExit note_failure([&] {
    if (plan.warm.restore && failed_template) *failed_template = plan.warm.restore->record.key;
  });
  plan.Mark("image resolved");
  if (image) BOXLITE_RETURN_IF_ERROR(CheckMemoryImageLocked(*image, plan.memory));
  BOXLITE_RETURN_IF_ERROR(OpenBoxFilesLocked(plan));
  plan.Mark("overlay+logs+sockets");
  BOXLITE_RETURN_IF_ERROR(AttachDevicesLocked(plan));
  plan.Mark("descriptors+console writer");
  BOXLITE_RETURN_IF_ERROR(AttachMemoryLocked(plan.config, plan.memory));
  BOXLITE_RETURN_IF_ERROR(ShareMountsLocked(plan));
  plan.Mark("memory+shares");
  BOXLITE_RETURN_IF_ERROR(PlanJailLocked(plan));
  plan.Mark("jail planned");
  BOXLITE_RETURN_IF_ERROR(StartNetworkLocked(plan));
  plan.Mark("network");
  BOXLITE_RETURN_IF_ERROR(StartVmLocked(plan));
  plan.Mark("qemu exec'd in its jail");
  plan.memory.passed.clear();
  // QEMU runs: from here a failure stops it again.
  if (Status received = image ? ReceiveMemoryLocked(plan.memory) : Status::OK(); !received.ok()) {
    RollBackLaunchLocked();
    return received;
  }
  if (Status saved = SaveLaunchRecordLocked(); !saved.ok()) {
    RollBackLaunchLocked();
    return saved;
  }
  if (Status greeted = GreetGuestLocked(plan); !greeted.ok()) {
    Status explained = greeted.IsUnavailable() ? DeathStatus(greeted) : greeted;
    RollBackLaunchLocked();
    return explained;
  }
  if (Status refreshed = image ? RefreshGuestLocked() : Status::OK(); !refreshed.ok()) {
    Status explained = refreshed.IsUnavailable() ? DeathStatus(refreshed) : refreshed;
    RollBackLaunchLocked();
    return explained;
  }
  plan.Mark("hello answered");
  note_failure.Cancel();
  return FinishLaunchLocked(plan);
}

Status BoxImpl::PrepareLaunchLocked(LaunchPlan& plan) {
  BOXLITE_ASSIGN_OR_RETURN(plan.assets, runtime_->Assets());
  BOXLITE_ASSIGN_OR_RETURN(plan.accel, runtime_->Accel());
  auto t_assets = Clock::now();
  plan.stages.guest_rootfs_ms = Millis(t_assets - plan.t0);
  if (!image_) {
    BOXLITE_ASSIGN_OR_RETURN(ResolvedImage img, runtime_->ResolveImage(options_));
    image_ = std::move(img);
  }
  plan.t_image = Clock::now();
  plan.stages.image_prepare_ms = Millis(plan.t_image - t_assets);
  int64_t base_mib = static_cast<int64_t>((image_->rootfs_bytes + kMiB - 1) / kMiB);
  if (disk_size_mib_ == 0) {
    // The default: the image plus 1 GiB free. Bases built with that headroom already are
    // used at their own size, so the guest has nothing to grow at boot; older bases grow.
    constexpr int64_t kFreeMib = 1024;
    int64_t built_in_mib = static_cast<int64_t>(image_->headroom_bytes) / kMiB;
    disk_size_mib_ = options_.disk_size_mib > 0
                         ? options_.disk_size_mib
                         : base_mib + std::max<int64_t>(0, kFreeMib - built_in_mib);
  }
  if (disk_size_mib_ < base_mib) {
    return Status::InvalidArgument(base::StrFormat(
        "disk_size %lld MiB is smaller than the image's file system (%lld MiB)",
        static_cast<long long>(disk_size_mib_), static_cast<long long>(base_mib)));
  }
  plan.tmp = runtime_->TmpDir();
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(plan.tmp, 0700));
  BOXLITE_ASSIGN_OR_RETURN(plan.tmp_window, EnterTmpWindow(plan.tmp));
  return Status::OK();
}

Status BoxImpl::OpenBoxFilesLocked(LaunchPlan& plan) {
  if (record_.standalone_disk) {
    // An imported box (src/runtime/box_import.cc): its disk is one standalone qcow2, checked
    // at import to name no backing file, and QEMU is given none.
    BOXLITE_ASSIGN_OR_RETURN(plan.disk, sys::Open(DirPath("disk.qcow2"), O_RDWR | O_CLOEXEC));
  } else {
    BOXLITE_RETURN_IF_ERROR(OpenOverlayLocked(plan));
  }
  return OpenLogsAndSocketsLocked(plan);
}

Status BoxImpl::OpenOverlayLocked(LaunchPlan& plan) {
  // The per-box disk: a qcow2 overlay whose writes never reach the shared base.
  vmm::DiskOverlay overlay;
  overlay.path = persistent() ? DirPath("disk.qcow2") : sys::JoinPath(plan.tmp, id_ + ".qcow2");
  overlay.backing = image_->rootfs_path;
  overlay.size_mib = disk_size_mib_;
  overlay.keep = persistent();
  if (!persistent() && image_->rootfs_path.ends_with(".ext4")) {
    // Beside the base in the image store, named with its stem so image gc removes it
    // with the base (src/image/store.cc): new overlays are copies of it (src/vmm/disk.h).
    const std::string& base = image_->rootfs_path;
    overlay.template_path = base.substr(0, base.size() - 5) +
                            base::StrFormat(".overlay-%lldM.qcow2",
                                            static_cast<long long>(disk_size_mib_));
  }
  if (persistent()) {
    // A stopped box must survive the image being removed and collected: its backing file
    // is a hard link in the box directory (same file system as the store; a copy
    // otherwise would be costly, so the store's file is used then).
    std::string link = DirPath("base.ext4");
    if (sys::Exists(link) || ::link(overlay.backing.c_str(), link.c_str()) == 0) {
      overlay.backing = link;
    }
  }
  plan.backing = overlay.backing;
  if (plan.memory.image) {
    BOXLITE_ASSIGN_OR_RETURN(plan.disk, OpenRestoredDiskLocked(*plan.memory.image, overlay.path,
                                                               overlay.keep));
  } else if (seed_disk_) {
    plan.disk = std::move(seed_disk_);  // An ephemeral clone's copy (box_snapshot.cc).
  } else {
    BOXLITE_ASSIGN_OR_RETURN(plan.disk, vmm::OpenDiskOverlay(overlay));
  }
  return Status::OK();
}

Status BoxImpl::OpenLogsAndSocketsLocked(LaunchPlan& plan) {
  if (persistent()) {
    BOXLITE_ASSIGN_OR_RETURN(console_fd_, sys::Open(DirPath("console.log"),
                                                    O_RDWR | O_CREAT | O_APPEND, 0600));
    struct stat console_st;
    record_.console_offset = ::fstat(console_fd_.get(), &console_st) == 0
                                 ? static_cast<uint64_t>(console_st.st_size)
                                 : 0;
    BOXLITE_ASSIGN_OR_RETURN(qemu_log_fd_, sys::Open(DirPath("qemu.log"),
                                                     O_RDWR | O_CREAT | O_APPEND, 0600));
    for (int i = 0, n = AgentPorts(options_, true); i < n; ++i) {
      BOXLITE_ASSIGN_OR_RETURN(auto listener, sys::ListenUnix(
                                                  DirPath(base::StrFormat("agent-%d.sock", i))));
      plan.config.agent_fds.push_back(listener.get());
      plan.guest_ends.push_back(std::move(listener));
    }
    plan.config.agent_listening = true;
  } else {
    if (const std::string& keep = runtime_->options().console_dir; !keep.empty()) {
      // Debugging aid: keep the console where a developer can read it.
      BOXLITE_ASSIGN_OR_RETURN(console_fd_, sys::Open(sys::JoinPath(keep, id_ + ".console"),
                                                      O_RDWR | O_CREAT | O_TRUNC, 0600));
    } else {
      BOXLITE_ASSIGN_OR_RETURN(console_fd_, AnonymousFile(plan.tmp, id_ + ".console"));
    }
    BOXLITE_ASSIGN_OR_RETURN(qemu_log_fd_, AnonymousFile(plan.tmp, id_ + ".qemu"));
    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
      return sys::ErrnoStatus(errno, "socketpair");
    }
    plan.host_end.reset(sp[0]);
    // Room for bulk output in flight between QEMU and our reader: QEMU stops draining
    // the guest's queue whenever this socket is full.
    for (int fd : sp) {
      int size = 4 << 20;
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    plan.config.agent_fds.push_back(sp[1]);
    plan.guest_ends.emplace_back(sp[1]);
  }
  plan.tmp_window.reset();  // Nothing of this box is left in tmp/ by name.
  plan.t_files = Clock::now();
  plan.stages.filesystem_setup_ms = Millis(plan.t_files - plan.t_image);
  return Status::OK();
}

Status BoxImpl::AttachDevicesLocked(LaunchPlan& plan) {
  // Descriptors QEMU gets instead of paths (src/vmm/qemu.h): a jailed QEMU runs as another
  // user (src/vmm/vm_jail.h) that cannot open the box's files under our private home.
  vmm::VmConfig& config = plan.config;
  auto reopen = [](int fd, int flags) {
    return sys::Open(base::StrFormat("/proc/self/fd/%d", fd), flags | O_CLOEXEC);
  };
  // Fd set 1: the overlay (QEMU opens it read-write, and read-only while probing); 2: the
  // base image, read-only; 3: the console, the write end of a pipe whose writer process
  // keeps the log under its cap (src/runtime/console_log.h).
  config.fd_sets.push_back({plan.Pass(std::move(plan.disk)), 1});
  BOXLITE_ASSIGN_OR_RETURN(auto disk_ro, reopen(config.fd_sets.back().fd, O_RDONLY));
  config.fd_sets.push_back({plan.Pass(std::move(disk_ro)), 1});
  if (!persistent()) {
    // Snapshots, clones, memory snapshots and export of an ephemeral box read its
    // unlinked overlay through this (box_snapshot.cc, box_memory.cc, box_export.cc).
    BOXLITE_ASSIGN_OR_RETURN(disk_fd_, reopen(config.fd_sets.back().fd, O_RDONLY));
  }
  config.disk = "/dev/fdset/1";
  if (!plan.backing.empty()) {  // Empty: a standalone disk (an imported box).
    BOXLITE_ASSIGN_OR_RETURN(auto base_fd, sys::Open(plan.backing, O_RDONLY | O_CLOEXEC));
    config.fd_sets.push_back({plan.Pass(std::move(base_fd)), 2});
    config.disk_backing = "/dev/fdset/2";
  }
  BOXLITE_ASSIGN_OR_RETURN(
      auto console_pipe,
      StartConsoleWriter(console_fd_.get(), runtime_->options().console_helper));
  config.fd_sets.push_back({plan.Pass(std::move(console_pipe)), 3});
  config.console_log = "/dev/fdset/3";
  // QEMU truncates a file it opens without append=on, and ftruncate() on a pipe fails
  // (EINVAL): the console must be opened for appending.
  config.console_append = true;
  for (int fd : config.agent_fds) config.inherit_fds.push_back(fd);
  config.accel = plan.accel.accel;
  config.cpus = options_.cpus;
  config.memory_mib = options_.memory_mib;
  // The kernel and initramfs as descriptors too: the data directory may be private.
  auto t_kernel = Clock::now();
  BOXLITE_ASSIGN_OR_RETURN(auto kernel_fd, sys::Open(plan.assets.kernel, O_RDONLY | O_CLOEXEC));
  config.kernel = base::StrFormat("/proc/self/fd/%d", plan.Pass(std::move(kernel_fd)));
  BOXLITE_ASSIGN_OR_RETURN(auto initrd_fd,
                           sys::Open(plan.assets.initramfs, O_RDONLY | O_CLOEXEC));
  config.initramfs = base::StrFormat("/proc/self/fd/%d", plan.Pass(std::move(initrd_fd)));
  plan.kernel_open = Clock::now() - t_kernel;
  plan.stages.guest_rootfs_ms += Millis(plan.kernel_open);
  config.name = "boxlite-" + id_;
  config.tsc_khz = vmm::HostTscKhz();
  if (!persistent()) config.extra_kernel_args = protocol::kVolatileDiskKernelArg;
  return Status::OK();
}

Status BoxImpl::ShareMountsLocked(LaunchPlan& plan) {
  for (size_t i = 0; i < options_.mounts.size(); ++i) {
    const VolumeMount& m = options_.mounts[i];
    std::string tag = base::StrFormat("m%zu", i);
    BOXLITE_ASSIGN_OR_RETURN(auto share_fd,
                             sys::Open(m.host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    plan.config.shares.push_back({tag, m.host_path, m.read_only, plan.Pass(std::move(share_fd))});
    plan.box_config.mounts.push_back({tag, m.guest_path, m.read_only});
  }
  plan.box_config.pids_max = kDefaultPidsMax;
  return ApplySecurityConfig(&plan.box_config);
}

Status BoxImpl::PlanJailLocked(LaunchPlan& plan) {
  // The jail of this box's QEMU and boxlite-net (who they run as, the shares checked).
  vmm::VmJailInputs jail_inputs;
  jail_inputs.box_id = id_;
  jail_inputs.shares = plan.config.shares;
  jail_inputs.accel = plan.config.accel;
  jail_inputs.memory_mib = plan.config.memory_mib;
  BOXLITE_ASSIGN_OR_RETURN(plan.jail, vmm::PlanVmJail(jail_inputs));
  if (!plan.jail.notes.empty()) {
    BOXLITE_LOG(kDebug, "box %s: %s", name_.c_str(), plan.jail.notes.c_str());
  }
  sys::RemoveCgroupLeaf(cgroup_dir_);
  cgroup_dir_ = plan.jail.cgroup_dir;
  return Status::OK();
}

Status BoxImpl::StartNetworkLocked(LaunchPlan& plan) {
  if (options_.network != "nat" || !options_.security.network_enabled) {
    if (!options_.ports.empty()) {
      return Status::InvalidArgument("published ports need network \"nat\"");
    }
    return Status::OK();
  }
  // User-mode networking in a process of its own (boxlite-net, libslirp): the guest's
  // traffic leaves through ordinary sockets to public addresses only (the host, its
  // loopback and private networks stay out of reach unless allow_host opens the host),
  // published ports listen on 127.0.0.1 unless their host_ip says otherwise.
  vmm::NetOptions net_options;
  BOXLITE_ASSIGN_OR_RETURN(net_options.helper_binary,
                           vmm::FindNetHelper(runtime_->options().net_helper));
  for (const auto& p : options_.ports) {
    net_options.ports.push_back({p.host_port, p.guest_port, p.host_ip});
  }
  net_options.allow_host_loopback = options_.allow_host;
  net_options.allow_net = options_.allow_net;  // The egress allow-list (docs/networking.md).
  net_options.dns_servers = runtime_->options().dns_servers;
  net_options.die_with_owner = !options_.detach;
  net_options.stderr_fd = qemu_log_fd_.get();
  net_options.jail = plan.jail.net;
  if (!options_.secrets.empty()) {
    // Secrets (src/runtime/box_secrets.h): boxlite-net gets the values and the CA through
    // a descriptor; the guest gets the CA's certificate only.
    std::vector<Secret> secrets = options_.secrets;
    if (persistent()) BOXLITE_RETURN_IF_ERROR(LoadSecretValues(dir_, &secrets));
    for (const auto& s : secrets) {
      if (s.value.empty()) {  // An imported box or a copy: values never travel with it.
        return Status::FailedPrecondition("the value of secret " + s.name +
                                          " is not stored with this box",
                                          "create the box again with its secrets");
      }
    }
    BOXLITE_ASSIGN_OR_RETURN(BoxCaPem ca, LoadOrCreateBoxCa(persistent() ? dir_ : "", id_));
    BOXLITE_ASSIGN_OR_RETURN(net_options.secrets_json, SecretProxyJson(secrets, ca));
    plan.box_config.trusted_ca_pem = ca.cert;
  }
  // The helper's counters (BoxMetrics::network_refused_flows): beside the record for a
  // persistent box, so another process attached to it reads them too.
  net_stats_fd_.reset(dir_.empty()
                          ? ::memfd_create("boxlite-net-stats", MFD_CLOEXEC)
                          : ::open((dir_ + "/net-stats").c_str(),
                                   O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  net_options.stats_fd = net_stats_fd_.get();  // -1 when it failed: no counters.
  BOXLITE_ASSIGN_OR_RETURN(auto launched, vmm::LaunchNetHelper(net_options));
  plan.net.emplace(std::move(launched));
  plan.config.net_fd = plan.net->qemu_end.get();
  plan.config.inherit_fds.push_back(plan.config.net_fd);
  vmm::GuestNetworkPlan guest = vmm::GuestNetwork();
  plan.box_config.network.mode = "nat";
  plan.box_config.network.address = guest.address;
  plan.box_config.network.gateway = guest.gateway;
  plan.box_config.network.dns = {guest.dns};
  bound_ports_.clear();
  for (const auto& p : plan.net->ports) bound_ports_.push_back({p.host_port, p.guest_port, p.host_ip});
  return Status::OK();
}

Status BoxImpl::StartVmLocked(LaunchPlan& plan) {
  auto t_spawn = Clock::now();
  plan.stages.box_config_ms = Millis(t_spawn - plan.t_files - plan.kernel_open);
  vmm::LaunchOptions launch;
  launch.die_with_owner = !options_.detach;
  launch.stderr_fd = qemu_log_fd_.get();
  launch.jail = plan.jail.qemu;
  // A fork maps its RAM privately from a sealed file, so QEMU cannot give back the pages
  // its guest reports free and writes one line per report: a guest could grow this log
  // without end. Its messages go through a capped writer, as the console does.
  base::UniqueFd capped_log;
  qemu_log_capped_ = false;
  if (plan.memory.image != nullptr && plan.memory.image->shared_ram_fd >= 0) {
    BOXLITE_ASSIGN_OR_RETURN(capped_log, StartConsoleWriter(qemu_log_fd_.get(),
                                                            runtime_->options().console_helper));
    launch.stderr_fd = capped_log.get();
    qemu_log_capped_ = true;
  }
  BOXLITE_ASSIGN_OR_RETURN(sys::Subprocess vm, vmm::LaunchQemu(plan.config, launch));
  plan.passed.clear();
  vm_.emplace(std::move(vm));
  if (plan.net) {
    // Only QEMU may hold the other end: the helper exits when QEMU's end closes.
    plan.net->qemu_end.reset();
    net_.emplace(std::move(plan.net->process));
    plan.net.reset();
  }
  launched_here_ = true;
  plan.guest_ends.clear();
  accel_ = std::string(vmm::AccelName(plan.accel.accel));
  plan.t_launched = Clock::now();
  plan.stages.box_spawn_ms = Millis(plan.t_launched - t_spawn);
  death_ = std::make_shared<DeathNote>();
  return Status::OK();
}

Status BoxImpl::SaveLaunchRecordLocked() {
  if (!persistent()) return Status::OK();
  record_.pid = vm_->pid();
  record_.pid_start_time = ProcessStartTime(vm_->pid());
  record_.net_pid = net_ ? net_->pid() : 0;
  record_.net_pid_start_time = net_ ? ProcessStartTime(net_->pid()) : 0;
  record_.bound_ports = bound_ports_;
  record_.accel = accel_;
  record_.disk_size_mib = disk_size_mib_;
  record_.image_reference = image_->reference;
  record_.rootfs_path = image_->rootfs_path;
  record_.rootfs_bytes = image_->rootfs_bytes;
  record_.image_config = image_->config;
  return SaveRecord(dir_, record_);
}

Status BoxImpl::GreetGuestLocked(LaunchPlan& plan) {
  state_ = State::kRunning;
  if (persistent()) {
    BOXLITE_RETURN_IF_ERROR(ConnectPersistentLocked());
  } else {
    auto note = death_;
    channel_ = std::make_shared<AgentChannel>(std::move(plan.host_end), [note](const Status& why) {
      std::lock_guard<std::mutex> nl(note->mu);
      if (!note->stopping && note->why.ok()) note->why = why;
    });
  }
  CaptureTemplateLocked(&plan.warm);  // Warm start: before hello configures the guest.
  plan.Mark("hello sent");
  return HelloLocked(plan.box_config, &plan.stages.container_init_ms, &plan.guest_uptime_ms);
}

void BoxImpl::RollBackLaunchLocked() {
  {
    std::lock_guard<std::mutex> dl(death_->mu);
    death_->stopping = true;
  }
  channel_.reset();
  port_lock_.reset();
  qmp_.reset();
  qmp_fd_.reset();
  disk_fd_.reset();
  if (vm_) vm_->Kill();
  vm_.reset();
  if (net_) net_->Kill();
  net_.reset();
  state_ = State::kStopped;
  if (persistent()) {
    record_.pid = 0;
    record_.pid_start_time = 0;
    (void)SaveRecord(dir_, record_);
  }
}

Status BoxImpl::FinishLaunchLocked(LaunchPlan& plan) {
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  auto t_ready = Clock::now();
  create_seconds_ = seconds(plan.t_launched - plan.t0);
  boot_seconds_ = seconds(t_ready - plan.t_launched);
  exit_code_.reset();
  record_.exit_code.reset();
  warm_start_ = plan.warm.restore.has_value();
  record_.warm_start = warm_start_;
  plan.warm.restore.reset();  // The VM holds what it needed of the template.
  if (persistent()) {
    record_.create_seconds = create_seconds_;
    record_.boot_seconds = boot_seconds_;
    (void)SaveRecord(dir_, record_);
  }
  stages_ = plan.stages;
  // A restored guest runs its main command already; a warm-start template was saved
  // before hello, so the box's main command starts as on a boot.
  Status main = plan.memory.image && !warm_start_ ? AdoptMainLocked() : StartMainLocked();
  if (!main.ok()) {
    // The box's own command is what it is for: without it, the box does not start.
    Status explained =
        main.IsUnavailable() ? DeathStatus(main) : main.Wrap("start the main command");
    (void)StopLocked(/*graceful=*/false);
    return explained;
  }
  BOXLITE_LOG(kDebug, "box %s: create %.3fs boot %.3fs", name_.c_str(), create_seconds_,
              boot_seconds_);
  if (base::LogEnabled(base::LogLevel::kDebug)) {
    std::string line;
    for (const auto& [step, at] : plan.timeline) {
      line += base::StrFormat("%s%s %.1f", line.empty() ? "" : ", ", step,
                              std::chrono::duration<double, std::milli>(at - plan.t0).count());
    }
    if (plan.guest_uptime_ms >= 0) {
      // The guest's clock starts when its kernel sets up timekeeping: what is left of
      // QEMU's start to the answer is QEMU's own start and the kernel's earliest steps.
      line += base::StrFormat("; guest uptime at the answer %lld ms",
                              static_cast<long long>(plan.guest_uptime_ms));
    }
    BOXLITE_LOG(kDebug, "box %s: launch timeline (ms): %s", name_.c_str(), line.c_str());
  }
  StartHealthLocked();
  return Status::OK();
}

}  // namespace boxlite::runtime
