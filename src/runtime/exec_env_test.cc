// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/exec_env.h"

#include <set>

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

// Ids are BoxLite 0.9's: 12 Base62 characters, fresh each time, and every character of
// the alphabet turns up (a mapping that skipped letters or case would show here).
TEST(ExecEnvTest, IdsAreTwelveBase62Characters) {
  const std::string kAlphabet =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::set<std::string> ids;
  std::set<char> seen;
  for (int i = 0; i < 2000; ++i) {
    std::string id = NewBoxId();
    ASSERT_EQ(id.size(), 12u);
    ASSERT_EQ(id.find_first_not_of(kAlphabet), std::string::npos) << id;
    ids.insert(id);
    seen.insert(id.begin(), id.end());
  }
  EXPECT_EQ(ids.size(), 2000u);
  EXPECT_EQ(seen.size(), kAlphabet.size());
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
