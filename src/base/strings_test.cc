// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/base/strings.h"

#include <gtest/gtest.h>

namespace boxlite::base {
namespace {

TEST(StringsTest, SplitKeepsOrSkipsEmptyParts) {
  EXPECT_EQ(Split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(Split("a,,b,", ',', true), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Split("", ','), (std::vector<std::string>{""}));
}

TEST(StringsTest, ParseIntRejectsJunkAndOverflow) {
  EXPECT_EQ(ParseInt("-12"), -12);
  EXPECT_FALSE(ParseInt("12x"));
  EXPECT_FALSE(ParseInt(""));
  EXPECT_FALSE(ParseUint("-1"));
  EXPECT_FALSE(ParseUint("99999999999999999999999"));
  EXPECT_EQ(ParseUint("18446744073709551615"), 18446744073709551615ull);
}

TEST(StringsTest, ShellQuoteOnlyWhenNeeded) {
  EXPECT_EQ(ShellQuote("abc"), "abc");
  EXPECT_EQ(ShellQuote("a b"), "'a b'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote(""), "''");
}

TEST(StringsTest, TrimAndSizes) {
  EXPECT_EQ(Trim("  x y \n"), "x y");
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
}

}  // namespace
}  // namespace boxlite::base
