// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Subprocess owns a child process: its pid and a pidfd. Contract:
// - The child is reaped exactly once, by Wait()/TryWait() or by the destructor.
// - Destroying a Subprocess whose child still runs sends SIGKILL and reaps it, unless
//   Detach() was called (then the child is left alone and never reaped by us).
// - pid() stays valid until the child is reaped; afterwards it is -1.
// - With `die_with_parent`, the child gets PR_SET_PDEATHSIG(SIGKILL). Linux ties that
//   signal to the *thread* that forked, so such children are forked from one internal
//   thread that lives as long as the process: a short-lived caller thread (a Python
//   executor worker) never takes the child down with it.
// Thread-safety: one Subprocess may be used from one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "boxlite/result.h"
#include "boxlite/status.h"
#include "src/base/unique_fd.h"
#include "src/sys/jail.h"

namespace boxlite::sys {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the program; a path or a name looked up in PATH.
  // The child's environment; nullopt inherits ours.
  std::optional<std::vector<std::string>> env;
  // Descriptors for the child's 0, 1, 2; -1 means /dev/null.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Extra descriptors the child keeps at the same number (they lose FD_CLOEXEC).
  std::vector<int> keep_fds;
  bool die_with_parent = true;
  bool new_session = false;  // setsid(): the child leaves our terminal's job control.
  // A process group of its own: a Ctrl-C at our terminal (SIGINT to the foreground
  // group) does not reach the child. Implied by new_session.
  bool new_process_group = false;
  std::string cwd;           // empty: inherit ("/" when jailed).
  // Confines the child (src/sys/jail.h). A jailed child needs an explicit `env` and keeps
  // no descriptor but 0, 1, 2 and `keep_fds`.
  std::optional<Jail> jail;
};

class Subprocess {
 public:
  static Result<Subprocess> Spawn(const SpawnOptions& options);

  // Adopts a running process we did not fork (e.g. a detached VM found again by pid);
  // such a process is never reaped or killed by the destructor.
  static Result<Subprocess> Adopt(pid_t pid);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  pid_t pid() const { return pid_; }
  // A pidfd that becomes readable when the child exits; -1 when unavailable.
  int pidfd() const { return pidfd_.get(); }
  bool running() const;

  // Waits for the child and returns its wait status (as from waitpid).
  Result<int> Wait();
  // Waits up to `timeout`; nullopt if the child is still running.
  Result<std::optional<int>> WaitFor(std::chrono::milliseconds timeout);
  Status Signal(int signo) const;
  // Sends SIGKILL and reaps.
  void Kill();
  // Leaves the child running and forgets it.
  void Detach();

 private:
  Subprocess(pid_t pid, base::UniqueFd pidfd, bool owned)
      : pid_(pid), pidfd_(std::move(pidfd)), owned_(owned) {}

  pid_t pid_ = -1;
  base::UniqueFd pidfd_;
  bool owned_ = true;  // We forked it and must reap it.
  std::optional<int> exit_status_;
};

// Formats a wait status: "exited with status 3", "killed by signal 9".
std::string DescribeWaitStatus(int status);

// Runs a command to completion, capturing stdout and stderr (merged); for setup-time tools
// such as qemu-img. Fails when the command cannot start or exits non-zero, with its output.
Result<std::string> RunCommand(const std::vector<std::string>& argv);

}  // namespace boxlite::sys
