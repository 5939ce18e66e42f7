// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Tests of the tar -> ext4 writer. Layers are built in memory with libarchive's writer
// (or byte by byte where libarchive would refuse to write something hostile), applied,
// and the image is read back with libext2fs (ext4_test_util.h) and checked with
// `e2fsck -fn`. Nothing here needs root: run it as nobody with a writable TMPDIR.
//
// Size: one file because every case shares the in-memory layer builder and the read-back
// helpers; each TEST is independent and can be run alone with --gtest_filter.
#include "src/image/ext4_builder.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "src/base/sha256.h"
#include "src/base/strings.h"
#include "src/image/ext4_test_util.h"
#include "src/sys/fs.h"

namespace boxlite::image {
namespace {

using namespace ext4test;  // NOLINT(build/namespaces): test helpers.

// ---------------------------------------------------------------------------------------
// Basics.

TEST_F(Ext4BuilderTest, EmptyImageHasRootAndLostFound) {
  BuildOk({});
  auto tree = Walk();
  ASSERT_EQ(tree.size(), 2u);
  EXPECT_EQ(tree["/"].type, 'd');
  EXPECT_EQ(tree["/"].perm, 0755u);
  EXPECT_EQ(tree["/"].nlink, 3u);
  EXPECT_EQ(tree["/lost+found"].type, 'd');
  EXPECT_EQ(tree["/lost+found"].perm, 0700u);
}

TEST_F(Ext4BuilderTest, CreateRejectsBadSizes) {
  Ext4BuildOptions options;
  options.size_bytes = 64 * kMiB + 1;
  Result<std::unique_ptr<Ext4Builder>> b = Ext4Builder::Create(image_, options);
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(b.error().IsInvalidArgument());
  options.size_bytes = 0;
  EXPECT_FALSE(Ext4Builder::Create(image_, options).ok());
}

TEST_F(Ext4BuilderTest, KeepsTypesModesOwnersTimesAndXattrs) {
  // VFS_CAP_REVISION_2, cap_net_raw permitted.
  std::string cap("\x01\x00\x00\x02\x00\x20\x00\x00", 8);
  cap += std::string(12, '\0');
  TarEntry ping = File("usr/bin/ping", "ELF...ping", 04755);
  ping.xattrs = {{"security.capability", cap}, {"user.note", "hello"}};
  TarEntry big_owner = File("home/u/file", "x", 0600);
  big_owner.uid = 100000;
  big_owner.gid = 200000;
  big_owner.mtime = 1234567890;
  big_owner.mtime_nsec = 123456789;
  big_owner.has_atime = true;
  big_owner.atime = 1111111111;
  TarEntry old_file = File("old", "1960", 0644);
  old_file.mtime = -315619200;  // 1960.
  TarEntry future = File("future", "2100", 0644);
  future.mtime = 4102444800;  // 2100, beyond 32 bits.
  std::string long_target(200, 't');
  BuildOk({MakeTar({
      Dir("usr", 0755), Dir("usr/bin", 0755), ping,
      File("usr/bin/sgid", "g", 02711), Dir("tmp", 01777), Dir("home"), Dir("home/u", 0700),
      big_owner, old_file, future, Symlink("usr/bin/fast", "ping"),
      Symlink("usr/bin/slow", long_target), Device("dev/null", 'c', 1, 3),
      Device("dev/sda1", 'b', 8, 1), Device("dev/big", 'c', 300, 70000),
      Device("dev/fifo", 'p', 0, 0), File("empty", ""),
  })});
  auto tree = Walk();
  EXPECT_EQ(tree["/usr/bin/ping"].type, 'f');
  EXPECT_EQ(tree["/usr/bin/ping"].perm, 04755u);
  EXPECT_EQ(tree["/usr/bin/ping"].sha256, Sha("ELF...ping"));
  EXPECT_EQ(tree["/usr/bin/ping"].xattrs["security.capability"], cap);
  EXPECT_EQ(tree["/usr/bin/ping"].xattrs["user.note"], "hello");
  EXPECT_EQ(tree["/usr/bin/sgid"].perm, 02711u);
  EXPECT_EQ(tree["/tmp"].perm, 01777u);
  EXPECT_EQ(tree["/home/u"].perm, 0700u);
  const Ext4Node& f = tree["/home/u/file"];
  EXPECT_EQ(f.uid, 100000u);
  EXPECT_EQ(f.gid, 200000u);
  EXPECT_EQ(f.mtime.sec, 1234567890);
  EXPECT_EQ(f.mtime.nsec, 123456789u);
  EXPECT_EQ(f.atime.sec, 1111111111);
  EXPECT_EQ(f.ctime.sec, 1234567890);
  EXPECT_EQ(tree["/old"].mtime.sec, -315619200);
  EXPECT_EQ(tree["/future"].mtime.sec, 4102444800);
  EXPECT_EQ(tree["/usr/bin/fast"].type, 'l');
  EXPECT_EQ(tree["/usr/bin/fast"].target, "ping");
  EXPECT_EQ(tree["/usr/bin/slow"].target, long_target);
  EXPECT_EQ(tree["/dev/null"].type, 'c');
  EXPECT_EQ(tree["/dev/null"].major, 1u);
  EXPECT_EQ(tree["/dev/null"].minor, 3u);
  EXPECT_EQ(tree["/dev/null"].perm, 0660u);
  EXPECT_EQ(tree["/dev/sda1"].type, 'b');
  EXPECT_EQ(tree["/dev/sda1"].major, 8u);
  EXPECT_EQ(tree["/dev/big"].major, 300u);
  EXPECT_EQ(tree["/dev/big"].minor, 70000u);
  EXPECT_EQ(tree["/dev/fifo"].type, 'p');
  EXPECT_EQ(tree["/empty"].size, 0u);
  EXPECT_EQ(tree["/empty"].blocks, 0u);
  // Implicit parent of dev/*.
  EXPECT_EQ(tree["/dev"].type, 'd');
  EXPECT_EQ(tree["/dev"].perm, 0755u);
  EXPECT_EQ(tree["/usr"].nlink, 3u);
}

TEST_F(Ext4BuilderTest, PosixAclFromSchilyHeadersBecomesXattr) {
  TarEntry e = File("acl", "x", 0640);
  e.acl_text = "user::rw-,user:1000:r--,group::r--,mask::r--,other::---";
  BuildOk({MakeTar({e})});
  auto tree = Walk();
  const std::string& acl = tree["/acl"].xattrs["system.posix_acl_access"];
  // Version 2 header + 5 entries of 8 bytes, in the kernel's order; user:1000 second.
  ASSERT_EQ(acl.size(), 4u + 5 * 8);
  uint16_t tag = 0;
  uint32_t id = 0;
  std::memcpy(&tag, acl.data() + 4 + 8, 2);
  std::memcpy(&id, acl.data() + 4 + 8 + 4, 4);
  EXPECT_EQ(tag, 0x02);
  EXPECT_EQ(id, 1000u);
}

TEST_F(Ext4BuilderTest, ImplicitParentsAreRootOwned0755) {
  TarEntry f = File("a/b/c/file", "data");
  f.uid = 1000;
  BuildOk({MakeTar({f})});
  auto tree = Walk();
  for (const char* p : {"/a", "/a/b", "/a/b/c"}) {
    EXPECT_EQ(tree[p].type, 'd') << p;
    EXPECT_EQ(tree[p].perm, 0755u) << p;
    EXPECT_EQ(tree[p].uid, 0u) << p;
  }
  EXPECT_EQ(tree["/a/b/c/file"].uid, 1000u);
}

TEST_F(Ext4BuilderTest, RootEntrySetsRootMetadata) {
  TarEntry root = Dir("./", 0750);
  root.uid = 7;
  BuildOk({MakeTar({root, File("./x", "1")})});
  auto tree = Walk();
  EXPECT_EQ(tree["/"].perm, 0750u);
  EXPECT_EQ(tree["/"].uid, 7u);
  EXPECT_EQ(tree["/x"].sha256, Sha("1"));
}

TEST_F(Ext4BuilderTest, HardlinksShareOneInode) {
  BuildOk({MakeTar({File("bin/busybox", "bb", 0755), Hardlink("bin/sh", "bin/busybox"),
                    Hardlink("bin/ls", "./bin/busybox"), Symlink("s", "bin/sh"),
                    Hardlink("hs", "s")})});
  auto tree = Walk();
  EXPECT_EQ(tree["/bin/busybox"].nlink, 3u);
  EXPECT_EQ(tree["/bin/sh"].ino, tree["/bin/busybox"].ino);
  EXPECT_EQ(tree["/bin/ls"].ino, tree["/bin/busybox"].ino);
  EXPECT_EQ(tree["/bin/ls"].sha256, Sha("bb"));
  // A hardlink to a symlink links the symlink itself.
  EXPECT_EQ(tree["/hs"].type, 'l');
  EXPECT_EQ(tree["/hs"].ino, tree["/s"].ino);
  EXPECT_EQ(tree["/s"].nlink, 2u);
}

struct CompressionCase {
  const char* name;
  Compression compression;
};

class Ext4CompressionTest : public Ext4BuilderTest,
                            public ::testing::WithParamInterface<CompressionCase> {};

TEST_P(Ext4CompressionTest, DetectsCompressionAndHashesTheUncompressedStream) {
  std::vector<TarEntry> entries = {Dir("d"), File("d/a", RandomBytes(300000, 1)),
                                   File("d/b", "bbb"), Symlink("d/l", "a")};
  std::string plain = MakeTar(entries);
  std::string layer = MakeTar(entries, GetParam().compression);
  std::vector<LayerApplyResult> results;
  Status s = Build({layer}, 64 * kMiB, &results);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectClean();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].diff_id, "sha256:" + Sha(plain));
  EXPECT_EQ(results[0].uncompressed_bytes, plain.size());
  EXPECT_EQ(results[0].entries, 4u);
  auto tree = Walk();
  EXPECT_EQ(tree["/d/a"].sha256, Sha(entries[1].data));
  EXPECT_EQ(tree["/d/l"].target, "a");
}

INSTANTIATE_TEST_SUITE_P(All, Ext4CompressionTest,
                         ::testing::Values(CompressionCase{"none", Compression::kNone},
                                           CompressionCase{"gzip", Compression::kGzip},
                                           CompressionCase{"zstd", Compression::kZstd}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST_F(Ext4BuilderTest, DiffIdCoversBytesAfterTheEndMarker) {
  std::string tar = MakeTar({File("f", "x")}) + std::string(8192, '\0');
  std::vector<LayerApplyResult> results;
  ASSERT_TRUE(Build({Compress(tar, Compression::kGzip)}, 64 * kMiB, &results).ok());
  EXPECT_EQ(results[0].diff_id, "sha256:" + Sha(tar));
  EXPECT_EQ(results[0].uncompressed_bytes, tar.size());
}

TEST_F(Ext4BuilderTest, EmptyStreamIsAnEmptyLayer) {
  std::vector<LayerApplyResult> results;
  ASSERT_TRUE(Build({"", Compress(EndOfArchive(), Compression::kGzip)}, 64 * kMiB, &results).ok());
  EXPECT_EQ(results[0].entries, 0u);
  EXPECT_EQ(results[0].diff_id, "sha256:" + Sha(""));
  EXPECT_EQ(results[1].diff_id, "sha256:" + Sha(EndOfArchive()));
  ExpectClean();
}

TEST_F(Ext4BuilderTest, LargeFileIsContiguousAndIntact) {
  std::string big = RandomBytes(10 * kMiB + 123, 7);
  BuildOk({MakeTar({File("big", big)}, Compression::kGzip)});
  auto tree = Walk();
  EXPECT_EQ(tree["/big"].sha256, Sha(big));
  EXPECT_EQ(tree["/big"].size, big.size());
  EXPECT_LE(tree["/big"].extents.size(), 2u);
}

TEST_F(Ext4BuilderTest, ZeroBlocksBecomeHoles) {
  std::string data = std::string(64 * 1024, '\0') + "tail" + std::string(10000, '\0');
  BuildOk({MakeTar({File("z", data)})});
  auto tree = Walk();
  EXPECT_EQ(tree["/z"].size, data.size());
  EXPECT_EQ(tree["/z"].sha256, Sha(data));
  EXPECT_EQ(tree["/z"].blocks, 1u);
  ASSERT_EQ(tree["/z"].extents.size(), 1u);
  EXPECT_EQ(tree["/z"].extents[0].first, 16u);
}

TEST_F(Ext4BuilderTest, SparseFileKeepsItsHoles) {
  std::string layer =
      SparseEntry("sparse", 10 * kMiB,
                  {{0, "head"}, {5 * kMiB + 10, "middle"}, {10 * kMiB - 3, "end"}}) +
      EndOfArchive();
  BuildOk({Compress(layer, Compression::kZstd)});
  auto tree = Walk();
  const Ext4Node& n = tree["/sparse"];
  EXPECT_EQ(n.size, 10 * kMiB);
  EXPECT_EQ(n.blocks, 3u);
  ASSERT_EQ(n.extents.size(), 3u);
  EXPECT_EQ(n.extents[1].first, 5 * kMiB / 4096);
  std::string expected(10 * kMiB, '\0');
  expected.replace(0, 4, "head");
  expected.replace(5 * kMiB + 10, 6, "middle");
  expected.replace(10 * kMiB - 3, 3, "end");
  EXPECT_EQ(n.sha256, Sha(expected));
}

TEST_F(Ext4BuilderTest, FileWithManyExtentsGetsAnExtentTree) {
  std::vector<std::pair<uint64_t, std::string>> segments;
  std::string expected(2000 * 8192, '\0');
  for (uint64_t i = 0; i < 2000; ++i) {
    std::string bytes = base::StrFormat("block %llu", static_cast<unsigned long long>(i));
    segments.emplace_back(i * 8192, bytes);
    expected.replace(i * 8192, bytes.size(), bytes);
  }
  BuildOk({SparseEntry("frag", expected.size(), segments) + EndOfArchive()});
  auto tree = Walk();
  const Ext4Node& n = tree["/frag"];
  EXPECT_EQ(n.extents.size(), 2000u);
  EXPECT_GT(n.blocks, 2000u);  // Data plus extent-tree blocks.
  EXPECT_EQ(n.sha256, Sha(expected));
}

// ---------------------------------------------------------------------------------------
// Layers on layers.

TEST_F(Ext4BuilderTest, LaterLayerReplacesPaths) {
  std::string lower = MakeTar({
      File("f2f", "old", 0600), File("f2d", "file"), Dir("d2f"), File("d2f/a", "a"),
      Dir("d2f/sub"), File("d2f/sub/b", RandomBytes(100000, 3)), Dir("d2d", 0700),
      File("d2d/keep", "k"),
  });
  TarEntry d2d = Dir("d2d", 0751);
  d2d.uid = 5;
  std::string upper = MakeTar({File("f2f", "new", 0644), Dir("f2d", 0711),
                               File("d2f", "now a file"), d2d, File("d2d/added", "n")});
  BuildOk({lower, upper});
  auto tree = Walk();
  EXPECT_EQ(tree["/f2f"].sha256, Sha("new"));
  EXPECT_EQ(tree["/f2f"].perm, 0644u);
  EXPECT_EQ(tree["/f2d"].type, 'd');
  EXPECT_EQ(tree["/f2d"].perm, 0711u);
  EXPECT_EQ(tree["/d2f"].type, 'f');
  EXPECT_EQ(tree["/d2f"].sha256, Sha("now a file"));
  EXPECT_EQ(tree.count("/d2f/a"), 0u);
  EXPECT_EQ(tree.count("/d2f/sub/b"), 0u);
  EXPECT_EQ(tree["/d2d"].perm, 0751u);
  EXPECT_EQ(tree["/d2d"].uid, 5u);
  EXPECT_EQ(tree["/d2d/keep"].sha256, Sha("k"));
  EXPECT_EQ(tree["/d2d/added"].sha256, Sha("n"));
}

TEST_F(Ext4BuilderTest, WhiteoutsRemoveLowerFilesAndSubtrees) {
  std::string lower = MakeTar({File("etc/a", "a"), File("etc/b", "b"), Dir("var/cache/apt"),
                               File("var/cache/apt/pkg.bin", RandomBytes(200000, 9)),
                               File("var/cache/apt/archives/x.deb", "deb")});
  std::string upper = MakeTar({Whiteout("etc", "a"), Whiteout("var/cache", "apt"),
                               Whiteout("", "missing"), File("etc/c", "c")});
  BuildOk({lower, upper});
  auto tree = Walk();
  EXPECT_EQ(UserPaths(tree),
            (std::set<std::string>{"/etc", "/etc/b", "/etc/c", "/var", "/var/cache"}));
}

TEST_F(Ext4BuilderTest, WhiteoutDoesNotRemoveWhatItsOwnLayerAdds) {
  // Both orders: the whiteout before and after the file it names.
  std::string lower = MakeTar({File("x", "lower"), File("y", "lower")});
  std::string upper = MakeTar({Whiteout("", "x"), File("x", "upper"), File("y", "upper"),
                               Whiteout("", "y"), File("z", "z"), Whiteout("", "z")});
  BuildOk({lower, upper});
  auto tree = Walk();
  EXPECT_EQ(tree["/x"].sha256, Sha("upper"));
  EXPECT_EQ(tree["/y"].sha256, Sha("upper"));
  EXPECT_EQ(tree["/z"].sha256, Sha("z"));
  for (const auto& path : UserPaths(tree)) EXPECT_EQ(path.find(".wh."), std::string::npos);
}

TEST_F(Ext4BuilderTest, OpaqueDirectoryKeepsSameLayerChildrenInAnyOrder) {
  std::string lower = MakeTar({File("d/old1", "1"), Dir("d/oldsub"), File("d/oldsub/f", "f"),
                               File("d/sub/lowerfile", "l"), File("e/old", "o")});
  std::string upper = MakeTar({
      File("d/new_before", "nb"), Dir("d"), Opaque("d"), File("d/new_after", "na"),
      // d/sub is not listed: it stays (this layer adds below it) but loses lower content.
      File("d/sub/mine", "m"),
      // Marker first, then the directory entry.
      Opaque("e"), Dir("e"), File("e/new", "n"),
  });
  BuildOk({lower, upper});
  auto tree = Walk();
  EXPECT_EQ(UserPaths(tree),
            (std::set<std::string>{"/d", "/d/new_before", "/d/new_after", "/d/sub", "/d/sub/mine",
                                   "/e", "/e/new"}));
}

TEST_F(Ext4BuilderTest, OpaqueRootKeepsLostAndFound) {
  BuildOk({MakeTar({File("a", "a"), Dir("b")}), MakeTar({Opaque(""), File("c", "c")})});
  auto tree = Walk();
  EXPECT_EQ(UserPaths(tree), (std::set<std::string>{"/c"}));
  EXPECT_EQ(tree["/lost+found"].type, 'd');
}

TEST_F(Ext4BuilderTest, AufsMetadataIsSkipped) {
  BuildOk({MakeTar({File(".wh..wh.plnk/123.456", "x"), File("a/.wh..wh.aufs", ""),
                    File("a/b", "b")})});
  EXPECT_EQ(UserPaths(Walk()), (std::set<std::string>{"/a", "/a/b"}));
}

TEST_F(Ext4BuilderTest, HardlinkCountsSurviveRemovals) {
  std::string l1 = MakeTar({File("a", "shared"), Hardlink("b", "a"), Hardlink("c", "a")});
  std::string l2 = MakeTar({Whiteout("", "a"), File("c", "replaced")});
  BuildOk({l1, l2});
  auto tree = Walk();
  EXPECT_EQ(tree.count("/a"), 0u);
  EXPECT_EQ(tree["/b"].nlink, 1u);
  EXPECT_EQ(tree["/b"].sha256, Sha("shared"));
  EXPECT_EQ(tree["/c"].nlink, 1u);
  EXPECT_NE(tree["/c"].ino, tree["/b"].ino);
}

TEST_F(Ext4BuilderTest, RemovingEverythingFreesEveryBlockAndInode) {
  ASSERT_TRUE(Build({}).ok());
  Result<ext4test::Ext4Usage> empty = ext4test::Ext4UsageOf(image_);
  ASSERT_TRUE(empty.ok());
  std::vector<TarEntry> lots;
  for (int i = 0; i < 300; ++i) {
    std::string dir = base::StrFormat("d%d/sub%d", i % 7, i % 3);
    lots.push_back(File(dir + base::StrFormat("/f%d", i), RandomBytes(5000 + i * 100, i)));
    if (i % 10 == 0) lots.push_back(Hardlink(dir + base::StrFormat("/h%d", i), lots.back().path));
    if (i % 20 == 0) {
      lots.push_back(Symlink(dir + base::StrFormat("/s%d", i), std::string(100, 's')));
    }
  }
  TarEntry xa = File("xattr-block", "x");
  xa.xattrs = {{"user.big", std::string(3000, 'v')}};
  lots.push_back(xa);
  std::vector<std::pair<uint64_t, std::string>> segments;
  for (uint64_t i = 0; i < 50; ++i) segments.emplace_back(i * 65536, "seg");
  std::string frag = SparseEntry("frag", 50 * 65536, segments);
  std::string l1 = MakeTar(lots);
  l1 = l1.substr(0, l1.size() - 1024) + frag + EndOfArchive();
  BuildOk({l1, MakeTar({Opaque("")})});
  Result<ext4test::Ext4Usage> after = ext4test::Ext4UsageOf(image_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->free_blocks, empty->free_blocks);
  EXPECT_EQ(after->free_inodes, empty->free_inodes);
}

// Directories beyond one block are written as htrees; e2fsck checks every hash range.
TEST_F(Ext4BuilderTest, LargeDirectoriesAreIndexed) {
  std::vector<TarEntry> entries = {File("big/target", "t")};
  for (int i = 0; i < 3000; ++i) {
    entries.push_back(File(base::StrFormat("big/file-%05d", i), std::to_string(i)));
  }
  // Two index levels: more than 507 leaves. Hardlinks cost no inodes.
  entries.push_back(File("huge/target", "h"));
  for (int i = 0; i < 60000; ++i) {
    entries.push_back(Hardlink(base::StrFormat("huge/a-rather-long-name-to-fill-leaves-%06d", i),
                               "huge/target"));
  }
  BuildOk({MakeTar(entries, Compression::kGzip)}, 256 * kMiB);
  auto tree = Walk();
  EXPECT_EQ(tree.size(), 2u + 2 + 3001 + 60001);
  EXPECT_EQ(tree["/big/file-02999"].sha256, Sha("2999"));
  EXPECT_EQ(tree["/huge/target"].nlink, 60001u);
  EXPECT_GT(tree["/huge"].size, 507u * 4096);
  // Lookups by name (libext2fs reads the leaves like the kernel's linear fallback).
  Result<std::string> data = ReadExt4File(image_, "/big/file-01234", 0, 10);
  ASSERT_TRUE(data.ok()) << data.error().ToString();
  EXPECT_EQ(*data, "1234");
}

// Builds the image from a directory tree of the host (headers that come with the build
// dependencies) and compares every file, mode and link with the host.
TEST_F(Ext4BuilderTest, HostTreeRoundTrip) {
  namespace fs = std::filesystem;
  const fs::path src = "/usr/include/ext2fs";
  ASSERT_TRUE(fs::is_directory(src));
  std::vector<TarEntry> entries;
  std::map<std::string, std::string> expected;  // Path -> content sha or link target.
  for (const auto& it : fs::recursive_directory_iterator(src)) {
    std::string rel = "include/" + fs::relative(it.path(), src.parent_path()).string();
    if (it.is_symlink()) {
      entries.push_back(Symlink(rel, fs::read_symlink(it.path()).string()));
      expected["/" + rel] = "-> " + entries.back().link;
    } else if (it.is_directory()) {
      entries.push_back(Dir(rel));
    } else if (it.is_regular_file()) {
      Result<std::string> data = sys::ReadFile(it.path().string());
      ASSERT_TRUE(data.ok());
      entries.push_back(File(rel, *data, 0644));
      expected["/" + rel] = Sha(*data);
    }
  }
  ASSERT_GT(expected.size(), 5u);
  BuildOk({MakeTar(entries, Compression::kGzip)});
  auto tree = Walk();
  for (const auto& [path, want] : expected) {
    const Ext4Node& n = tree[path];
    EXPECT_EQ(n.type == 'l' ? "-> " + n.target : n.sha256, want) << path;
  }
}

// ---------------------------------------------------------------------------------------
// A reference model: a flat map of paths with the same OCI rules, applied to generated
// layers; the image must match it entry for entry.

struct ModelNode {
  char type = 'f';
  uint32_t perm = 0644;
  std::string content;  // Files: data; symlinks: target.
  int inode = 0;        // Files that share an inode share this id.
  uint32_t layer = 0;
  uint32_t touched = 0;  // Directories: last layer that added anything below.
};

class Model {
 public:
  std::map<std::string, ModelNode> nodes;  // "a/b" -> node; the root is implicit.

  void BeginLayer() {
    ++layer_;
    whiteouts_.clear();
  }

  // Applies one entry; the generator only produces entries valid in the current state.
  void Apply(const TarEntry& e) {
    std::string path = e.path;
    std::string base = path.substr(path.rfind('/') + 1);
    std::string parent = path.find('/') == std::string::npos ? "" : path.substr(0, path.rfind('/'));
    if (base.rfind(".wh.", 0) == 0) {
      whiteouts_.emplace_back(parent, base == ".wh..wh..opq" ? "" : base.substr(4));
      return;
    }
    EnsureDirs(parent);
    Touch(parent);
    auto it = nodes.find(path);
    if (e.type == 'd' && it != nodes.end() && it->second.type == 'd') {
      it->second.perm = e.perm;
      it->second.layer = layer_;
      it->second.touched = layer_;
      return;
    }
    ModelNode n;
    if (e.type == 'h') n = nodes.at(e.link);
    if (it != nodes.end()) RemoveTree(path);
    if (e.type != 'h') {
      n.type = e.type;
      n.perm = e.perm;
      n.content = e.type == 'l' ? e.link : e.data;
      n.inode = ++next_inode_;
    }
    n.layer = layer_;
    n.touched = layer_;
    nodes[path] = n;
  }

  void EndLayer() {
    for (const auto& [parent, name] : whiteouts_) {
      if (!parent.empty() && (!nodes.count(parent) || nodes[parent].type != 'd')) continue;
      if (name.empty()) {
        Prune(parent);
        continue;
      }
      std::string path = parent.empty() ? name : parent + "/" + name;
      auto it = nodes.find(path);
      if (it == nodes.end() || it->second.layer == layer_) continue;
      if (it->second.type == 'd' && it->second.touched == layer_) {
        Prune(path);
      } else {
        RemoveTree(path);
      }
    }
  }

  bool IsDir(const std::string& path) const {
    if (path.empty()) return true;
    auto it = nodes.find(path);
    return it != nodes.end() && it->second.type == 'd';
  }

 private:
  void EnsureDirs(const std::string& dir) {
    if (dir.empty()) return;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = dir.find('/', pos + 1);
      std::string prefix = dir.substr(0, pos);
      if (!nodes.count(prefix)) {
        ModelNode d;
        d.type = 'd';
        d.perm = 0755;
        d.layer = layer_;
        d.touched = layer_;
        nodes[prefix] = d;
      }
    }
  }
  void Touch(const std::string& dir) {
    std::string d = dir;
    while (!d.empty()) {
      nodes[d].touched = layer_;
      size_t slash = d.rfind('/');
      d = slash == std::string::npos ? "" : d.substr(0, slash);
    }
  }
  void RemoveTree(const std::string& path) {
    nodes.erase(path);
    std::string prefix = path + "/";
    auto it = nodes.lower_bound(prefix);
    while (it != nodes.end() && it->first.rfind(prefix, 0) == 0) it = nodes.erase(it);
  }
  void Prune(const std::string& dir) {
    std::vector<std::string> children;
    std::string prefix = dir.empty() ? "" : dir + "/";
    for (const auto& [path, node] : nodes) {
      if (path.rfind(prefix, 0) == 0 && path.find('/', prefix.size()) == std::string::npos) {
        children.push_back(path);
      }
    }
    for (const std::string& c : children) {
      if (!nodes.count(c)) continue;
      const ModelNode& n = nodes[c];
      if (n.layer == layer_ || (n.type == 'd' && n.touched == layer_)) {
        if (n.type == 'd') Prune(c);
        continue;
      }
      RemoveTree(c);
    }
  }

  uint32_t layer_ = 0;
  int next_inode_ = 0;
  std::vector<std::pair<std::string, std::string>> whiteouts_;
};

// Generates a random but valid layer against the model and applies it to the model.
std::vector<TarEntry> GenerateLayer(Model& model, std::mt19937& rng, int count) {
  static const char* kNames[] = {"a", "b", "c", "dd", "e"};
  std::vector<TarEntry> out;
  model.BeginLayer();
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (int i = 0; i < count; ++i) {
    std::string path;
    int depth = 1 + pick(3);
    bool ok = true;
    for (int d = 0; d < depth; ++d) {
      std::string parent = path;
      if (!model.IsDir(parent) && model.nodes.count(parent)) ok = false;
      path = (path.empty() ? "" : path + "/") + kNames[pick(5)];
    }
    std::string parent = path.find('/') == std::string::npos ? "" : path.substr(0, path.rfind('/'));
    // Never go through a non-directory: that is an error case, tested on its own.
    for (std::string p = parent; ok && !p.empty();) {
      if (model.nodes.count(p) && model.nodes[p].type != 'd') ok = false;
      size_t slash = p.rfind('/');
      p = slash == std::string::npos ? "" : p.substr(0, slash);
    }
    if (!ok) continue;
    TarEntry e;
    int kind = pick(10);
    if (kind < 4) {
      e = File(path, RandomBytes(static_cast<size_t>(pick(3) == 0 ? 20000 : 30), rng()),
               0600 + static_cast<uint32_t>(pick(64)));
    } else if (kind < 6) {
      e = Dir(path, 0700 + static_cast<uint32_t>(pick(64)));
    } else if (kind == 6) {
      e = Symlink(path, "target/" + std::to_string(pick(100)));
    } else if (kind == 7) {
      std::vector<std::string> files;
      for (const auto& [p, n] : model.nodes) {
        if (n.type == 'f' && p != path) files.push_back(p);
      }
      if (files.empty()) continue;
      e = Hardlink(path, files[static_cast<size_t>(pick(static_cast<int>(files.size())))]);
    } else if (kind == 8) {
      std::string base = path.substr(path.rfind('/') + 1);
      e = Whiteout(parent, base);
    } else {
      if (!model.IsDir(parent)) continue;
      e = Opaque(parent);
    }
    model.Apply(e);
    out.push_back(e);
  }
  model.EndLayer();
  return out;
}

class Ext4ModelTest : public Ext4BuilderTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(Ext4ModelTest, RandomLayersMatchTheReferenceModel) {
  std::mt19937 rng(GetParam());
  Model model;
  std::vector<std::string> layers;
  for (int l = 0; l < 5; ++l) {
    layers.push_back(MakeTar(GenerateLayer(model, rng, 40),
                             l % 2 == 0 ? Compression::kGzip : Compression::kNone));
  }
  BuildOk(layers);
  auto tree = Walk();
  std::set<std::string> want;
  for (const auto& [path, node] : model.nodes) want.insert("/" + path);
  ASSERT_EQ(UserPaths(tree), want);
  std::map<int, uint32_t> ino_of;  // Model inode -> image inode.
  std::map<int, uint32_t> names;   // Model inode -> number of paths.
  for (const auto& [path, node] : model.nodes) {
    if (node.type != 'd') ++names[node.inode];
  }
  for (const auto& [path, node] : model.nodes) {
    const Ext4Node& n = tree["/" + path];
    EXPECT_EQ(n.type, node.type) << path;
    EXPECT_EQ(n.perm, node.type == 'l' ? 0777u : node.perm) << path;
    if (node.type == 'f') {
      EXPECT_EQ(n.sha256, Sha(node.content)) << path;
      EXPECT_EQ(n.nlink, names[node.inode]) << path;
    }
    if (node.type == 'l') {
      EXPECT_EQ(n.target, node.content) << path;
    }
    if (node.type != 'd') {
      auto [it, inserted] = ino_of.emplace(node.inode, n.ino);
      EXPECT_EQ(it->second, n.ino) << path << " should share an inode";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, Ext4ModelTest, ::testing::Range(1u, 13u));

// A distro-like scenario: base system, a package install that cleans up after itself, and
// a configuration layer.
TEST_F(Ext4BuilderTest, DistroLikeLayersProduceTheExpectedTree) {
  std::vector<TarEntry> base = {
      Dir("bin"), File("bin/bash", RandomBytes(900000, 11), 0755),
      Hardlink("bin/sh.real", "bin/bash"),
      Symlink("bin/sh", "bash"), Dir("etc"), File("etc/passwd", "root:x:0:0::/root:/bin/bash\n"),
      Dir("var/lib/apt/lists"), File("var/lib/apt/lists/old_Packages", RandomBytes(300000, 12)),
      Dir("var/cache/apt"), File("var/cache/apt/pkgcache.bin", RandomBytes(400000, 13)),
      Dir("dev"), Device("dev/null", 'c', 1, 3), Dir("tmp", 01777),
      Dir("usr/lib/x86_64-linux-gnu"),
      File("usr/lib/x86_64-linux-gnu/libc.so.6", RandomBytes(2000000, 14), 0755),
      Symlink("lib", "usr/lib"),
  };
  std::vector<TarEntry> install = {
      Dir("usr/bin"), File("usr/bin/python3.11", RandomBytes(5000000, 15), 0755),
      Symlink("usr/bin/python3", "python3.11"),
      // Through the lib -> usr/lib symlink: lands in usr/lib.
      File("lib/python3.11/os.py", "import sys\n"),
      Dir("var/lib/apt/lists"), Opaque("var/lib/apt/lists"), File("var/lib/apt/lists/lock", ""),
      Whiteout("var/cache/apt", "pkgcache.bin"),
      File("etc/passwd", "root:x:0:0::/root:/bin/bash\npy:x:1000:1000::/home/py:/bin/sh\n"),
  };
  TarEntry home = Dir("home/py", 0700);
  home.uid = home.gid = 1000;
  std::vector<TarEntry> config = {home, File("etc/hostname", "box\n"), Whiteout("bin", "sh.real")};
  BuildOk({MakeTar(base, Compression::kGzip), MakeTar(install, Compression::kZstd),
           MakeTar(config)});
  auto tree = Walk();
  EXPECT_EQ(UserPaths(tree),
            (std::set<std::string>{
                "/bin", "/bin/bash", "/bin/sh", "/etc", "/etc/passwd", "/etc/hostname", "/var",
                "/var/lib", "/var/lib/apt", "/var/lib/apt/lists", "/var/lib/apt/lists/lock",
                "/var/cache", "/var/cache/apt", "/dev", "/dev/null", "/tmp", "/usr", "/usr/lib",
                "/usr/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib",
                "/usr/bin", "/usr/bin/python3.11", "/usr/bin/python3", "/usr/lib/python3.11",
                "/usr/lib/python3.11/os.py", "/home", "/home/py"}));
  EXPECT_EQ(tree["/bin/bash"].nlink, 1u);
  EXPECT_EQ(tree["/bin/bash"].sha256, Sha(base[1].data));
  EXPECT_EQ(tree["/lib"].type, 'l');
  EXPECT_EQ(tree["/usr/lib/python3.11/os.py"].sha256, Sha("import sys\n"));
  EXPECT_EQ(tree["/home/py"].uid, 1000u);
  EXPECT_EQ(tree["/etc/passwd"].sha256, Sha(install[8].data));
  EXPECT_EQ(tree["/tmp"].perm, 01777u);
}

TEST_F(Ext4BuilderTest, UsedBytesGrowsWithContent) {
  Ext4BuildOptions options;
  options.size_bytes = 64 * kMiB;
  auto b = Ext4Builder::Create(image_, options);
  ASSERT_TRUE(b.ok());
  uint64_t before = (*b)->UsedBytes();
  ASSERT_TRUE(Apply(**b, MakeTar({File("f", RandomBytes(4 * kMiB, 5))})).ok());
  uint64_t after = (*b)->UsedBytes();
  EXPECT_GE(after - before, 4 * kMiB);
  ASSERT_TRUE((*b)->Finish().ok());
  EXPECT_EQ((*b)->UsedBytes(), after);
  EXPECT_TRUE((*b)->Finish().IsFailedPrecondition());
}

}  // namespace
}  // namespace boxlite::image
