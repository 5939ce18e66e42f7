// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// OpenDiskOverlay with the real qemu-img: an ephemeral overlay is only a descriptor, a
// kept one is reused, a failed create leaves no file, and an overlay copied from a
// template is byte for byte what qemu-img makes.
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

// The bytes of an open descriptor, from offset 0.
std::string Contents(int fd) {
  std::string out;
  char buf[65536];
  for (off_t at = 0;;) {
    ssize_t n = ::pread(fd, buf, sizeof(buf), at);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
    at += n;
  }
}

TEST_F(DiskTest, AnOverlayCopiedFromTheTemplateIsWhatQemuImgMakes) {
  auto direct = OpenDiskOverlay({Path("direct.qcow2"), base_, 64, /*keep=*/false});
  ASSERT_TRUE(direct.ok()) << direct.error().ToString();
  DiskOverlay disk{Path("box.qcow2"), base_, 64, /*keep=*/false, Path("base.overlay-64M.qcow2")};
  auto first = OpenDiskOverlay(disk);  // Makes the template, then copies it.
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  ASSERT_TRUE(sys::Exists(disk.template_path));
  EXPECT_FALSE(sys::Exists(disk.path));
  auto second = OpenDiskOverlay(disk);  // Copies the template made above.
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  struct stat a, b;
  ASSERT_EQ(::fstat(first->get(), &a), 0);
  ASSERT_EQ(::fstat(second->get(), &b), 0);
  EXPECT_NE(a.st_ino, b.st_ino);  // Each box its own overlay.
  std::string made = Contents(direct->get());
  ASSERT_FALSE(made.empty());
  EXPECT_EQ(Contents(first->get()), made);
  EXPECT_EQ(Contents(second->get()), made);
  // Writes to one overlay reach neither the other nor the template.
  ASSERT_EQ(::pwrite(first->get(), "x", 1, static_cast<off_t>(made.size()) + 4096), 1);
  EXPECT_EQ(Contents(second->get()), made);
  auto tmpl = sys::ReadFile(disk.template_path);
  ASSERT_TRUE(tmpl.ok());
  EXPECT_EQ(*tmpl, made);
}

TEST_F(DiskTest, ATemplateOfAnotherSizeOrBaseIsMadeAgain) {
  std::string tmpl = Path("shared.qcow2");
  std::string other_base = Path("other.ext4");
  ASSERT_TRUE(sys::WriteFileAtomic(other_base, std::string(1 << 20, '\0')).ok());
  auto expect_like_qemu_img = [&](const DiskOverlay& disk, const char* direct_name) {
    auto fd = OpenDiskOverlay(disk);
    ASSERT_TRUE(fd.ok()) << fd.error().ToString();
    auto direct = OpenDiskOverlay({Path(direct_name), disk.backing, disk.size_mib, false});
    ASSERT_TRUE(direct.ok()) << direct.error().ToString();
    EXPECT_EQ(Contents(fd->get()), Contents(direct->get()));
  };
  expect_like_qemu_img({Path("a.qcow2"), base_, 64, false, tmpl}, "a-direct.qcow2");
  expect_like_qemu_img({Path("b.qcow2"), base_, 128, false, tmpl}, "b-direct.qcow2");
  expect_like_qemu_img({Path("c.qcow2"), other_base, 128, false, tmpl}, "c-direct.qcow2");
  // Garbage at the template's path is replaced, not copied.
  ASSERT_TRUE(sys::WriteFileAtomic(tmpl, "QFI\xfb not really a qcow2 header, long enough").ok());
  expect_like_qemu_img({Path("d.qcow2"), base_, 64, false, tmpl}, "d-direct.qcow2");
}

TEST_F(DiskTest, ATemplateThatCannotBeMadeFallsBackToQemuImg) {
  DiskOverlay disk{Path("box.qcow2"), base_, 64, /*keep=*/false,
                   Path("no-such-dir/base.overlay-64M.qcow2")};
  auto fd = OpenDiskOverlay(disk);
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  EXPECT_TRUE(IsQcow2(fd->get()));
  EXPECT_FALSE(sys::Exists(disk.path));
  EXPECT_FALSE(sys::Exists(disk.template_path));
  // And a missing base still fails as before, leaving nothing behind.
  DiskOverlay bad{Path("bad.qcow2"), Path("no-such-base"), 64, false, Path("bad-template.qcow2")};
  auto failed = OpenDiskOverlay(bad);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message().find("create the box disk"), std::string::npos);
  EXPECT_FALSE(sys::Exists(bad.path));
  EXPECT_FALSE(sys::Exists(bad.template_path));
  auto left = sys::ListDir(dir_->path());
  ASSERT_TRUE(left.ok());
  for (const auto& name : *left) {
    EXPECT_EQ(name.find(".template."), std::string::npos) << name;  // MakeTemplate's file.
  }
}

}  // namespace
}  // namespace boxlite::vmm
