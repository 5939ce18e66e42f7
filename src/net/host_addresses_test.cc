// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/host_addresses.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cstring>

#include <gtest/gtest.h>

#include "src/net/packet.h"

namespace boxlite::net {
namespace {

TEST(HostAddressesTest, RefreshFindsEveryInterfaceAddress) {
  HostAddresses host;
  EXPECT_FALSE(host.Contains(Ipv4(127, 0, 0, 1)));
  ASSERT_TRUE(host.Refresh().ok());
  // Every address getifaddrs reports, the loopback's included.
  ifaddrs* list = nullptr;
  ASSERT_EQ(::getifaddrs(&list), 0);
  size_t expected = 0;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    if (a->ifa_addr->sa_family == AF_INET) {
      ++expected;
      EXPECT_TRUE(host.Contains(
          ntohl(reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr)));
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      ++expected;
      Ipv6Address v6;
      std::memcpy(v6.data(), &reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr,
                  v6.size());
      EXPECT_TRUE(host.Contains(v6));
    }
  }
  ::freeifaddrs(list);
  EXPECT_EQ(host.size(), expected);
  EXPECT_TRUE(host.Contains(Ipv4(127, 0, 0, 1)));
  EXPECT_FALSE(host.Contains(Ipv4(240, 0, 0, 1)));  // Class E: never assigned.
}

TEST(HostAddressesTest, WatcherOpensWithoutPrivilegeAndNeverBlocks) {
  auto watcher = AddressWatcher::Open();
  ASSERT_TRUE(watcher.ok()) << watcher.error().ToString();
  EXPECT_GE(watcher->fd(), 0);
  // Other programs may change addresses meanwhile: only "returns" is certain.
  (void)watcher->Drain();
  EXPECT_FALSE(watcher->Drain() && watcher->Drain() && watcher->Drain() && watcher->Drain());
}

}  // namespace
}  // namespace boxlite::net
