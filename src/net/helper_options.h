// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The command line of `boxlite-net` and its ready report. The launcher
// (src/vmm/net_helper.cc) writes the same flags and parses the same report without
// linking this library (it would pull libslirp into every user of vmm); the integration
// test net_helper_test.cc runs both against each other.
//
//   boxlite-net --fd N [--ready-fd N] [--publish [IP:]HOST:GUEST]... [--dns IP[:PORT]]...
//               [--allow-host-loopback] [--owner-pid PID] [--allow-net PATTERN]...
//               [--secrets-fd N] [--stats-fd N]
//
// When it is listening on every published port, the helper writes one line to the ready
// descriptor (default: stdout) and closes it:
//
//   ready [HOST:GUEST]...          the host ports actually bound, in --publish order
//   error <code> <message>         <code> is a StatusCodeName ("already_exists"...)
//
// Thread-safety: pure functions.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "boxlite/result.h"
#include "boxlite/status.h"

namespace boxlite::net {

struct PublishedPort {
  uint16_t host_port = 0;  // 0 on the command line: any free port.
  uint16_t guest_port = 0;
  std::string host_ip = "127.0.0.1";  // The IPv4 address listened on; 0.0.0.0: all.
};

struct HelperOptions {
  int qemu_fd = -1;  // The stream socket QEMU's `-netdev stream` is attached to.
  int ready_fd = 1;
  std::vector<PublishedPort> publish;
  std::vector<std::string> dns_servers;  // Empty: the host's resolv.conf servers.
  bool allow_host_loopback = false;  // The host: 127.0.0.1 at 10.0.2.2, its own addresses.
  pid_t owner_pid = 0;  // Exit when this process exits; 0: no owner.
  // The egress allow-list (egress_rules.h), one --allow-net per pattern; empty: none.
  // At most kMaxRules patterns of kMaxPatternLength characters, so the command line
  // stays far below the kernel's argument limits.
  std::vector<std::string> allow_net;
  // Secrets (src/net/secret_config.h): a descriptor holding the JSON document; -1: none.
  int secrets_fd = -1;
  int stats_fd = -1;    // --stats-fd: the counters' file (flow_stats.h); -1: none.
};

// Parses the arguments after argv[0]. `--help` yields a Cancelled status whose message is
// the usage text.
Result<HelperOptions> ParseHelperArgs(std::span<const std::string> args);
std::string HelperUsage();

// "[IP:]HOST:GUEST" with 1..65535 for GUEST, 0..65535 for HOST and an IPv4 address for
// IP (default 127.0.0.1).
Result<PublishedPort> ParsePublish(std::string_view text);

// The ready report, one line with its newline.
std::string FormatReady(const std::vector<PublishedPort>& ports);
std::string FormatError(const Status& status);

}  // namespace boxlite::net
