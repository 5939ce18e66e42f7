// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The string forms of options shared by the CLI and the SDKs (include/boxlite/options.h):
// published ports and environment variables.
#include <arpa/inet.h>

#include <cstdlib>

#include "boxlite/options.h"
#include "src/base/strings.h"

namespace boxlite {
namespace {

Result<uint16_t> ParsePort(std::string_view spec, std::string_view what, std::string_view text,
                           bool zero_ok) {
  auto v = base::ParseUint(text);
  if (!v || *v > 65535 || (*v == 0 && !zero_ok)) {
    return Status::InvalidArgument("port " + base::ShellQuote(spec) + ": the " +
                                   std::string(what) + " port must be a number from " +
                                   (zero_ok ? "0" : "1") + " to 65535, not " +
                                   base::ShellQuote(text));
  }
  return static_cast<uint16_t>(*v);
}

}  // namespace

Result<PortForward> ParsePortSpec(std::string_view spec) {
  PortForward out;
  std::string_view rest = spec;
  size_t slash = rest.rfind('/');
  if (slash != std::string_view::npos) {
    std::string_view proto = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (proto == "udp") {
      return Status::InvalidArgument("port " + base::ShellQuote(spec) +
                                     ": only TCP ports can be published, not udp");
    }
    if (proto != "tcp") {
      return Status::InvalidArgument("port " + base::ShellQuote(spec) +
                                     ": the protocol must be tcp, not " + base::ShellQuote(proto));
    }
  }
  std::vector<std::string> parts = base::Split(rest, ':');
  if (rest.empty() || parts.size() > 3) {
    return Status::InvalidArgument("port " + base::ShellQuote(spec) +
                                   " must be [HOST_IP:][HOST_PORT:]GUEST_PORT[/tcp]");
  }
  if (parts.size() == 3) {
    in_addr addr{};
    if (parts[0] == "localhost") parts[0] = "127.0.0.1";
    if (::inet_pton(AF_INET, parts[0].c_str(), &addr) != 1) {
      return Status::InvalidArgument("port " + base::ShellQuote(spec) + ": " +
                                     base::ShellQuote(parts[0]) + " is not an IPv4 address");
    }
    out.host_ip = parts[0];  // Any IPv4 address of the host; 0.0.0.0: all of them.
  }
  auto guest = ParsePort(spec, "guest", parts.back(), false);
  if (!guest.ok()) return guest.error();
  out.guest_port = *guest;
  if (parts.size() >= 2) {
    const std::string& host_text = parts[parts.size() - 2];
    if (!host_text.empty()) {  // "127.0.0.1::80": an automatic host port.
      auto host = ParsePort(spec, "host", host_text, true);
      if (!host.ok()) return host.error();
      out.host_port = *host;
    }
  }
  return out;
}

Result<std::pair<std::string, std::string>> ParseEnvSpec(std::string_view spec) {
  size_t eq = spec.find('=');
  std::string name(spec.substr(0, eq));
  if (name.empty()) {
    return Status::InvalidArgument("environment variable " + base::ShellQuote(spec) +
                                   " has no name (use NAME=VALUE or NAME)");
  }
  if (name.find('\0') != std::string::npos) {
    return Status::InvalidArgument("environment variable names cannot contain a NUL byte");
  }
  if (eq != std::string_view::npos) return std::make_pair(name, std::string(spec.substr(eq + 1)));
  const char* host = std::getenv(name.c_str());
  return std::make_pair(name, std::string(host ? host : ""));
}

Result<ContainerMount> ParseContainerMount(std::string_view spec) {
  const char* hint = "write SRC:DST[:ro], both absolute paths (SRC in the box, DST in the "
                     "container's root)";
  ContainerMount m;
  std::string_view rest = spec;
  for (std::string_view mode : {":ro", ":rw"}) {
    if (rest.size() > mode.size() && rest.substr(rest.size() - mode.size()) == mode) {
      m.read_only = mode == ":ro";
      rest.remove_suffix(mode.size());
      break;
    }
  }
  size_t colon = rest.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("container mount " + std::string(spec) + " has no DST", hint);
  }
  m.source = std::string(rest.substr(0, colon));
  m.destination = std::string(rest.substr(colon + 1));
  if (m.source.empty() || m.source[0] != '/' || m.destination.empty() ||
      m.destination[0] != '/') {
    return Status::InvalidArgument(
        "container mount " + std::string(spec) + " needs absolute paths", hint);
  }
  if (m.source.find('\0') != std::string::npos || m.destination.find('\0') != std::string::npos) {
    return Status::InvalidArgument("container mount contains a NUL byte", hint);
  }
  return m;
}

}  // namespace boxlite
