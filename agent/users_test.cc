// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "agent/users.h"

#include <gtest/gtest.h>

namespace boxlite::agent {
namespace {

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    "app:x:1000:1000::/home/app:/bin/sh\n"
    "broken line\n";
constexpr char kGroup[] =
    "root:x:0:\n"
    "app:x:1000:\n"
    "docker:x:999:app,other\n"
    "staff:x:50:app\n";

TEST(UsersTest, EmptySpecIsRoot) {
  auto id = ResolveUser("", kPasswd, kGroup);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->uid, 0u);
  EXPECT_EQ(id->gid, 0u);
  EXPECT_EQ(id->home, "/root");
}

TEST(UsersTest, NameGivesPasswdIdsHomeAndSupplementaryGroups) {
  auto id = ResolveUser("app", kPasswd, kGroup);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->uid, 1000u);
  EXPECT_EQ(id->gid, 1000u);
  EXPECT_EQ(id->home, "/home/app");
  EXPECT_EQ(id->groups, (std::vector<gid_t>{999, 50}));
}

TEST(UsersTest, NumericUidWithoutEntryIsAllowed) {
  auto id = ResolveUser("4242", kPasswd, kGroup);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->uid, 4242u);
  EXPECT_EQ(id->home, "/");
}

TEST(UsersTest, UidGidAndNameGroupForms) {
  auto a = ResolveUser("1000:50", kPasswd, kGroup);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->gid, 50u);
  auto b = ResolveUser("nobody:docker", kPasswd, kGroup);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->uid, 65534u);
  EXPECT_EQ(b->gid, 999u);
}

TEST(UsersTest, UnknownNamesAreClearErrors) {
  auto a = ResolveUser("ghost", kPasswd, kGroup);
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(a.error().IsNotFound());
  EXPECT_NE(a.error().message().find("\"ghost\""), std::string::npos);
  EXPECT_TRUE(ResolveUser("app:nogroup", kPasswd, kGroup).error().IsNotFound());
  EXPECT_TRUE(ResolveUser("app:", kPasswd, kGroup).error().IsInvalidArgument());
  EXPECT_TRUE(ResolveUser(":1", kPasswd, kGroup).error().IsInvalidArgument());
}

TEST(UsersTest, MissingFilesStillAllowNumericIds) {
  auto id = ResolveUser("0", "", "");
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(ResolveUser("root", "", "").ok());
}

}  // namespace
}  // namespace boxlite::agent
