// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Test helpers for the ext4 writer: build layers in memory, read an image back with
// libext2fs (never by mounting it, so tests need no root) and run e2fsck on it.
//
// Thread-safety: functions only; each call opens the image on its own.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string_view>

#include "boxlite/result.h"
#include "boxlite/status.h"
#include "src/image/ext4_builder.h"
#include "src/sys/fs.h"

namespace boxlite::image::ext4test {

struct Ext4Time {
  int64_t sec = 0;
  uint32_t nsec = 0;
};

struct Ext4Node {
  std::string path;  // "/" for the root, else "/a/b".
  char type = '?';   // f, d, l (symlink), c, b, p (fifo), s.
  uint32_t perm = 0;  // mode & 07777.
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint32_t nlink = 0;
  uint32_t ino = 0;
  std::string target;  // Symlinks.
  uint32_t major = 0;  // Devices.
  uint32_t minor = 0;
  std::map<std::string, std::string> xattrs;
  // "sha256 of the content" for regular files whose size is at most 256 MiB, else "".
  std::string sha256;
  // Blocks the inode owns (data, extent-tree and xattr blocks), in file system blocks.
  uint64_t blocks = 0;
  // Mapped (logical block, length) ranges of regular files, directories and symlinks.
  std::vector<std::pair<uint64_t, uint64_t>> extents;
  Ext4Time atime;
  Ext4Time mtime;
  Ext4Time ctime;
};

// Every path of the image, keyed by path. Iterative: fine for 10,000-deep trees.
Result<std::map<std::string, Ext4Node>> WalkExt4(const std::string& image);

// Reads up to `len` bytes at `offset` of the regular file at `path` (no symlinks followed).
Result<std::string> ReadExt4File(const std::string& image, const std::string& path,
                                 uint64_t offset, size_t len);

// Free and total blocks and inodes from the superblock.
struct Ext4Usage {
  uint64_t blocks = 0;
  uint64_t free_blocks = 0;
  uint64_t inodes = 0;
  uint64_t free_inodes = 0;
};
Result<Ext4Usage> Ext4UsageOf(const std::string& image);

// Runs `e2fsck -fn`. OK when it exits 0; otherwise an error carrying its output.
Status CheckExt4(const std::string& image);

// ---------------------------------------------------------------------------------------
// Building layers in memory.

inline constexpr uint64_t kMiB = 1ull << 20;
inline constexpr int64_t kTestMtime = 1700000000;

enum class Compression { kNone, kGzip, kZstd };

// One entry for MakeTar().
struct TarEntry {
  std::string path;
  char type = 'f';  // f d l (symlink) h (hardlink) c b p
  std::string data;
  std::string link;  // Symlink or hardlink target.
  uint32_t perm = 0644;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t mtime = kTestMtime;
  long mtime_nsec = 0;
  bool has_atime = false;
  int64_t atime = 0;
  uint32_t major = 0;
  uint32_t minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  std::string acl_text;  // POSIX.1e text form, written as SCHILY.acl.access.
};

TarEntry File(std::string path, std::string data, uint32_t perm = 0644);
TarEntry Dir(std::string path, uint32_t perm = 0755);
TarEntry Symlink(std::string path, std::string target);
TarEntry Hardlink(std::string path, std::string target);
TarEntry Device(std::string path, char type, uint32_t major, uint32_t minor);
// ".wh.<name>" in `dir` ("" for the root).
TarEntry Whiteout(const std::string& dir, const std::string& name);
// ".wh..wh..opq" in `dir` ("" for the root).
TarEntry Opaque(const std::string& dir);

// A pax tar written by libarchive, optionally compressed. Fails the current test when
// libarchive refuses an entry.
std::string MakeTar(const std::vector<TarEntry>& entries, Compression c = Compression::kNone);
// Arbitrary bytes as one gzip member or one zstd frame.
std::string Compress(const std::string& data, Compression c);

// Hand-made tar pieces, for what libarchive's writer would refuse to produce.
std::string UstarHeader(std::string_view name, char type, uint64_t size,
                        std::string_view link = "", uint32_t mode = 0644);
// `data` padded with zeros to a multiple of 512 bytes.
std::string Padded(std::string data);
// A pax extended header ('x') carrying `records`.
std::string PaxHeader(const std::vector<std::pair<std::string, std::string>>& records);
std::string EndOfArchive();
// A GNU sparse 1.0 entry: `segments` are (offset, bytes) of a file of `realsize` bytes;
// the rest is holes.
std::string SparseEntry(const std::string& name, uint64_t realsize,
                        const std::vector<std::pair<uint64_t, std::string>>& segments);

std::string RandomBytes(size_t n, uint32_t seed);
std::string Sha(const std::string& data);

// ---------------------------------------------------------------------------------------
// A fixture with a temporary image path.

class Ext4BuilderTest : public ::testing::Test {
 protected:
  void SetUp() override;

  // Applies `layer` through a memfd, like a blob file.
  static Result<LayerApplyResult> Apply(Ext4Builder& builder, const std::string& layer);
  // Builds the image from `layers`; returns the first error.
  Status Build(const std::vector<std::string>& layers, uint64_t size = 64 * kMiB,
               std::vector<LayerApplyResult>* results = nullptr);
  // Build() that must succeed, followed by e2fsck.
  void BuildOk(const std::vector<std::string>& layers, uint64_t size = 64 * kMiB);
  std::map<std::string, Ext4Node> Walk();
  void ExpectClean();
  // Paths of the image except "/" and "/lost+found".
  static std::set<std::string> UserPaths(const std::map<std::string, Ext4Node>& tree);
  // Expects an error of `code` whose message contains every fragment.
  static void ExpectError(const Status& s, StatusCode code,
                          const std::vector<std::string>& fragments);

  std::unique_ptr<sys::TempDir> dir_;
  std::string image_;
};

}  // namespace boxlite::image::ext4test
