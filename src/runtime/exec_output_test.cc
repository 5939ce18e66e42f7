// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// AppendOutput: the cap on what collecting an exec's output keeps (max_output_bytes).
#include <string>

#include <gtest/gtest.h>

#include "boxlite/exec.h"

namespace boxlite {
namespace {

TEST(AppendOutputTest, KeepsTheFirstMaxBytesAndSaysWhenItDropped) {
  std::string out;
  EXPECT_FALSE(AppendOutput(&out, "abc", 5));
  EXPECT_FALSE(AppendOutput(&out, "de", 5));
  EXPECT_EQ(out, "abcde");
  EXPECT_TRUE(AppendOutput(&out, "f", 5));
  EXPECT_EQ(out, "abcde");
  std::string split;
  EXPECT_TRUE(AppendOutput(&split, "0123456789", 4));
  EXPECT_EQ(split, "0123");
}

TEST(AppendOutputTest, ZeroMeansNoLimit) {
  std::string out;
  EXPECT_FALSE(AppendOutput(&out, std::string(1000, 'x'), 0));
  EXPECT_EQ(out.size(), 1000u);
}

}  // namespace
}  // namespace boxlite
