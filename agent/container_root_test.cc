// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "agent/container_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

// Container mounts: sources resolved in the box, destinations made beneath the container's
// root (a symlink there resolves inside it), kinds checked.
class ContainerMountsTest : public ContainerRootTest {
 protected:
  void SetUp() override {
    ContainerRootTest::SetUp();
    fs::create_directories(box_ + "/pod-mounts/c1/0");
    std::ofstream(box_ + "/pod-mounts/c1/0/from-host") << "host\n";
    std::ofstream(box_ + "/pod-mounts/c1/1") << "token\n";
  }
  Result<ContainerRoot> Of(std::vector<protocol::ExecRequest::Mount> mounts) {
    protocol::ExecRequest r;
    r.root_dir = "/var/lib/c1/rootfs";
    r.container_mounts = std::move(mounts);
    return ContainerRootOf(r, true, root_fd_, box_);
  }
  std::string Root() const { return box_ + "/var/lib/c1/rootfs"; }
};

TEST_F(ContainerMountsTest, MakesMissingDestinationsOfTheSourcesKind) {
  auto root = Of({{"/pod-mounts/c1/0", "/data/deep", false},
                  {"/pod-mounts/c1/1", "/var/run/secrets/token", true}});
  ASSERT_TRUE(root.ok()) << root.error().ToString();
  EXPECT_TRUE(fs::is_directory(Root() + "/data/deep"));
  EXPECT_TRUE(fs::is_regular_file(Root() + "/var/run/secrets/token"));
  EXPECT_EQ(fs::file_size(Root() + "/var/run/secrets/token"), 0u);
  ASSERT_EQ(root->mounts.size(), 2u);
  EXPECT_TRUE(root->mounts[1].read_only);
  EXPECT_EQ(root->box_root, box_);
}

TEST_F(ContainerMountsTest, ASymlinkDestinationResolvesInsideTheContainersRoot) {
  // Out of the container's root through "..", and absolute: both land inside it.
  fs::create_directories(box_ + "/outside");
  fs::create_directories(Root() + "/outside");
  fs::create_symlink("../../../../../../outside", Root() + "/up");
  fs::create_directories(Root() + "/var/lib");
  fs::create_symlink("/var/lib", Root() + "/abs");
  auto root = Of({{"/pod-mounts/c1/0", "/up", false}, {"/pod-mounts/c1/0", "/abs/x", false}});
  ASSERT_TRUE(root.ok()) << root.error().ToString();
  EXPECT_TRUE(fs::is_directory(Root() + "/var/lib/x"));
  EXPECT_FALSE(fs::exists(box_ + "/var/lib/x"));
  // A link to a missing path is refused, not followed to make it.
  fs::create_symlink("/nowhere", Root() + "/dangling");
  auto dangling = Of({{"/pod-mounts/c1/0", "/dangling", false}});
  ASSERT_FALSE(dangling.ok());
  EXPECT_NE(dangling.error().message().find("symbolic link"), std::string::npos);
  EXPECT_FALSE(fs::exists(box_ + "/nowhere"));
}

TEST_F(ContainerMountsTest, BadMountsAreRefused) {
  fs::create_directories(Root() + "/dir");
  std::ofstream(Root() + "/file") << "x";
  fs::create_symlink("..", Root() + "/parent");
  for (const auto& m : std::vector<protocol::ExecRequest::Mount>{
           {"/pod-mounts/c1/0", "/file", false},     // A directory onto a file.
           {"/pod-mounts/c1/1", "/dir", false},      // A file onto a directory.
           {"/pod-mounts/c1/0", "/", false},         // The root itself.
           {"/pod-mounts/c1/0", "/parent", false},   // The root, through a link.
           {"/pod-mounts/c1/0", "/a/../b", false},   // "..".
           {"/pod-mounts/missing", "/m", false},     // No source.
           {"relative", "/m", false},
           {"/pod-mounts/c1/0", "relative", false}}) {
    auto root = Of({m});
    EXPECT_FALSE(root.ok()) << m.source << " " << m.destination;
  }
  protocol::ExecRequest r;
  r.container_mounts = {{"/pod-mounts/c1/0", "/d", false}};
  EXPECT_FALSE(ContainerRootOf(r, true, root_fd_, box_).ok());  // No root_dir.
}

// The binds themselves, in a child as the agent's exec makes them (root only: mount
// namespaces; everything happens in the child's own namespace).
TEST_F(ContainerMountsTest, EnterContainerRootBindsReadOnlyWhenAsked) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  fs::create_directories(Root() + "/bin");
  auto root = Of({{"/pod-mounts/c1/0", "/data", false},
                  {"/pod-mounts/c1/0", "/ro", true},
                  {"/pod-mounts/c1/1", "/token", true}});
  ASSERT_TRUE(root.ok()) << root.error().ToString();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const char* step = "";
    if (EnterContainerRoot(*root, &step) != 0) ::_exit(10);
    struct stat st;
    if (::stat("/data/from-host", &st) != 0) ::_exit(11);
    char buf[16] = {};
    int fd = ::open("/token", O_RDONLY);
    if (fd < 0 || ::read(fd, buf, sizeof(buf) - 1) != 6) ::_exit(12);
    int w = ::open("/data/from-child", O_WRONLY | O_CREAT, 0644);
    if (w < 0) ::_exit(13);
    if (::open("/ro/refused", O_WRONLY | O_CREAT, 0644) >= 0 || errno != EROFS) ::_exit(14);
    if (::open("/token", O_WRONLY) >= 0 || errno != EROFS) ::_exit(15);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(fs::exists(box_ + "/pod-mounts/c1/0/from-child"));
  EXPECT_FALSE(fs::exists(box_ + "/pod-mounts/c1/0/refused"));
  EXPECT_FALSE(fs::exists(Root() + "/data/from-host"));  // Nothing left in the agent's view.
}

}  // namespace
}  // namespace boxlite::agent
