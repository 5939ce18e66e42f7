// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/box_impl.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/runtime/exec_env.h"
#include "src/runtime/exec_impl.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/vmm/qemu.h"

namespace boxlite::runtime {
namespace {

constexpr int64_t kMiB = 1024 * 1024;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

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

}  // namespace

BoxImpl::BoxImpl(std::shared_ptr<RuntimeImpl> runtime, std::string id, BoxOptions options)
    : runtime_(std::move(runtime)), id_(std::move(id)), options_(std::move(options)) {
  name_ = options_.name.empty() ? id_.substr(0, 12) : options_.name;
  created_unix_ = static_cast<int64_t>(std::time(nullptr));
}

BoxImpl::~BoxImpl() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kRunning) {
    if (options_.detach && vm_) {
      vm_->Detach();
    } else {
      (void)StopLocked();
    }
  }
}

Status BoxImpl::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kRunning && Usable().ok()) return Status::OK();
  if (state_ == State::kRemoved) {
    return Status::FailedPrecondition("box " + name_ + " was removed", "create a new box");
  }
  if (state_ == State::kRunning) (void)StopLocked();  // It died; start afresh.
  Status s = StartLocked();
  if (!s.ok()) return Status(s.code(), "start box " + name_ + ": " + s.message(), s.sys_errno());
  return s;
}

Status BoxImpl::StartLocked() {
  auto t0 = Clock::now();
  BOXLITE_ASSIGN_OR_RETURN(vmm::GuestAssets assets, runtime_->Assets());
  BOXLITE_ASSIGN_OR_RETURN(vmm::AccelChoice accel, runtime_->Accel());
  if (!image_) {
    BOXLITE_ASSIGN_OR_RETURN(ResolvedImage img, runtime_->ResolveImage(options_));
    image_ = std::move(img);
  }
  int64_t base_mib = static_cast<int64_t>((image_->rootfs_bytes + kMiB - 1) / kMiB);
  disk_size_mib_ = options_.disk_size_mib > 0 ? options_.disk_size_mib : base_mib + 1024;
  if (disk_size_mib_ < base_mib) {
    return Status::InvalidArgument(base::StrFormat(
        "disk_size %lld MiB is smaller than the image's file system (%lld MiB)",
        static_cast<long long>(disk_size_mib_), static_cast<long long>(base_mib)));
  }
  std::string tmp = runtime_->TmpDir();
  BOXLITE_RETURN_IF_ERROR(sys::MakeDirs(tmp, 0700));

  // The per-box disk: a qcow2 overlay whose writes never reach the shared base.
  std::string overlay = sys::JoinPath(tmp, id_ + ".qcow2");
  auto created = sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                                  image_->rootfs_path, overlay,
                                  std::to_string(disk_size_mib_) + "M"});
  if (!created.ok()) {
    ::unlink(overlay.c_str());
    return created.error().Wrap("create the box disk");
  }
  auto disk = sys::Open(overlay, O_RDWR);
  ::unlink(overlay.c_str());
  if (!disk.ok()) return disk.error();
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
  base::UniqueFd host_end(sp[0]);
  base::UniqueFd guest_end(sp[1]);

  vmm::VmConfig config;
  config.accel = accel.accel;
  config.cpus = options_.cpus;
  config.memory_mib = options_.memory_mib;
  config.kernel = assets.kernel;
  config.initramfs = assets.initramfs;
  config.tsc_khz = vmm::HostTscKhz();
  config.disk = base::StrFormat("/proc/self/fd/%d", disk->get());
  config.console_log = base::StrFormat("/proc/self/fd/%d", console_fd_.get());
  config.agent_fd = guest_end.get();
  config.inherit_fds = {disk->get(), console_fd_.get(), guest_end.get()};
  vmm::LaunchOptions launch;
  launch.die_with_owner = !options_.detach;
  launch.stderr_fd = qemu_log_fd_.get();
  BOXLITE_ASSIGN_OR_RETURN(sys::Subprocess vm, vmm::LaunchQemu(config, launch));
  vm_.emplace(std::move(vm));
  guest_end.reset();
  disk->reset();
  accel_ = std::string(vmm::AccelName(accel.accel));
  auto t_launched = Clock::now();

  death_ = std::make_shared<DeathNote>();
  // The callback runs on the channel's reader thread; it only records why.
  channel_ = std::make_shared<AgentChannel>(
      std::move(host_end), [note = death_](const Status& why) {
        std::lock_guard<std::mutex> nl(note->mu);
        if (!note->stopping && note->why.ok()) note->why = why;
      });
  state_ = State::kRunning;

  protocol::HelloRequest hello;
  hello.config.hostname = name_;
  hello.config.clock_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
  auto reply = channel_->Call("hello", protocol::ToJson(hello), Clock::now() + BootTimeout());
  if (!reply.ok()) {
    Status why = reply.error().IsDeadlineExceeded()
                     ? Status::Unavailable(base::StrFormat(
                           "the guest did not answer within %llds",
                           static_cast<long long>(BootTimeout().count())))
                     : reply.error();
    Status explained = DeathStatus(why);
    {
      std::lock_guard<std::mutex> dl(death_->mu);
      death_->stopping = true;
    }
    channel_.reset();
    if (vm_) vm_->Kill();
    vm_.reset();
    state_ = State::kStopped;
    return explained;
  }
  auto t_ready = Clock::now();
  create_seconds_ = Seconds(t_launched - t0);
  boot_seconds_ = Seconds(t_ready - t_launched);
  BOXLITE_LOG(kDebug, "box %s: create %.3fs boot %.3fs", name_.c_str(), create_seconds_,
              boot_seconds_);
  return Status::OK();
}

Status BoxImpl::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  return StopLocked();
}

Status BoxImpl::StopLocked() {
  if (state_ == State::kRunning) {
    {
      std::lock_guard<std::mutex> dl(death_->mu);
      death_->stopping = true;
    }
    bool ephemeral = options_.auto_remove && !options_.detach;
    if (!ephemeral && channel_ && channel_->health().ok()) {
      // Persistent disk: let the guest flush and unmount before the VM ends.
      (void)channel_->Call("shutdown", protocol::Json::object(),
                           Clock::now() + std::chrono::seconds(10));
      if (vm_) (void)vm_->WaitFor(std::chrono::seconds(10));
    }
    if (vm_) vm_->Kill();
    if (channel_) channel_->Close(Status::FailedPrecondition("box " + name_ + " was stopped"));
    channel_.reset();
    vm_.reset();
    state_ = State::kStopped;
  }
  if (state_ == State::kStopped && options_.auto_remove) {
    state_ = State::kRemoved;
    console_fd_.reset();
    qemu_log_fd_.reset();
    runtime_->Forget(id_);
  }
  return Status::OK();
}

Status BoxImpl::Usable() {
  if (state_ == State::kCreated) {
    return Status::FailedPrecondition("box " + name_ + " is not started", "call Start() first");
  }
  if (state_ != State::kRunning) {
    return Status::FailedPrecondition("box " + name_ + " is stopped");
  }
  return Died();
}

Status BoxImpl::Died() {
  std::lock_guard<std::mutex> dl(death_->mu);
  return death_->why;
}

Result<std::shared_ptr<AgentChannel>> BoxImpl::Channel() {
  std::lock_guard<std::mutex> lock(mu_);
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
  std::string console = ConsoleTail();
  if (!console.empty()) detail += "; guest console: " + console;
  return Status::Unavailable("box " + name_ + " stopped unexpectedly (" + detail + ")",
                             "start a new box");
}

Result<std::shared_ptr<Exec>> BoxImpl::StartExec(const ExecOptions& options) {
  BOXLITE_ASSIGN_OR_RETURN(auto channel, Channel());
  protocol::ExecRequest req;
  req.argv = options.argv;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const image::ImageConfig& img = image_->config;
    if (options.use_image_entrypoint) {
      req.argv = img.entrypoint;
      const auto& args = options.argv.empty() ? img.cmd : options.argv;
      req.argv.insert(req.argv.end(), args.begin(), args.end());
      if (req.argv.empty()) {
        return Status::InvalidArgument("no command given and the image has no Entrypoint or Cmd");
      }
    }
    if (req.argv.empty() || req.argv[0].empty()) {
      return Status::InvalidArgument("exec needs a command");
    }
    req.env = MergeEnv(img.env, options_.env, options.env);
    req.cwd = FirstNonEmpty({options.cwd, options_.working_dir, img.working_dir}, "/");
    req.user = FirstNonEmpty({options.user, options_.user, img.user}, "");
  }
  req.tty = options.tty;
  req.rows = options.rows;
  req.cols = options.cols;
  req.stdin_open = options.open_stdin || options.stdin_data.has_value() || options.tty;
  std::shared_ptr<StreamSink> sink;
  uint32_t stream = 0;
  auto reply = channel->Call("exec", protocol::ToJson(req),
                             Clock::now() + std::chrono::seconds(60), &sink, &stream);
  if (!reply.ok()) {
    if (reply.error().IsUnavailable()) return DeathStatus(reply.error());
    return reply.error().Wrap("exec " + base::ShellQuote(options.argv[0]));
  }
  protocol::ExecResponse resp;
  Status parsed = protocol::FromJson(*reply, &resp);
  if (!parsed.ok()) {
    channel->Release(stream);
    return Status::ProtocolError(parsed.message());
  }
  execs_run_++;
  std::weak_ptr<BoxImpl> weak_self = weak_from_this();
  auto explain = [weak_self](const Status& why) -> Status {
    auto self = weak_self.lock();
    if (!self) return why;
    std::lock_guard<std::mutex> lock(self->mu_);
    return self->DeathStatus(why);
  };
  return std::shared_ptr<Exec>(std::make_shared<ExecImpl>(channel, stream, sink,
                                                          static_cast<int>(resp.pid),
                                                          resp.stdin_window, options.tty, explain));
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
    (fd == 1 ? result.stdout_data : result.stderr_data) += *chunk;
  }
  if (writer.joinable()) {
    if (!failure.ok() || result.timed_out) (void)exec->Kill();
    writer.join();
  }
  if (!failure.ok()) {
    if (failure.IsUnavailable()) return DeathStatus(failure);
    return failure;
  }
  auto status = exec->Wait(std::chrono::seconds(30));
  if (!status.ok()) {
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
  BoxInfo info;
  info.id = id_;
  info.name = name_;
  info.image = options_.rootfs_path.empty() ? options_.image : options_.rootfs_path;
  if (image_) info.image = image_->reference;
  switch (state_) {
    case State::kCreated:
      info.state = "created";
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
  info.network = options_.network;
  info.ports = options_.ports;
  info.mounts = options_.mounts;
  info.auto_remove = options_.auto_remove;
  info.detach = options_.detach;
  info.pid = vm_ ? vm_->pid() : 0;
  info.accel = accel_;
  return info;
}

Result<BoxMetrics> BoxImpl::Metrics() {
  BoxMetrics m;
  int pid = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    BOXLITE_RETURN_IF_ERROR(Usable());
    pid = vm_ ? vm_->pid() : 0;
    m.create_seconds = create_seconds_;
    m.boot_seconds = boot_seconds_;
  }
  m.execs_run = execs_run_;
  if (pid > 0) {
    auto stat = sys::ReadFile(base::StrFormat("/proc/%d/stat", pid));
    if (stat.ok()) {
      // Fields after the parenthesised command: state is field 3; utime 14, stime 15.
      size_t close = stat->rfind(')');
      auto fields = base::Split(stat->substr(close + 2), ' ');
      if (fields.size() > 13) {
        double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
        m.cpu_seconds = static_cast<double>(base::ParseUint(fields[11]).value_or(0) +
                                            base::ParseUint(fields[12]).value_or(0)) /
                        ticks;
      }
    }
    auto status = sys::ReadFile(base::StrFormat("/proc/%d/status", pid));
    if (status.ok()) {
      for (const auto& line : base::Split(*status, '\n')) {
        if (base::StartsWith(line, "VmRSS:")) {
          m.memory_rss_bytes = std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
        }
      }
    }
  }
  return m;
}

Status BoxImpl::CopyIn(const std::string&, const std::string&) {
  return Status::NotSupported("copy_in is not implemented yet");
}

Status BoxImpl::CopyOut(const std::string&, const std::string&) {
  return Status::NotSupported("copy_out is not implemented yet");
}

Result<std::string> BoxImpl::ConsoleLog() {
  std::lock_guard<std::mutex> lock(mu_);
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
