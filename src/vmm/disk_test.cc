// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// OpenDiskOverlay with the real qemu-img: an ephemeral overlay is only a descriptor, a
// kept one is reused, and a failed create leaves no file.
#include "src/vmm/disk.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/sys/fs.h"

namespace boxlite::vmm {
namespace {

class DiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = sys::TempDir::Create("/tmp", "boxlite-disk-");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(dir).value());
    base_ = sys::JoinPath(dir_->path(), "base.ext4");
    ASSERT_TRUE(sys::WriteFileAtomic(base_, std::string(1 << 20, '\0')).ok());
  }
  std::string Path(const char* name) const { return sys::JoinPath(dir_->path(), name); }
  // The qcow2 magic at the start of the open overlay.
  static bool IsQcow2(int fd) {
    char magic[4] = {};
    return ::pread(fd, magic, 4, 0) == 4 && std::string(magic, 4) == "QFI\xfb";
  }

  std::optional<sys::TempDir> dir_;
  std::string base_;
};

TEST_F(DiskTest, AnEphemeralOverlayIsOnlyADescriptor) {
  auto fd = OpenDiskOverlay({Path("box.qcow2"), base_, 64, /*keep=*/false});
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  EXPECT_TRUE(IsQcow2(fd->get()));
  EXPECT_FALSE(sys::Exists(Path("box.qcow2")));
}

TEST_F(DiskTest, AKeptOverlayIsReused) {
  DiskOverlay disk{Path("disk.qcow2"), base_, 64, /*keep=*/true};
  auto first = OpenDiskOverlay(disk);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_TRUE(IsQcow2(first->get()));
  struct stat a, b;
  ASSERT_EQ(::fstat(first->get(), &a), 0);
  auto again = OpenDiskOverlay(disk);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  ASSERT_EQ(::fstat(again->get(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // The same file, not a new overlay.
}

TEST_F(DiskTest, AFailedCreateLeavesNoFile) {
  for (bool keep : {false, true}) {
    auto fd = OpenDiskOverlay({Path("bad.qcow2"), Path("no-such-base"), 64, keep});
    ASSERT_FALSE(fd.ok());
    EXPECT_NE(fd.error().message().find("create the box disk"), std::string::npos)
        << fd.error().ToString();
    EXPECT_FALSE(sys::Exists(Path("bad.qcow2")));
  }
}

}  // namespace
}  // namespace boxlite::vmm
