// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The benchmarks' floor: a trivial PID 1 that does the least a guest can do over the same
// kernel, devices and virtio-serial port as a box, so BoxLite's own overhead shows as a
// ratio. The mode comes from the kernel command line:
//   floor=boot    write "R" on the port as soon as it is open, then idle
//   floor=echo    echo every byte back (round-trip floor)
//   floor=stream  write floor_bytes=N bytes as fast as the port takes them, then idle
//   floor=pipe    the same writer in a child process, into a pipe of the size the agent
//                 gives a bulk exec's stdout (4 MiB), spliced to the port: what any guest
//                 process's output costs to reach the host through a pipe, without BoxLite
//   floor=spawn   for every byte received, fork + exec /init as "true" and wait, then echo
//                 the byte: what running a process costs this guest, without BoxLite
//   floor=first_exec  write "R" as floor=boot does, then mount the disk (/dev/vda, ext4,
//                 the options a box's volatile disk gets), fork, chroot into it and exec
//                 the image's own `true` from the default PATH, wait, and write "X": the
//                 least a first boot and first exec of that image cost this guest
// Run as `true`, it exits 0. Run as `write N` (copied into a box), it writes N bytes to
// stdout with the very loop floor=stream uses on the port, so the two throughputs differ
// only by what lies between the writer and the host.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char cmdline[4096];

static const char* Arg(const char* key) {
  size_t len = strlen(key);
  for (char* p = cmdline; (p = strstr(p, key)) != NULL; p += len) {
    if ((p == cmdline || p[-1] == ' ') && p[len] == '=') return p + len + 1;
  }
  return NULL;
}

static int OpenPort(void) {
  char path[512];
  char name[64];
  // Up to ~30 s: on a loaded host (many idle boxes beside it) the port comes up late.
  for (int attempt = 0; attempt < 30000; ++attempt) {
    DIR* d = opendir("/sys/class/virtio-ports");
    struct dirent* e;
    while (d && (e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') continue;
      snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
      int fd = open(path, O_RDONLY);
      if (fd < 0) continue;
      ssize_t n = read(fd, name, sizeof(name) - 1);
      close(fd);
      if (n > 0 && strncmp(name, "boxlite.agent", 13) == 0) {
        snprintf(path, sizeof(path), "/dev/%s", e->d_name);
        closedir(d);
        return open(path, O_RDWR);
      }
    }
    if (d) closedir(d);
    usleep(1000);
  }
  return -1;
}

// Writes `total` bytes of one prepared buffer to fd, 64 KiB per write.
static int Stream(int fd, long long total) {
  static char buf[65536];
  memset(buf, 'x', sizeof(buf));
  while (total > 0) {
    ssize_t w = write(fd, buf, total < (long long)sizeof(buf) ? (size_t)total : sizeof(buf));
    if (w > 0) total -= w;
    if (w < 0 && errno != EINTR && errno != EAGAIN) return 1;
  }
  return 0;
}

// floor=pipe: a child writes `total` bytes into a pipe with Stream's loop; this process
// moves them to the port with splice(2), as the agent moves an exec's stdout.
static int PipeStream(int port, long long total) {
  int p[2];
  if (pipe(p) != 0) return 1;
  fcntl(p[0], F_SETPIPE_SZ, 4 << 20);  // kExecPipeSize (agent/server_internal.h).
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    _exit(Stream(p[1], total));
  }
  close(p[1]);
  while (total > 0) {
    // A virtio-serial port's splice returns 0 at once on an empty pipe: wait for data.
    struct pollfd pfd = {p[0], POLLIN, 0};
    if (poll(&pfd, 1, -1) < 0 && errno != EINTR) break;
    ssize_t n = splice(p[0], NULL, port, NULL, 1 << 20, SPLICE_F_MOVE);
    if (n > 0) total -= n;
    if (n < 0 && errno != EINTR && errno != EAGAIN) break;
    if (n == 0 && (pfd.revents & POLLHUP)) break;  // The writer ended early.
  }
  close(p[0]);
  int status;
  waitpid(pid, &status, 0);
  return total > 0;
}

// floor=first_exec: the image's `true`, as a box's first exec starts it (the PATH the
// agent gives a command without one), in the box disk mounted as the agent mounts it.
static int FirstExec(void) {
  mkdir("/mnt", 0755);
  if (mount("/dev/vda", "/mnt", "ext4", 0, "noinit_itable,norecovery") != 0) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    if (chroot("/mnt") != 0 || chdir("/") != 0) _exit(126);
    setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
    char* args[] = {"true", NULL};
    execvp("true", args);
    _exit(127);
  }
  int status;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return 1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  const char* self = strrchr(argv[0], '/');
  if (strcmp(self ? self + 1 : argv[0], "true") == 0) return 0;
  if (argc == 3 && strcmp(argv[1], "write") == 0) return Stream(1, atoll(argv[2]));
  mkdir("/dev", 0755);
  mkdir("/proc", 0755);
  mkdir("/sys", 0755);
  mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  mount("proc", "/proc", "proc", 0, NULL);
  mount("sysfs", "/sys", "sysfs", 0, NULL);
  int cfd = open("/proc/cmdline", O_RDONLY);
  if (cfd >= 0) {
    ssize_t n = read(cfd, cmdline, sizeof(cmdline) - 1);
    if (n > 0) cmdline[n] = 0;
    close(cfd);
  }
  const char* mode = Arg("floor");
  int port = OpenPort();
  if (port < 0) return 1;
  if (mode && strncmp(mode, "echo", 4) == 0) {
    static char buf[65536];
    for (;;) {
      ssize_t n = read(port, buf, sizeof(buf));
      if (n <= 0) {
        usleep(1000);
        continue;
      }
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(port, buf + off, (size_t)(n - off));
        if (w > 0) off += w;
      }
    }
  } else if (mode && strncmp(mode, "spawn", 5) == 0) {
    char c;
    for (;;) {
      if (read(port, &c, 1) != 1) {
        usleep(1000);
        continue;
      }
      pid_t pid = fork();
      if (pid == 0) {
        char* args[] = {"true", NULL};
        execv("/init", args);
        _exit(127);
      }
      int status;
      waitpid(pid, &status, 0);
      ssize_t w = write(port, &c, 1);
      (void)w;
    }
  } else if (mode && strncmp(mode, "first_exec", 10) == 0) {
    ssize_t w = write(port, "R", 1);
    (void)w;
    w = write(port, FirstExec() == 0 ? "X" : "F", 1);  // "F": the host stops with an error.
  } else if (mode && strncmp(mode, "pipe", 4) == 0) {
    const char* b = Arg("floor_bytes");
    PipeStream(port, b ? atoll(b) : (64LL << 20));
  } else if (mode && strncmp(mode, "stream", 6) == 0) {
    const char* b = Arg("floor_bytes");
    Stream(port, b ? atoll(b) : (64LL << 20));
  } else {
    ssize_t w = write(port, "R", 1);
    (void)w;
  }
  for (;;) pause();
}
