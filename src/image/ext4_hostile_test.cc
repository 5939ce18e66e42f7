// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Hostile layers: every case either builds a contained image that e2fsck accepts, or fails
// with a clear Status that names the entry. Nothing here may crash or hang.
#include <gtest/gtest.h>
#include <zstd.h>

#include <string>
#include <vector>

#include "src/base/strings.h"
#include "src/image/ext4_builder.h"
#include "src/image/ext4_test_util.h"

namespace boxlite::image {
namespace {

using namespace ext4test;  // NOLINT(build/namespaces): test helpers.

// One zstd frame with a content checksum, as the zstd CLI writes by default.
std::string ZstdWithChecksum(const std::string& data) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress2(cctx, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(cctx);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

class Ext4HostileTest : public Ext4BuilderTest {
 protected:
  // Builds from `layers` and expects failure with `code` and all `fragments`.
  void ExpectRejected(const std::vector<std::string>& layers, StatusCode code,
                      const std::vector<std::string>& fragments, uint64_t size = 64 * kMiB) {
    Status s = Build(layers, size);
    ExpectError(s, code, fragments);
  }
};

// --- Paths that try to leave the root. -------------------------------------------------

TEST_F(Ext4HostileTest, DotDotTraversalIsRejected) {
  ExpectRejected({MakeTar({File("../evil", "x")})}, StatusCode::kCorruption,
                 {"'../evil'", "escapes the image root"});
}

TEST_F(Ext4HostileTest, NestedDotDotTraversalIsRejected) {
  ExpectRejected({MakeTar({File("a/b/../../../evil", "x")})}, StatusCode::kCorruption,
                 {"escapes the image root"});
}

TEST_F(Ext4HostileTest, DotDotThatStaysInsideIsCleaned) {
  BuildOk({MakeTar({File("a/../b/./c", "x")})});
  EXPECT_EQ(UserPaths(Walk()), (std::set<std::string>{"/b", "/b/c"}));
}

TEST_F(Ext4HostileTest, AbsolutePathsStayInTheImage) {
  BuildOk({MakeTar({File("/etc/passwd", "mine"), File("//abs//x", "y")})});
  auto tree = Walk();
  EXPECT_EQ(tree["/etc/passwd"].sha256, Sha("mine"));
  EXPECT_EQ(tree["/abs/x"].sha256, Sha("y"));
}

TEST_F(Ext4HostileTest, SymlinkToRootThenWriteThroughItStaysInside) {
  BuildOk({MakeTar({Symlink("escape", "/"), File("escape/etc/shadow", "pwned")})});
  auto tree = Walk();
  EXPECT_EQ(tree["/escape"].type, 'l');
  EXPECT_EQ(tree["/etc/shadow"].sha256, Sha("pwned"));
}

TEST_F(Ext4HostileTest, SymlinkWithDotDotsIsClampedAtTheRoot) {
  BuildOk({MakeTar({Dir("a"), Symlink("a/up", "../../../../../../tmp"), File("a/up/x", "x")})});
  auto tree = Walk();
  EXPECT_EQ(tree["/tmp"].type, 'd');
  EXPECT_EQ(tree["/tmp/x"].sha256, Sha("x"));
}

TEST_F(Ext4HostileTest, SymlinkLoopIsRejected) {
  ExpectRejected({MakeTar({Symlink("a", "b"), Symlink("b", "a"), File("a/x", "x")})},
                 StatusCode::kCorruption, {"'a/x'", "too many levels of symbolic links"});
}

TEST_F(Ext4HostileTest, SelfReferencingSymlinkIsRejected) {
  ExpectRejected({MakeTar({Symlink("s", "s/deeper"), File("s/x", "x")})},
                 StatusCode::kCorruption, {"too many levels of symbolic links"});
}

TEST_F(Ext4HostileTest, SymlinkChainLongerThanFortyIsRejected) {
  std::vector<TarEntry> chain = {Dir("d0")};
  for (int i = 1; i <= 41; ++i) {
    chain.push_back(Symlink(base::StrFormat("l%d", i),
                            i == 1 ? "d0" : base::StrFormat("l%d", i - 1)));
  }
  std::vector<TarEntry> ok = chain;
  ok.push_back(File("l40/x", "x"));
  BuildOk({MakeTar(ok)});
  EXPECT_EQ(Walk()["/d0/x"].sha256, Sha("x"));
  chain.push_back(File("l41/x", "x"));
  ExpectRejected({MakeTar(chain)}, StatusCode::kCorruption, {"too many levels"});
}

TEST_F(Ext4HostileTest, HardlinkOutsideTheRootIsRejected) {
  ExpectRejected({MakeTar({Hardlink("h", "../../etc/passwd")})}, StatusCode::kCorruption,
                 {"'h'", "hardlink target", "escapes the image root"});
}

TEST_F(Ext4HostileTest, HardlinkToMissingTargetIsRejected) {
  ExpectRejected({MakeTar({Hardlink("h", "does/not/exist")})}, StatusCode::kCorruption,
                 {"'h'", "'does/not/exist' does not exist"});
}

TEST_F(Ext4HostileTest, HardlinkToDirectoryIsRejected) {
  ExpectRejected({MakeTar({Dir("d"), Hardlink("h", "d")})}, StatusCode::kCorruption,
                 {"hardlink to a directory"});
}

TEST_F(Ext4HostileTest, HardlinkThroughSymlinkResolvesInsideTheImage) {
  // "/etc/shadow" of the host is never looked at: only the image's, which is missing.
  ExpectRejected({MakeTar({Symlink("root", "/"), Hardlink("h", "root/etc/shadow")})},
                 StatusCode::kCorruption, {"does not exist"});
  BuildOk({MakeTar({File("etc/shadow", "image"), Symlink("root", "/"),
                    Hardlink("h", "root/etc/shadow")})});
  auto tree = Walk();
  EXPECT_EQ(tree["/h"].ino, tree["/etc/shadow"].ino);
}

TEST_F(Ext4HostileTest, WhiteoutOfDotDotIsRejected) {
  ExpectRejected({MakeTar({File("a/x", "x")}), MakeTar({File("a/.wh...", "")})},
                 StatusCode::kCorruption, {"'a/.wh...'", "whiteout of an invalid name"});
}

TEST_F(Ext4HostileTest, WhiteoutOfDotIsRejected) {
  ExpectRejected({MakeTar({File("a/x", "x")}), MakeTar({File(".wh..", "")})},
                 StatusCode::kCorruption, {"whiteout of an invalid name"});
}

TEST_F(Ext4HostileTest, WhiteoutPrefixInADirectoryComponentIsRejected) {
  ExpectRejected({MakeTar({File("a/.wh.b/c", "x")})}, StatusCode::kCorruption,
                 {"whiteout prefix in a directory component"});
}

TEST_F(Ext4HostileTest, WhiteoutThroughASymlinkOnlyTouchesTheImage) {
  BuildOk({MakeTar({File("etc/keep", "k"), File("etc/gone", "g"), Symlink("link", "/etc")}),
           MakeTar({File("link/.wh.gone", "")})});
  EXPECT_EQ(UserPaths(Walk()), (std::set<std::string>{"/etc", "/etc/keep", "/link"}));
}

TEST_F(Ext4HostileTest, ParentThatIsAFileIsRejected) {
  ExpectRejected({MakeTar({File("f", "x"), File("f/child", "y")})}, StatusCode::kCorruption,
                 {"'f/child'", "'f' is not a directory"});
}

TEST_F(Ext4HostileTest, SymlinkReplacedByDirectoryIsNotFollowedAnyMore) {
  BuildOk({MakeTar({Dir("etc"), Symlink("l", "/etc")}),
           MakeTar({Dir("l"), File("l/x", "x")})});
  auto tree = Walk();
  EXPECT_EQ(tree["/l"].type, 'd');
  EXPECT_EQ(tree["/l/x"].sha256, Sha("x"));
  EXPECT_EQ(tree.count("/etc/x"), 0u);
}

TEST_F(Ext4HostileTest, RootCannotBeReplacedByAFile) {
  ExpectRejected({MakeTar({File(".", "x")})}, StatusCode::kCorruption,
                 {"cannot replace the image root"});
}

// --- Names and sizes. -------------------------------------------------------------------

TEST_F(Ext4HostileTest, NameOf255BytesWorksAnd256IsRejected) {
  std::string ok(255, 'n');
  BuildOk({MakeTar({File("d/" + ok, "x")})});
  EXPECT_EQ(Walk()["/d/" + ok].sha256, Sha("x"));
  ExpectRejected({MakeTar({File("d/" + std::string(256, 'n'), "x")})}, StatusCode::kCorruption,
                 {"longer than 255 bytes"});
}

TEST_F(Ext4HostileTest, TenThousandNestedDirectories) {
  std::vector<TarEntry> entries;
  std::string path;
  for (int i = 0; i < 10000; ++i) {
    path += (i == 0 ? "" : "/") + std::string("d");
    entries.push_back(Dir(path));
  }
  entries.push_back(File(path + "/leaf", "deep"));
  BuildOk({MakeTar(entries, Compression::kGzip)}, 128 * kMiB);
  auto tree = Walk();
  EXPECT_EQ(tree.size(), 2u + 10001u);
  EXPECT_EQ(tree["/" + path + "/leaf"].sha256, Sha("deep"));
}

TEST_F(Ext4HostileTest, RemovingADeepTreeDoesNotRecurse) {
  std::vector<TarEntry> entries;
  std::string path;
  for (int i = 0; i < 10000; ++i) {
    path += (i == 0 ? "" : "/") + std::string("d");
    entries.push_back(Dir(path));
  }
  BuildOk({MakeTar(entries, Compression::kZstd), MakeTar({Whiteout("", "d")})}, 128 * kMiB);
  EXPECT_TRUE(UserPaths(Walk()).empty());
}

TEST_F(Ext4HostileTest, DuplicateEntriesLastOneWins) {
  BuildOk({MakeTar({File("f", "first"), File("f", "second"), Dir("d", 0700), Dir("d", 0750),
                    File("x", "file"), Dir("x"), File("x/inner", "i"), File("x", "file again"),
                    Symlink("s", "a"), Symlink("s", "b")})});
  auto tree = Walk();
  EXPECT_EQ(tree["/f"].sha256, Sha("second"));
  EXPECT_EQ(tree["/d"].perm, 0750u);
  EXPECT_EQ(tree["/x"].type, 'f');
  EXPECT_EQ(tree["/x"].sha256, Sha("file again"));
  EXPECT_EQ(tree.count("/x/inner"), 0u);
  EXPECT_EQ(tree["/s"].target, "b");
}

TEST_F(Ext4HostileTest, HardlinkToItselfKeepsTheFile) {
  BuildOk({MakeTar({File("a", "data"), Hardlink("a", "a")})});
  auto tree = Walk();
  EXPECT_EQ(tree["/a"].sha256, Sha("data"));
  EXPECT_EQ(tree["/a"].nlink, 1u);
}

TEST_F(Ext4HostileTest, OneTebibyteSparseFileCostsOneBlock) {
  const uint64_t size = 1ull << 40;
  BuildOk({SparseEntry("huge", size, {{size - 1, "!"}}) + EndOfArchive()});
  auto tree = Walk();
  EXPECT_EQ(tree["/huge"].size, size);
  EXPECT_EQ(tree["/huge"].blocks, 1u);
  Result<std::string> last = ReadExt4File(image_, "/huge", size - 1, 1);
  ASSERT_TRUE(last.ok()) << last.error().ToString();
  EXPECT_EQ(*last, "!");
  Result<std::string> hole = ReadExt4File(image_, "/huge", size / 2, 8);
  ASSERT_TRUE(hole.ok());
  EXPECT_EQ(*hole, std::string(8, '\0'));
}

TEST_F(Ext4HostileTest, SparseFileBeyondExt4LimitIsRejected) {
  ExpectRejected({SparseEntry("toobig", 1ull << 50, {{0, "x"}}) + EndOfArchive()},
                 StatusCode::kCorruption, {"'toobig'", "larger than ext4 allows"});
}

TEST_F(Ext4HostileTest, SparseMapGoingBackwardsIsRejected) {
  ExpectRejected(
      {SparseEntry("back", 1 << 20, {{500000, "later"}, {1000, "earlier"}}) + EndOfArchive()},
      StatusCode::kCorruption, {"'back'", "sparse map out of order"});
}

TEST_F(Ext4HostileTest, SymlinkTargetTooLongIsRejected) {
  ExpectRejected({MakeTar({Symlink("s", std::string(4096, 'x'))})}, StatusCode::kCorruption,
                 {"'s'", "symlink target longer than"});
}

TEST_F(Ext4HostileTest, EmptySymlinkTargetIsRejected) {
  ExpectRejected({UstarHeader("s", '2', 0, "") + EndOfArchive()}, StatusCode::kCorruption,
                 {"empty target"});
}

TEST_F(Ext4HostileTest, DeviceNumberOutOfRangeIsRejected) {
  ExpectRejected({MakeTar({Device("dev/x", 'c', 5000, 1)})}, StatusCode::kCorruption,
                 {"'dev/x'", "device number 5000:1 out of range"});
}

TEST_F(Ext4HostileTest, OwnerOutOfRangeIsRejected) {
  std::string tar = PaxHeader({{"uid", "99999999999"}}) + UstarHeader("f", '0', 0) +
                    EndOfArchive();
  ExpectRejected({tar}, StatusCode::kCorruption, {"'f'", "owner 99999999999:0 out of range"});
}

TEST_F(Ext4HostileTest, UnknownXattrNamespacesAreSkipped) {
  TarEntry e = File("f", "x");
  e.xattrs = {{"system.data", "inline?"}, {"weird.ns", "v"}, {"user.ok", "fine"}};
  BuildOk({MakeTar({e})});
  auto xattrs = Walk()["/f"].xattrs;
  EXPECT_EQ(xattrs.size(), 1u);
  EXPECT_EQ(xattrs["user.ok"], "fine");
}

TEST_F(Ext4HostileTest, XattrTooLargeIsRejected) {
  TarEntry e = File("f", "x");
  e.xattrs = {{"user.big", std::string(8000, 'v')}};
  ExpectRejected({MakeTar({e})}, StatusCode::kCorruption, {"'f'", "does not fit"});
}

TEST_F(Ext4HostileTest, ManyXattrsThatOverflowTheBlockAreRejected) {
  TarEntry e = File("f", "x");
  for (int i = 0; i < 5; ++i) {
    e.xattrs.emplace_back("user.a" + std::to_string(i), std::string(1000, 'v'));
  }
  ExpectRejected({MakeTar({e})}, StatusCode::kCorruption, {"'f'", "xattr"});
}

// --- Broken streams. --------------------------------------------------------------------

TEST_F(Ext4HostileTest, CorruptGzipIsRejected) {
  // Random data is stored, not compressed: only the CRC-32 trailer can tell.
  std::string gz = MakeTar({File("f", RandomBytes(200000, 1))}, Compression::kGzip);
  for (size_t i = gz.size() / 2; i < gz.size() / 2 + 64; ++i) gz[i] = static_cast<char>(~gz[i]);
  ExpectRejected({gz}, StatusCode::kCorruption, {"gzip", "incorrect data check"});
}

TEST_F(Ext4HostileTest, GzipWithTrailingGarbageIsRejected) {
  std::string gz = MakeTar({File("f", "x")}, Compression::kGzip) + "garbage";
  ExpectRejected({gz}, StatusCode::kCorruption, {"gzip"});
}

TEST_F(Ext4HostileTest, ConcatenatedGzipMembersAndZeroPaddingAreAccepted) {
  std::string tar = MakeTar({File("f", RandomBytes(100000, 9))});
  std::string half1 = tar.substr(0, 70000);
  std::string half2 = tar.substr(70000);
  std::string gz = Compress(half1, Compression::kGzip) + Compress(half2, Compression::kGzip) +
                   std::string(4096, '\0');
  std::vector<LayerApplyResult> results;
  Status s = Build({gz}, 64 * kMiB, &results);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(results[0].diff_id, "sha256:" + Sha(tar));
}

TEST_F(Ext4HostileTest, TruncatedGzipIsRejected) {
  std::string gz = MakeTar({File("f", RandomBytes(200000, 2))}, Compression::kGzip);
  ExpectRejected({gz.substr(0, gz.size() / 2)}, StatusCode::kCorruption, {});
}

TEST_F(Ext4HostileTest, CorruptZstdIsRejected) {
  std::string zst = ZstdWithChecksum(MakeTar({File("f", RandomBytes(200000, 3))}));
  for (size_t i = zst.size() / 2; i < zst.size() / 2 + 64; ++i) zst[i] = static_cast<char>(~zst[i]);
  ExpectRejected({zst}, StatusCode::kCorruption, {"zstd"});
}

TEST_F(Ext4HostileTest, TruncatedZstdIsRejected) {
  std::string zst = ZstdWithChecksum(MakeTar({File("f", RandomBytes(200000, 3))}));
  ExpectRejected({zst.substr(0, zst.size() - 100)}, StatusCode::kCorruption, {"zstd"});
}

TEST_F(Ext4HostileTest, TruncatedTarDataIsRejected) {
  std::string tar = MakeTar({File("a", "ok"), File("b", RandomBytes(100000, 4))});
  ExpectRejected({tar.substr(0, tar.size() - 60000)}, StatusCode::kCorruption,
                 {"'b'", "Truncated"});
}

TEST_F(Ext4HostileTest, TruncatedHeaderIsRejected) {
  std::string tar = UstarHeader("a", '0', 0) + UstarHeader("b", '0', 0).substr(0, 300);
  ExpectRejected({tar}, StatusCode::kCorruption, {});
}

TEST_F(Ext4HostileTest, BadHeaderChecksumIsRejected) {
  std::string h = UstarHeader("a", '0', 0);
  h[0] = 'b';  // The checksum no longer matches.
  ExpectRejected({UstarHeader("ok", '0', 0) + h + EndOfArchive()}, StatusCode::kCorruption,
                 {"after entry 'ok'"});
}

TEST_F(Ext4HostileTest, GarbageIsRejected) {
  ExpectRejected({RandomBytes(100000, 5)}, StatusCode::kCorruption, {});
}

TEST_F(Ext4HostileTest, NestedCompressionIsNotUnpacked) {
  std::string twice = Compress(MakeTar({File("f", "x")}, Compression::kGzip), Compression::kGzip);
  ExpectRejected({twice}, StatusCode::kCorruption, {});
}

TEST_F(Ext4HostileTest, DecompressionBombStopsAtTheBudget) {
  // One gzip member of a 12 MiB all-zero file (it becomes a hole: no blocks), repeated:
  // concatenated members are one stream of the same file again and again, endlessly
  // more bytes than the image holds.
  std::string member = Compress(UstarHeader("zeros", '0', 12 * kMiB) +
                                    std::string(12 * kMiB, '\0'),
                                Compression::kGzip);
  std::string bomb;
  for (int i = 0; i < 40; ++i) bomb += member;
  Ext4BuildOptions options;
  options.size_bytes = 64 * kMiB;
  options.max_layer_stream_bytes = 100 * kMiB;
  auto b = Ext4Builder::Create(image_, options);
  ASSERT_TRUE(b.ok());
  Result<LayerApplyResult> r = Apply(**b, bomb);
  ASSERT_FALSE(r.ok());
  ExpectError(r.error(), StatusCode::kResourceExhausted, {"decompression bomb"});
}

TEST_F(Ext4HostileTest, ZeroFilledFileLargerThanTheImageIsRefusedBeforeInflating) {
  // The header promises 8 GiB in a 16 MiB image: refused at the header, not after
  // inflating 8 GiB of zeros.
  std::string layer = Compress(UstarHeader("huge", '0', 8ull << 30) + std::string(kMiB, '\0'),
                               Compression::kGzip);
  ExpectRejected({layer}, StatusCode::kResourceExhausted, {"'huge'", "does not fit"}, 16 * kMiB);
}

// --- Exhaustion. ------------------------------------------------------------------------

TEST_F(Ext4HostileTest, TarBombOfFilesRunsOutOfInodesCleanly) {
  std::vector<TarEntry> bomb;
  for (int i = 0; i < 6000; ++i) bomb.push_back(File(base::StrFormat("bomb/f%d", i), ""));
  ExpectRejected({MakeTar(bomb, Compression::kGzip)}, StatusCode::kResourceExhausted,
                 {"inode", "full"}, 16 * kMiB);
}

TEST_F(Ext4HostileTest, DataLargerThanTheFileSystemRunsOutOfBlocksCleanly) {
  ExpectRejected({MakeTar({File("big", RandomBytes(40 * kMiB, 6))}, Compression::kZstd)},
                 StatusCode::kResourceExhausted, {"'big'", "full"}, 32 * kMiB);
}

TEST_F(Ext4HostileTest, ManyMediumFilesFillTheFileSystemCleanly) {
  std::vector<TarEntry> files;
  for (int i = 0; i < 60; ++i) {
    files.push_back(File(base::StrFormat("f%d", i), RandomBytes(512 * 1024, 100 + i)));
  }
  ExpectRejected({MakeTar(files)}, StatusCode::kResourceExhausted, {"full"}, 16 * kMiB);
}

TEST_F(Ext4HostileTest, BuilderRefusesWorkAfterAnError) {
  Ext4BuildOptions options;
  options.size_bytes = 64 * kMiB;
  auto b = Ext4Builder::Create(image_, options);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(Apply(**b, MakeTar({File("../x", "")})).ok());
  Result<LayerApplyResult> again = Apply(**b, MakeTar({File("y", "")}));
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(again.error().IsFailedPrecondition());
  EXPECT_TRUE((*b)->Finish().IsFailedPrecondition());
}

TEST_F(Ext4HostileTest, LayerFromAPipeThatEndsEarlyFailsWithoutHanging) {
  Ext4BuildOptions options;
  options.size_bytes = 64 * kMiB;
  auto b = Ext4Builder::Create(image_, options);
  ASSERT_TRUE(b.ok());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string tar = MakeTar({File("f", RandomBytes(50000, 8))}, Compression::kGzip);
  std::string half = tar.substr(0, tar.size() / 2);
  ASSERT_TRUE(sys::WriteAll(fds[1], half).ok());
  close(fds[1]);
  Result<LayerApplyResult> r = (*b)->ApplyLayer(fds[0]);
  close(fds[0]);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().IsCorruption()) << r.error().ToString();
}

}  // namespace
}  // namespace boxlite::image
