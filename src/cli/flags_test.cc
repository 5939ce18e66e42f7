// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/cli/flags.h"

#include <gtest/gtest.h>

namespace boxlite::cli {
namespace {

const std::vector<FlagSpec> kSpecs = {
    {"rm", 0, false, false, "", ""},
    {"interactive", 'i', false, false, "", ""},
    {"tty", 't', false, false, "", ""},
    {"env", 'e', true, true, "", "K=V"},
    {"name", 0, true, false, "", "NAME"},
};

TEST(FlagsTest, DockerStyleRunLine) {
  auto f = ParseFlags({"--rm", "-it", "-e", "A=1", "--env=B=2", "-eC=3", "img", "sh", "-c", "x -e"},
                      kSpecs, true);
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  EXPECT_TRUE(f->Has("rm"));
  EXPECT_TRUE(f->Has("interactive"));
  EXPECT_TRUE(f->Has("tty"));
  EXPECT_EQ(f->All("env"), (std::vector<std::string>{"A=1", "B=2", "C=3"}));
  EXPECT_EQ(f->positional, (std::vector<std::string>{"img", "sh", "-c", "x -e"}));
}

TEST(FlagsTest, DoubleDashEndsFlags) {
  auto f = ParseFlags({"--", "-x"}, kSpecs, false);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->positional, std::vector<std::string>{"-x"});
}

TEST(FlagsTest, Errors) {
  EXPECT_TRUE(ParseFlags({"--nope"}, kSpecs, true).error().IsInvalidArgument());
  EXPECT_TRUE(ParseFlags({"-z"}, kSpecs, true).error().IsInvalidArgument());
  EXPECT_TRUE(ParseFlags({"-e"}, kSpecs, true).error().IsInvalidArgument());
  EXPECT_TRUE(ParseFlags({"--name", "a", "--name", "b"}, kSpecs, true).error().IsInvalidArgument());
  EXPECT_TRUE(ParseFlags({"--rm=yes"}, kSpecs, true).error().IsInvalidArgument());
}

TEST(FlagsTest, HelpListsFlags) {
  std::string help = FormatHelp("run IMAGE", "Run it", kSpecs);
  EXPECT_NE(help.find("Usage: boxlite run IMAGE"), std::string::npos);
  EXPECT_NE(help.find("-e, --env K=V"), std::string::npos);
}

}  // namespace
}  // namespace boxlite::cli
