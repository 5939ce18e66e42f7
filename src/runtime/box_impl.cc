// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/box_impl.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "src/sys/unix_socket.h"

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/base/strings.h"
#include "src/protocol/capabilities.h"
#include "src/runtime/console_log.h"
#include "src/runtime/exec_env.h"
#include "src/runtime/exec_impl.h"
#include "src/runtime/file_transfer.h"
#include "src/runtime/health.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/vmm/net_helper.h"
#include "src/vmm/qemu.h"
#include "src/vmm/vm_jail.h"

namespace boxlite::runtime {
namespace {

constexpr int64_t kMiB = 1024 * 1024;
// User processes in a box share this many pids: a fork bomb stalls inside its box.
constexpr int64_t kDefaultPidsMax = 4096;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
int64_t Millis(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::chrono::seconds BootTimeout() {
  if (const char* env = std::getenv("BOXLITE_BOOT_TIMEOUT")) {
    if (auto v = base::ParseUint(env); v && *v > 0) return std::chrono::seconds(*v);
  }
  return std::chrono::seconds(120);
}

// Creates a file that only its descriptor names: opened, then unlinked at once.
Result<base::UniqueFd> AnonymousFile(const std::string& dir, const std::string& name) {
  std::string path = sys::JoinPath(dir, name);
  BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(path, O_RDWR | O_CREAT | O_EXCL, 0600));
  ::unlink(path.c_str());
  return fd;
}

std::string ReadTail(int fd, size_t max_bytes, size_t max_lines) {
  if (fd < 0) return "";
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) return "";
  size_t size = static_cast<size_t>(st.st_size);
  size_t len = std::min(size, max_bytes);
  std::string buf(len, '\0');
  ssize_t n = ::pread(fd, buf.data(), len, static_cast<off_t>(size - len));
  if (n <= 0) return "";
  buf.resize(static_cast<size_t>(n));
  auto lines = base::Split(buf, '\n', true);
  std::vector<std::string> keep;
  for (auto& line : lines) {
    auto t = base::Trim(line);
    if (!t.empty()) keep.emplace_back(t);
  }
  if (keep.size() > max_lines) keep.erase(keep.begin(), keep.end() - static_cast<long>(max_lines));
  return base::Join(keep, " | ");
}

// One request must fit in one frame (bytes that are not UTF-8 travel in base64, a third
// larger; control bytes escaped, six times): a clear error instead of an abort.
Status FitsInAFrame(std::string_view op, protocol::Json body, const char* what) {
  size_t encoded = protocol::EncodeRequest(op, std::move(body)).size();
  if (encoded <= protocol::kMaxPayload) return Status::OK();
  return Status::InvalidArgument(base::StrFormat("%s take %zu bytes encoded; at most %zu fit",
                                                 what, encoded, protocol::kMaxPayload));
}

}  // namespace

BoxImpl::BoxImpl(std::shared_ptr<RuntimeImpl> runtime, std::string id, BoxOptions options)
    : runtime_(std::move(runtime)), id_(std::move(id)), options_(std::move(options)) {
  name_ = options_.name.empty() ? id_.substr(0, 12) : options_.name;
  created_unix_ = static_cast<int64_t>(std::time(nullptr));
  if (persistent()) dir_ = BoxDir(runtime_->BoxesDir(), id_);
}

BoxImpl::BoxImpl(std::shared_ptr<RuntimeImpl> runtime, BoxRecord record)
    : runtime_(std::move(runtime)), id_(record.id), options_(record.options) {
  name_ = record.name.empty() ? id_.substr(0, 12) : record.name;
  created_unix_ = record.created_unix;
  dir_ = BoxDir(runtime_->BoxesDir(), id_);
  record_ = std::move(record);
  disk_size_mib_ = record_.disk_size_mib;
  accel_ = record_.accel;
  if (!record_.rootfs_path.empty()) {
    image_ = ResolvedImage{record_.image_reference, record_.rootfs_path, record_.rootfs_bytes,
                           record_.image_config};
  }
  state_ = State::kStopped;
  RefreshLocked();
}

BoxImpl::~BoxImpl() {
  std::lock_guard<std::mutex> lock(mu_);
  // An ephemeral box ends with this object: so do its anonymous volumes.
  base::ScopeExit drop_volumes([this] {
    if (!persistent()) runtime_->volumes().RemoveAnonymousOf(id_);
  });
  if (state_ != State::kRunning) {
    // The VM went away without a stop here (another process stopped it): end the prober.
    if (channel_) channel_->Close(Status::FailedPrecondition("box " + name_ + " is stopped"));
    StopHealthLocked();
    return;
  }
  if (!persistent() || (launched_here_ && !options_.detach)) {
    (void)StopLocked();
    return;
  }
  // A detached box, or one another process started, keeps running: just let go. Its
  // main command lives on in the guest without us (the agent drains its output).
  {
    std::lock_guard<std::mutex> dl(death_->mu);
    death_->stopping = true;
  }
  // The main command's pump and the health prober hold the channel: close it so they end.
  if (channel_ && (main_ || health_)) {
    channel_->Close(Status::FailedPrecondition("box " + name_ + " was let go"));
  }
  StopHealthLocked();
  main_.reset();
  channel_.reset();
  port_lock_.reset();
  if (vm_) vm_->Detach();
  if (net_) net_->Detach();
}

std::string BoxImpl::DirPath(const std::string& name) const { return sys::JoinPath(dir_, name); }

Status BoxImpl::CreateOnDisk() {
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(dir_, 0700));
  record_.id = id_;
  record_.name = name_;
  record_.created_unix = created_unix_;
  record_.options = options_;
  return SaveRecord(dir_, record_);
}

void BoxImpl::RefreshLocked() {
  if (!persistent()) return;
  auto fresh = LoadRecord(dir_);
  if (!fresh.ok()) {
    state_ = State::kRemoved;
    return;
  }
  record_ = std::move(fresh).value();
  bool alive = SameProcessAlive(record_.pid, record_.pid_start_time);
  if (state_ == State::kRunning && !alive) {
    // The VM went away underneath us (stopped by another process, or it died).
    std::lock_guard<std::mutex> dl(death_->mu);
    if (death_->why.ok() && !death_->stopping) {
      death_->why = Status::Unavailable("the box's VM is no longer running");
    }
  }
  if (state_ != State::kRunning) {
    // The image is resolved at the first start: a box without one never ran ("configured").
    state_ = alive ? State::kRunning
                   : (record_.rootfs_path.empty() ? State::kCreated : State::kStopped);
  }
  if (!record_.rootfs_path.empty() && !image_) {
    image_ = ResolvedImage{record_.image_reference, record_.rootfs_path, record_.rootfs_bytes,
                           record_.image_config};
  }
}

Status BoxImpl::Start() {
  BOXLITE_RETURN_IF_ERROR(runtime_->CheckOpen());
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<sys::FileLock> box_lock;
  // A removed box has no directory left to lock: say what happened instead.
  if (persistent() && state_ != State::kRemoved) {
    auto l = sys::FileLock::Acquire(DirPath("lock"));
    if (!l.ok()) return l.error().Wrap("lock box " + name_);
    box_lock.emplace(std::move(l).value());
    RefreshLocked();
  }
  if (state_ == State::kRemoved) {
    return Status::FailedPrecondition("box " + name_ + " was removed", "create a new box")
        .WithSubject(StatusSubject::kBox);
  }
  if (state_ == State::kRunning && channel_ && Usable().ok()) return Status::OK();
  Status s = StartLocked();
  if (!s.ok()) {
    runtime_->counters().boxes_failed++;
    return s.Wrap("start box " + name_);
  }
  return s;
}

Status BoxImpl::StartLocked() {
  if (persistent() && SameProcessAlive(record_.pid, record_.pid_start_time)) {
    // Running already (started by another process, or detached earlier): attach.
    auto adopted = sys::Subprocess::Adopt(record_.pid);
    if (adopted.ok()) vm_.emplace(std::move(adopted).value());
    launched_here_ = false;
    death_ = std::make_shared<DeathNote>();
    if (auto c = sys::Open(DirPath("console.log"), O_RDONLY); c.ok()) console_fd_ = std::move(c).value();
    if (auto q = sys::Open(DirPath("qemu.log"), O_RDONLY); q.ok()) qemu_log_fd_ = std::move(q).value();
    BOXLITE_RETURN_IF_ERROR(ConnectPersistentLocked());
    state_ = State::kRunning;
    Status hello = HelloLocked(protocol::BoxConfig{});
    if (!hello.ok()) {
      channel_.reset();
      port_lock_.reset();
      state_ = State::kStopped;
    } else {
      StartHealthLocked();
    }
    return hello;
  }
  if (state_ == State::kRunning) {
    // Our VM died; clear it before booting again.
    if (channel_) channel_->Close(Status::Unavailable("the box's VM died"));
    StopHealthLocked();
    channel_.reset();
    port_lock_.reset();
    if (vm_) vm_->Kill();
    vm_.reset();
    state_ = State::kStopped;
  }
  return LaunchLocked();
}

Status BoxImpl::LaunchLocked() {
  // The stages of BoxMetrics (docs/metrics.md): guest rootfs (the VM's kernel and the
  // agent's initramfs found and opened), image prepare, filesystem setup (the box's disk
  // and log files), box config (devices, mounts, jail, network helper), box spawn (QEMU
  // started), container init (the agent applying the box config).
  LaunchStages stages;
  auto t0 = Clock::now();
  BOXLITE_ASSIGN_OR_RETURN(vmm::GuestAssets assets, runtime_->Assets());
  BOXLITE_ASSIGN_OR_RETURN(vmm::AccelChoice accel, runtime_->Accel());
  auto t_assets = Clock::now();
  stages.guest_rootfs_ms = Millis(t_assets - t0);
  if (!image_) {
    BOXLITE_ASSIGN_OR_RETURN(ResolvedImage img, runtime_->ResolveImage(options_));
    image_ = std::move(img);
  }
  auto t_image = Clock::now();
  stages.image_prepare_ms = Millis(t_image - t_assets);
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
  std::string tmp = runtime_->TmpDir();
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(tmp, 0700));

  vmm::VmConfig config;
  base::UniqueFd disk;
  std::vector<base::UniqueFd> guest_ends;
  base::UniqueFd host_end;
  // The per-box disk: a qcow2 overlay whose writes never reach the shared base.
  std::string overlay = persistent() ? DirPath("disk.qcow2") : sys::JoinPath(tmp, id_ + ".qcow2");
  std::string backing = image_->rootfs_path;
  if (persistent()) {
    // A stopped box must survive the image being removed and collected: its backing file
    // is a hard link in the box directory (same file system as the store; a copy
    // otherwise would be costly, so the store's file is used then).
    std::string link = DirPath("base.ext4");
    if (sys::Exists(link) || ::link(backing.c_str(), link.c_str()) == 0) backing = link;
  }
  if (!persistent() || !sys::Exists(overlay)) {
    auto created = sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                                    backing, overlay, std::to_string(disk_size_mib_) + "M"});
    if (!created.ok()) {
      ::unlink(overlay.c_str());
      return created.error().Wrap("create the box disk");
    }
  }
  // Descriptors QEMU gets instead of paths (src/vmm/qemu.h): a jailed QEMU runs as another
  // user (src/vmm/vm_jail.h) that cannot open the box's files under our private home.
  std::vector<base::UniqueFd> passed;
  auto pass = [&](base::UniqueFd fd) {
    config.inherit_fds.push_back(fd.get());
    passed.push_back(std::move(fd));
    return passed.back().get();
  };
  auto reopen = [](int fd, int flags) {
    return sys::Open(base::StrFormat("/proc/self/fd/%d", fd), flags | O_CLOEXEC);
  };
  if (persistent()) {
    BOXLITE_ASSIGN_OR_RETURN(disk, sys::Open(overlay, O_RDWR | O_CLOEXEC));
    BOXLITE_ASSIGN_OR_RETURN(console_fd_, sys::Open(DirPath("console.log"),
                                                    O_RDWR | O_CREAT | O_APPEND, 0600));
    struct stat console_st;
    record_.console_offset =
        ::fstat(console_fd_.get(), &console_st) == 0 ? static_cast<uint64_t>(console_st.st_size) : 0;
    BOXLITE_ASSIGN_OR_RETURN(qemu_log_fd_, sys::Open(DirPath("qemu.log"),
                                                     O_RDWR | O_CREAT | O_APPEND, 0600));
    config.console_append = true;
    for (int i = 0; i < kPersistentAgentPorts; ++i) {
      BOXLITE_ASSIGN_OR_RETURN(auto listener, sys::ListenUnix(
                                                  DirPath(base::StrFormat("agent-%d.sock", i))));
      config.agent_fds.push_back(listener.get());
      guest_ends.push_back(std::move(listener));
    }
    config.agent_listening = true;
  } else {
    auto opened = sys::Open(overlay, O_RDWR | O_CLOEXEC);
    ::unlink(overlay.c_str());
    if (!opened.ok()) return opened.error();
    disk = std::move(opened).value();
    if (const char* keep = std::getenv("BOXLITE_CONSOLE_DIR"); keep != nullptr && *keep) {
      // Debugging aid: keep the console where a developer can read it.
      BOXLITE_ASSIGN_OR_RETURN(console_fd_, sys::Open(sys::JoinPath(keep, id_ + ".console"),
                                                      O_RDWR | O_CREAT | O_TRUNC, 0600));
    } else {
      BOXLITE_ASSIGN_OR_RETURN(console_fd_, AnonymousFile(tmp, id_ + ".console"));
    }
    BOXLITE_ASSIGN_OR_RETURN(qemu_log_fd_, AnonymousFile(tmp, id_ + ".qemu"));
    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
      return sys::ErrnoStatus(errno, "socketpair");
    }
    host_end.reset(sp[0]);
    // Room for bulk output in flight between QEMU and our reader: QEMU stops draining
    // the guest's queue whenever this socket is full.
    for (int fd : sp) {
      int size = 4 << 20;
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    config.agent_fds.push_back(sp[1]);
    guest_ends.emplace_back(sp[1]);
  }
  auto t_fs = Clock::now();
  stages.filesystem_setup_ms = Millis(t_fs - t_image);
  // Fd set 1: the overlay (QEMU opens it read-write, and read-only while probing); 2: the
  // base image, read-only; 3: the console, the write end of a pipe whose writer process
  // keeps the log under its cap (src/runtime/console_log.h).
  config.fd_sets.push_back({pass(std::move(disk)), 1});
  BOXLITE_ASSIGN_OR_RETURN(auto disk_ro, reopen(config.fd_sets.back().fd, O_RDONLY));
  config.fd_sets.push_back({pass(std::move(disk_ro)), 1});
  config.disk = "/dev/fdset/1";
  BOXLITE_ASSIGN_OR_RETURN(auto base_fd, sys::Open(backing, O_RDONLY | O_CLOEXEC));
  config.fd_sets.push_back({pass(std::move(base_fd)), 2});
  config.disk_backing = "/dev/fdset/2";
  BOXLITE_ASSIGN_OR_RETURN(auto console_pipe, StartConsoleWriter(console_fd_.get()));
  config.fd_sets.push_back({pass(std::move(console_pipe)), 3});
  config.console_log = "/dev/fdset/3";
  // QEMU truncates a file it opens without append=on, and ftruncate() on a pipe fails
  // (EINVAL): the console must be opened for appending.
  config.console_append = true;
  for (int fd : config.agent_fds) config.inherit_fds.push_back(fd);
  config.accel = accel.accel;
  config.cpus = options_.cpus;
  config.memory_mib = options_.memory_mib;
  // The kernel and initramfs as descriptors too: the data directory may be private.
  auto t_kernel = Clock::now();
  BOXLITE_ASSIGN_OR_RETURN(auto kernel_fd, sys::Open(assets.kernel, O_RDONLY | O_CLOEXEC));
  config.kernel = base::StrFormat("/proc/self/fd/%d", pass(std::move(kernel_fd)));
  BOXLITE_ASSIGN_OR_RETURN(auto initrd_fd, sys::Open(assets.initramfs, O_RDONLY | O_CLOEXEC));
  config.initramfs = base::StrFormat("/proc/self/fd/%d", pass(std::move(initrd_fd)));
  auto kernel_open = Clock::now() - t_kernel;
  stages.guest_rootfs_ms += Millis(kernel_open);
  config.name = "boxlite-" + id_;
  config.tsc_khz = vmm::HostTscKhz();
  if (!persistent()) config.extra_kernel_args = protocol::kVolatileDiskKernelArg;
  protocol::BoxConfig box_config;
  for (size_t i = 0; i < options_.mounts.size(); ++i) {
    const VolumeMount& m = options_.mounts[i];
    std::string tag = base::StrFormat("m%zu", i);
    BOXLITE_ASSIGN_OR_RETURN(auto share_fd,
                             sys::Open(m.host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    config.shares.push_back({tag, m.host_path, m.read_only, pass(std::move(share_fd))});
    box_config.mounts.push_back({tag, m.guest_path, m.read_only});
  }
  box_config.pids_max = kDefaultPidsMax;
  BOXLITE_RETURN_IF_ERROR(ApplySecurityConfig(&box_config));
  // The jail of this box's QEMU and boxlite-net (who they run as, the shares checked).
  vmm::VmJailInputs jail_inputs;
  jail_inputs.box_id = id_;
  jail_inputs.shares = config.shares;
  jail_inputs.accel = config.accel;
  jail_inputs.memory_mib = config.memory_mib;
  BOXLITE_ASSIGN_OR_RETURN(vmm::VmJailPlan jail, vmm::PlanVmJail(jail_inputs));
  if (!jail.notes.empty()) BOXLITE_LOG(kDebug, "box %s: %s", name_.c_str(), jail.notes.c_str());
  sys::RemoveCgroupLeaf(cgroup_dir_);
  cgroup_dir_ = jail.cgroup_dir;
  std::optional<vmm::NetHelper> net;
  if (options_.network == "nat" && options_.security.network_enabled) {
    // User-mode networking in a process of its own (boxlite-net, libslirp): the guest's
    // traffic leaves through ordinary sockets to public addresses only (the host, its
    // loopback and private networks stay out of reach unless allow_host opens the host),
    // published ports listen on 127.0.0.1 only.
    vmm::NetOptions net_options;
    BOXLITE_ASSIGN_OR_RETURN(net_options.helper_binary, vmm::FindNetHelper());
    for (const auto& p : options_.ports) net_options.ports.push_back({p.host_port, p.guest_port});
    net_options.allow_host_loopback = options_.allow_host;
    net_options.dns_servers = vmm::DnsServersFromEnvironment();
    net_options.die_with_owner = !options_.detach;
    net_options.stderr_fd = qemu_log_fd_.get();
    net_options.jail = jail.net;
    BOXLITE_ASSIGN_OR_RETURN(auto launched, vmm::LaunchNetHelper(net_options));
    net.emplace(std::move(launched));
    config.net_fd = net->qemu_end.get();
    config.inherit_fds.push_back(config.net_fd);
    box_config.network.mode = "nat";
    box_config.network.address = vmm::kGuestAddress;
    box_config.network.gateway = vmm::kGuestGateway;
    box_config.network.dns = {vmm::kGuestDns};
    bound_ports_.clear();
    for (const auto& p : net->ports) bound_ports_.push_back({p.host_port, p.guest_port});
  } else if (!options_.ports.empty()) {
    return Status::InvalidArgument("published ports need network \"nat\"");
  }

  auto t_spawn = Clock::now();
  stages.box_config_ms = Millis(t_spawn - t_fs - kernel_open);
  vmm::LaunchOptions launch;
  launch.die_with_owner = !options_.detach;
  launch.stderr_fd = qemu_log_fd_.get();
  launch.jail = jail.qemu;
  BOXLITE_ASSIGN_OR_RETURN(sys::Subprocess vm, vmm::LaunchQemu(config, launch));
  passed.clear();
  vm_.emplace(std::move(vm));
  if (net) {
    // Only QEMU may hold the other end: the helper exits when QEMU's end closes.
    net->qemu_end.reset();
    net_.emplace(std::move(net->process));
  }
  launched_here_ = true;
  guest_ends.clear();
  disk.reset();
  accel_ = std::string(vmm::AccelName(accel.accel));
  auto t_launched = Clock::now();
  stages.box_spawn_ms = Millis(t_launched - t_spawn);
  death_ = std::make_shared<DeathNote>();
  if (persistent()) {
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
    Status saved = SaveRecord(dir_, record_);
    if (!saved.ok()) {
      vm_->Kill();
      vm_.reset();
      return saved;
    }
  }
  state_ = State::kRunning;
  Status connected = persistent() ? ConnectPersistentLocked() : Status::OK();
  if (connected.ok() && !persistent()) {
    auto note = death_;
    channel_ = std::make_shared<AgentChannel>(std::move(host_end), [note](const Status& why) {
      std::lock_guard<std::mutex> nl(note->mu);
      if (!note->stopping && note->why.ok()) note->why = why;
    });
  }
  Status hello = connected.ok() ? HelloLocked(box_config, &stages.container_init_ms) : connected;
  if (!hello.ok()) {
    Status explained = hello.IsUnavailable() ? DeathStatus(hello) : hello;
    {
      std::lock_guard<std::mutex> dl(death_->mu);
      death_->stopping = true;
    }
    channel_.reset();
    port_lock_.reset();
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
    return explained;
  }
  auto t_ready = Clock::now();
  create_seconds_ = Seconds(t_launched - t0);
  boot_seconds_ = Seconds(t_ready - t_launched);
  exit_code_.reset();
  record_.exit_code.reset();
  if (persistent()) {
    record_.create_seconds = create_seconds_;
    record_.boot_seconds = boot_seconds_;
    (void)SaveRecord(dir_, record_);
  }
  stages_ = stages;
  Status main = StartMainLocked();
  if (!main.ok()) {
    // The box's own command is what it is for: without it, the box does not start.
    Status explained = main.IsUnavailable() ? DeathStatus(main) : main.Wrap("start the main command");
    (void)StopLocked(/*graceful=*/false);
    return explained;
  }
  BOXLITE_LOG(kDebug, "box %s: create %.3fs boot %.3fs", name_.c_str(), create_seconds_,
              boot_seconds_);
  StartHealthLocked();
  return Status::OK();
}

Status BoxImpl::ApplySecurityConfig(protocol::BoxConfig* config) const {
  const SecurityOptions& s = options_.security;
  BOXLITE_ASSIGN_OR_RETURN(uint64_t caps, protocol::ComputeCapabilities(options_.capabilities.add,
                                                                        options_.capabilities.drop));
  config->capabilities = static_cast<int64_t>(caps);
  auto limit = [](const std::optional<uint64_t>& v) {
    return v ? static_cast<int64_t>(std::min<uint64_t>(*v, INT64_MAX)) : int64_t{0};
  };
  config->limits.nofile = limit(s.max_open_files);
  config->limits.fsize = limit(s.max_file_size);
  config->limits.nproc = limit(s.max_processes);
  config->limits.as = limit(s.max_memory);
  config->limits.cpu = limit(s.max_cpu_time);
  config->close_fds = s.close_fds;
  return Status::OK();
}

Status BoxImpl::ConnectPersistentLocked() {
  // Each client slot is a virtio-serial port whose socket QEMU serves one client at a
  // time; the flock says which slots are taken, across processes.
  for (int i = 0; i < kPersistentAgentPorts; ++i) {
    auto slot = sys::FileLock::TryAcquire(DirPath(base::StrFormat("port-%d.lock", i)));
    if (!slot.ok()) continue;
    // The VM may still be creating its sockets' accept queue: retry briefly.
    Result<base::UniqueFd> sock = Status::Unavailable("not tried");
    for (int attempt = 0; attempt < 50; ++attempt) {
      sock = sys::ConnectUnix(DirPath(base::StrFormat("agent-%d.sock", i)));
      if (sock.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!sock.ok()) return sock.error().Wrap("connect to box " + name_);
    port_lock_.emplace(std::move(slot).value());
    auto note = death_;
    channel_ = std::make_shared<AgentChannel>(std::move(sock).value(), [note](const Status& why) {
      std::lock_guard<std::mutex> nl(note->mu);
      if (!note->stopping && note->why.ok()) note->why = why;
    });
    return Status::OK();
  }
  return Status::ResourceExhausted(
      base::StrFormat("box %s already has %d clients", name_.c_str(), kPersistentAgentPorts),
      "close another process using this box");
}

Status BoxImpl::HelloLocked(const protocol::BoxConfig& config, int64_t* config_ms) {
  protocol::HelloRequest hello;
  hello.config = config;
  hello.config.hostname = name_;
  hello.config.clock_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
  BOXLITE_RETURN_IF_ERROR(FitsInAFrame("hello", protocol::ToJson(hello), "the box's mounts and settings"));
  auto reply = channel_->Call("hello", protocol::ToJson(hello), Clock::now() + BootTimeout());
  if (reply.ok()) {
    protocol::HelloResponse resp;
    if (config_ms != nullptr && protocol::FromJson(*reply, &resp).ok()) {
      // The guest's number: kept within the boot timeout.
      *config_ms = std::clamp<int64_t>(resp.config_ms, 0, BootTimeout().count() * 1000);
    }
    return Status::OK();
  }
  if (reply.error().IsDeadlineExceeded()) {
    return Status::Unavailable(base::StrFormat("the guest did not answer within %llds",
                                               static_cast<long long>(BootTimeout().count())));
  }
  return reply.error();
}

Status BoxImpl::Stop() { return StopWithin(std::chrono::seconds(10)); }

bool BoxImpl::LaunchedHere() {
  std::lock_guard<std::mutex> lock(mu_);
  return launched_here_ && state_ == State::kRunning;
}

Status BoxImpl::StopWithin(std::optional<std::chrono::seconds> limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<sys::FileLock> box_lock;
  if (persistent() && state_ != State::kRemoved) {
    auto l = sys::FileLock::Acquire(DirPath("lock"));
    if (!l.ok()) return l.error().Wrap("lock box " + name_);
    box_lock.emplace(std::move(l).value());
    RefreshLocked();
  }
  return StopLocked(/*graceful=*/true, limit);
}

Status BoxImpl::StopLocked(bool graceful, std::optional<std::chrono::seconds> limit) {
  if (state_ != State::kRunning) StopHealthLocked();
  if (state_ == State::kRunning) {
    {
      std::lock_guard<std::mutex> dl(death_->mu);
      death_->stopping = true;
    }
    if (!persistent()) {
      // Nothing of an ephemeral box survives it: no need for a clean shutdown.
      if (vm_) vm_->Kill();
    } else {
      // A VM that ended on its own (its main command exited with nobody watching) left its
      // exit status in the console: keep it before the record forgets the VM.
      if (!exit_code_ && !record_.exit_code && record_.pid != 0 &&
          !SameProcessAlive(record_.pid, record_.pid_start_time)) {
        record_.exit_code = ExitCodeLocked();
      }
      if (!channel_ && SameProcessAlive(record_.pid, record_.pid_start_time)) {
        auto adopted = sys::Subprocess::Adopt(record_.pid);
        if (adopted.ok()) vm_.emplace(std::move(adopted).value());
        if (graceful) (void)ConnectPersistentLocked();
      }
      if (graceful && channel_ && channel_->health().ok()) {
        // Let the guest flush and unmount the disk before the VM ends.
        // No limit: a day stands for "as long as it takes".
        auto wait = limit.value_or(std::chrono::hours(24));
        (void)channel_->Call("shutdown", protocol::Json::object(), Clock::now() + wait);
      }
      if (vm_) {
        auto exited = vm_->WaitFor(graceful ? limit.value_or(std::chrono::hours(24))
                                            : std::chrono::seconds(0));
        if (!exited.ok() || !exited->has_value()) {
          if (launched_here_) {
            vm_->Kill();
          } else if (SameProcessAlive(record_.pid, record_.pid_start_time)) {
            ::kill(record_.pid, SIGKILL);
            (void)vm_->WaitFor(std::chrono::seconds(5));
          }
        }
      }
      if (!net_ && SameProcessAlive(record_.net_pid, record_.net_pid_start_time)) {
        ::kill(record_.net_pid, SIGKILL);  // It exits with QEMU anyway; this is a backstop.
      }
      record_.pid = 0;
      record_.pid_start_time = 0;
      record_.net_pid = 0;
      record_.net_pid_start_time = 0;
      (void)SaveRecord(dir_, record_);
    }
    if (net_) net_->Kill();
    net_.reset();
    if (channel_) {
      channel_->Close(
          Status::FailedPrecondition("box " + name_ + " was stopped").WithSubject(StatusSubject::kBox));
    }
    StopHealthLocked();
    channel_.reset();
    main_.reset();
    port_lock_.reset();
    vm_.reset();
    runtime_->counters().boxes_stopped++;
    // A detached box stopped from another process: its leaf is where root makes them.
    if (cgroup_dir_.empty() && ::geteuid() == 0) {
      cgroup_dir_ = sys::RootCgroupLeaf(vmm::CgroupLeafName(id_));
    }
    sys::RemoveCgroupLeaf(cgroup_dir_);
    cgroup_dir_.clear();
    state_ = State::kStopped;
  }
  if (state_ == State::kStopped && RemovesOnStop(options_)) {
    state_ = State::kRemoved;
    console_fd_.reset();
    qemu_log_fd_.reset();
    if (persistent()) (void)sys::RemoveTree(dir_);
    runtime_->Forget(id_);
  }
  return Status::OK();
}

Status BoxImpl::Remove(bool force) {
  std::lock_guard<std::mutex> lock(mu_);
  if (persistent()) {
    auto l = sys::FileLock::Acquire(DirPath("lock"));
    if (l.ok()) RefreshLocked();
  }
  if (state_ == State::kRunning && !force) {
    return Status::FailedPrecondition("box " + name_ + " is running",
                                      "stop it first, or remove it with force (rm -f)")
        .WithSubject(StatusSubject::kBox);
  }
  // The disk goes with the box: no clean shutdown to wait for.
  BOXLITE_RETURN_IF_ERROR(StopLocked(/*graceful=*/false));
  state_ = State::kRemoved;
  console_fd_.reset();
  qemu_log_fd_.reset();
  if (persistent()) BOXLITE_RETURN_IF_ERROR(sys::RemoveTree(dir_));
  runtime_->Forget(id_);
  return Status::OK();
}

Status BoxImpl::Usable() {
  if (state_ == State::kRunning && !channel_ && persistent()) {
    return Status::FailedPrecondition("box " + name_ + " is running but not connected",
                                      "call Start() to attach")
        .WithSubject(StatusSubject::kBox);
  }
  if (state_ == State::kCreated) {
    return Status::FailedPrecondition("box " + name_ + " is not started", "call Start() first")
        .WithSubject(StatusSubject::kBox);
  }
  if (state_ != State::kRunning) {
    return Status::FailedPrecondition("box " + name_ + " is stopped", "start it again")
        .WithSubject(StatusSubject::kBox);
  }
  return AboutSubject(Died(), StatusSubject::kBox);
}

Status BoxImpl::Died() {
  std::lock_guard<std::mutex> dl(death_->mu);
  return death_->why;
}

Result<std::shared_ptr<AgentChannel>> BoxImpl::Channel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (persistent() && !channel_ && state_ != State::kRemoved) {
    // A persistent box found by name: attach to its running VM on first use.
    RefreshLocked();
    if (state_ == State::kRunning) {
      Status attached = StartLocked();
      if (!attached.ok()) return attached;
    }
  }
  Status s = Usable();
  if (!s.ok()) {
    if (s.IsUnavailable()) return DeathStatus(s);
    return s;
  }
  return channel_;
}

std::string BoxImpl::ConsoleTail() {
  // A kernel panic's reason beats the stack trace that follows it.
  std::string recent = ReadTail(console_fd_.get(), 32768, 400);
  size_t panic = recent.find("Kernel panic");
  if (panic != std::string::npos) {
    size_t end = recent.find(" | ", panic);
    return recent.substr(panic, end == std::string::npos ? std::string::npos : end - panic);
  }
  return ReadTail(console_fd_.get(), 4096, 6);
}

Status BoxImpl::DeathStatus(const Status& channel_status) {
  std::string detail = channel_status.message();
  if (vm_) {
    auto exited = vm_->WaitFor(std::chrono::milliseconds(200));
    if (exited.ok() && exited->has_value()) {
      detail += "; qemu " + sys::DescribeWaitStatus(**exited);
    }
  }
  std::string qemu = ReadTail(qemu_log_fd_.get(), 2048, 3);
  if (!qemu.empty()) detail += "; qemu said: " + qemu;
  // QEMU is gone: the console writer is copying its last bytes.
  if (vm_ && !vm_->running()) (void)WaitConsoleWriter(console_fd_.get(), std::chrono::seconds(1));
  std::string console = ConsoleTail();
  if (!console.empty()) detail += "; guest console: " + console;
  return Status::Unavailable("box " + name_ + " stopped unexpectedly (" + detail + ")",
                             "start a new box")
      .WithSubject(StatusSubject::kBox);
}

Result<protocol::ExecRequest> BoxImpl::ExecRequestLocked(const ExecOptions& options) {
  protocol::ExecRequest req;
  req.argv = options.argv;
  const image::ImageConfig& img = image_->config;
  if (options.use_image_entrypoint) {
    req.argv = img.entrypoint;
    const auto& args = options.argv.empty() ? img.cmd : options.argv;
    req.argv.insert(req.argv.end(), args.begin(), args.end());
    if (req.argv.empty()) {
      return Status::InvalidArgument("no command given and the image has no Entrypoint or Cmd")
          .WithSubject(StatusSubject::kExec);
    }
  }
  if (req.argv.empty() || req.argv[0].empty()) {
    return Status::InvalidArgument("exec needs a command").WithSubject(StatusSubject::kExec);
  }
  req.env = MergeEnv(img.env, options_.env, options.env);
  req.cwd = FirstNonEmpty({options.cwd, options_.working_dir, img.working_dir}, "/");
  req.user = FirstNonEmpty({options.user, options_.user, img.user}, "");
  req.tty = options.tty;
  req.rows = options.rows;
  req.cols = options.cols;
  req.stdin_open = options.open_stdin || options.stdin_data.has_value() || options.tty;
  req.detached = options.detached;
  if (options.detached && req.stdin_open) {
    return Status::InvalidArgument("a detached exec has no stdin or terminal")
        .WithSubject(StatusSubject::kExec);
  }
  BOXLITE_RETURN_IF_ERROR(FitsInAFrame("exec", protocol::ToJson(req), "the command line and environment"));
  return req;
}

Result<std::shared_ptr<ExecImpl>> BoxImpl::CallExec(const std::shared_ptr<AgentChannel>& channel,
                                                    const protocol::ExecRequest& req,
                                                    ExecImpl::Explainer explain) {
  std::shared_ptr<StreamSink> sink;
  uint32_t stream = 0;
  auto reply = channel->Call("exec", protocol::ToJson(req),
                             Clock::now() + std::chrono::seconds(60), &sink, &stream);
  if (!reply.ok()) {
    if (reply.error().IsUnavailable()) return explain(reply.error());
    // The agent refused to start this command (a channel failure says kBox already).
    return reply.error().Wrap("exec " + base::ShellQuote(req.argv[0]))
        .WithDefaultSubject(StatusSubject::kExec);
  }
  protocol::ExecResponse resp;
  Status parsed = protocol::FromJson(*reply, &resp);
  if (!parsed.ok()) {
    channel->Release(stream);
    return Status::ProtocolError(parsed.message());
  }
  if (req.detached) {
    // Nothing will arrive on this stream: the Exec reports the start and the pid only.
    std::lock_guard<std::mutex> sl(sink->mu);
    sink->exit = protocol::ExitEvent{};
    sink->eof[1] = sink->eof[2] = true;
  }
  return std::make_shared<ExecImpl>(channel, stream, sink, static_cast<int>(resp.pid),
                                    resp.stdin_window, req.tty, std::move(explain));
}

Result<std::shared_ptr<Exec>> BoxImpl::StartExec(const ExecOptions& options) {
  auto exec = StartExecUncounted(options);
  if (exec.ok()) {
    execs_run_++;
    runtime_->counters().commands_executed++;
  } else {
    exec_errors_++;
    runtime_->counters().exec_errors++;
  }
  return exec;
}

Result<std::shared_ptr<Exec>> BoxImpl::StartExecUncounted(const ExecOptions& options) {
  bool idle = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (persistent() && state_ != State::kRemoved) RefreshLocked();
    idle = state_ == State::kCreated || state_ == State::kStopped;
  }
  // A configured or stopped box starts for its first command (BoxLite 0.9's can_exec).
  if (idle) BOXLITE_RETURN_IF_ERROR(Start());
  BOXLITE_ASSIGN_OR_RETURN(auto channel, Channel());
  protocol::ExecRequest req;
  {
    std::lock_guard<std::mutex> lock(mu_);
    BOXLITE_ASSIGN_OR_RETURN(req, ExecRequestLocked(options));
  }
  std::weak_ptr<BoxImpl> weak_self = weak_from_this();
  auto explain = [weak_self](const Status& why) -> Status {
    auto self = weak_self.lock();
    if (!self) return why;
    std::lock_guard<std::mutex> lock(self->mu_);
    return self->DeathStatus(why);
  };
  BOXLITE_ASSIGN_OR_RETURN(auto exec, CallExec(channel, req, explain));
  exec->set_counters(exec_bytes_);
  return std::shared_ptr<Exec>(std::move(exec));
}

Status BoxImpl::StartMainLocked() {
  const image::ImageConfig& img = image_->config;
  // Docker's rule: an entrypoint given replaces the image's CMD too.
  std::vector<std::string> argv = options_.entrypoint.value_or(img.entrypoint);
  std::vector<std::string> cmd =
      options_.cmd ? *options_.cmd
                   : (options_.entrypoint ? std::vector<std::string>{} : img.cmd);
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  main_optional_ = !options_.entrypoint && !options_.cmd;
  ended_main_.reset();
  if (argv.empty()) return Status::OK();  // No main command: the box idles until stopped.
  ExecOptions options;
  options.argv = std::move(argv);
  options.tty = options_.tty;
  options.open_stdin = true;  // Held open, so a shell or an interpreter waits for input.
  BOXLITE_ASSIGN_OR_RETURN(protocol::ExecRequest req, ExecRequestLocked(options));
  req.main = true;
  req.main_optional = main_optional_;
  // The pump thread must never wait for mu_ to explain a lost channel: Stop() holds mu_
  // while it closes the channel.
  BOXLITE_ASSIGN_OR_RETURN(auto exec, CallExec(channel_, req, [](const Status& why) { return why; }));
  main_ = NewMainSession(std::move(exec));
  return Status::OK();
}

std::unique_ptr<MainSession> BoxImpl::NewMainSession(std::shared_ptr<ExecImpl> exec) {
  std::weak_ptr<BoxImpl> weak_self = weak_from_this();
  auto on_exit = [weak_self](const ExitStatus& st) {
    if (auto self = weak_self.lock()) self->OnMainExit(st);
  };
  // Views explain a lost stream on their caller's thread (never the pump's: Stop() holds
  // mu_ while it closes the channel).
  auto explain = [weak_self](const Status& why) -> Status {
    auto self = weak_self.lock();
    if (!self || !why.IsUnavailable()) return why;
    std::lock_guard<std::mutex> lock(self->mu_);
    return self->DeathStatus(why);
  };
  return std::make_unique<MainSession>(std::move(exec), std::move(on_exit), std::move(explain));
}

void BoxImpl::OnMainExit(const ExitStatus& st) {
  if (main_optional_ && !st.error_message.empty()) {
    // The image's own command could not start: the agent keeps the box up without it.
    BOXLITE_LOG(kWarn, "box %s: the image's command could not start (%s); it runs without one",
                name_.c_str(), st.error_message.c_str());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<sys::FileLock> box_lock;
  if (persistent() && state_ != State::kRemoved) {
    auto l = sys::FileLock::Acquire(DirPath("lock"));
    if (l.ok()) box_lock.emplace(std::move(l).value());
    RefreshLocked();
  }
  exit_code_ = st.exit_code;
  if (persistent() && state_ != State::kRemoved) {
    record_.exit_code = st.exit_code;
    (void)SaveRecord(dir_, record_);
  }
  // Kept for AttachMain: a command that ended before anyone attached still shows its
  // output and exit (`boxlite run IMAGE echo hi`).
  ended_main_ = std::move(main_);
  // The guest powers itself off after reporting: this only waits and cleans up.
  (void)StopLocked(/*graceful=*/true, std::chrono::seconds(10));
}

Result<std::shared_ptr<Exec>> BoxImpl::AttachMain() {
  bool idle = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (persistent() && state_ != State::kRemoved) RefreshLocked();
    idle = state_ == State::kCreated;
  }
  if (idle) BOXLITE_RETURN_IF_ERROR(Start());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (main_) return main_->Attach();
    if (ended_main_ && state_ != State::kRunning) return ended_main_->Attach();
    if (state_ != State::kRunning) {
      return Status::FailedPrecondition("box " + name_ + " is not running", "start it first");
    }
    if (launched_here_) {
      return Status::FailedPrecondition("box " + name_ + " has no main command",
                                        "give the box an entrypoint or cmd (or an image with one)");
    }
  }
  // Another process started the box: take its main command over from the agent, which
  // kept it running (and its newest output) since that process let go.
  BOXLITE_ASSIGN_OR_RETURN(auto channel, Channel());
  std::lock_guard<std::mutex> lock(mu_);
  if (main_) return main_->Attach();
  BOXLITE_ASSIGN_OR_RETURN(auto exec, CallAttachMainLocked(channel));
  main_ = NewMainSession(std::move(exec));
  return main_->Attach();
}

Result<std::shared_ptr<ExecImpl>> BoxImpl::CallAttachMainLocked(
    const std::shared_ptr<AgentChannel>& channel) {
  protocol::Json req = {{"target", "main"}, {"window", protocol::kDefaultWindow}};
  std::shared_ptr<StreamSink> sink;
  uint32_t stream = 0;
  auto reply =
      channel->Call("attach", req, Clock::now() + std::chrono::seconds(60), &sink, &stream);
  if (!reply.ok()) {
    const Status& e = reply.error();
    if (e.code() == StatusCode::kAlreadyExists) {
      return Status::FailedPrecondition(
                 "box " + name_ + "'s main command is attached in another process",
                 "one attacher at a time: end that attach (or let that process's box go) first")
          .WithSubject(StatusSubject::kBox);
    }
    if (e.code() == StatusCode::kNotFound) {
      return Status::FailedPrecondition("box " + name_ + " has no main command running",
                                        "give the box an entrypoint or cmd (or an image with one)")
          .WithSubject(StatusSubject::kBox);
    }
    if (e.IsUnavailable()) return DeathStatus(e);
    return e.Wrap("attach to box " + name_ + "'s main command");
  }
  protocol::ExecResponse resp;
  Status parsed = protocol::FromJson(*reply, &resp);
  if (!parsed.ok()) {
    channel->Release(stream);
    return Status::ProtocolError(parsed.message());
  }
  // The terminal is the box's (BoxOptions::tty), as the agent started the command.
  return std::make_shared<ExecImpl>(channel, stream, sink, static_cast<int>(resp.pid),
                                    resp.stdin_window, options_.tty,
                                    [](const Status& why) { return why; });
}

namespace {

// "main command exited with code N" in the console after `offset` (agent/server.cc writes
// it when the main command ends). The console is the guest's: the number is bounded and
// only what the guest reports.
std::optional<int> MainExitFromConsole(int fd, uint64_t offset) {
  static constexpr std::string_view kMarker = "boxlite-agent: main command exited with code ";
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_size <= 0) return std::nullopt;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (offset > size) offset = 0;  // The log was cut back under its cap.
  uint64_t start = std::max(offset, size > 65536 ? size - 65536 : 0);
  std::string tail(static_cast<size_t>(size - start), '\0');
  ssize_t n = ::pread(fd, tail.data(), tail.size(), static_cast<off_t>(start));
  if (n <= 0) return std::nullopt;
  tail.resize(static_cast<size_t>(n));
  size_t at = tail.rfind(kMarker);
  if (at == std::string::npos) return std::nullopt;
  size_t end = tail.find_first_of("\r\n", at);
  std::string digits = tail.substr(at + kMarker.size(),
                                   end == std::string::npos ? std::string::npos
                                                            : end - at - kMarker.size());
  bool negative = !digits.empty() && digits[0] == '-';
  auto value = base::ParseUint(negative ? digits.substr(1) : digits);
  if (!value || *value > 1024) return std::nullopt;
  return negative ? -static_cast<int>(*value) : static_cast<int>(*value);
}

}  // namespace

std::optional<int> BoxImpl::ExitCodeLocked() {
  if (exit_code_) return exit_code_;
  if (!persistent()) return std::nullopt;
  if (record_.exit_code) return record_.exit_code;
  if (record_.pid != 0 && !SameProcessAlive(record_.pid, record_.pid_start_time)) {
    // It powered itself off with no host watching (a detached box whose creator is gone).
    auto log = sys::Open(DirPath("console.log"), O_RDONLY | O_CLOEXEC);
    if (log.ok()) return MainExitFromConsole(log->get(), record_.console_offset);
  }
  return std::nullopt;
}

Result<ExecResult> BoxImpl::Run(const ExecOptions& options) {
  auto t0 = Clock::now();
  BOXLITE_ASSIGN_OR_RETURN(auto exec_base, StartExec(options));
  auto exec = std::static_pointer_cast<ExecImpl>(exec_base);
  std::thread writer;
  Status write_status;
  if (options.stdin_data) {
    writer = std::thread([&] {
      write_status = exec->WriteStdin(*options.stdin_data);
      Status closed = exec->CloseStdin();
      if (write_status.ok()) write_status = closed;
    });
  }
  ExecResult result;
  std::optional<Clock::time_point> deadline;
  if (options.timeout_seconds) {
    deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(*options.timeout_seconds));
  }
  Status failure;
  while (true) {
    int fd = 0;
    auto chunk = exec->ReadAny(&fd, deadline);
    if (!chunk.ok()) {
      if (chunk.error().IsDeadlineExceeded() && !result.timed_out) {
        result.timed_out = true;
        (void)exec->Kill();
        deadline = Clock::now() + std::chrono::seconds(30);
        continue;
      }
      failure = chunk.error();
      break;
    }
    if (fd == 0) break;
    std::string& kept = fd == 1 ? result.stdout_data : result.stderr_data;
    bool& truncated = fd == 1 ? result.stdout_truncated : result.stderr_truncated;
    truncated = AppendOutput(&kept, *chunk, options.max_output_bytes) || truncated;
  }
  if (writer.joinable()) {
    if (!failure.ok() || result.timed_out) (void)exec->Kill();
    writer.join();
  }
  if (!failure.ok()) {
    exec_errors_++;
    runtime_->counters().exec_errors++;
    if (failure.IsUnavailable()) return DeathStatus(failure);
    return failure;
  }
  auto status = exec->Wait(std::chrono::seconds(30));
  if (!status.ok()) {
    exec_errors_++;
    runtime_->counters().exec_errors++;
    if (status.error().IsUnavailable()) return DeathStatus(status.error());
    return status.error();
  }
  result.exit_code = status->exit_code;
  result.signal = status->signal;
  result.error_message = status->error_message;
  result.timed_out = result.timed_out || status->timed_out;
  result.duration_seconds = Seconds(Clock::now() - t0);
  return result;
}

Result<BoxInfo> BoxImpl::Info() {
  std::lock_guard<std::mutex> lock(mu_);
  RefreshLocked();
  BoxInfo info;
  info.id = id_;
  info.name = name_;
  info.image = options_.rootfs_path.empty() ? options_.image : options_.rootfs_path;
  if (image_) info.image = image_->reference;
  switch (state_) {
    case State::kCreated:
      info.state = "configured";
      break;
    case State::kRunning:
      info.state = Died().ok() ? "running" : "stopped";
      break;
    case State::kStopped:
    case State::kRemoved:
      info.state = "stopped";
      break;
  }
  info.created_unix = created_unix_;
  info.cpus = options_.cpus;
  info.memory_mib = options_.memory_mib;
  info.disk_size_mib = disk_size_mib_ ? disk_size_mib_ : options_.disk_size_mib;
  info.network = options_.security.network_enabled ? options_.network : "none";
  info.ports = options_.ports;
  const auto& bound = persistent() && bound_ports_.empty() ? record_.bound_ports : bound_ports_;
  if (info.state == "running" && !bound.empty()) info.ports = bound;
  info.mounts = options_.mounts;
  info.auto_remove = RemovesOnStop(options_);
  info.detach = options_.detach;
  info.auto_pause = options_.auto_pause;
  info.auto_delete = options_.auto_delete.value_or(0);
  info.auto_resume = options_.auto_resume;
  info.entrypoint = options_.entrypoint;
  info.cmd = options_.cmd;
  if (info.state != "running") info.exit_code = ExitCodeLocked();
  info.pid = vm_ ? vm_->pid() : (state_ == State::kRunning ? record_.pid : 0);
  info.accel = accel_;
  if (health_) {
    std::lock_guard<std::mutex> hl(health_->mu);
    info.health = health_->status;
  }
  return info;
}

bool BoxImpl::RunningHere() {
  std::lock_guard<std::mutex> lock(mu_);
  return state_ == State::kRunning && channel_ != nullptr && Died().ok();
}

void BoxImpl::StartHealthLocked() {
  StopHealthLocked();
  if (!options_.health_check.enabled || !channel_) return;
  health_ = std::make_shared<HealthProbe>();
  health_->status.state = "starting";
  health_->thread = std::thread(&BoxImpl::ProbeLoop, health_, channel_, options_.health_check);
}

void BoxImpl::StopHealthLocked() {
  if (!health_) return;
  {
    std::lock_guard<std::mutex> hl(health_->mu);
    health_->stop = true;
  }
  health_->cv.notify_all();
  // A probe in flight ends at its timeout, or at once when the channel was closed.
  if (health_->thread.joinable()) health_->thread.join();
}

void BoxImpl::ProbeLoop(std::shared_ptr<HealthProbe> probe, std::shared_ptr<AgentChannel> channel,
                        HealthCheckOptions options) {
  const auto started = Clock::now();
  const auto interval = std::chrono::seconds(options.interval_s);
  const auto grace = std::chrono::seconds(options.start_period_s);
  while (true) {
    {
      std::unique_lock<std::mutex> hl(probe->mu);
      if (probe->cv.wait_for(hl, interval, [&] { return probe->stop; })) return;
    }
    auto sent = Clock::now();
    auto reply = channel->Call("ping", protocol::Json::object(),
                               sent + std::chrono::seconds(options.timeout_s));
    std::lock_guard<std::mutex> hl(probe->mu);
    if (probe->stop) return;
    RecordProbe(&probe->status, reply.ok(), sent - started < grace, options.retries,
                static_cast<int64_t>(std::time(nullptr)));
  }
}

namespace {

// A number the guest sent: present, a non-negative integer, at most `max`.
std::optional<uint64_t> GuestCount(const protocol::Json& reply, const char* key, uint64_t max) {
  int64_t v = -1;
  if (!protocol::GetInt(reply, key, &v).ok() || v < 0) return std::nullopt;
  return std::min<uint64_t>(static_cast<uint64_t>(v), max);
}

// CPU seconds (utime + stime) of a process and its start, seconds after boot.
struct ProcessCpu {
  double cpu_seconds = 0;
  double start_seconds = 0;
};

std::optional<ProcessCpu> ReadProcessCpu(int pid) {
  auto stat = sys::ReadFile(base::StrFormat("/proc/%d/stat", pid));
  if (!stat.ok()) return std::nullopt;
  // Fields after the parenthesised command: state is field 3; utime 14, stime 15,
  // starttime 22.
  size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 > stat->size()) return std::nullopt;
  auto fields = base::Split(stat->substr(close + 2), ' ');
  if (fields.size() <= 19) return std::nullopt;
  double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  ProcessCpu cpu;
  cpu.cpu_seconds = static_cast<double>(base::ParseUint(fields[11]).value_or(0) +
                                        base::ParseUint(fields[12]).value_or(0)) /
                    ticks;
  cpu.start_seconds = static_cast<double>(base::ParseUint(fields[19]).value_or(0)) / ticks;
  return cpu;
}

double HostUptimeSeconds() {
  auto text = sys::ReadFile("/proc/uptime");
  return text.ok() ? std::strtod(text->c_str(), nullptr) : 0;
}

}  // namespace

Result<BoxMetrics> BoxImpl::Metrics() {
  BoxMetrics m;
  int pid = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    RefreshLocked();
    if (state_ != State::kRunning) {
      return Status::FailedPrecondition("box " + name_ + " is not running");
    }
    pid = vm_ ? vm_->pid() : record_.pid;
    m.create_seconds = create_seconds_ > 0 ? create_seconds_ : record_.create_seconds;
    m.boot_seconds = boot_seconds_ > 0 ? boot_seconds_ : record_.boot_seconds;
    if (m.create_seconds > 0 || m.boot_seconds > 0) {
      m.total_create_duration_ms = static_cast<int64_t>((m.create_seconds + m.boot_seconds) * 1000);
      m.guest_boot_duration_ms = static_cast<int64_t>(m.boot_seconds * 1000);
    }
    if (stages_) {
      m.stage_filesystem_setup_ms = stages_->filesystem_setup_ms;
      m.stage_image_prepare_ms = stages_->image_prepare_ms;
      m.stage_guest_rootfs_ms = stages_->guest_rootfs_ms;
      m.stage_box_config_ms = stages_->box_config_ms;
      m.stage_box_spawn_ms = stages_->box_spawn_ms;
      m.stage_container_init_ms = stages_->container_init_ms;
    }
  }
  m.execs_run = execs_run_;
  m.commands_executed_total = execs_run_;
  m.exec_errors_total = exec_errors_;
  m.bytes_sent_total = exec_bytes_->sent;
  m.bytes_received_total = exec_bytes_->received;
  if (auto channel = Channel(); channel.ok()) {
    auto guest = (*channel)->Call("metrics", protocol::Json::object(),
                                  Clock::now() + std::chrono::seconds(10));
    if (guest.ok()) {
      // The guest's numbers are untrusted: bounded, never negative.
      constexpr uint64_t kMaxBytes = uint64_t{1} << 56;
      uint64_t total = GuestCount(*guest, "mem_total", kMaxBytes).value_or(0);
      uint64_t available = std::min(total, GuestCount(*guest, "mem_available", kMaxBytes).value_or(0));
      m.guest_memory_total_bytes = total;
      m.guest_memory_used_bytes = total - available;
      m.network_bytes_received = GuestCount(*guest, "net_rx_bytes", kMaxBytes);
      m.network_bytes_sent = GuestCount(*guest, "net_tx_bytes", kMaxBytes);
      m.network_tcp_connections = GuestCount(*guest, "tcp_opens", kMaxBytes);
      m.network_tcp_errors = GuestCount(*guest, "tcp_errors", kMaxBytes);
    }
  }
  if (pid > 0) {
    if (auto cpu = ReadProcessCpu(pid)) {
      m.cpu_seconds = cpu->cpu_seconds;
      auto now = Clock::now();
      std::lock_guard<std::mutex> cl(cpu_mu_);
      double elapsed = 0;
      double used = 0;
      if (cpu_pid_ == pid) {
        elapsed = Seconds(now - cpu_at_);
        used = cpu->cpu_seconds - cpu_seconds_;
      } else {
        // The first sample of this VM: its average since it started.
        elapsed = HostUptimeSeconds() - cpu->start_seconds;
        used = cpu->cpu_seconds;
      }
      if (elapsed > 0.001) m.cpu_percent = std::max(0.0, used / elapsed * 100.0);
      cpu_pid_ = pid;
      cpu_seconds_ = cpu->cpu_seconds;
      cpu_at_ = now;
    }
    auto status = sys::ReadFile(base::StrFormat("/proc/%d/status", pid));
    if (status.ok()) {
      for (const auto& line : base::Split(*status, '\n')) {
        if (base::StartsWith(line, "VmRSS:")) {
          m.memory_rss_bytes = std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
          m.memory_bytes = m.memory_rss_bytes;
        }
      }
    }
  }
  return m;
}

namespace {

// A guest path longer than PATH_MAX can name nothing, and must not grow a request past
// one frame.
Status CheckGuestPath(const std::string& guest_path) {
  if (guest_path.size() < PATH_MAX) return Status::OK();
  return Status::InvalidArgument(
      base::StrFormat("the guest path is %zu bytes long; at most %d", guest_path.size(), PATH_MAX - 1));
}

}  // namespace

Status BoxImpl::CopyIn(const std::string& host_path, const std::string& guest_path,
                       const CopyOptions& options) {
  BOXLITE_RETURN_IF_ERROR(CheckGuestPath(guest_path));
  BOXLITE_ASSIGN_OR_RETURN(auto channel, Channel());
  return CopyToGuest(channel.get(), host_path, guest_path, options);
}

Status BoxImpl::CopyOut(const std::string& guest_path, const std::string& host_path,
                        const CopyOptions& options) {
  BOXLITE_RETURN_IF_ERROR(CheckGuestPath(guest_path));
  BOXLITE_ASSIGN_OR_RETURN(auto channel, Channel());
  return CopyFromGuest(channel.get(), guest_path, host_path, options);
}

Result<std::string> BoxImpl::ConsoleLog() {
  std::lock_guard<std::mutex> lock(mu_);
  if (persistent()) {
    auto text = sys::ReadFile(DirPath("console.log"));
    if (!text.ok() && text.error().IsNotFound()) return std::string();
    return text;
  }
  if (!console_fd_) return std::string();
  struct stat st;
  if (::fstat(console_fd_.get(), &st) != 0) return sys::ErrnoStatus(errno, "stat console");
  std::string buf(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = ::pread(console_fd_.get(), buf.data(), buf.size(), 0);
  if (n < 0) return sys::ErrnoStatus(errno, "read console");
  buf.resize(static_cast<size_t>(n));
  return buf;
}

}  // namespace boxlite::runtime
