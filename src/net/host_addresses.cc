// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/host_addresses.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "src/sys/errno_status.h"

namespace boxlite::net {

HostAddresses::HostAddresses(std::vector<uint32_t> v4, std::vector<Ipv6Address> v6)
    : v4_(std::move(v4)), v6_(std::move(v6)) {
  std::sort(v4_.begin(), v4_.end());
  std::sort(v6_.begin(), v6_.end());
}

Status HostAddresses::Refresh() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return sys::ErrnoStatus(errno, "read the host's addresses");
  std::vector<uint32_t> v4;
  std::vector<Ipv6Address> v6;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    if (a->ifa_addr->sa_family == AF_INET) {
      v4.push_back(ntohl(reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr));
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      Ipv6Address addr;
      std::memcpy(addr.data(), &reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr,
                  addr.size());
      v6.push_back(addr);
    }
  }
  ::freeifaddrs(list);
  // Sorted for binary search: every guest packet to the outside is looked up.
  std::sort(v4.begin(), v4.end());
  std::sort(v6.begin(), v6.end());
  v4_ = std::move(v4);
  v6_ = std::move(v6);
  return Status::OK();
}

bool HostAddresses::Contains(uint32_t ipv4) const {
  return std::binary_search(v4_.begin(), v4_.end(), ipv4);
}

bool HostAddresses::Contains(const Ipv6Address& ipv6) const {
  return std::binary_search(v6_.begin(), v6_.end(), ipv6);
}

Result<AddressWatcher> AddressWatcher::Open() {
  AddressWatcher w;
  w.fd_.reset(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (!w.fd_) return sys::ErrnoStatus(errno, "open a netlink socket for address changes");
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (::bind(w.fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return sys::ErrnoStatus(errno, "subscribe to address changes");
  }
  return w;
}

bool AddressWatcher::Drain() {
  bool any = false;
  char buf[8192];
  while (true) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    // ENOBUFS: notifications were lost; the caller re-reads everything anyway.
    if (n < 0 && errno == ENOBUFS) {
      any = true;
      continue;
    }
    if (n <= 0) return any;
    any = true;
  }
}

}  // namespace boxlite::net
