// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

#include "src/image/tar_path.h"

#include <gtest/gtest.h>

#include <string>

namespace boxlite::image {
namespace {

std::string Clean(std::string_view raw) {
  Result<CleanPath> p = CleanTarPath(raw);
  if (!p.ok()) return "ERROR: " + p.error().ToString();
  std::string out = "[" + p->str() + "]";
  for (size_t i = 0; i < p->size(); ++i) out += " " + std::string(p->component(i));
  return out;
}

TEST(CleanTarPathTest, PlainAndDotted) {
  EXPECT_EQ(Clean("a/b/c"), "[a/b/c] a b c");
  EXPECT_EQ(Clean("./a/./b/"), "[a/b] a b");
  EXPECT_EQ(Clean("a//b///c"), "[a/b/c] a b c");
  EXPECT_EQ(Clean("/etc/passwd"), "[etc/passwd] etc passwd");
  EXPECT_EQ(Clean("///"), "[]");
  EXPECT_EQ(Clean("./"), "[]");
  EXPECT_EQ(Clean(""), "[]");
}

TEST(CleanTarPathTest, DotDotInsideIsResolvedLexically) {
  EXPECT_EQ(Clean("a/b/../c"), "[a/c] a c");
  EXPECT_EQ(Clean("a/b/../../c/../d"), "[d] d");
  EXPECT_EQ(Clean("a/.."), "[]");
  EXPECT_EQ(Clean("abc/../d"), "[d] d");
}

TEST(CleanTarPathTest, DotDotAboveRootIsCorruption) {
  for (const char* raw : {"..", "../x", "a/../../x", "/../etc", "./../x"}) {
    Result<CleanPath> p = CleanTarPath(raw);
    ASSERT_FALSE(p.ok()) << raw;
    EXPECT_TRUE(p.error().IsCorruption()) << raw;
    EXPECT_NE(p.error().message().find("escapes"), std::string::npos) << raw;
  }
}

TEST(CleanTarPathTest, ComponentLengthLimit) {
  std::string ok(255, 'x');
  std::string too_long(256, 'x');
  EXPECT_TRUE(CleanTarPath("d/" + ok).ok());
  Result<CleanPath> p = CleanTarPath("d/" + too_long + "/f");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(p.error().IsCorruption());
  EXPECT_NE(p.error().message().find("255"), std::string::npos);
}

TEST(CleanTarPathTest, PrefixAndBase) {
  Result<CleanPath> p = CleanTarPath("x/yy/zzz");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->prefix(0), "");
  EXPECT_EQ(p->prefix(1), "x");
  EXPECT_EQ(p->prefix(2), "x/yy");
  EXPECT_EQ(p->prefix(3), "x/yy/zzz");
  EXPECT_EQ(p->base(), "zzz");
}

TEST(CleanTarPathTest, QuoteForMessageTruncates) {
  std::string longname(1000, 'a');
  std::string q = QuoteForMessage(longname, 10);
  EXPECT_EQ(q, "'aaaaaaaaaa...'");
  EXPECT_EQ(QuoteForMessage("a b"), "'a b'");
  EXPECT_EQ(QuoteForMessage("x\ny'"), "'x\\x0ay\\x27'");
}

}  // namespace
}  // namespace boxlite::image
