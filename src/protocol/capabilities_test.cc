// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/protocol/capabilities.h"

#include <gtest/gtest.h>

namespace boxlite::protocol {
namespace {

uint64_t Bit(const char* name) {
  int n = CapabilityNumber(name);
  EXPECT_GE(n, 0) << name;
  return uint64_t{1} << n;
}

uint64_t Set(const std::vector<std::string>& add, const std::vector<std::string>& drop) {
  auto set = ComputeCapabilities(add, drop);
  EXPECT_TRUE(set.ok()) << set.error().ToString();
  return set.value_or(0);
}

TEST(CapabilitiesTest, NamesAreCaseInsensitiveWithOptionalPrefix) {
  EXPECT_EQ(CapabilityNumber("CHOWN"), 0);
  EXPECT_EQ(CapabilityNumber("cap_chown"), 0);
  EXPECT_EQ(CapabilityNumber("Cap_Net_Admin"), 12);
  EXPECT_EQ(CapabilityNumber("net_raw"), 13);
  EXPECT_EQ(CapabilityNumber("CAP_CHECKPOINT_RESTORE"), 40);
  EXPECT_EQ(CapabilityNumber("ALL"), -1);
  EXPECT_EQ(CapabilityNumber("CAP_"), -1);
  EXPECT_EQ(CapabilityNumber("CAPCHOWN"), -1);
  EXPECT_EQ(CapabilityName(21), "CAP_SYS_ADMIN");
  EXPECT_EQ(CapabilityName(50), "CAP_50");
}

TEST(CapabilitiesTest, DefaultIsDockersSet) {
  // Docker's default: 14 capabilities, the kernel's 0x00000000a80425fb.
  EXPECT_EQ(DefaultCapabilities(), uint64_t{0xa80425fb});
  EXPECT_EQ(Set({}, {}), DefaultCapabilities());
  EXPECT_EQ(CapabilityNames(DefaultCapabilities()),
            "CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID CAP_SETUID "
            "CAP_SETPCAP CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_SYS_CHROOT CAP_MKNOD "
            "CAP_AUDIT_WRITE CAP_SETFCAP");
  EXPECT_EQ(AllCapabilities(), (uint64_t{1} << 41) - 1);
}

TEST(CapabilitiesTest, AddAndDropNamed) {
  EXPECT_EQ(Set({"NET_ADMIN"}, {}), DefaultCapabilities() | Bit("NET_ADMIN"));
  EXPECT_EQ(Set({}, {"chown", "CAP_NET_RAW"}),
            DefaultCapabilities() & ~Bit("CHOWN") & ~Bit("NET_RAW"));
  // Dropping one the default set lacks changes nothing.
  EXPECT_EQ(Set({}, {"SYS_ADMIN"}), DefaultCapabilities());
}

TEST(CapabilitiesTest, ExplicitAddBeatsNamedDrop) {
  EXPECT_EQ(Set({"CHOWN"}, {"CHOWN"}), DefaultCapabilities());
  EXPECT_EQ(Set({"sys_admin"}, {"CAP_SYS_ADMIN", "KILL"}),
            (DefaultCapabilities() | Bit("SYS_ADMIN")) & ~Bit("KILL"));
}

TEST(CapabilitiesTest, AddAllThenNamedDropsWin) {
  EXPECT_EQ(Set({"ALL"}, {}), AllCapabilities());
  EXPECT_EQ(Set({"all"}, {"SYS_ADMIN", "cap_net_admin"}),
            AllCapabilities() & ~Bit("SYS_ADMIN") & ~Bit("NET_ADMIN"));
  // A name added beside ALL does not undo a drop: the drops win.
  EXPECT_EQ(Set({"ALL", "SYS_ADMIN"}, {"SYS_ADMIN"}), AllCapabilities() & ~Bit("SYS_ADMIN"));
  // drop ALL next to add ALL: every capability (ALL is not a named drop).
  EXPECT_EQ(Set({"ALL"}, {"ALL"}), AllCapabilities());
}

TEST(CapabilitiesTest, DropAllThenAddsAreTheWholeSet) {
  EXPECT_EQ(Set({}, {"ALL"}), 0u);
  EXPECT_EQ(Set({"NET_BIND_SERVICE", "cap_kill"}, {"all"}),
            Bit("NET_BIND_SERVICE") | Bit("KILL"));
  EXPECT_EQ(Set({"KILL"}, {"ALL", "KILL"}), Bit("KILL"));
}

TEST(CapabilitiesTest, UnknownNamesAreInvalidArgument) {
  auto bad = ComputeCapabilities({"NET_ADMIN", "FLY"}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.error().IsInvalidArgument());
  EXPECT_NE(bad.error().message().find("\"FLY\""), std::string::npos);
  EXPECT_NE(bad.error().message().find("capabilities.add"), std::string::npos);
  auto bad_drop = ComputeCapabilities({}, {"CAP_"});
  ASSERT_FALSE(bad_drop.ok());
  EXPECT_NE(bad_drop.error().message().find("capabilities.drop"), std::string::npos);
  EXPECT_FALSE(ComputeCapabilities({""}, {}).ok());
}

}  // namespace
}  // namespace boxlite::protocol
