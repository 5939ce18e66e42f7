// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Launching boxlite-net: one socket pair (ours goes to QEMU, the other to the helper),
// one pipe for the ready report (src/net/helper_options.h has the format, written here
// again so vmm does not link libslirp), and a deadline.
#include "src/vmm/net_helper.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/net/flow_stats.h"  // The counters' layout only (constants).
#include "src/net/guest_network.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::vmm {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kHelperName[] = "boxlite-net";
constexpr size_t kMaxReportBytes = 4096;

// Reads the report line, waiting at most until `deadline`. nullopt at end of file
// without a line (the helper died); DeadlineExceeded on timeout.
Result<std::optional<std::string>> ReadReport(int fd, Clock::time_point deadline) {
  std::string line;
  while (line.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return Status::DeadlineExceeded("boxlite-net did not report ready in time");
    }
    struct pollfd p = {fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT_MAX)));
    if (r < 0) {
      if (errno == EINTR) continue;
      return sys::ErrnoStatus(errno, "wait for boxlite-net");
    }
    if (r == 0) continue;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return sys::ErrnoStatus(errno, "read the boxlite-net report");
    }
    if (n == 0) return std::optional<std::string>();
    line.append(buf, static_cast<size_t>(n));
    if (line.size() > kMaxReportBytes) {
      return Status::ProtocolError("boxlite-net sent an overlong report");
    }
  }
  line.resize(line.find('\n'));
  return std::optional<std::string>(line);
}

// "ready 8080:80 41234:8000" -> ports; "error already_exists 127.0.0.1:80 is in use" ->
// that status.
Result<std::vector<PortPublish>> ParseReport(const std::string& line,
                                             const std::vector<PortPublish>& asked) {
  if (line.starts_with("error ")) {
    std::string rest = line.substr(6);
    size_t space = rest.find(' ');
    std::string code = rest.substr(0, space);
    std::string message = space == std::string::npos ? "" : rest.substr(space + 1);
    return Status(StatusCodeFromName(code), "network: " + message);
  }
  auto fields = base::Split(line, ' ', true);
  if (fields.empty() || fields[0] != "ready" || fields.size() != asked.size() + 1) {
    return Status::ProtocolError("unexpected report from boxlite-net", base::ShellQuote(line));
  }
  std::vector<PortPublish> ports;
  for (size_t i = 1; i < fields.size(); ++i) {
    auto pair = base::Split(fields[i], ':');
    auto host = pair.size() == 2 ? base::ParseUint(pair[0]) : std::nullopt;
    auto guest = pair.size() == 2 ? base::ParseUint(pair[1]) : std::nullopt;
    const PortPublish& want = asked[i - 1];
    if (!host || !guest || *host == 0 || *host > 65535 || *guest != want.guest_port ||
        (want.host_port != 0 && *host != want.host_port)) {
      return Status::ProtocolError("unexpected port in the boxlite-net report",
                                   base::ShellQuote(line));
    }
    ports.push_back({static_cast<uint16_t>(*host), want.guest_port, want.host_ip});
  }
  return ports;
}

// A sealed memfd holding `data` (never a file on disk), read from its start.
Result<base::UniqueFd> SealedMemfd(const char* name, const std::string& data) {
  base::UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return sys::ErrnoStatus(errno, "memfd_create");
  BOXLITE_RETURN_IF_ERROR(sys::WriteAll(fd.get(), data.data(), data.size()));
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0 ||
      ::lseek(fd.get(), 0, SEEK_SET) != 0) {
    return sys::ErrnoStatus(errno, "seal the secrets memfd");
  }
  return fd;
}

}  // namespace

GuestNetworkPlan GuestNetwork() {
  return GuestNetworkPlan{
      net::DottedQuad(net::kGuestAddress) + "/" + std::to_string(net::kNetworkPrefixLength),
      net::DottedQuad(net::kGatewayAddress), net::DottedQuad(net::kDnsAddress)};
}

Result<std::string> FindNetHelper(const std::string& configured) {
  std::vector<std::string> fallbacks;
#ifdef BOXLITE_NET_HELPER_INSTALLED
  fallbacks.push_back(BOXLITE_NET_HELPER_INSTALLED);
#endif
#ifdef BOXLITE_NET_HELPER_BUILD
  fallbacks.push_back(BOXLITE_NET_HELPER_BUILD);
#endif
  auto found = sys::FindHelperProgram(configured, "BOXLITE_NET_HELPER", kHelperName, fallbacks);
  if (found.ok() || !configured.empty()) return found;
  return Status::NotFound("boxlite-net (the network helper) is not installed",
                          found.error().message() +
                              "; set BOXLITE_NET_HELPER or use network none");
}

Result<NetStats> ReadNetStats(int fd) {
  // The layout of src/net/flow_stats.h: the magic, then the refused flows (u64).
  char buf[net::kNetStatsSize];
  ssize_t n = ::pread(fd, buf, sizeof(buf), 0);
  if (n < 0) return sys::ErrnoStatus(errno, "read the network helper's counters");
  if (n != sizeof(buf) || std::memcmp(buf, net::kNetStatsMagic, sizeof(net::kNetStatsMagic)) != 0) {
    return Status::NotFound("the network helper has no counters");
  }
  NetStats stats;
  std::memcpy(&stats.refused_flows, buf + 8, sizeof(stats.refused_flows));
  return stats;
}

Result<NetHelper> LaunchNetHelper(const NetOptions& options) {
  if (options.helper_binary.empty()) {
    return Status::InvalidArgument("no boxlite-net binary given");
  }
  for (const auto& p : options.ports) {
    if (p.guest_port == 0) {
      return Status::InvalidArgument(
          base::StrFormat("published port %u: the guest port must not be 0", p.host_port));
    }
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return sys::ErrnoStatus(errno, "socketpair for the network");
  }
  base::UniqueFd qemu_end(pair[0]);
  base::UniqueFd helper_end(pair[1]);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return sys::ErrnoStatus(errno, "pipe");
  base::UniqueFd ready_read(pipefd[0]);
  base::UniqueFd ready_write(pipefd[1]);

  sys::SpawnOptions spawn;
  spawn.argv = {options.helper_binary, "--fd", std::to_string(helper_end.get()), "--ready-fd",
                std::to_string(ready_write.get())};
  for (const auto& p : options.ports) {
    spawn.argv.push_back("--publish");
    // HOST:GUEST for the default address, as boxlite-net has always taken it.
    spawn.argv.push_back(p.host_ip == "127.0.0.1"
                             ? base::StrFormat("%u:%u", p.host_port, p.guest_port)
                             : base::StrFormat("%s:%u:%u", p.host_ip.c_str(), p.host_port,
                                               p.guest_port));
  }
  for (const auto& dns : options.dns_servers) {
    spawn.argv.push_back("--dns");
    spawn.argv.push_back(dns);
  }
  if (options.allow_host_loopback) spawn.argv.push_back("--allow-host-loopback");
  for (const auto& pattern : options.allow_net) {
    spawn.argv.push_back("--allow-net");
    spawn.argv.push_back(pattern);
  }
  if (options.die_with_owner && !options.jail.new_pid_namespace) {
    // (From a pid namespace of its own it cannot see us: the jail's parent-death signal
    // and QEMU's end of the socket end it then.)
    spawn.argv.push_back("--owner-pid");
    spawn.argv.push_back(std::to_string(::getpid()));
  }
  spawn.keep_fds = {helper_end.get(), ready_write.get()};
  base::UniqueFd secrets_fd;
  if (!options.secrets_json.empty()) {
    BOXLITE_ASSIGN_OR_RETURN(secrets_fd, SealedMemfd("boxlite-secrets", options.secrets_json));
    spawn.argv.push_back("--secrets-fd");
    spawn.argv.push_back(std::to_string(secrets_fd.get()));
    spawn.keep_fds.push_back(secrets_fd.get());
  }
  if (options.stats_fd >= 0) {
    spawn.argv.push_back("--stats-fd");
    spawn.argv.push_back(std::to_string(options.stats_fd));
    spawn.keep_fds.push_back(options.stats_fd);
  }
  spawn.env = std::vector<std::string>();  // Nothing of ours (API keys...) reaches it.
  spawn.jail = options.jail;
  spawn.die_with_parent = options.die_with_owner;
  spawn.new_session = !options.die_with_owner;
  spawn.stderr_fd = options.stderr_fd;
  auto process = sys::Subprocess::Spawn(spawn);
  if (!process.ok()) {
    if (process.error().IsNotFound()) {
      return Status::NotFound("network helper not found", options.helper_binary);
    }
    return process.error().Wrap("start " + options.helper_binary);
  }
  helper_end.reset();
  ready_write.reset();

  auto report = ReadReport(ready_read.get(), Clock::now() + options.ready_timeout);
  if (!report.ok()) return report.error();  // ~Subprocess kills the helper.
  if (!report->has_value()) {
    auto status = process->WaitFor(std::chrono::seconds(5));
    std::string how = status.ok() && status->has_value()
                          ? sys::DescribeWaitStatus(**status)
                          : std::string("closed its report without a word");
    return Status::Unavailable("boxlite-net " + how);
  }
  BOXLITE_ASSIGN_OR_RETURN(auto ports, ParseReport(**report, options.ports));
  NetHelper helper{std::move(*process), std::move(qemu_end), std::move(ports)};
  return helper;
}

}  // namespace boxlite::vmm
