// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The TCP interception layer of boxlite-net: selected guest TCP connections end in this
// process instead of going straight out, so the helper can read their first bytes (the
// egress allow-list's Host/SNI check) and open the upstream connection itself, or hand
// the flow to a FlowHandler (a TLS-terminating one, for instance).
//
// How a flow is diverted (chosen over libslirp's guestfwd callbacks, which carry no
// per-connection identity, no close and one connection per address:port at a time):
// - the interceptor listens on 127.0.0.1:<listen_port()> (an ephemeral port);
// - when the guest's SYN to D:P is selected, RewriteFromGuest rewrites its destination
//   to the gateway 10.0.2.2:<listen_port()> (libslirp's alias of the host's loopback; the
//   guest policy still refuses the guest's own connections to 10.0.2.2) and remembers
//   (guest address, guest port) -> D:P; every later segment of that connection is
//   rewritten the same way, and RewriteToGuest rewrites the replies' source back to D:P,
//   so the guest sees an ordinary connection to D:P;
// - libslirp connects its host socket to the listener; AfterPoll accepts it and learns
//   which guest connection it is from libslirp's connection table (the guest port of
//   the libslirp socket whose local port is the accepted connection's peer port).
//   A connection to the listener that libslirp did not make (another local process) is
//   closed at once.
//
// Each accepted flow runs on a thread of its own (at most Config::max_flows at once;
// beyond that new ones are reset): it reads the flow's head (at most kMaxTlsHello bytes,
// within kHeadTimeoutMs), parses the TLS SNI or the HTTP Host (flow_sniff.h), asks the
// policy (with an allow-list, an unreadable head is refused; without one, as for a flow
// diverted only for a handler, it is passed on with `name` empty), connects to D:P and
// either gives the flow to the handler or splices the two sockets both ways (with
// backpressure: a side is read only when what it sent before has been written to the
// other). A refused flow is reset (the guest sees RST at once). A spliced plain HTTP
// flow under an allow-list goes through HttpRequestGate (http_gate.h): every later
// request on the kept-alive connection has its Host checked too.
//
// NetProcess (net_process.cc) creates the layer when the allow-list is not empty or a
// handler is configured there (Config::handler, Config::handler_ports).
//
// Contract of FlowHandler (for handlers added later):
// - it is called on the flow's thread, may block, and must return within the flow's
//   life; returning true means it took the flow: it owns `guest` and `upstream` (both
//   blocking, close-on-exec stream sockets) and the flow ends when it returns;
//   returning false leaves the flow untouched (nothing read or written) and the layer
//   splices it;
// - `head` holds the bytes already read from the guest and not yet sent anywhere (the
//   whole ClientHello / HTTP request head); a handler that takes the flow must consume
//   them first (e.g. feed them to its TLS server through a memory BIO);
// - `upstream` is already connected to the original destination, which the policy
//   allowed; `name` is the SNI / Host (normalized; empty when the head names none);
// - handlers must not log secrets or flow contents.
// Thread-safety: FlowInterceptor's methods are called on the helper's loop thread;
// the handler and the policy are shared with flow threads (EgressPolicy is
// thread-safe; the handler must be).
#pragma once

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"
#include "src/net/egress_policy.h"
#include "src/net/packet.h"

namespace boxlite::net {

struct InterceptedFlow {
  base::UniqueFd guest;     // The guest's end (libslirp's connection to our listener).
  base::UniqueFd upstream;  // Connected to dst_v4:dst_port.
  uint32_t dst_v4 = 0;      // The destination the guest connected to (host byte order).
  uint16_t dst_port = 0;
  std::string head;         // Read from the guest, not yet forwarded.
  bool tls = false;         // `head` is a TLS ClientHello.
  std::string name;         // SNI (tls) or HTTP Host; empty: none.
};

using FlowHandler = std::function<bool(InterceptedFlow& flow)>;

// Copies bytes both ways between `a` and `b` (blocking sockets) until both directions
// ended, sending `a_to_b_first` to `b` first. An end of stream is passed on with
// shutdown(SHUT_WR); an error resets both. Returns the bytes moved a->b and b->a.
struct SpliceCounts {
  uint64_t a_to_b = 0;
  uint64_t b_to_a = 0;
};
SpliceCounts Splice(int a, int b, std::string_view a_to_b_first);
// The same with every byte a->b (`a_to_b_first` included) passed through `filter`,
// which appends what may go on now to `out`, and every byte b->a shown to `seen`
// before it is passed on; either returning false resets both sockets. `filter` is also
// called with no bytes whenever a->b has nothing pending, so bytes it held can go on
// once b's answer released them.
using StreamFilter = std::function<bool(std::string_view in, std::string* out)>;
using StreamObserver = std::function<bool(std::string_view in)>;
SpliceCounts Splice(int a, int b, std::string_view a_to_b_first, const StreamFilter& filter,
                    const StreamObserver& seen);

// Closes `fd` so the peer sees a reset (SO_LINGER 0).
void ResetAndClose(base::UniqueFd fd);

class FlowInterceptor {
 public:
  struct Config {
    std::shared_ptr<const EgressPolicy> policy;  // Never null (may be empty).
    // Optional: offered every accepted flow that passed the policy.
    FlowHandler handler;
    // Ports whose TCP flows to allowed public addresses are intercepted for `handler`
    // even when the policy would let them straight through (e.g. 443 for secrets).
    std::vector<uint16_t> handler_ports;
    size_t max_flows = 256;
  };
  // Where the guest end of a diverted connection comes from: libslirp's table.
  struct GuestEnd {
    uint32_t addr = 0;
    uint16_t port = 0;
  };
  using IdentifyFn = std::function<std::optional<GuestEnd>(uint16_t peer_port)>;

  static Result<std::unique_ptr<FlowInterceptor>> Create(Config config);
  ~FlowInterceptor();

  uint16_t listen_port() const { return listen_port_; }
  bool wants_port(uint16_t port) const;

  // Guest -> libslirp. `divert` (decided by the caller from the policy) starts
  // diverting this connection when `p` is a SYN. Returns true and fills `*out` with the
  // rewritten frame when `p` belongs to a diverted connection.
  bool RewriteFromGuest(const Ipv4Packet& p, std::span<const uint8_t> frame, bool divert,
                        Frame* out);
  // libslirp -> guest: true and `*out` when `frame` is a reply on a diverted connection.
  bool RewriteToGuest(std::span<const uint8_t> frame, Frame* out) const;

  void PreparePoll(std::vector<pollfd>* fds);
  void AfterPoll(const std::vector<pollfd>& fds, const IdentifyFn& identify);

  size_t diverted() const { return nat_.size(); }
  static constexpr size_t kMaxDiverted = 4096;
  static constexpr int kHeadTimeoutMs = 10000;
  static constexpr int kConnectTimeoutMs = 10000;

 private:
  struct Shared;
  struct Nat {
    uint32_t dst = 0;
    uint16_t dst_port = 0;
    uint64_t used = 0;
  };
  static uint64_t Key(uint32_t addr, uint16_t port) { return (uint64_t{addr} << 16) | port; }

  FlowInterceptor() = default;

  base::UniqueFd listener_;
  uint16_t listen_port_ = 0;
  size_t poll_index_ = SIZE_MAX;
  std::shared_ptr<Shared> shared_;
  std::vector<uint16_t> handler_ports_;
  std::map<uint64_t, Nat> nat_;  // (guest address, guest port) -> original destination.
  uint64_t clock_ = 0;
};

}  // namespace boxlite::net
