// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The .boxlite archive (src/runtime/box_archive.h) and Runtime::ImportBox on hostile
// archives built here with libarchive (or, where libarchive will not write the lie, a
// raw tar header): each is refused with its own error, and the home keeps nothing of it.
// No VM is booted; qemu-img makes the qcow2 images.
#include "src/runtime/box_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "boxlite/boxlite.h"
#include "src/base/sha256.h"
#include "src/base/strings.h"
#include "src/sys/fs.h"
#include "src/sys/subprocess.h"

namespace boxlite::runtime {
namespace {

struct Entry {
  std::string name;
  std::string data;
  unsigned type = AE_IFREG;
  std::string link;          // A symlink's target (type AE_IFLNK) or a hard link's.
  bool hardlink = false;
};

enum class Filter { kNone, kGzip, kZstd };

std::string Sum(const std::string& bytes) { return "sha256:" + base::Sha256Hex(bytes); }

class BoxArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxlite-archive-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    home_ = dir_ + "/home";
    ASSERT_TRUE(sys::MakeDirs(home_, 0700).ok());
    // A small standalone qcow2 with some data in it.
    disk_path_ = dir_ + "/good.qcow2";
    auto made = sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", disk_path_, "16M"});
    ASSERT_TRUE(made.ok()) << made.error().ToString();
    disk_ = sys::ReadFile(disk_path_).value();
  }
  void TearDown() override {
    rt_.reset();
    (void)sys::RemoveTree(dir_);
  }

  BoxArchiveManifest Manifest(const std::string& disk) {
    BoxArchiveManifest m;
    m.box_name = "exported";
    m.image_reference = "docker.io/library/alpine:latest";
    m.image_digest = "sha256:" + std::string(64, 'a');
    m.image_config.env = {"PATH=/bin"};
    m.image_config.cmd = {"/bin/sh"};
    m.box_options.image = m.image_reference;
    m.box_options.cpus = 2;
    m.box_options.memory_mib = 512;
    m.box_options.env = {{"K", "v"}};
    m.disk_checksum = Sum(disk);
    m.disk_bytes = disk.size();
    m.disk_virtual_bytes = 16 << 20;
    m.exported_at = "2026-01-01T00:00:00Z";
    return m;
  }

  std::string Write(const std::vector<Entry>& entries, Filter filter = Filter::kZstd) {
    std::string path = dir_ + "/a" + std::to_string(counter_++) + ".boxlite";
    struct archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (filter == Filter::kZstd) archive_write_add_filter_zstd(a);
    if (filter == Filter::kGzip) archive_write_add_filter_gzip(a);
    EXPECT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
    for (const auto& e : entries) {
      struct archive_entry* ae = archive_entry_new();
      archive_entry_set_pathname(ae, e.name.c_str());
      if (e.hardlink) {
        archive_entry_set_hardlink(ae, e.link.c_str());
        archive_entry_set_size(ae, 0);
      } else {
        archive_entry_set_filetype(ae, e.type);
        if (e.type == AE_IFLNK) archive_entry_set_symlink(ae, e.link.c_str());
        archive_entry_set_size(ae, e.type == AE_IFREG ? static_cast<la_int64_t>(e.data.size()) : 0);
      }
      archive_entry_set_perm(ae, 0600);
      EXPECT_EQ(archive_write_header(a, ae), ARCHIVE_OK) << archive_error_string(a);
      if (e.type == AE_IFREG && !e.hardlink && !e.data.empty()) {
        archive_write_data(a, e.data.data(), e.data.size());
      }
      archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
    return path;
  }

  std::string Good(Filter filter = Filter::kZstd) {
    return Write({{kArchiveManifestName, ManifestToJson(Manifest(disk_))}, {kArchiveDiskName, disk_}},
                 filter);
  }

  // The archive is refused by ImportBox with an error containing `want`, and the home
  // holds no box and nothing in tmp/ afterwards.
  void ExpectRefused(const std::string& archive, const std::string& want, bool untrusted = false) {
    if (!rt_) {
      RuntimeOptions options;
      options.home_dir = home_;
      auto rt = Runtime::Open(options);
      ASSERT_TRUE(rt.ok()) << rt.error().ToString();
      rt_ = *rt;
    }
    auto imported = rt_->ImportBox(archive, "", untrusted);
    ASSERT_FALSE(imported.ok()) << "imported " << want;
    EXPECT_NE(imported.error().ToString().find(want), std::string::npos)
        << imported.error().ToString();
    EXPECT_EQ(imported.error().ToString().find('\n'), std::string::npos);
    auto tmp = sys::ListDir(home_ + "/tmp");
    EXPECT_TRUE(!tmp.ok() || tmp->empty()) << base::Join(tmp.value(), " ");
    auto boxes = sys::ListDir(home_ + "/boxes");
    EXPECT_TRUE(!boxes.ok() || boxes->empty()) << base::Join(boxes.value(), " ");
    auto list = rt_->List();
    ASSERT_TRUE(list.ok());
    EXPECT_TRUE(list->empty());
  }

  std::string dir_, home_, disk_path_, disk_;
  int counter_ = 0;
  std::shared_ptr<Runtime> rt_;
};

TEST_F(BoxArchiveTest, ManifestRoundTrips) {
  BoxArchiveManifest m = Manifest(disk_);
  auto parsed = ParseManifest(ManifestToJson(m));
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->box_name, "exported");
  EXPECT_EQ(parsed->image_reference, m.image_reference);
  EXPECT_EQ(parsed->image_digest, m.image_digest);
  EXPECT_EQ(parsed->image_config.cmd, m.image_config.cmd);
  EXPECT_EQ(parsed->box_options.cpus, 2);
  EXPECT_EQ(parsed->box_options.memory_mib, 512);
  ASSERT_EQ(parsed->box_options.env.size(), 1u);
  EXPECT_EQ(parsed->box_options.env[0].second, "v");
  EXPECT_EQ(parsed->disk_checksum, m.disk_checksum);
  EXPECT_EQ(parsed->disk_bytes, disk_.size());
  EXPECT_EQ(parsed->disk_virtual_bytes, uint64_t{16} << 20);
}

TEST_F(BoxArchiveTest, WrittenArchiveReadsBackWithItsDisk) {
  std::string path = dir_ + "/out.boxlite";
  ASSERT_TRUE(WriteBoxArchive(path, Manifest(disk_), disk_path_).ok());
  // zstd magic: the archive is compressed.
  std::string head = sys::ReadFile(path).value().substr(0, 4);
  EXPECT_EQ(head, std::string("\x28\xb5\x2f\xfd", 4));
  std::string out = dir_ + "/read";
  ASSERT_TRUE(sys::MakeDirs(out, 0700).ok());
  auto read = ReadBoxArchive(path, out, {});
  ASSERT_TRUE(read.ok()) << read.error().ToString();
  EXPECT_EQ(read->box_name, "exported");
  EXPECT_EQ(sys::ReadFile(out + "/disk.qcow2").value(), disk_);
}

TEST_F(BoxArchiveTest, PlainTarAndGzipAreReadToo) {
  for (Filter f : {Filter::kNone, Filter::kGzip}) {
    std::string out = dir_ + "/read" + std::to_string(static_cast<int>(f));
    ASSERT_TRUE(sys::MakeDirs(out, 0700).ok());
    auto read = ReadBoxArchive(Good(f), out, {});
    ASSERT_TRUE(read.ok()) << read.error().ToString();
  }
}

TEST_F(BoxArchiveTest, ImportMakesAStoppedBoxWithTheArchivesNameAndImage) {
  RuntimeOptions options;
  options.home_dir = home_;
  auto rt = Runtime::Open(options).value();
  auto box = rt->ImportBox(Good(), "", false);
  ASSERT_TRUE(box.ok()) << box.error().ToString();
  auto info = (*box)->Info().value();
  EXPECT_EQ(info.name, "exported");
  EXPECT_EQ(info.state, "stopped");
  EXPECT_EQ(info.image, "docker.io/library/alpine:latest");
  EXPECT_EQ(info.cpus, 2);
  // The disk is the archive's, standalone, in the new box's directory; tmp/ is empty.
  std::string disk = home_ + "/boxes/" + (*box)->id() + "/disk.qcow2";
  EXPECT_EQ(sys::ReadFile(disk).value(), disk_);
  EXPECT_TRUE(sys::ListDir(home_ + "/tmp").value().empty());
  // The name is taken now: a second import of the same archive gets none, or the one asked.
  auto second = rt->ImportBox(Good(), "", false).value();
  EXPECT_NE(second->id(), (*box)->id());
  EXPECT_NE(second->name(), "exported");
  auto named = rt->ImportBox(Good(), "again", false).value();
  EXPECT_EQ(named->name(), "again");
  auto clash = rt->ImportBox(Good(), "again", false);
  ASSERT_FALSE(clash.ok());
  EXPECT_TRUE(clash.error().IsAlreadyExists());
}

TEST_F(BoxArchiveTest, BadChecksumIsRefused) {
  BoxArchiveManifest m = Manifest(disk_);
  m.disk_checksum = Sum("other bytes");
  ExpectRefused(Write({{kArchiveManifestName, ManifestToJson(m)}, {kArchiveDiskName, disk_}}),
                "does not match its checksum");
}

TEST_F(BoxArchiveTest, PathsLeavingTheArchiveAreRefused) {
  std::string manifest = ManifestToJson(Manifest(disk_));
  ExpectRefused(Write({{kArchiveManifestName, manifest}, {"../x", disk_}}),
                "a path leaving the archive \"../x\"");
  ExpectRefused(Write({{"/etc/passwd", "root"}}), "an absolute path \"/etc/passwd\"");
  ExpectRefused(Write({{kArchiveManifestName, manifest}, {"other.txt", "x"}}),
                "an unexpected entry \"other.txt\"");
}

TEST_F(BoxArchiveTest, LinksAndDirectoriesAreRefused) {
  std::string manifest = ManifestToJson(Manifest(disk_));
  Entry symlink{kArchiveDiskName, "", AE_IFLNK, "/etc/shadow"};
  ExpectRefused(Write({{kArchiveManifestName, manifest}, symlink}), "is a link");
  Entry hardlink{kArchiveDiskName, "", AE_IFREG, "/etc/shadow", true};
  ExpectRefused(Write({{kArchiveManifestName, manifest}, hardlink}), "is a link");
  Entry directory{kArchiveDiskName, "", AE_IFDIR};
  ExpectRefused(Write({{kArchiveManifestName, manifest}, directory}), "not a regular file");
}

TEST_F(BoxArchiveTest, EntryNamedTwiceIsRefused) {
  std::string manifest = ManifestToJson(Manifest(disk_));
  ExpectRefused(Write({{kArchiveManifestName, manifest}, {kArchiveManifestName, manifest}}),
                "\"manifest.json\" is in it twice");
}

TEST_F(BoxArchiveTest, TooManyEntriesAreRefused) {
  std::string manifest = ManifestToJson(Manifest(disk_));
  std::vector<Entry> entries = {{kArchiveManifestName, manifest}, {kArchiveDiskName, disk_}};
  for (int i = 0; i < 100; ++i) entries.push_back({kArchiveDiskName, "x"});
  ExpectRefused(Write(entries), "more than 2 entries");
}

TEST_F(BoxArchiveTest, DiskBeforeManifestIsRefused) {
  ExpectRefused(Write({{kArchiveDiskName, disk_}, {kArchiveManifestName, "{}"}}),
                "manifest.json must come before disk.qcow2");
}

// A ustar header that declares `size` bytes, followed by only `data`: the lie libarchive's
// writer will not tell (it pads every entry to its declared size).
std::string LyingTar(const std::string& name, uint64_t size, const std::string& data) {
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), name.size());
  std::memcpy(h.data() + 100, "0000600", 7);
  std::memcpy(h.data() + 108, "0000000", 7);
  std::memcpy(h.data() + 116, "0000000", 7);
  std::string octal = base::StrFormat("%011llo", static_cast<unsigned long long>(size));
  std::memcpy(h.data() + 124, octal.data(), 11);
  std::memcpy(h.data() + 136, "00000000000", 11);
  h[156] = '0';
  std::memcpy(h.data() + 257, "ustar\0" "00", 8);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::string chk = base::StrFormat("%06o", sum);
  std::memcpy(h.data() + 148, chk.data(), 6);
  h[154] = '\0';
  return h + data;
}

TEST_F(BoxArchiveTest, HugeDeclaredSizesAreRefusedBeforeReading) {
  std::string path = dir_ + "/lying-manifest.tar";
  ASSERT_TRUE(sys::WriteFileAtomic(path, LyingTar("manifest.json", (uint64_t{8} << 30) - 1, "{")).ok());
  ExpectRefused(path, "manifest.json is 8589934591 bytes, more than the 1048576 allowed");
  // A manifest that declares a disk over the cap.
  BoxArchiveManifest m = Manifest(disk_);
  m.disk_bytes = uint64_t{1} << 40;
  ExpectRefused(Write({{kArchiveManifestName, ManifestToJson(m)}, {kArchiveDiskName, disk_}}),
                "more than the 68719476736 allowed");
  // A disk entry whose header claims more than the manifest said.
  std::string manifest = ManifestToJson(Manifest(disk_));
  std::string tar_path = dir_ + "/lying-disk.tar";
  std::string first = LyingTar("manifest.json", manifest.size(), manifest);
  first.resize((first.size() + 511) / 512 * 512, '\0');
  ASSERT_TRUE(sys::WriteFileAtomic(tar_path, first + LyingTar("disk.qcow2", uint64_t{1} << 36, "x"))
                  .ok());
  ExpectRefused(tar_path, "not the");
}

TEST_F(BoxArchiveTest, SparseEntriesAreRefused) {
  // A pax sparse entry (GNU.sparse 1.0) claiming a large file.
  std::string path = dir_ + "/sparse.tar";
  std::string sparse_file = dir_ + "/sparse";
  auto fd = sys::Open(sparse_file, O_RDWR | O_CREAT, 0600).value();
  ASSERT_EQ(::ftruncate(fd.get(), 1 << 30), 0);
  ASSERT_EQ(::pwrite(fd.get(), "x", 1, 0), 1);
  auto tarred = sys::RunCommand({"tar", "--sparse", "--format=pax", "-C", dir_, "-cf", path,
                                 "--transform=s,sparse,disk.qcow2,", "sparse"});
  ASSERT_TRUE(tarred.ok()) << tarred.error().ToString();
  std::string manifest_tar = dir_ + "/m.tar";
  BoxArchiveManifest m = Manifest(disk_);
  m.disk_bytes = 1 << 30;
  std::string mtext = ManifestToJson(m);
  std::string first = LyingTar("manifest.json", mtext.size(), mtext);
  first.resize((first.size() + 511) / 512 * 512, '\0');
  std::string sparse_tar = sys::ReadFile(path).value();
  ASSERT_TRUE(sys::WriteFileAtomic(manifest_tar, first + sparse_tar).ok());
  ExpectRefused(manifest_tar, "sparse");
}

TEST_F(BoxArchiveTest, QcowWithABackingFileIsRefused) {
  std::string img = dir_ + "/backed.qcow2";
  ASSERT_TRUE(sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b",
                               "/etc/shadow", img, "16M"})
                  .ok());
  std::string disk = sys::ReadFile(img).value();
  ExpectRefused(
      Write({{kArchiveManifestName, ManifestToJson(Manifest(disk))}, {kArchiveDiskName, disk}}),
      "disk.qcow2 names a backing file");
}

TEST_F(BoxArchiveTest, QcowWithAnExternalDataFileIsRefused) {
  std::string img = dir_ + "/external.qcow2";
  auto made = sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-o",
                               "data_file=" + dir_ + "/data.raw", img, "16M"});
  ASSERT_TRUE(made.ok()) << made.error().ToString();
  std::string disk = sys::ReadFile(img).value();
  ExpectRefused(
      Write({{kArchiveManifestName, ManifestToJson(Manifest(disk))}, {kArchiveDiskName, disk}}),
      "disk.qcow2 uses an external data file");
}

TEST_F(BoxArchiveTest, DiskThatIsNotQcowOrTooLargeIsRefused) {
  std::string junk(4096, 'j');
  ExpectRefused(
      Write({{kArchiveManifestName, ManifestToJson(Manifest(junk))}, {kArchiveDiskName, junk}}),
      "disk.qcow2 is not a qcow2 image");
  std::string img = dir_ + "/huge.qcow2";
  ASSERT_TRUE(sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", img, "32T"}).ok());
  std::string disk = sys::ReadFile(img).value();
  ExpectRefused(
      Write({{kArchiveManifestName, ManifestToJson(Manifest(disk))}, {kArchiveDiskName, disk}}),
      "more than the 17592186044416 allowed");
}

TEST_F(BoxArchiveTest, DiskLargerThanTheHomesFreeSpaceIsRefused) {
  // 15 TiB the guest could fill: more than this machine's temporary file system holds.
  std::string img = dir_ + "/vast.qcow2";
  ASSERT_TRUE(sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", img, "15T"}).ok());
  std::string disk = sys::ReadFile(img).value();
  BoxArchiveManifest m = Manifest(disk);
  m.disk_virtual_bytes = uint64_t{15} << 40;
  ExpectRefused(Write({{kArchiveManifestName, ManifestToJson(m)}, {kArchiveDiskName, disk}}),
                "MiB free in");
}

TEST_F(BoxArchiveTest, CorruptQcowFailsQemuImgCheck) {
  // A valid header whose L1 table points past the end of the file.
  std::string disk = disk_;
  uint64_t l1 = htobe64(uint64_t{1} << 40);
  std::memcpy(disk.data() + 40, &l1, 8);
  ExpectRefused(
      Write({{kArchiveManifestName, ManifestToJson(Manifest(disk))}, {kArchiveDiskName, disk}}),
      "fails `qemu-img check`");
}

TEST_F(BoxArchiveTest, TruncatedZstdStreamIsRefused) {
  std::string path = dir_ + "/full.boxlite";
  // Incompressible bytes after the qcow2 so the stream is long enough to cut.
  std::string disk = disk_;
  for (int i = 0; i < 4096; ++i) disk += base::Sha256Hex(std::to_string(i));
  std::string disk_file = dir_ + "/long.qcow2";
  ASSERT_TRUE(sys::WriteFileAtomic(disk_file, disk).ok());
  ASSERT_TRUE(WriteBoxArchive(path, Manifest(disk), disk_file).ok());
  std::string bytes = sys::ReadFile(path).value();
  std::string cut = dir_ + "/cut.boxlite";
  ASSERT_TRUE(sys::WriteFileAtomic(cut, bytes.substr(0, bytes.size() / 2)).ok());
  ExpectRefused(cut, "damaged or truncated");
}

TEST_F(BoxArchiveTest, BadManifestsAreRefused) {
  ExpectRefused(Write({{kArchiveManifestName, "not json"}}), "manifest.json is not JSON");
  std::string text = ManifestToJson(Manifest(disk_));
  text.replace(text.find("exported"), 8, "expo\xff\xfe");
  ExpectRefused(Write({{kArchiveManifestName, text}}), "not JSON (or not UTF-8)");
  ExpectRefused(Write({{kArchiveManifestName, std::string((1 << 20) + 1, ' ')}}),
                "manifest.json is 1048577 bytes, more than the 1048576 allowed");
  ExpectRefused(Write({{kArchiveManifestName, "{\"version\": 99}"}}), "format version 99");
  ExpectRefused(Write({{kArchiveManifestName, "{\"version\": 1, \"box_options\": {}}"}}),
                "no \"disk\"");
  ExpectRefused(Write({{kArchiveManifestName, ManifestToJson(Manifest(disk_))}}),
                "it has no disk.qcow2");
}

TEST_F(BoxArchiveTest, UntrustedArchivesMayNotReachTheHost) {
  auto with = [&](auto change) {
    BoxArchiveManifest m = Manifest(disk_);
    change(m.box_options);
    return Write({{kArchiveManifestName, ManifestToJson(m)}, {kArchiveDiskName, disk_}});
  };
  ExpectRefused(with([&](BoxOptions& o) { o.mounts.push_back({dir_, "/mnt", false}); }),
                "untrusted box archive asks for host mounts", true);
  ExpectRefused(with([](BoxOptions& o) { o.allow_host = true; }), "allow_host", true);
  ExpectRefused(with([](BoxOptions& o) { o.ports.push_back({8080, 80}); }), "published ports",
                true);
  ExpectRefused(with([](BoxOptions& o) { o.rootfs_path = "/etc"; }), "rootfs_path", true);
  // Options no box may have are refused by the same rules as any box's.
  ExpectRefused(with([](BoxOptions& o) { o.cpus = 100000; }), "cpus must be from");
}

}  // namespace
}  // namespace boxlite::runtime
