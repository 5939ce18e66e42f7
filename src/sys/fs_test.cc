// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/sys/unix_socket.h"

namespace boxlite::sys {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create(::testing::TempDir(), "fs_test.");
    ASSERT_TRUE(dir.ok()) << dir.error().ToString();
    dir_ = std::make_unique<TempDir>(std::move(dir).value());
  }
  std::string Path(const std::string& name) { return JoinPath(dir_->path(), name); }
  std::unique_ptr<TempDir> dir_;
};

TEST_F(FsTest, WriteAtomicThenRead) {
  ASSERT_TRUE(WriteFileAtomic(Path("f"), "hello").ok());
  EXPECT_EQ(*ReadFile(Path("f")), "hello");
  ASSERT_TRUE(WriteFileAtomic(Path("f"), "bye").ok());
  EXPECT_EQ(*ReadFile(Path("f")), "bye");
  EXPECT_EQ(*ListDir(dir_->path()), std::vector<std::string>{"f"});  // No temp file left.
}

TEST_F(FsTest, FindHelperProgramTakesTheSettingThenTheFirstExecutableFallback) {
  const char* kSetting = "BOXLITE_FS_TEST_HELPER";
  ASSERT_TRUE(WriteFileAtomic(Path("data"), "not a program").ok());
  ASSERT_TRUE(WriteFileAtomic(Path("tool"), "#!/bin/sh\n").ok());
  ASSERT_EQ(::chmod(Path("tool").c_str(), 0755), 0);
  // Not executable, missing, then the program: the first executable file wins.
  auto found = FindHelperProgram("", kSetting, "no-such-helper",
                                 {Path("data"), Path("gone"), Path("tool")});
  ASSERT_TRUE(found.ok()) << found.error().ToString();
  EXPECT_EQ(*found, Path("tool"));
  auto missing = FindHelperProgram("", kSetting, "no-such-helper", {Path("data")});
  ASSERT_TRUE(!missing.ok() && missing.error().IsNotFound());
  EXPECT_NE(missing.error().message().find(Path("data")), std::string::npos);
  // A configured path is taken as given, and must name an executable file.
  auto refused = FindHelperProgram(Path("data"), kSetting, "no-such-helper", {Path("tool")});
  ASSERT_TRUE(!refused.ok() && refused.error().IsNotFound());
  EXPECT_NE(refused.error().message().find(kSetting), std::string::npos);
  EXPECT_EQ(*FindHelperProgram(Path("tool"), kSetting, "no-such-helper", {}), Path("tool"));
}

TEST_F(FsTest, ReadMissingIsNotFoundWithPath) {
  auto r = ReadFile(Path("missing"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().IsNotFound());
  EXPECT_NE(r.error().message().find("missing"), std::string::npos);
}

TEST_F(FsTest, MakeDirsAndRemoveTreeDoNotFollowSymlinks) {
  ASSERT_TRUE(MakeDirs(Path("a/b/c")).ok());
  ASSERT_TRUE(MakeDirs(Path("a/b/c")).ok());
  ASSERT_TRUE(MakeDirs(Path("outside")).ok());
  ASSERT_TRUE(WriteFileAtomic(Path("outside/keep"), "x").ok());
  ASSERT_EQ(::symlink(Path("outside").c_str(), Path("a/b/link").c_str()), 0);
  ASSERT_TRUE(RemoveTree(Path("a")).ok());
  EXPECT_FALSE(Exists(Path("a")));
  EXPECT_TRUE(Exists(Path("outside/keep")));
  EXPECT_TRUE(RemoveTree(Path("never-existed")).ok());
}

TEST_F(FsTest, PathHelpers) {
  EXPECT_EQ(JoinPath("/a/", "/b"), "/a/b");
  EXPECT_EQ(Dirname("/a/b/"), "/a");
  EXPECT_EQ(Dirname("b"), ".");
  EXPECT_EQ(Basename("/a/b"), "b");
}

TEST_F(FsTest, TempDirRemovesItselfUnlessReleased) {
  std::string kept;
  std::string gone;
  {
    auto a = TempDir::Create(dir_->path(), "x.");
    auto b = TempDir::Create(dir_->path(), "y.");
    ASSERT_TRUE(a.ok() && b.ok());
    gone = a->path();
    ASSERT_TRUE(WriteFileAtomic(JoinPath(gone, "f"), "1").ok());
    kept = b->Release();
  }
  EXPECT_FALSE(Exists(gone));
  EXPECT_TRUE(IsDirectory(kept));
}

TEST_F(FsTest, UnixSocketWithPathLongerThanSunPath) {
  std::string deep = Path(std::string(60, 'd') + "/" + std::string(60, 'e'));
  ASSERT_TRUE(MakeDirs(deep).ok());
  std::string sock = JoinPath(deep, "agent.sock");
  ASSERT_GT(sock.size(), 108u);
  auto listener = ListenUnix(sock);
  ASSERT_TRUE(listener.ok()) << listener.error().ToString();
  auto client = ConnectUnix(sock);
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  EXPECT_TRUE(ConnectUnix(Path("nobody.sock")).error().IsNotFound());
}

}  // namespace
}  // namespace boxlite::sys
