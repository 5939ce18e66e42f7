// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// BoxImpl's commands: the exec request built from the options, the box's and the image's
// settings (ExecRequestLocked); StartExec and Run; the main command (the image's
// entrypoint and cmd, or the box's) started at boot, its exit, AttachMain (also from
// another process, through the agent) and the exit code a stopped box reports.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/runtime/box_impl.h"
#include "src/runtime/box_impl_internal.h"
#include "src/runtime/console_log.h"
#include "src/runtime/box_secrets.h"
#include "src/runtime/exec_env.h"
#include "src/runtime/exec_impl.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {


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
  EnvList box_env = options_.env;
  for (auto& kv : SecretEnv(options_.secrets)) box_env.push_back(std::move(kv));  // Secrets.
  req.env = MergeEnv(img.env, box_env, options.env);
  req.cwd = FirstNonEmpty({options.cwd, options_.working_dir, img.working_dir}, "/");
  req.user = FirstNonEmpty({options.user, options_.user, img.user}, "");
  req.tty = options.tty;
  req.rows = options.rows;
  req.cols = options.cols;
  req.stdin_open = options.open_stdin || options.stdin_data.has_value() || options.tty;
  req.detached = options.detached;
  req.root_dir = options.root_dir;  // A container's root (agent/container_root.h).
  for (const auto& m : options.container_mounts) {
    req.container_mounts.push_back({m.source, m.destination, m.read_only});
  }
  auto limit = [](const std::optional<uint64_t>& v) {
    return v ? static_cast<int64_t>(std::min<uint64_t>(*v, INT64_MAX)) : int64_t{0};
  };
  req.limits.nofile = limit(options.limits.max_open_files);
  req.limits.fsize = limit(options.limits.max_file_size);
  req.limits.nproc = limit(options.limits.max_processes);
  req.limits.as = limit(options.limits.max_memory);
  req.limits.cpu = limit(options.limits.max_cpu_time);
  BOXLITE_RETURN_IF_ERROR(
      protocol::ValidateProcessLimits(req.limits, static_cast<int64_t>(kMaxOpenFilesLimit))
          .WithSubject(StatusSubject::kExec));
  req.cgroup.name = options.cgroup.name;
  req.cgroup.memory_max = limit(options.cgroup.memory_max_bytes);
  req.cgroup.cpu_quota = limit(options.cgroup.cpu_quota_us);
  req.cgroup.cpu_period = limit(options.cgroup.cpu_period_us);
  req.cgroup.pids_max = limit(options.cgroup.pids_max);
  BOXLITE_RETURN_IF_ERROR(
      protocol::ValidateExecCgroup(req.cgroup).WithSubject(StatusSubject::kExec));
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

ExecImpl::Explainer BoxImpl::DeathExplainer() {
  std::weak_ptr<BoxImpl> weak_self = weak_from_this();
  return [weak_self](const Status& why) -> Status {
    auto self = weak_self.lock();
    if (!self) return why;
    std::lock_guard<std::mutex> lock(self->mu_);
    return self->DeathStatus(why);
  };
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
  BOXLITE_ASSIGN_OR_RETURN(auto exec, CallExec(channel, req, DeathExplainer()));
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

}  // namespace boxlite::runtime
