// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/cli/attach.h"

#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace boxlite::cli {
namespace {

// The terminal state to put back; restored from every exit path, including the signal
// thread's _exit.
std::mutex g_term_mu;
bool g_term_saved = false;
struct termios g_term_orig;

void RestoreTerminal() {
  std::lock_guard<std::mutex> lock(g_term_mu);
  if (g_term_saved) {
    ::tcsetattr(STDIN_FILENO, TCSADRAIN, &g_term_orig);
    g_term_saved = false;
  }
}

bool MakeRaw() {
  std::lock_guard<std::mutex> lock(g_term_mu);
  if (!::isatty(STDIN_FILENO) || ::tcgetattr(STDIN_FILENO, &g_term_orig) != 0) return false;
  struct termios raw = g_term_orig;
  ::cfmakeraw(&raw);
  if (::tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) != 0) return false;
  g_term_saved = true;
  std::atexit([] { RestoreTerminal(); });
  return true;
}

class SignalForwarder {
 public:
  SignalForwarder() {
    sigemptyset(&set_);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGQUIT}) sigaddset(&set_, sig);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    std::thread([this] { Loop(); }).detach();
  }

  void Target(Exec* exec, bool tty) {
    std::lock_guard<std::mutex> lock(mu_);
    target_ = exec;
    tty_ = tty;
    // A resize that came while nothing was attached (the box was booting): apply it now.
    if (exec != nullptr && tty && resize_pending_) {
      int rows;
      int cols;
      TerminalSize(&rows, &cols);
      (void)exec->Resize(rows, cols);
    }
    resize_pending_ = false;
  }

 private:
  void Loop() {
    while (true) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      if (sig == SIGWINCH) {
        if (target_ == nullptr) resize_pending_ = true;
        if (target_ != nullptr && tty_) {
          int rows;
          int cols;
          TerminalSize(&rows, &cols);
          (void)target_->Resize(rows, cols);
        }
        continue;
      }
      if (target_ == nullptr) {
        RestoreTerminal();
        _exit(128 + sig);
      }
      (void)target_->Signal(sig);
    }
  }

  sigset_t set_;
  std::mutex mu_;
  Exec* target_ = nullptr;  // Guarded by mu_.
  bool tty_ = false;        // Guarded by mu_.
  bool resize_pending_ = false;  // Guarded by mu_: a SIGWINCH with no target.
};

SignalForwarder* g_forwarder = nullptr;

// Copies one output stream of the exec to a host descriptor until it ends.
void Pump(Exec* exec, int fd, int host_fd) {
  while (true) {
    auto chunk = exec->Read(fd);
    if (!chunk.ok() || chunk->empty()) return;
    const char* p = chunk->data();
    size_t left = chunk->size();
    while (left > 0) {
      ssize_t n = ::write(host_fd, p, left);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return;  // Our output went away (e.g. a closed pipe): drop the rest.
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
}

}  // namespace

void InstallSignalForwarding() {
  if (g_forwarder == nullptr) g_forwarder = new SignalForwarder();
}

Status RequireTerminalStdin() {
  if (::isatty(STDIN_FILENO)) return Status::OK();
  return Status::InvalidArgument("the input device is not a TTY. Use -t only from a terminal");
}

void TerminalSize(int* rows, int* cols) {
  struct winsize ws = {};
  if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
    *rows = ws.ws_row;
    *cols = ws.ws_col;
  } else {
    *rows = 24;
    *cols = 80;
  }
}

Result<ExitStatus> AttachExec(const std::shared_ptr<Exec>& exec, bool forward_stdin, bool tty) {
  InstallSignalForwarding();
  Exec* e = exec.get();
  bool raw = tty && MakeRaw();
  std::thread out([e] { Pump(e, 1, STDOUT_FILENO); });
  std::thread err([e] { Pump(e, 2, STDERR_FILENO); });
  if (forward_stdin) {
    // The reader may stay blocked in read() after the command exits: it holds its own
    // reference and is detached, so it never delays the exit.
    std::shared_ptr<Exec> keep = exec;
    std::thread([keep] {
      char buf[65536];
      while (true) {
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (!keep->WriteStdin(std::string_view(buf, static_cast<size_t>(n))).ok()) return;
      }
      (void)keep->CloseStdin();
    }).detach();
  }
  g_forwarder->Target(e, tty);
  Result<ExitStatus> status = e->Wait();
  out.join();
  err.join();
  g_forwarder->Target(nullptr, false);
  if (raw) RestoreTerminal();
  return status;
}

}  // namespace boxlite::cli
