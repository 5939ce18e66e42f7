// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/guest_ram.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

namespace boxlite::vmm {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

void WriteAt(int fd, off_t off, const std::string& data) {
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), off), static_cast<ssize_t>(data.size()));
}

std::string ReadAt(int fd, off_t off, size_t n) {
  std::string out(n, '\0');
  EXPECT_EQ(::pread(fd, out.data(), n, off), static_cast<ssize_t>(n));
  return out;
}

TEST(GuestRamTest, SparseCopyKeepsDataAndSkipsHolesAndZeros) {
  auto src = CreateGuestRam(64 * kMiB);
  ASSERT_TRUE(src.ok()) << src.error().ToString();
  WriteAt(src->get(), 0, "first page");
  WriteAt(src->get(), 10 * kMiB, std::string(4096, '\0'));  // Data, but zeros.
  WriteAt(src->get(), 63 * kMiB + 123, "near the end");
  auto dst = CreateGuestRam(0);
  ASSERT_TRUE(dst.ok());
  auto written = SparseCopy(src->get(), dst->get(), 64 * kMiB);
  ASSERT_TRUE(written.ok()) << written.error().ToString();
  struct stat st;
  ASSERT_EQ(::fstat(dst->get(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 64 * kMiB);
  EXPECT_EQ(ReadAt(dst->get(), 0, 10), "first page");
  EXPECT_EQ(ReadAt(dst->get(), 63 * kMiB + 123, 12), "near the end");
  // A memfd reports data page by page: two pages hold data; the zeroed page and the
  // holes were not written.
  EXPECT_EQ(*written, 2u * 4096);
  EXPECT_LE(static_cast<uint64_t>(st.st_blocks) * 512, 2u * 4096);
  // The copy replaces what the destination held.
  WriteAt(dst->get(), 5 * kMiB, "stale");
  ASSERT_TRUE(SparseCopy(src->get(), dst->get(), 64 * kMiB).ok());
  EXPECT_EQ(ReadAt(dst->get(), 5 * kMiB, 5), std::string(5, '\0'));
}

TEST(GuestRamTest, SealedRamRefusesWritesButMapsPrivately) {
  auto ram = CreateGuestRam(kMiB);
  ASSERT_TRUE(ram.ok());
  WriteAt(ram->get(), 0, "shared");
  ASSERT_TRUE(SealGuestRam(ram->get()).ok());
  EXPECT_LT(::pwrite(ram->get(), "x", 1, 0), 0);
  EXPECT_NE(::ftruncate(ram->get(), 2 * kMiB), 0);
  // What QEMU does with share=off: open read-write, map privately, write.
  int reopened = ::open(("/proc/self/fd/" + std::to_string(ram->get())).c_str(), O_RDWR);
  ASSERT_GE(reopened, 0);
  EXPECT_EQ(::mmap(nullptr, kMiB, PROT_READ | PROT_WRITE, MAP_SHARED, reopened, 0), MAP_FAILED);
  void* p = ::mmap(nullptr, kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE, reopened, 0);
  ASSERT_NE(p, MAP_FAILED);
  static_cast<char*>(p)[0] = 'S';
  EXPECT_EQ(ReadAt(ram->get(), 0, 6), "shared");  // The file is untouched.
  ::munmap(p, kMiB);
  ::close(reopened);
}

TEST(GuestRamTest, FindsTheRamOfAProcessBySize) {
  auto ram = CreateGuestRam(3 * kMiB);
  ASSERT_TRUE(ram.ok());
  WriteAt(ram->get(), 0, "mine");
  auto found = OpenGuestRamOf(::getpid(), 3 * kMiB);
  ASSERT_TRUE(found.ok()) << found.error().ToString();
  EXPECT_EQ(ReadAt(found->get(), 0, 4), "mine");
  auto wrong = OpenGuestRamOf(::getpid(), 5 * kMiB);
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(wrong.error().IsNotFound());
}

}  // namespace
}  // namespace boxlite::vmm
