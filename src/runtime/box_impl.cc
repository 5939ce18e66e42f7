// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// BoxImpl's lifecycle: construction and the box record, Start/Stop/Remove and the state
// they leave, connecting to a running VM and the hello that configures the guest, and
// why a box died (DeathStatus, ConsoleTail). The other parts of BoxImpl live beside it:
//   box_launch.cc   booting the VM (LaunchLocked and its steps)
//   box_exec.cc     commands: exec requests, Run, the main command and its attach
//   box_health.cc   the health prober
//   box_observe.cc  Info, Metrics, CopyIn/CopyOut, ConsoleLog
#include "src/runtime/box_impl.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <thread>

#include "src/sys/unix_socket.h"

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/base/strings.h"
#include "src/protocol/capabilities.h"
#include "src/runtime/box_impl_internal.h"
#include "src/runtime/box_secrets.h"
#include "src/runtime/console_log.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/vmm/net_helper.h"
#include "src/vmm/qemu.h"
#include "src/vmm/vm_jail.h"

namespace boxlite::runtime {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// One request must fit in one frame (bytes that are not UTF-8 travel in base64, a third
// larger; control bytes escaped, six times): a clear error instead of an abort.
Status FitsInAFrame(std::string_view op, protocol::Json body, const char* what) {
  size_t encoded = protocol::EncodeRequest(op, std::move(body)).size();
  if (encoded <= protocol::kMaxPayload) return Status::OK();
  return Status::InvalidArgument(base::StrFormat("%s take %zu bytes encoded; at most %zu fit",
                                                 what, encoded, protocol::kMaxPayload));
}

namespace {

// How long a guest has to answer (RuntimeOptions.boot_timeout_s, BOXLITE_BOOT_TIMEOUT).
std::chrono::seconds BootTimeout(const RuntimeOptions& options) {
  return std::chrono::seconds(options.boot_timeout_s);
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
  if (!record_.rootfs_path.empty() || record_.standalone_disk) {
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
  // The main command's pump and the health prober hold the channel: close it so they end
  // (the prober first told to stop, so the closing is not recorded as a failed probe).
  QuietHealthLocked();
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
  if (!options_.secrets.empty()) {  // Secrets: values and CA in the directory, 0600.
    BOXLITE_RETURN_IF_ERROR(SaveSecretValues(dir_, options_.secrets));
    BOXLITE_RETURN_IF_ERROR(LoadOrCreateBoxCa(dir_, id_).status());
  }
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
                   : (record_.rootfs_path.empty() && !record_.standalone_disk ? State::kCreated
                                                                              : State::kStopped);
  }
  if ((!record_.rootfs_path.empty() || record_.standalone_disk) && !image_) {
    image_ = ResolvedImage{record_.image_reference, record_.rootfs_path, record_.rootfs_bytes,
                           record_.image_config};
  }
}

Status BoxImpl::HoldBoxLocked(std::optional<sys::FileLock>* held) {
  if (!persistent() || state_ == State::kRemoved) return Status::OK();
  auto l = sys::FileLock::Acquire(DirPath("lock"));
  if (!l.ok()) return l.error().Wrap("lock box " + name_);
  held->emplace(std::move(l).value());
  RefreshHeldLocked();
  return Status::OK();
}

void BoxImpl::RefreshHeldLocked() {
  RefreshLocked();
  // No stop or snapshot is in progress while we hold the box: a "stopping" or "paused"
  // mark was left by a process that died during one.
  if (record_.phase == kPhaseStopping || record_.phase == kPhasePaused) record_.phase.clear();
}

Status BoxImpl::Start() {
  BOXLITE_RETURN_IF_ERROR(runtime_->CheckOpen());
  std::lock_guard<std::mutex> lock(mu_);
  // A removed box has no directory left to lock: say what happened below instead.
  std::optional<sys::FileLock> box_lock;
  BOXLITE_RETURN_IF_ERROR(HoldBoxLocked(&box_lock));
  if (state_ == State::kRemoved) {
    return Status::FailedPrecondition("box " + name_ + " was removed", "create a new box")
        .WithSubject(StatusSubject::kBox);
  }
  if (state_ == State::kRunning && channel_ && Usable().ok()) return Status::OK();
  std::string failure;
  BOXLITE_RETURN_IF_ERROR(CheckBoxCall("start", name_, StatusLocked(&failure)));
  Status s = StartLocked();
  if (!s.ok()) {
    runtime_->counters().boxes_failed++;
    MarkStartFailedLocked(s);
    return s.Wrap("start box " + name_);
  }
  return s;
}

void BoxImpl::MarkStartFailedLocked(const Status& why) {
  if (state_ == State::kRemoved || state_ == State::kRunning) return;
  if (!persistent()) {
    failure_ = "start failed: " + why.message();
    return;
  }
  if (SameProcessAlive(record_.pid, record_.pid_start_time)) return;  // Attaching failed.
  record_.phase = std::string(kPhaseFailed);
  record_.failure = "start failed: " + why.message();
  record_.pid = 0;
  record_.pid_start_time = 0;
  (void)SaveRecord(dir_, record_);
}

BoxStatus BoxImpl::StatusLocked(std::string* failure) {
  failure->clear();
  if (!persistent() || state_ == State::kRemoved) {
    switch (state_) {
      case State::kCreated:
      case State::kStopped:
        if (!failure_.empty()) {
          *failure = failure_;
          return BoxStatus::kFailed;
        }
        return state_ == State::kCreated ? BoxStatus::kConfigured : BoxStatus::kStopped;
      case State::kRunning:
        if (Died().ok()) return BoxStatus::kRunning;
        if (exit_code_) return BoxStatus::kStopped;
        *failure = VmEndedReasonLocked();
        return BoxStatus::kFailed;
      case State::kRemoved:
        return BoxStatus::kStopped;
    }
  }
  if (state_ == State::kRunning && !Died().ok() && vm_ && vm_->pid() != record_.pid) {
    // The VM this object ran or attached to was stopped by another process (which may
    // have booted a new one since): for this object, its box stopped.
    return BoxStatus::kStopped;
  }
  StatusFacts facts;
  facts.ever_started = !record_.rootfs_path.empty() || record_.standalone_disk;
  facts.vm_recorded = record_.pid != 0;
  facts.vm_alive = SameProcessAlive(record_.pid, record_.pid_start_time);
  facts.phase = record_.phase;
  if (facts.vm_alive && (facts.phase == kPhaseStopping || facts.phase == kPhasePaused) &&
      sys::FileLock::TryAcquire(DirPath("lock")).ok()) {
    // Nobody holds the box: the process that was stopping or snapshotting it is gone (a
    // frozen guest thaws by itself).
    facts.phase = "";
  }
  facts.main_exited = facts.vm_recorded && !facts.vm_alive && ExitCodeLocked().has_value();
  BoxStatus status = DeriveStatus(facts);
  if (status == BoxStatus::kFailed) {
    *failure = record_.phase == kPhaseFailed && !record_.failure.empty() ? record_.failure
                                                                          : VmEndedReasonLocked();
  }
  return status;
}

std::string BoxImpl::VmEndedReasonLocked() {
  std::string why = "the VM ended without a stop request and before its main command exited";
  if (vm_) {
    auto exited = vm_->WaitFor(std::chrono::milliseconds(0));
    if (exited.ok() && exited->has_value()) {
      why += " (qemu " + sys::DescribeWaitStatus(**exited) + ")";
    }
  }
  return why;
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
    Status hello = HelloLocked(protocol::BoxConfig{}, nullptr, nullptr, /*attach=*/true);
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
  // A new boot: the box is no longer failed (a failed launch marks it again).
  failure_.clear();
  record_.phase.clear();
  record_.failure.clear();
  return LaunchLocked();
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
  const int ports = AgentPorts(options_, true);
  for (int i = 0; i < ports; ++i) {
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
      base::StrFormat("box %s already has %d clients (its max_clients), the most it serves at "
                      "once",
                      name_.c_str(), ports),
      base::StrFormat("end another process using this box (an exec, attach or `boxlite exec`), "
                      "or create the box with a larger --max-clients (max_clients, at most %d)",
                      kMaxMaxClients));
}

Status BoxImpl::HelloLocked(const protocol::BoxConfig& config, int64_t* config_ms,
                            int64_t* guest_uptime_ms, bool attach) {
  protocol::HelloRequest hello;
  hello.config = config;
  hello.attach = attach;
  hello.config.hostname = name_;
  hello.config.clock_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
  BOXLITE_RETURN_IF_ERROR(FitsInAFrame("hello", protocol::ToJson(hello), "the box's mounts and settings"));
  const auto deadline = Clock::now() + BootTimeout(runtime_->options());
  auto reply = channel_->Call("hello", protocol::ToJson(hello), deadline);
  // An attaching client that came before the launcher's hello (the box still boots or
  // saves its warm-start template) asks again until the box is configured.
  while (attach && !reply.ok() && reply.error().IsFailedPrecondition() &&
         Clock::now() + std::chrono::milliseconds(20) < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    reply = channel_->Call("hello", protocol::ToJson(hello), deadline);
  }
  if (reply.ok()) {
    protocol::HelloResponse resp;
    if ((config_ms != nullptr || guest_uptime_ms != nullptr) &&
        protocol::FromJson(*reply, &resp).ok()) {
      // The guest's numbers: kept within the boot timeout.
      int64_t limit_ms = BootTimeout(runtime_->options()).count() * 1000;
      if (config_ms != nullptr) *config_ms = std::clamp<int64_t>(resp.config_ms, 0, limit_ms);
      if (guest_uptime_ms != nullptr) {
        *guest_uptime_ms = std::clamp<int64_t>(resp.uptime_ms, 0, limit_ms);
      }
    }
    return Status::OK();
  }
  if (reply.error().IsDeadlineExceeded()) {
    return Status::Unavailable(base::StrFormat("the guest did not answer within %llds",
                                               static_cast<long long>(BootTimeout(runtime_->options()).count())));
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
  BOXLITE_RETURN_IF_ERROR(HoldBoxLocked(&box_lock));
  return StopLocked(/*graceful=*/true, limit);
}

Status BoxImpl::StopLocked(bool graceful, std::optional<std::chrono::seconds> limit) {
  if (state_ != State::kRunning) StopHealthLocked();
  if (state_ == State::kRunning) {
    QuietHealthLocked();  // A stop is not a failed probe.
    {
      std::lock_guard<std::mutex> dl(death_->mu);
      death_->stopping = true;
    }
    if (!persistent()) {
      // Nothing of an ephemeral box survives it: no need for a clean shutdown.
      if (vm_) vm_->Kill();
    } else {
      // A VM that ended on its own (its main command exited with nobody watching) left its
      // exit status in the console: keep it before the record forgets the VM. Without
      // one, and without a stop under way, the VM died: the box stays failed.
      if (!exit_code_ && !record_.exit_code && record_.pid != 0 &&
          !SameProcessAlive(record_.pid, record_.pid_start_time)) {
        record_.exit_code = ExitCodeLocked();
        if (!record_.exit_code && record_.phase != kPhaseStopping) {
          record_.failure = VmEndedReasonLocked();
          record_.phase = std::string(kPhaseFailed);
        }
      }
      if (SameProcessAlive(record_.pid, record_.pid_start_time)) {
        // Other processes see "stopping" until the VM is gone.
        record_.phase = std::string(kPhaseStopping);
        (void)SaveRecord(dir_, record_);
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
      if (record_.phase == kPhaseStopping) record_.phase.clear();
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
    qmp_.reset();  // Memory snapshots' monitor and disk (box_memory.cc).
    qmp_fd_.reset();
    disk_fd_.reset();
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
    DropHeldDisksLocked();  // Its snapshots go with it.
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
    if (l.ok()) RefreshHeldLocked();
  }
  if (state_ == State::kRunning && !force) {
    return Status::FailedPrecondition("box " + name_ + " is running",
                                      "stop it first, or remove it with force (rm -f)")
        .WithSubject(StatusSubject::kBox);
  }
  std::string failure;
  if (!force) BOXLITE_RETURN_IF_ERROR(CheckBoxCall("remove", name_, StatusLocked(&failure)));
  // The disk goes with the box: no clean shutdown to wait for.
  BOXLITE_RETURN_IF_ERROR(StopLocked(/*graceful=*/false));
  state_ = State::kRemoved;
  DropHeldDisksLocked();  // An ephemeral box's snapshots go with it.
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
  // A fork's QEMU log is copied by a writer (StartVmLocked): its last lines first.
  if (qemu_log_capped_ && vm_ && !vm_->running()) {
    (void)WaitConsoleWriter(qemu_log_fd_.get(), std::chrono::seconds(1));
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

bool BoxImpl::RunningHere() {
  std::lock_guard<std::mutex> lock(mu_);
  return state_ == State::kRunning && channel_ != nullptr && Died().ok();
}

}  // namespace boxlite::runtime
