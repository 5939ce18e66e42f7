// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The host's own addresses (every interface, IPv4 and IPv6), which a default box must
// not reach (guest_policy.h): read with getifaddrs at start and again whenever the kernel
// reports an address change on an rtnetlink socket opened before the helper drops its
// privileges and installs its seccomp filter (both keep working afterwards).
// Thread-safety: one thread.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"

namespace boxlite::net {

using Ipv6Address = std::array<uint8_t, 16>;

class HostAddresses {
 public:
  HostAddresses() = default;
  // A fixed set (tests).
  HostAddresses(std::vector<uint32_t> v4, std::vector<Ipv6Address> v6);

  // Replaces the set with the addresses the host has now.
  Status Refresh();

  bool Contains(uint32_t ipv4) const;
  bool Contains(const Ipv6Address& ipv6) const;
  size_t size() const { return v4_.size() + v6_.size(); }

 private:
  std::vector<uint32_t> v4_;  // Host byte order, sorted.
  std::vector<Ipv6Address> v6_;  // Sorted.
};

// A non-blocking rtnetlink socket subscribed to IPv4 and IPv6 address changes.
class AddressWatcher {
 public:
  static Result<AddressWatcher> Open();
  int fd() const { return fd_.get(); }
  // Reads every pending notification; true if there was at least one.
  bool Drain();

 private:
  base::UniqueFd fd_;
};

}  // namespace boxlite::net
