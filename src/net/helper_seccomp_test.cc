// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The filter is installed in a forked child, which tries what boxlite-net's event loop
// needs and what an attacker who took it over would try, and reports each result.
#include "src/net/helper_seccomp.h"

#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <string>

#include "src/base/strings.h"

namespace boxlite::net {
namespace {

// "name=0" (worked) or "name=errno" per line.
std::map<std::string, int> RunFiltered() {
  int p[2];
  EXPECT_EQ(::pipe(p), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    std::string out;
    auto note = [&out](const char* name, bool ok) {
      out += base::StrFormat("%s=%d\n", name, ok ? 0 : errno);
    };
    if (!InstallHelperSeccomp().ok()) _exit(3);
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    note("socket_inet", s >= 0);
    sockaddr_in lo{};
    lo.sin_family = AF_INET;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    note("bind_inet", ::bind(s, reinterpret_cast<sockaddr*>(&lo), sizeof(lo)) == 0);
    note("close", ::close(s) == 0);
    int u = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    note("socket_inet6", u >= 0);
    ::close(u);
    note("socket_icmp", (u = ::socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)) >= 0 || errno == EACCES);
    if (u >= 0) ::close(u);
    ifaddrs* list = nullptr;
    note("getifaddrs", ::getifaddrs(&list) == 0);
    if (list != nullptr) ::freeifaddrs(list);
    pollfd pfd{p[1], POLLOUT, 0};
    note("poll", ::poll(&pfd, 1, 0) == 1);
    void* mem =
        ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    note("mmap_rw", mem != MAP_FAILED);
    note("mprotect_exec", ::mprotect(mem, 4096, PROT_READ | PROT_EXEC) == 0);
    note("mmap_exec", ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                             -1, 0) != MAP_FAILED);
    note("open", ::open("/etc/hostname", O_RDONLY) >= 0);
    note("socket_unix", ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0);
    note("socket_packet", ::socket(AF_PACKET, SOCK_RAW, 0) >= 0);
    note("socket_netlink_audit", ::socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT) >= 0);
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    note("execve", ::execve("/bin/true", argv, nullptr) == 0);
    pid_t child = ::fork();
    if (child == 0) _exit(0);
    note("fork", child > 0);
    note("kill_parent", ::kill(::getppid(), 0) == 0);
    (void)::write(p[1], out.data(), out.size());
    _exit(0);
  }
  ::close(p[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::map<std::string, int> results;
  for (const auto& line : base::Split(text, '\n')) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) results[line.substr(0, eq)] = std::stoi(line.substr(eq + 1));
  }
  return results;
}

TEST(HelperSeccompTest, EventLoopWorksEverythingElseIsRefused) {
  auto r = RunFiltered();
  for (const char* allowed : {"socket_inet", "bind_inet", "close", "socket_inet6",
                              "socket_icmp", "getifaddrs", "poll", "mmap_rw"}) {
    ASSERT_TRUE(r.count(allowed)) << allowed;
    EXPECT_EQ(r[allowed], 0) << allowed;
  }
  for (const char* refused : {"mprotect_exec", "mmap_exec", "open", "socket_unix",
                              "socket_packet", "socket_netlink_audit", "execve", "fork",
                              "kill_parent"}) {
    ASSERT_TRUE(r.count(refused)) << refused;
    EXPECT_EQ(r[refused], EPERM) << refused;
  }
}

}  // namespace
}  // namespace boxlite::net
