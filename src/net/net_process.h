// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The network helper's engine: one poll loop that moves Ethernet frames between QEMU's
// stream socket and one SlirpStack, answers the guest's DNS queries through a
// DnsForwarder and applies the guest policy (guest_policy.h) to every frame first.
//
// Frames to QEMU are queued when its socket is full, up to kMaxQueuedBytes; beyond that,
// whole frames are dropped (TCP retransmits, as on a congested link), never part of one,
// so the stream framing stays intact. The host's own addresses, which the policy refuses,
// are re-read whenever the kernel reports an address change.
//
// Run() returns OK when QEMU closes its end (the VM is gone) or the owner process exits,
// and an error when the stream breaks. Thread-safety: one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"
#include "src/net/dns_forwarder.h"
#include "src/net/egress_policy.h"
#include "src/net/flow_intercept.h"
#include "src/net/flow_stats.h"
#include "src/net/guest_policy.h"
#include "src/net/helper_options.h"
#include "src/net/host_addresses.h"
#include "src/net/secret_tls.h"
#include "src/net/slirp_stack.h"
#include "src/net/stream_framing.h"

namespace boxlite::net {

class NetProcess {
 public:
  // Sets up libslirp, binds every published port and opens the owner's pidfd. Takes
  // ownership of options.qemu_fd. Errors name what failed ("127.0.0.1:8080 is in use").
  static Result<std::unique_ptr<NetProcess>> Create(const HelperOptions& options);
  NetProcess(const NetProcess&) = delete;
  NetProcess& operator=(const NetProcess&) = delete;

  // The published ports with the host ports actually bound, in --publish order.
  const std::vector<PublishedPort>& ports() const { return ports_; }

  Status Run();

  static constexpr size_t kMaxQueuedBytes = 8 << 20;

 private:
  NetProcess() = default;

  void HandleGuestFrame(std::span<const uint8_t> frame);
  void SendToGuest(std::span<const uint8_t> frame);
  void SendFromSlirp(std::span<const uint8_t> frame);
  // Reads what QEMU sent; false at end of stream.
  Result<bool> ReadFromQemu();
  // Writes queued frames until the socket is full; false when QEMU is gone.
  bool Flush();

  base::UniqueFd qemu_fd_;
  base::UniqueFd owner_fd_;  // A pidfd; readable once the owner exits.
  // Secrets (secret_tls.h): the interception layer's handler for TLS flows to 443 (shared
  // with its flow threads); null without --secrets-fd.
  std::shared_ptr<SecretTlsProxy> secret_proxy_;
  GuestPolicy policy_;  // Points at host_addresses_.
  HostAddresses host_addresses_;
  AddressWatcher address_watcher_;  // Readable when host_addresses_ must be re-read.
  std::vector<PublishedPort> ports_;
  std::vector<uint16_t> published_guest_ports_;  // policy_'s view of ports_.
  FrameReader reader_;
  std::string out_;  // Framed bytes for QEMU from out_off_ on.
  size_t out_off_ = 0;
  bool qemu_gone_ = false;
  uint16_t ip_id_ = 1;
  uint64_t dropped_to_guest_ = 0;
  // The egress allow-list and the interception layer it needs (null without a list).
  std::shared_ptr<EgressPolicy> egress_;
  std::unique_ptr<FlowInterceptor> interceptor_;
  Frame rewritten_;  // Scratch for frames of intercepted connections.
  FlowStats stats_;  // What the host reads (--stats-fd).
  // Lifetime: declared last so they are destroyed first; they call SendToGuest.
  std::unique_ptr<SlirpStack> slirp_;
  std::unique_ptr<DnsForwarder> dns_;
};

}  // namespace boxlite::net
