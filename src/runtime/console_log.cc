// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/console_log.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/sys/jail.h"

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


// The writer process: never returns. Execs `helper` when given (a fresh address space);
// otherwise, or when that fails, copies in this forked image.
[[noreturn]] void RunWriter(int in, int log_fd, const char* helper,
                            const WriterConfinement& confinement) {
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
  ::_exit(ConfineAndCopy(0, 1, confinement));
}

// The allowlist's system calls (console_log.h); newfstatat is added on its own.
constexpr const char* kWriterSyscalls[] = {
    "read",  "write", "pread64", "pwrite64",      "ftruncate",       "fstat", "lseek",
    "close", "brk",   "munmap",  "rt_sigreturn", "restart_syscall", "exit",  "exit_group",
};

// Confines the calling process; 0, or the errno of the step named in *step.
int ConfineWriter(const WriterConfinement& c, const char** step) {
  *step = "set no_new_privs";
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  // Root can empty the bounding set and must; anyone else has no capability it bounds.
  *step = "drop the capability bounding set";
  for (int cap = 0; cap < 64; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL && c.switch_identity) {
      return errno;
    }
  }
  *step = "clear the ambient capabilities";
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return errno;
  }
  if (c.switch_identity) {
    // Raw system calls: in the forked fallback glibc may still count its parent's threads.
    *step = "switch to the boxlite user";
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) return errno;
    if (::syscall(SYS_setresgid, c.gid, c.gid, c.gid) != 0) return errno;
    if (::syscall(SYS_setresuid, c.uid, c.uid, c.uid) != 0) return errno;
  }
  *step = "drop every capability";
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &header, data) != 0) return errno;
  *step = "install its seccomp filter";
  struct sock_fprog prog = {
      static_cast<unsigned short>(c.seccomp.size() / sizeof(sock_filter)),
      reinterpret_cast<sock_filter*>(const_cast<uint8_t*>(c.seccomp.data()))};
  if (prog.len == 0) return EINVAL;
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) return errno;
  return 0;
}

// Appends `s` at the end of the log (best effort).
void AppendLog(int log_fd, const char* s) {
  (void)::lseek(log_fd, 0, SEEK_END);
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(log_fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

std::string FindConsoleHelper(const std::string& configured) {
  std::vector<std::string> fallbacks;
#ifdef BOXLITE_CONSOLE_HELPER_INSTALLED
  fallbacks.push_back(BOXLITE_CONSOLE_HELPER_INSTALLED);
#endif
#ifdef BOXLITE_CONSOLE_HELPER_BUILD
  fallbacks.push_back(BOXLITE_CONSOLE_HELPER_BUILD);
#endif
  auto found = sys::FindHelperProgram(configured, "BOXLITE_CONSOLE_HELPER",
                                      kConsoleHelperName, fallbacks);
  return found.ok() ? *found : std::string();
}

Result<WriterConfinement> PrepareWriterConfinement() {
  WriterConfinement c;
  if (::geteuid() == 0) {
    BOXLITE_ASSIGN_OR_RETURN(sys::Identity who, sys::JailUserIdentity());
    c.switch_identity = true;
    c.uid = who.uid;
    c.gid = who.gid;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (ctx == nullptr) return Status::Internal("seccomp: cannot create the console writer's filter");
  int rc = 0;
  for (const char* name : kWriterSyscalls) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // Not a system call on this architecture.
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    if (rc != 0) break;
  }
  // glibc's fstat is newfstatat(fd, "", buf, AT_EMPTY_PATH): only that form, no paths.
  if (rc == 0) {
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                          SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
  }
  if (rc != 0) {
    seccomp_release(ctx);
    return sys::ErrnoStatus(-rc, "build the console writer's seccomp filter");
  }
  auto program = sys::ExportSeccompProgram(ctx);
  seccomp_release(ctx);
  if (!program.ok()) return program.error();
  c.seccomp = std::move(*program);
  return c;
}

void NoteConsoleNotLogged(int log_fd, const char* why, int err) {
  AppendLog(log_fd, "\n[boxlite: console output is not logged: ");
  AppendLog(log_fd, why);
  if (err != 0) {
    char num[16];
    char* p = num + sizeof(num);
    *--p = '\0';
    do {
      *--p = static_cast<char>('0' + err % 10);
      err /= 10;
    } while (err > 0 && p > num);
    AppendLog(log_fd, " (errno ");
    AppendLog(log_fd, p);
    AppendLog(log_fd, ")");
  }
  AppendLog(log_fd, "]\n");
}

int ConfineAndCopy(int in, int log_fd, const WriterConfinement& c) {
  const char* step = "";
  if (int err = ConfineWriter(c, &step); err != 0) {
    char why[96] = "the console writer could not ";
    std::strncat(why, step, sizeof(why) - std::strlen(why) - 1);
    NoteConsoleNotLogged(log_fd, why, err);
    return 1;
  }
  return CopyConsole(in, log_fd) == 0 ? 0 : 1;
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

Result<base::UniqueFd> StartConsoleWriter(int log_fd, const std::string& configured_helper) {
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
  std::string helper = FindConsoleHelper(configured_helper);
  BOXLITE_ASSIGN_OR_RETURN(WriterConfinement confinement, PrepareWriterConfinement());
  pid_t child = ::fork();
  if (child < 0) return sys::ErrnoStatus(errno, "fork the console writer");
  if (child == 0) {
    // Its own session (no terminal signals); forked again so that init reaps it.
    ::setsid();
    pid_t writer = ::fork();
    if (writer == 0) RunWriter(read_end.get(), own.get(), helper.empty() ? nullptr : helper.c_str(),
                               confinement);
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
