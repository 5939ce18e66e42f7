// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// OpenContainerCgroup against a directory standing in for the box's cgroup (cgroupfs makes
// a cgroup's files itself; here the test makes them): what it writes, what it refuses,
// and the bound on how many it keeps.
#include "agent/container_cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace boxlite::agent {
namespace {

namespace fs = std::filesystem;

class ContainerCgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxlite-cgroup-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Touch(dir_ / "cgroup.subtree_control");
    parent_.reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(parent_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void Touch(const fs::path& p) { std::ofstream(p).flush(); }
  // A cgroup as the kernel would show it: a directory with its interface files.
  void MakeCgroup(const std::string& name) {
    fs::create_directory(dir_ / name);
    for (const char* f : {"memory.max", "pids.max", "cpu.max"}) Touch(dir_ / name / f);
  }
  std::string Read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path dir_;
  base::UniqueFd parent_;
};

TEST_F(ContainerCgroupTest, WritesTheLimitsOfAnExistingCgroup) {
  MakeCgroup("c-web");
  auto fd = OpenContainerCgroup(parent_.get(), {"web", 64 << 20, 50000, 0, 32});
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  EXPECT_EQ(Read(dir_ / "c-web" / "memory.max"), "67108864");
  EXPECT_EQ(Read(dir_ / "c-web" / "cpu.max"), "50000 100000");
  EXPECT_EQ(Read(dir_ / "c-web" / "pids.max"), "32");
  EXPECT_EQ(Read(dir_ / "cgroup.subtree_control"), "+memory +pids +cpu");
  // A later exec without limits lifts them ("max"): the last one's values hold.
  fd = OpenContainerCgroup(parent_.get(), {"web", 0, 0, 0, 0});
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  EXPECT_EQ(Read(dir_ / "c-web" / "memory.max"), "max");
  EXPECT_EQ(Read(dir_ / "c-web" / "cpu.max"), "max 100000");
  EXPECT_EQ(Read(dir_ / "c-web" / "pids.max"), "max");
}

TEST_F(ContainerCgroupTest, WithoutCpuMaxTheQuotaIsAWeight) {
  // A guest kernel without CFS bandwidth control: cpu.weight, no cpu.max.
  fs::create_directory(dir_ / "c-w");
  for (const char* f : {"memory.max", "pids.max", "cpu.weight"}) Touch(dir_ / "c-w" / f);
  ASSERT_TRUE(OpenContainerCgroup(parent_.get(), {"w", 0, 50000, 100000, 0}).ok());
  EXPECT_EQ(Read(dir_ / "c-w" / "cpu.weight"), "50");
  EXPECT_FALSE(fs::exists(dir_ / "c-w" / "cpu.max"));
  ASSERT_TRUE(OpenContainerCgroup(parent_.get(), {"w", 0, 400000, 0, 0}).ok());
  EXPECT_EQ(Read(dir_ / "c-w" / "cpu.weight"), "400");
  ASSERT_TRUE(OpenContainerCgroup(parent_.get(), {"w", 0, 1000, 1000000, 0}).ok());
  EXPECT_EQ(Read(dir_ / "c-w" / "cpu.weight"), "1");
  ASSERT_TRUE(OpenContainerCgroup(parent_.get(), {"w", 0, 0, 0, 0}).ok());
  EXPECT_EQ(Read(dir_ / "c-w" / "cpu.weight"), "100");
}

TEST_F(ContainerCgroupTest, BadNamesMakeNothing) {
  // Untrusted: the name is one path component beneath the box's cgroup, nothing else.
  for (const char* bad : {"", "..", "../../etc", "a/b", ".hidden", "x y"}) {
    auto fd = OpenContainerCgroup(parent_.get(), {bad, 0, 0, 0, 0});
    EXPECT_FALSE(fd.ok()) << bad;
    EXPECT_TRUE(fd.error().IsInvalidArgument()) << bad;
  }
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1);  // cgroup.subtree_control only.
  EXPECT_FALSE(fs::exists(dir_.parent_path() / "etc" / "memory.max"));
}

TEST_F(ContainerCgroupTest, SymlinkedCgroupIsNotFollowed) {
  // A directory named like a container's cgroup that is a link elsewhere is refused.
  fs::create_directory(dir_ / "elsewhere");
  Touch(dir_ / "elsewhere" / "memory.max");
  fs::create_directory_symlink(dir_ / "elsewhere", dir_ / "c-link");
  auto fd = OpenContainerCgroup(parent_.get(), {"link", 64 << 20, 0, 0, 0});
  EXPECT_FALSE(fd.ok());
  EXPECT_EQ(Read(dir_ / "elsewhere" / "memory.max"), "");
}

TEST_F(ContainerCgroupTest, KeepsAtMostTheBoundRemovingEmptyOnes) {
  // Two in use (a file inside stands for processes: rmdir fails as on a populated cgroup).
  MakeCgroup("c-a");
  MakeCgroup("c-b");
  auto fd = OpenContainerCgroup(parent_.get(), {"new", 0, 0, 0, 0}, 2);
  ASSERT_FALSE(fd.ok());
  EXPECT_TRUE(fd.error().IsResourceExhausted()) << fd.error().ToString();
  EXPECT_FALSE(fs::exists(dir_ / "c-new"));
  EXPECT_TRUE(fs::exists(dir_ / "c-a"));
  // An existing one still opens at the bound.
  EXPECT_TRUE(OpenContainerCgroup(parent_.get(), {"a", 0, 0, 0, 0}, 2).ok());
  // An empty one of an ended container makes room (rmdir succeeds on it).
  fs::remove_all(dir_ / "c-b");
  fs::create_directory(dir_ / "c-b");
  fd = OpenContainerCgroup(parent_.get(), {"new", 0, 0, 0, 0}, 2);
  EXPECT_FALSE(fs::exists(dir_ / "c-b"));
  EXPECT_TRUE(fs::exists(dir_ / "c-new"));
}

}  // namespace
}  // namespace boxlite::agent
