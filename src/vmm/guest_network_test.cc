// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// What the host tells the guest agent for eth0 is the plan boxlite-net serves
// (src/net/guest_network.h), in the spelling docs/security.md and the CLI's help use.
#include <gtest/gtest.h>

#include "src/net/guest_network.h"
#include "src/vmm/net_helper.h"

namespace boxlite::vmm {
namespace {

TEST(GuestNetworkTest, TheAgentIsToldThePlanTheHelperServes) {
  GuestNetworkPlan plan = GuestNetwork();
  EXPECT_EQ(plan.address, "10.0.2.15/24");
  EXPECT_EQ(plan.gateway, "10.0.2.2");
  EXPECT_EQ(plan.dns, "10.0.2.3");
  // The guest, gateway and resolver are inside the network, distinct, and not its
  // network or broadcast address.
  for (uint32_t a : {net::kGuestAddress, net::kGatewayAddress, net::kDnsAddress}) {
    EXPECT_EQ(a & net::kNetworkMask, net::kNetworkAddress);
    EXPECT_NE(a, net::kNetworkAddress);
    EXPECT_NE(a, net::kNetworkAddress | ~net::kNetworkMask);
  }
  EXPECT_NE(net::kGuestAddress, net::kGatewayAddress);
  EXPECT_NE(net::kGuestAddress, net::kDnsAddress);
  EXPECT_EQ(net::kNetworkMask, net::Ipv4(255, 255, 255, 0));
}

}  // namespace
}  // namespace boxlite::vmm
