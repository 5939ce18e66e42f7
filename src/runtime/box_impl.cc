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

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

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

void BoxImpl::RefreshHeldLocked() {
  RefreshLocked();
  // No stop is in progress while we hold the box: a "stopping" mark was left by a process
  // that died stopping it.
  if (record_.phase == kPhaseStopping) record_.phase.clear();
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
    RefreshHeldLocked();
  }
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
  facts.ever_started = !record_.rootfs_path.empty();
  facts.vm_recorded = record_.pid != 0;
  facts.vm_alive = SameProcessAlive(record_.pid, record_.pid_start_time);
  facts.phase = record_.phase;
  if (facts.vm_alive && facts.phase == kPhaseStopping &&
      sys::FileLock::TryAcquire(DirPath("lock")).ok()) {
    facts.phase = "";  // Nobody holds the box: the process that was stopping it is gone.
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
  auto reply = channel_->Call("hello", protocol::ToJson(hello), Clock::now() + BootTimeout(runtime_->options()));
  if (reply.ok()) {
    protocol::HelloResponse resp;
    if (config_ms != nullptr && protocol::FromJson(*reply, &resp).ok()) {
      // The guest's number: kept within the boot timeout.
      *config_ms = std::clamp<int64_t>(resp.config_ms, 0, BootTimeout(runtime_->options()).count() * 1000);
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
  if (persistent() && state_ != State::kRemoved) {
    auto l = sys::FileLock::Acquire(DirPath("lock"));
    if (!l.ok()) return l.error().Wrap("lock box " + name_);
    box_lock.emplace(std::move(l).value());
    RefreshHeldLocked();
  }
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
  return StartExecOn(channel, req, std::move(explain));
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
    std::string failure;
    BoxStatus status = StatusLocked(&failure);
    if (persistent()) BOXLITE_RETURN_IF_ERROR(CheckBoxCall("exec", name_, status, failure));
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

// "main command exited with code N" in the console after `offset` (agent/server_exec.cc writes
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
    // The VM just ended: its console writer may still be copying the last lines.
    if (log.ok()) (void)WaitConsoleWriter(log->get(), std::chrono::seconds(1));
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
  // A box made from a local OCI layout names it as BoxLite 0.9 does.
  if (!options_.rootfs_path.empty()) {
    info.image = "rootfs:" + options_.rootfs_path;
  } else {
    info.image = image_ ? image_->reference : options_.image;
  }
  info.state = std::string(StatusName(StatusLocked(&info.failure)));
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
  } else if (persistent() && options_.health_check.enabled) {
    // Probed by another process (the one that started the box): its last word.
    if (auto saved = LoadHealth(dir_)) info.health = *saved;
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
  if (persistent()) {
    health_->dir = dir_;
    if (launched_here_) {
      (void)SaveHealth(dir_, health_->status);  // A new boot starts over.
    } else if (auto saved = LoadHealth(dir_)) {
      health_->status = *saved;  // Attached to a running box: carry on from its last word.
    }
  }
  health_->thread = std::thread(&BoxImpl::ProbeLoop, health_, channel_, options_.health_check);
}

void BoxImpl::QuietHealthLocked() {
  if (!health_) return;
  std::lock_guard<std::mutex> hl(health_->mu);
  health_->stop = true;
}

void BoxImpl::StopHealthLocked() {
  if (!health_) return;
  QuietHealthLocked();
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
    // Other processes read the box's health from its directory (box_record.h).
    if (!probe->dir.empty()) (void)SaveHealth(probe->dir, probe->status);
  }
}

namespace {

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
    // The guest's numbers are untrusted: a reply out of bounds (messages.h) gives none.
    protocol::GuestMetrics gm;
    if (guest.ok() && protocol::FromJson(*guest, &gm).ok()) {
      auto count = [](const std::optional<int64_t>& v) -> std::optional<uint64_t> {
        if (!v) return std::nullopt;
        return static_cast<uint64_t>(*v);
      };
      m.guest_memory_total_bytes = static_cast<uint64_t>(gm.mem_total);
      m.guest_memory_used_bytes = static_cast<uint64_t>(gm.mem_total - gm.mem_available);
      m.network_bytes_received = count(gm.net_rx_bytes);
      m.network_bytes_sent = count(gm.net_tx_bytes);
      m.network_tcp_connections = count(gm.tcp_opens);
      m.network_tcp_errors = count(gm.tcp_errors);
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
        if (line.starts_with("VmRSS:")) {
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
