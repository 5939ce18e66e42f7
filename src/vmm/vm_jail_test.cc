// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/vm_jail.h"

#include <gtest/gtest.h>

namespace boxlite::vmm {
namespace {

TEST(VmJailTest, AnUnprivilegedCallerRunsItsVmItself) {
  uid_t owner = 7;
  gid_t group = 7;
  EXPECT_EQ(ChooseQemuRunAs(false, {{"/a", false, 1000, 1000}}, &owner, &group), RunAs::kCaller);
  EXPECT_EQ(owner, 7u);
}

TEST(VmJailTest, RootRunsTheVmAsTheOwnerOfItsReadWriteShares) {
  uid_t owner = 0;
  gid_t group = 0;
  std::vector<ShareOwnership> shares = {
      {"/ro", true, 0, 0}, {"/a", false, 1000, 100}, {"/b", false, 1000, 1000}};
  EXPECT_EQ(ChooseQemuRunAs(true, shares, &owner, &group), RunAs::kShareOwner);
  EXPECT_EQ(owner, 1000u);
  EXPECT_EQ(group, 100u);
}

TEST(VmJailTest, RootUsesTheJailUserOtherwise) {
  uid_t owner = 0;
  gid_t group = 0;
  // No share, only read-only shares, a root-owned read-write share, two owners.
  EXPECT_EQ(ChooseQemuRunAs(true, {}, &owner, &group), RunAs::kJailUser);
  EXPECT_EQ(ChooseQemuRunAs(true, {{"/ro", true, 1000, 1000}}, &owner, &group),
            RunAs::kJailUser);
  EXPECT_EQ(ChooseQemuRunAs(true, {{"/rw", false, 0, 0}}, &owner, &group), RunAs::kJailUser);
  EXPECT_EQ(ChooseQemuRunAs(true, {{"/a", false, 1000, 1000}, {"/b", false, 1001, 1001}},
                            &owner, &group),
            RunAs::kJailUser);
  EXPECT_EQ(ChooseQemuRunAs(true, {{"/a", false, 1000, 1000}, {"/b", false, 0, 0}}, &owner,
                            &group),
            RunAs::kJailUser);
}

TEST(VmJailTest, KvmAddsTheGroupOfDevKvmOnce) {
  sys::Identity id{999, 999, {}, "boxlite"};
  AddKvmGroup(Accel::kTcg, 108, &id);
  EXPECT_TRUE(id.groups.empty());
  AddKvmGroup(Accel::kKvm, 108, &id);
  AddKvmGroup(Accel::kKvm, 108, &id);
  EXPECT_EQ(id.groups, std::vector<gid_t>{108});
  // A root-group /dev/kvm (0600 root:root here) adds nothing: root's group is no help.
  sys::Identity other{999, 999, {}, "boxlite"};
  AddKvmGroup(Accel::kKvm, 0, &other);
  AddKvmGroup(Accel::kKvm, std::nullopt, &other);
  EXPECT_TRUE(other.groups.empty());
}

}  // namespace
}  // namespace boxlite::vmm
