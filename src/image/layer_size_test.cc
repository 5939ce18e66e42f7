// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

#include "src/image/layer_size.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "src/sys/fs.h"

namespace boxlite::image {
namespace {

class LayerSizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    Result<sys::TempDir> dir = sys::TempDir::Create(tmp != nullptr ? tmp : "/tmp", "laysz");
    ASSERT_TRUE(dir.ok()) << dir.error().ToString();
    dir_ = std::make_unique<sys::TempDir>(std::move(*dir));
  }

  std::string Write(const std::string& name, const std::string& data) {
    std::string path = dir_->path() + "/" + name;
    EXPECT_TRUE(sys::WriteFileAtomic(path, data, 0644, false).ok());
    return path;
  }

  std::unique_ptr<sys::TempDir> dir_;
};

la_ssize_t AppendToString(struct archive*, void* s, const void* buf, size_t n) {
  static_cast<std::string*>(s)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

// Compresses `data` with libarchive's gzip (one member) or zstd (streaming, so the frame
// does not declare its content size).
std::string Compress(const std::string& data, bool zstd) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  if (zstd) {
    archive_write_add_filter_zstd(a);
  } else {
    archive_write_add_filter_gzip(a);
  }
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open2(a, &out, nullptr, AppendToString, nullptr, nullptr);
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_pathname(e, "data");
  archive_write_header(a, e);
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

std::string Le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// A zstd frame of raw blocks that declares its content size in a 4-byte field.
std::string ZstdRawFrame(const std::string& content, bool declare_size) {
  std::string f = Le(0xFD2FB528u, 4);
  // Single segment; FCS field 4 bytes (flag 2) or none (flag 0 is only legal without
  // single segment, so then a window descriptor follows).
  if (declare_size) {
    f.push_back(static_cast<char>((2 << 6) | (1 << 5)));
    f += Le(content.size(), 4);
  } else {
    f.push_back(0);
    f.push_back(0x50);  // Window descriptor.
  }
  uint32_t header = 1 | (0 << 1) | static_cast<uint32_t>(content.size() << 3);
  f += Le(header, 3);
  f += content;
  return f;
}

TEST_F(LayerSizeTest, GzipUsesIsizeTrailer) {
  std::string data(3 << 20, 'a');
  std::string path = Write("a.gz", Compress(data, false));
  EXPECT_EQ(EstimateLayerUncompressedSize(path), data.size());
}

TEST_F(LayerSizeTest, GzipIsizeWrapsAroundFourGiB) {
  // A (sparse) 1 GiB "gzip" whose ISIZE says 100: the real size is 4 GiB + 100.
  std::string path = dir_->path() + "/big.gz";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  const uint64_t size = 1ull << 30;
  std::string head("\x1f\x8b\x08\x00", 4);
  std::string trailer = Le(0, 4) + Le(100, 4);
  ASSERT_EQ(::pwrite(fd, head.data(), head.size(), 0), 4);
  ASSERT_EQ(::pwrite(fd, trailer.data(), trailer.size(), static_cast<off_t>(size - 8)), 8);
  ::close(fd);
  EXPECT_EQ(EstimateLayerUncompressedSize(path), (1ull << 32) + 100);
}

TEST_F(LayerSizeTest, GzipImplausibleWrapIsTreatedAsMultiMember) {
  // A fake member of 5 MiB whose ISIZE says 100: a real size of 4 GiB + 100 would be a
  // ratio of ~800, implausible, so it is read as multi-member: 5x.
  std::string fake = std::string("\x1f\x8b\x08\x00", 4) + std::string(5 << 20, 'x');
  fake += Le(0, 4) + Le(100, 4);
  std::string path = Write("fake.gz", fake);
  EXPECT_EQ(EstimateLayerUncompressedSize(path), fake.size() * 5);
}

TEST_F(LayerSizeTest, GzipMultiMemberFallsBackWhenLastMemberIsSmall) {
  std::string big(2 << 20, 'b');
  std::string gz = Compress(std::string(4 << 20, '\0') + big, false);
  // Append a tiny second member: its ISIZE (5) is all the trailer shows.
  gz += Compress("tiny!", false);
  std::string path = Write("multi.gz", gz);
  uint64_t estimate = EstimateLayerUncompressedSize(path);
  EXPECT_EQ(estimate, gz.size() * 5);
}

TEST_F(LayerSizeTest, ZstdFramesWithContentSizeAreSummed) {
  std::string f = ZstdRawFrame(std::string(1000, 'x'), true);
  f += Le(0x184D2A50u, 4) + Le(3, 4) + "abc";  // Skippable frame.
  f += ZstdRawFrame(std::string(2345, 'y'), true);
  std::string path = Write("two.zst", f);
  EXPECT_EQ(EstimateLayerUncompressedSize(path), 3345u);
}

TEST_F(LayerSizeTest, ZstdWithoutContentSizeFallsBackToFiveTimes) {
  std::string f = ZstdRawFrame(std::string(1000, 'x'), false);
  std::string path = Write("nosize.zst", f);
  EXPECT_EQ(EstimateLayerUncompressedSize(path), f.size() * 5);
  std::string streamed = Compress(std::string(1 << 20, 'z'), true);
  path = Write("streamed.zst", streamed);
  uint64_t estimate = EstimateLayerUncompressedSize(path);
  // libarchive may or may not declare the size; either answer is allowed but exact.
  EXPECT_TRUE(estimate == (1u << 20) || estimate == streamed.size() * 5) << estimate;
}

TEST_F(LayerSizeTest, PlainTarIsItsFileSize) {
  std::string tar(512, '\0');
  std::memcpy(tar.data(), "file", 4);
  std::memcpy(tar.data() + 257, "ustar", 5);
  tar += std::string(1536, '\0');
  std::string path = Write("plain.tar", tar);
  EXPECT_EQ(EstimateLayerUncompressedSize(path), tar.size());
}

TEST_F(LayerSizeTest, UnknownFormatIsFiveTimesAndMissingIsZero) {
  std::string junk(4096, '\x42');
  std::string path = Write("junk", junk);
  EXPECT_EQ(EstimateLayerUncompressedSize(path), junk.size() * 5);
  EXPECT_EQ(EstimateLayerUncompressedSize(dir_->path() + "/missing"), 0u);
}

}  // namespace
}  // namespace boxlite::image
