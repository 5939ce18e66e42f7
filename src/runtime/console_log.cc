// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/console_log.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

constexpr char kDropMarker[] = "\n[boxlite: console output dropped here to keep the log small]\n";
constexpr int64_t kMarkerBytes = sizeof(kDropMarker) - 1;
// What a compaction keeps of the latest output: half the cap, so compactions are rare.
constexpr int64_t kKeepBytes = kConsoleMaxBytes / 2;
constexpr size_t kChunk = 64 << 10;
static_assert(kConsoleHeadBytes + kMarkerBytes + kKeepBytes + int64_t{kChunk} <= kConsoleMaxBytes);

// Static: the forked writer must not allocate (its parent may have had other threads).
char g_in[kChunk];
char g_move[kChunk];

bool PwriteAll(int fd, const char* p, size_t n, off_t at) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
    at += w;
  }
  return true;
}

// Keeps [0, head) and the last kKeepBytes of the file's `size` bytes, with the marker in
// between. Returns the new size, or -1 with errno. The tail moves down (destination below
// source), so copying in ascending chunks never overwrites bytes not yet copied.
int64_t Compact(int fd, int64_t size) {
  int64_t head = std::min(size, kConsoleHeadBytes);
  int64_t src = std::max(size - kKeepBytes, head);
  int64_t dst = head + kMarkerBytes;
  if (src < dst) return size;  // Nothing worth dropping.
  if (!PwriteAll(fd, kDropMarker, kMarkerBytes, head)) return -1;
  int64_t moved = 0;
  while (src + moved < size) {
    size_t want = static_cast<size_t>(std::min<int64_t>(kChunk, size - src - moved));
    ssize_t r = ::pread(fd, g_move, want, src + moved);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    if (!PwriteAll(fd, g_move, static_cast<size_t>(r), dst + moved)) return -1;
    moved += r;
  }
  if (::ftruncate(fd, dst + moved) != 0) return -1;
  return dst + moved;
}

bool IsExecutable(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The writer process: never returns. Execs `helper` when given (a fresh address space);
// otherwise, or when that fails, copies in this forked image.
[[noreturn]] void RunWriter(int in, int log_fd, const char* helper) {
  // Only async-signal-safe calls from here on.
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  int in_hi = ::fcntl(in, F_DUPFD, 64);
  int log_hi = ::fcntl(log_fd, F_DUPFD, 64);
  if (in_hi < 0 || log_hi < 0 || ::dup2(in_hi, 0) < 0 || ::dup2(log_hi, 1) < 0) ::_exit(1);
  ::close_range(2, ~0U, 0);
  if (helper != nullptr) {
    char* argv[] = {const_cast<char*>(kConsoleHelperName), nullptr};
    char* envp[] = {nullptr};
    ::execve(helper, argv, envp);
  }
  ::prctl(PR_SET_NAME, kConsoleHelperName, 0, 0, 0);
  ::_exit(CopyConsole(0, 1) == 0 ? 0 : 1);
}

}  // namespace

std::string FindConsoleHelper() {
  if (const char* env = std::getenv(kConsoleHelperEnv); env != nullptr && *env != '\0') {
    return IsExecutable(env) ? std::string(env) : std::string();
  }
  std::vector<std::string> tried;
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    tried.push_back(sys::JoinPath(sys::Dirname(self),
                                  std::string("../libexec/boxlite/") + kConsoleHelperName));
  }
#ifdef BOXLITE_CONSOLE_HELPER_INSTALLED
  tried.push_back(BOXLITE_CONSOLE_HELPER_INSTALLED);
#endif
#ifdef BOXLITE_CONSOLE_HELPER_BUILD
  tried.push_back(BOXLITE_CONSOLE_HELPER_BUILD);
#endif
  for (const auto& path : tried) {
    if (IsExecutable(path)) return path;
  }
  return std::string();
}

int CopyConsole(int in, int log_fd) {
  struct stat st;
  if (::fstat(log_fd, &st) != 0) return errno;
  int64_t size = st.st_size;
  while (true) {
    ssize_t n = ::read(in, g_in, sizeof(g_in));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    if (size + n > kConsoleMaxBytes) {
      size = Compact(log_fd, size);
      if (size < 0) return errno;
    }
    if (!PwriteAll(log_fd, g_in, static_cast<size_t>(n), size)) return errno;
    size += n;
  }
}

Result<base::UniqueFd> StartConsoleWriter(int log_fd) {
  // The writer's own description of the file: no O_APPEND (it writes at offsets),
  // readable (a compaction moves the tail down), and carrying the flock that says it
  // runs, taken here so that it is held before anyone can ask.
  std::string self = base::StrFormat("/proc/self/fd/%d", log_fd);
  int own_fd = ::open(self.c_str(), O_RDWR | O_CLOEXEC);
  if (own_fd < 0) return sys::ErrnoStatus(errno, "open the console log");
  base::UniqueFd own(own_fd);
  // A writer of the VM before this one finishes its last bytes first.
  (void)WaitConsoleWriter(log_fd, std::chrono::seconds(5));
  if (::flock(own.get(), LOCK_EX | LOCK_NB) != 0) {
    return sys::ErrnoStatus(errno, "lock the console log (is another VM of this box running?)");
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return sys::ErrnoStatus(errno, "pipe for the console");
  base::UniqueFd read_end(p[0]);
  base::UniqueFd write_end(p[1]);
  // Before the fork: the child may not allocate.
  std::string helper = FindConsoleHelper();
  pid_t child = ::fork();
  if (child < 0) return sys::ErrnoStatus(errno, "fork the console writer");
  if (child == 0) {
    // Its own session (no terminal signals); forked again so that init reaps it.
    ::setsid();
    pid_t writer = ::fork();
    if (writer == 0) RunWriter(read_end.get(), own.get(), helper.empty() ? nullptr : helper.c_str());
    ::_exit(writer < 0 ? 1 : 0);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::Internal("could not start the console writer");
  }
  return write_end;
}

bool WaitConsoleWriter(int log_fd, std::chrono::milliseconds timeout) {
  std::string self = base::StrFormat("/proc/self/fd/%d", log_fd);
  int fd = ::open(self.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  base::UniqueFd probe(fd);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (::flock(probe.get(), LOCK_SH | LOCK_NB) == 0) return true;
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace boxlite::runtime
