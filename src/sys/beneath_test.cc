// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/beneath.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "src/sys/fs.h"

namespace boxlite::sys {
namespace {

class BeneathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create(::testing::TempDir(), "beneath_test.");
    ASSERT_TRUE(dir.ok()) << dir.error().ToString();
    dir_ = std::make_unique<TempDir>(std::move(dir).value());
    ASSERT_TRUE(MakeDirs(Path("dest")).ok());
    ASSERT_TRUE(MakeDirs(Path("outside")).ok());
    ASSERT_EQ(::chmod(Path("outside").c_str(), 0755), 0);
    ASSERT_TRUE(WriteFileAtomic(Path("outside/canary"), "canary", 0644).ok());
    auto fd = Open(Path("dest"), O_RDONLY | O_DIRECTORY);
    ASSERT_TRUE(fd.ok());
    dest_ = std::move(fd).value();
  }
  std::string Path(const std::string& name) { return JoinPath(dir_->path(), name); }
  mode_t ModeOf(const std::string& name) {
    struct stat st;
    EXPECT_EQ(::lstat(Path(name).c_str(), &st), 0) << name;
    return st.st_mode;
  }
  void ExpectOutsideUntouched() {
    EXPECT_EQ(*ListDir(Path("outside")), std::vector<std::string>{"canary"});
    EXPECT_EQ(*ReadFile(Path("outside/canary")), "canary");
    EXPECT_EQ(ModeOf("outside/canary") & 07777, 0644u);
    EXPECT_EQ(ModeOf("outside") & 07777, 0755u);
  }
  void ExpectNoTempFiles() {
    auto names = ListDir(Path("dest"));
    ASSERT_TRUE(names.ok());
    for (const auto& name : *names) {
      EXPECT_NE(name.rfind(".boxlite-", 0), 0u) << "temporary file left: " << name;
    }
  }
  std::unique_ptr<TempDir> dir_;
  base::UniqueFd dest_;
};

TEST(BeneathNames, OnlySingleComponentsAreSafe) {
  EXPECT_TRUE(IsSafeName("a"));
  EXPECT_TRUE(IsSafeName("..."));
  EXPECT_TRUE(IsSafeName(".hidden"));
  EXPECT_TRUE(IsSafeName(std::string("\xff\x01 x", 4)));  // Bytes, not text.
  EXPECT_TRUE(IsSafeName(std::string(255, 'n')));
  EXPECT_FALSE(IsSafeName(""));
  EXPECT_FALSE(IsSafeName("."));
  EXPECT_FALSE(IsSafeName(".."));
  EXPECT_FALSE(IsSafeName("a/b"));
  EXPECT_FALSE(IsSafeName("/"));
  EXPECT_FALSE(IsSafeName(std::string("a\0b", 3)));
  EXPECT_FALSE(IsSafeName(std::string(256, 'n')));
}

TEST(BeneathNames, PrintableEscapesBytes) {
  EXPECT_EQ(PrintableName(std::string("a\xff\n\"", 4)), "\"a\\xff\\x0a\\x22\"");
  EXPECT_LT(PrintableName(std::string(10000, 'x')).size(), 300u);
}

TEST_F(BeneathTest, OpenBeneathRefusesEveryWayOut) {
  ASSERT_TRUE(MakeDirs(Path("dest/a/b")).ok());
  ASSERT_EQ(::symlink(Path("outside").c_str(), Path("dest/a/out").c_str()), 0);
  ASSERT_EQ(::symlink("../../outside", Path("dest/a/rel").c_str()), 0);
  for (auto open : {&OpenBeneath, &OpenBeneathByWalk}) {
    EXPECT_TRUE(open(dest_.get(), "a/b", O_RDONLY | O_DIRECTORY, 0).ok());
    EXPECT_FALSE(open(dest_.get(), "a/out/canary", O_RDONLY, 0).ok());
    EXPECT_FALSE(open(dest_.get(), "a/rel/canary", O_RDONLY, 0).ok());
    EXPECT_FALSE(open(dest_.get(), "a/out", O_RDONLY, 0).ok());
    EXPECT_FALSE(open(dest_.get(), "../outside/canary", O_RDONLY, 0).ok());
    EXPECT_FALSE(open(dest_.get(), Path("outside/canary"), O_RDONLY, 0).ok());
    // Creating through a symlink is refused too.
    EXPECT_FALSE(open(dest_.get(), "a/out/new", O_WRONLY | O_CREAT, 0644).ok());
    EXPECT_FALSE(open(dest_.get(), "a/out", O_WRONLY | O_CREAT, 0644).ok());
  }
  ExpectOutsideUntouched();
}

TEST_F(BeneathTest, FileReplacesASymlinkNotItsTarget) {
  ASSERT_EQ(::symlink(Path("outside/canary").c_str(), Path("dest/f").c_str()), 0);
  ASSERT_EQ(::symlink(Path("outside/new").c_str(), Path("dest/dangling").c_str()), 0);
  for (const char* name : {"f", "dangling"}) {
    auto file = BeneathFile::Create(dest_.get(), name);
    ASSERT_TRUE(file.ok()) << file.error().ToString();
    ASSERT_TRUE(file->Write("guest data").ok());
    ASSERT_TRUE(file->Commit(0644, 1000).ok());
    EXPECT_TRUE(S_ISREG(ModeOf(std::string("dest/") + name)));
    EXPECT_EQ(*ReadFile(Path(std::string("dest/") + name)), "guest data");
  }
  ExpectOutsideUntouched();
  ExpectNoTempFiles();
}

TEST_F(BeneathTest, FileModeLosesSetuidSetgidSticky) {
  auto file = BeneathFile::Create(dest_.get(), "suid");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(file->Commit(07755, 1234567).ok());
  EXPECT_EQ(ModeOf("dest/suid") & 07777, 0755u);
  struct stat st;
  ASSERT_EQ(::lstat(Path("dest/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, 1234567);
}

TEST_F(BeneathTest, FileNeverReplacesADirectoryAndLeavesNoTemp) {
  ASSERT_TRUE(MakeDirs(Path("dest/d")).ok());
  EXPECT_FALSE(BeneathFile::Create(dest_.get(), "d").ok());
  {
    auto file = BeneathFile::Create(dest_.get(), "later");
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE(MakeDirs(Path("dest/later")).ok());  // Raced in after Create.
    ASSERT_TRUE(file->Write("x").ok());
    Status s = file->Commit(0644, 0);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("is a directory"), std::string::npos) << s.ToString();
  }
  {
    auto dropped = BeneathFile::Create(dest_.get(), "dropped");
    ASSERT_TRUE(dropped.ok());
    ASSERT_TRUE(dropped->Write("x").ok());
  }
  EXPECT_FALSE(Exists(Path("dest/dropped")));
  ExpectNoTempFiles();
}

TEST_F(BeneathTest, BadNamesAreRefused) {
  for (const std::string& name : std::vector<std::string>{"", ".", "..", "../outside/x", "a/b",
                                                         std::string("a\0b", 3)}) {
    EXPECT_FALSE(BeneathFile::Create(dest_.get(), name).ok()) << name;
    EXPECT_FALSE(MakeDirBeneath(dest_.get(), name).ok()) << name;
    EXPECT_FALSE(SymlinkBeneath(dest_.get(), name, "/x").ok()) << name;
  }
  EXPECT_TRUE(ListDir(Path("dest"))->empty());
  ExpectOutsideUntouched();
}

TEST_F(BeneathTest, DirectoryReplacesASymlinkAndNeverDescendsIt) {
  ASSERT_EQ(::symlink(Path("outside").c_str(), Path("dest/d").c_str()), 0);
  auto dir = MakeDirBeneath(dest_.get(), "d");
  ASSERT_TRUE(dir.ok()) << dir.error().ToString();
  EXPECT_TRUE(dir->created);
  auto file = BeneathFile::Create(dir->fd.get(), "canary");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(file->Commit(0777, 0).ok());
  ASSERT_TRUE(FinishDir(*dir, 01777).ok());
  EXPECT_TRUE(S_ISDIR(ModeOf("dest/d")));
  EXPECT_EQ(ModeOf("dest/d") & 07777, 0777u);
  EXPECT_TRUE(Exists(Path("dest/d/canary")));
  ExpectOutsideUntouched();
}

TEST_F(BeneathTest, ExistingDirectoryKeepsItsModeAndAFileIsNotADirectory) {
  ASSERT_TRUE(MakeDirs(Path("dest/d")).ok());
  ASSERT_EQ(::chmod(Path("dest/d").c_str(), 0750), 0);
  auto dir = MakeDirBeneath(dest_.get(), "d");
  ASSERT_TRUE(dir.ok());
  EXPECT_FALSE(dir->created);
  ASSERT_TRUE(FinishDir(*dir, 0777).ok());
  EXPECT_EQ(ModeOf("dest/d") & 07777, 0750u);
  ASSERT_TRUE(WriteFileAtomic(Path("dest/f"), "x").ok());
  auto not_dir = MakeDirBeneath(dest_.get(), "f");
  ASSERT_FALSE(not_dir.ok());
  EXPECT_NE(not_dir.error().message().find("not a directory"), std::string::npos);
}

TEST_F(BeneathTest, SymlinkIsCreatedNeverFollowed) {
  ASSERT_EQ(::symlink(Path("outside/canary").c_str(), Path("dest/l").c_str()), 0);
  ASSERT_TRUE(SymlinkBeneath(dest_.get(), "l", "/etc/passwd").ok());
  char buf[64] = {};
  ASSERT_GT(::readlink(Path("dest/l").c_str(), buf, sizeof(buf) - 1), 0);
  EXPECT_STREQ(buf, "/etc/passwd");
  ASSERT_TRUE(WriteFileAtomic(Path("dest/f"), "x").ok());
  EXPECT_TRUE(SymlinkBeneath(dest_.get(), "f", "elsewhere").ok());
  ASSERT_TRUE(MakeDirs(Path("dest/d")).ok());
  EXPECT_FALSE(SymlinkBeneath(dest_.get(), "d", "x").ok());
  EXPECT_FALSE(SymlinkBeneath(dest_.get(), "n", std::string("a\0b", 3)).ok());
  EXPECT_FALSE(SymlinkBeneath(dest_.get(), "n", "").ok());
  EXPECT_TRUE(S_ISDIR(ModeOf("dest/d")));
  ExpectOutsideUntouched();
  ExpectNoTempFiles();
}

}  // namespace
}  // namespace boxlite::sys
