// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The per-box network process (`boxlite-net`, src/net/): user-mode networking with
// libslirp, attached to QEMU's `-netdev stream` over one end of a socket pair. The guest
// sees 10.0.2.15/24 with gateway 10.0.2.2 and DNS 10.0.2.3; its TCP/UDP leave through
// ordinary host sockets of this process, so no root is needed: it starts in the box's jail
// (src/vmm/vm_jail.h), as the system user "boxlite" when root starts the box, so host
// ports below 1024 cannot be published then. The host's loopback is unreachable
// from the guest unless `allow_host_loopback`. Published ports listen on
// 127.0.0.1 unless PortPublish::host_ip names another address (0.0.0.0: all).
// The process exits when QEMU's end of the socket closes, so it never outlives its VM; it
// also dies with its owner unless detached.
//
// Use:
//   BOXLITE_ASSIGN_OR_RETURN(options.helper_binary, FindNetHelper(runtime_options.net_helper));
//   BOXLITE_ASSIGN_OR_RETURN(NetHelper net, LaunchNetHelper(options));
//   vm.net_fd = net.qemu_end.get();        // and add it to vm.inherit_fds
//   ... LaunchQemu(vm, ...) ...
//   net.qemu_end.reset();                  // QEMU holds it now; the helper sees EOF
//                                          // when QEMU exits only once we closed ours.
//   keep net.process with the VM's process; a detached box Detach()es both.
// Thread-safety: LaunchNetHelper and FindNetHelper are thread-safe; a NetHelper is used
// by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"
#include "src/sys/subprocess.h"

namespace boxlite::vmm {

// The guest side of the user-mode network, as the agent configures eth0: the plan of
// src/net/guest_network.h (the helper's own), as text.
struct GuestNetworkPlan {
  std::string address;  // CIDR: "10.0.2.15/24".
  std::string gateway;  // "10.0.2.2".
  std::string dns;      // "10.0.2.3".
};
GuestNetworkPlan GuestNetwork();

struct PortPublish {
  uint16_t host_port = 0;  // 0: the helper picks a free port (reported back).
  uint16_t guest_port = 0;
  std::string host_ip = "127.0.0.1";  // The IPv4 address listened on; 0.0.0.0: all.
};

struct NetOptions {
  std::string helper_binary;  // Path of boxlite-net (FindNetHelper).
  std::vector<PortPublish> ports;
  bool allow_host_loopback = false;
  // DNS servers the helper forwards the guest's queries to: "IP", "IP:PORT" or
  // "[IPv6]:PORT" (RuntimeOptions.dns_servers); empty: the host's resolvers
  // (/etc/resolv.conf).
  std::vector<std::string> dns_servers;
  // The egress allow-list (src/net/egress_rules.h), validated by the caller: one
  // --allow-net each (at most 256 of 300 characters: far below the argument limits).
  std::vector<std::string> allow_net;
  bool die_with_owner = true;  // false for detached boxes: the helper gets its own session.
  int stderr_fd = -1;          // Where the helper's own messages go; -1 discards them.
  // A file (read/write) the helper keeps its counters in (ReadNetStats); -1: none.
  int stats_fd = -1;
  std::chrono::milliseconds ready_timeout{10000};
  // The jail it starts in (src/vmm/vm_jail.h), with an empty environment: it adds its own
  // seccomp filter, which the jail's no_new_privs lets it load unprivileged.
  sys::Jail jail;
  // Secrets (src/net/secret_config.h): the document boxlite-net reads from a sealed
  // memfd (--secrets-fd); empty: no secrets.
  std::string secrets_json;
};

struct NetHelper {
  sys::Subprocess process;
  base::UniqueFd qemu_end;                // Pass to QEMU (VmConfig::net_fd), then close.
  std::vector<PortPublish> ports;         // With the host ports actually bound.
};

// Starts the helper and waits until it listens on every published port. Errors name the
// port that could not be bound ("127.0.0.1:8080 is in use", kAlreadyExists; a port below
// 1024 without privilege is kPermissionDenied); bad options (a DNS server that is not an
// address) are kInvalidArgument; no ready report within `ready_timeout` is
// kDeadlineExceeded. On error no process is left behind.
Result<NetHelper> LaunchNetHelper(const NetOptions& options);

// The helper's counters from its stats file (NetOptions::stats_fd; the layout is
// src/net/flow_stats.h's): the guest packets it refused (a TCP reset or an ICMP
// unreachable). NotFound when the helper has not written the file (yet).
struct NetStats {
  uint64_t refused_flows = 0;
};
Result<NetStats> ReadNetStats(int fd);

// Where boxlite-net is: `configured` (RuntimeOptions.net_helper, BOXLITE_NET_HELPER) when
// not empty, else next to the running executable (<dir>/../libexec/boxlite/boxlite-net),
// the compiled-in libexec directory, then the build tree. kNotFound lists the places tried.
Result<std::string> FindNetHelper(const std::string& configured);

}  // namespace boxlite::vmm
