// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "agent/container_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace boxlite::agent {
namespace {

namespace fs = std::filesystem;

// A box root in a temporary directory, opened as the agent opens its root.
class ContainerRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/container-root-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    box_ = fs::canonical(tmpl).string();
    fs::create_directories(box_ + "/var/lib/c1/rootfs/etc");
    root_fd_ = ::open(box_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_fd_, 0);
  }
  void TearDown() override {
    ::close(root_fd_);
    fs::remove_all(box_);
  }
  Result<ContainerRoot> Open(const std::string& dir) {
    return OpenContainerRoot(root_fd_, box_, dir);
  }

  std::string box_;
  int root_fd_ = -1;
};

TEST_F(ContainerRootTest, ResolvesBeneathTheBoxAndMakesMountPoints) {
  auto root = Open("/var/lib/c1/rootfs");
  ASSERT_TRUE(root.ok()) << root.error().ToString();
  EXPECT_EQ(root->path, box_ + "/var/lib/c1/rootfs");
  for (const char* name : {"proc", "sys", "dev"}) {
    EXPECT_TRUE(fs::is_directory(box_ + "/var/lib/c1/rootfs/" + name)) << name;
  }
  struct stat a, b;
  ASSERT_EQ(::fstat(root->dir.get(), &a), 0);
  ASSERT_EQ(::stat((box_ + "/var/lib/c1/rootfs").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST_F(ContainerRootTest, AbsoluteSymlinkResolvesInsideTheBox) {
  // A link to "/var/lib/c1" means the box's /var/lib/c1, never the agent's.
  fs::create_symlink("/var/lib/c1", box_ + "/link");
  auto root = Open("/link/rootfs");
  ASSERT_TRUE(root.ok()) << root.error().ToString();
  EXPECT_EQ(root->path, box_ + "/var/lib/c1/rootfs");
  // A link to the host's /etc is the box's /etc: missing here.
  fs::create_symlink("/etc", box_ + "/etclink");
  EXPECT_FALSE(Open("/etclink").ok());
}

TEST_F(ContainerRootTest, DotDotStopsAtTheBoxRoot) {
  fs::create_symlink("../../../../../../var/lib/c1/rootfs", box_ + "/var/lib/up");
  auto root = Open("/var/lib/up");
  ASSERT_TRUE(root.ok()) << root.error().ToString();
  EXPECT_EQ(root->path, box_ + "/var/lib/c1/rootfs");
  auto climbed = Open("/../../../../var/lib/c1/rootfs");
  ASSERT_TRUE(climbed.ok()) << climbed.error().ToString();
  EXPECT_EQ(climbed->path, box_ + "/var/lib/c1/rootfs");
}

TEST_F(ContainerRootTest, TheBoxRootItselfIsRefused) {
  EXPECT_FALSE(Open("/").ok());
  fs::create_symlink("..", box_ + "/var/lib/c1/rootfs/etc/top");
  EXPECT_FALSE(Open("/var/lib/c1/rootfs/etc/top/../../../..").ok());
}

TEST_F(ContainerRootTest, RelativeMissingAndNonDirectoryPathsAreRefused) {
  EXPECT_FALSE(Open("var/lib/c1/rootfs").ok());
  EXPECT_FALSE(Open("").ok());
  EXPECT_FALSE(Open("/var/lib/missing").ok());
  std::ofstream(box_ + "/file") << "x";
  EXPECT_FALSE(Open("/file").ok());
}

TEST_F(ContainerRootTest, MountPointThatIsASymlinkIsRefused) {
  // dev -> / would bind the box's /dev over the agent's root in the child's namespace.
  fs::create_symlink("/", box_ + "/var/lib/c1/rootfs/dev");
  auto root = Open("/var/lib/c1/rootfs");
  ASSERT_FALSE(root.ok());
  EXPECT_NE(root.error().ToString().find("dev"), std::string::npos) << root.error().ToString();
  EXPECT_TRUE(fs::is_symlink(box_ + "/var/lib/c1/rootfs/dev"));  // Left as it was.
}

}  // namespace
}  // namespace boxlite::agent
