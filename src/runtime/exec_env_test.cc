// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/exec_env.h"

#include <gtest/gtest.h>

namespace boxlite::runtime {
namespace {

TEST(ExecEnvTest, LaterLayersWinInPlace) {
  auto env = MergeEnv({"PATH=/bin", "A=image", "junk", "=x"}, {{"A", "box"}, {"B", "box"}},
                      {{"B", "exec"}, {"C", "a=b"}});
  EXPECT_EQ(env, (std::vector<std::string>{"PATH=/bin", "A=box", "B=exec", "C=a=b"}));
}

TEST(ExecEnvTest, FirstNonEmpty) {
  EXPECT_EQ(FirstNonEmpty({"", "/w", "/x"}, "/"), "/w");
  EXPECT_EQ(FirstNonEmpty({"", ""}, "/"), "/");
}

TEST(ExecEnvTest, IdsAreRandomHex) {
  std::string a = NewBoxId();
  std::string b = NewBoxId();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(ExecEnvTest, BoxNames) {
  EXPECT_TRUE(IsValidBoxName("web-1.test_x"));
  EXPECT_FALSE(IsValidBoxName(""));
  EXPECT_FALSE(IsValidBoxName("-x"));
  EXPECT_FALSE(IsValidBoxName("a/b"));
  EXPECT_FALSE(IsValidBoxName(std::string(64, 'a')));
}

}  // namespace
}  // namespace boxlite::runtime
