// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/accel.h"

#include <gtest/gtest.h>

namespace boxlite::vmm {
namespace {

AccelInputs Host(bool kvm, const char* flags) {
  AccelInputs in;
  in.kvm_device_usable = kvm;
  if (!kvm) in.kvm_device_error = "open /dev/kvm: No such file or directory";
  in.cpu_flags = flags;
  return in;
}

TEST(AccelTest, KvmWhenDeviceUsableAndCpuHasVmxOrSvm) {
  EXPECT_EQ(ChooseAccel(Host(true, "fpu vmx sse")).value().accel, Accel::kKvm);
  EXPECT_EQ(ChooseAccel(Host(true, "fpu svm sse")).value().accel, Accel::kKvm);
}

TEST(AccelTest, TcgWhenDeviceMissing) {
  auto c = ChooseAccel(Host(false, "vmx"));
  EXPECT_EQ(c.value().accel, Accel::kTcg);
  EXPECT_NE(c.value().reason.find("No such file"), std::string::npos);
}

TEST(AccelTest, TcgWhenCpuLacksHardwareVirtualization) {
  // A paravirtual nested /dev/kvm that opens fine but cannot run a stock guest.
  auto c = ChooseAccel(Host(true, "fpu hypervisor sse vmxon"));
  EXPECT_EQ(c.value().accel, Accel::kTcg);
  EXPECT_NE(c.value().reason.find("vmx/svm"), std::string::npos);
}

TEST(AccelTest, ForcedValues) {
  AccelInputs in = Host(true, "vmx");
  in.forced = "tcg";
  EXPECT_EQ(ChooseAccel(in).value().accel, Accel::kTcg);
  in = Host(false, "");
  in.forced = "KVM";
  auto kvm = ChooseAccel(in);
  ASSERT_FALSE(kvm.ok());
  EXPECT_TRUE(kvm.error().IsFailedPrecondition());
  in = Host(true, "");
  in.forced = "kvm";
  EXPECT_EQ(ChooseAccel(in).value().accel, Accel::kKvm);
  in.forced = "hvf";
  EXPECT_TRUE(ChooseAccel(in).error().IsInvalidArgument());
}

}  // namespace
}  // namespace boxlite::vmm
