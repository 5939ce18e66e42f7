// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/helper_options.h"

#include <arpa/inet.h>

#include "src/base/strings.h"

namespace boxlite::net {
namespace {

Result<int> ParseFd(std::string_view flag, std::string_view value) {
  auto v = base::ParseInt(value);
  if (!v || *v < 0 || *v > 1 << 20) {
    return Status::InvalidArgument(std::string(flag) + " needs a descriptor number",
                                   base::ShellQuote(value));
  }
  return static_cast<int>(*v);
}

}  // namespace

std::string HelperUsage() {
  return "usage: boxlite-net --fd N [--ready-fd N] [--publish [IP:]HOST:GUEST]... [--dns IP[:PORT]]...\n"
         "                   [--allow-host-loopback] [--owner-pid PID] [--allow-net PATTERN]...\n"
         "                   [--secrets-fd N] [--stats-fd N]\n"
         "\n"
         "User-mode networking for one BoxLite VM: libslirp on the QEMU `-netdev stream`\n"
         "socket inherited as descriptor N. The guest is 10.0.2.15/24, its gateway 10.0.2.2\n"
         "and its DNS server 10.0.2.3.\n"
         "\n"
         "  --fd N                 the stream socket QEMU is attached to (required)\n"
         "  --ready-fd N           where to report readiness (default 1): 'ready\n"
         "                         HOST:GUEST...' or 'error CODE MESSAGE', then closed\n"
         "  --publish [IP:]HOST:GUEST\n"
         "                         forward IP:HOST (IP default 127.0.0.1, 0.0.0.0: all) to\n"
         "                         the guest's TCP port GUEST; HOST 0 picks a free port\n"
         "                         (repeatable)\n"
         "  --dns IP[:PORT]        forward the guest's DNS queries there (repeatable;\n"
         "                         default: the nameservers of /etc/resolv.conf)\n"
         "  --allow-host-loopback  let the guest reach the host: its 127.0.0.1 at 10.0.2.2\n"
         "                         and its own addresses (refused by default, like\n"
         "                         private networks, which stay refused)\n"
         "  --owner-pid PID        exit when process PID exits\n"
         "  --allow-net PATTERN    the egress allow-list (repeatable): a host, *.domain, an\n"
         "                         address or CIDR, each with an optional :PORT; with any,\n"
         "                         everything else is refused (docs/networking.md)\n"
         "  --stats-fd N           keep the counters the host reads in this file\n"
         "                         (src/net/flow_stats.h)\n";
}

Result<PublishedPort> ParsePublish(std::string_view text) {
  auto parts = base::Split(text, ':');
  auto bad = [text](const char* why) {
    return Status::InvalidArgument(std::string("--publish ") + why, base::ShellQuote(text));
  };
  if (parts.size() != 2 && parts.size() != 3) return bad("needs [IP:]HOST:GUEST");
  std::string ip = parts.size() == 3 ? parts[0] : "127.0.0.1";
  in_addr addr{};
  if (::inet_pton(AF_INET, ip.c_str(), &addr) != 1) return bad("IP must be an IPv4 address");
  auto host = base::ParseUint(parts[parts.size() - 2]);
  auto guest = base::ParseUint(parts.back());
  if (!host || *host > 65535) return bad("host port must be 0..65535");
  if (!guest || *guest < 1 || *guest > 65535) return bad("guest port must be 1..65535");
  return PublishedPort{static_cast<uint16_t>(*host), static_cast<uint16_t>(*guest), ip};
}

Result<HelperOptions> ParseHelperArgs(std::span<const std::string> args) {
  HelperOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool has_value = false;
    size_t eq = flag.find('=');
    if (flag.starts_with("--") && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
      has_value = true;
    }
    auto take_value = [&]() -> Result<std::string> {
      if (has_value) return value;
      if (i + 1 >= args.size()) return Status::InvalidArgument(flag + " needs a value");
      return args[++i];
    };
    if (flag == "--help" || flag == "-h") return Status::Cancelled(HelperUsage());
    if (flag == "--allow-host-loopback" && !has_value) {
      options.allow_host_loopback = true;
      continue;
    }
    if (flag == "--stats-fd") {  // The counters' file (flow_stats.h).
      auto v = take_value();
      if (!v.ok()) return v.error();
      auto fd = ParseFd(flag, *v);
      if (!fd.ok()) return fd.error();
      options.stats_fd = *fd;
      continue;
    }
    if (flag == "--fd" || flag == "--ready-fd" || flag == "--secrets-fd") {
      auto v = take_value();
      if (!v.ok()) return v.error();
      auto fd = ParseFd(flag, *v);
      if (!fd.ok()) return fd.error();
      (flag == "--fd" ? options.qemu_fd : flag == "--ready-fd" ? options.ready_fd : options.secrets_fd) = *fd;
    } else if (flag == "--publish") {
      auto v = take_value();
      if (!v.ok()) return v.error();
      auto port = ParsePublish(*v);
      if (!port.ok()) return port.error();
      options.publish.push_back(*port);
    } else if (flag == "--allow-net") {
      auto v = take_value();
      if (!v.ok()) return v.error();
      options.allow_net.push_back(*v);
    } else if (flag == "--dns") {
      auto v = take_value();
      if (!v.ok()) return v.error();
      options.dns_servers.push_back(*v);
    } else if (flag == "--owner-pid") {
      auto v = take_value();
      if (!v.ok()) return v.error();
      auto pid = base::ParseInt(*v);
      if (!pid || *pid < 1 || *pid > (int64_t{1} << 22)) {
        return Status::InvalidArgument("--owner-pid needs a process id", base::ShellQuote(*v));
      }
      options.owner_pid = static_cast<pid_t>(*pid);
    } else {
      return Status::InvalidArgument("unknown argument " + base::ShellQuote(args[i]),
                                     "see boxlite-net --help");
    }
  }
  if (options.qemu_fd < 0) return Status::InvalidArgument("--fd is required", "see --help");
  if (options.qemu_fd == options.ready_fd) {
    return Status::InvalidArgument("--fd and --ready-fd must differ");
  }
  return options;
}

std::string FormatReady(const std::vector<PublishedPort>& ports) {
  std::string line = "ready";
  for (const auto& p : ports) line += base::StrFormat(" %u:%u", p.host_port, p.guest_port);
  return line + "\n";
}

std::string FormatError(const Status& status) {
  std::string message = status.message();
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return "error " + std::string(StatusCodeName(status.code())) + " " + message + "\n";
}

}  // namespace boxlite::net
