// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/snapshot_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

class SnapshotStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxlite-snapshots-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { (void)sys::RemoveTree(root_); }

  // A snapshot made as box_snapshot.cc makes one: a disk in the temporary directory.
  Result<SnapshotInfo> Make(SnapshotStore& store, const std::string& name, int64_t created,
                            const std::string& disk = "qcow2 bytes") {
    auto tmp = store.Begin(name);
    if (!tmp.ok()) return tmp.error();
    Status s = sys::WriteFileAtomic(sys::JoinPath(*tmp, "disk.qcow2"), disk);
    if (!s.ok()) return s;
    SnapshotInfo info;
    info.id = "0123456789ab";
    info.box_id = "box1";
    info.name = name;
    info.created_unix = created;
    return store.Commit(*tmp, info);
  }
  std::string Dir() { return root_ + "/snapshots"; }

  std::string root_;
};

TEST(SnapshotNameTest, BoxLite09Rules) {
  for (std::string good : {std::string("a"), std::string("before-upgrade"), std::string("with space"),
                           std::string("ünï"), std::string("a.b"), std::string(255, 'x')}) {
    EXPECT_TRUE(CheckSnapshotName(good).ok()) << good;
  }
  for (std::string bad : {std::string(), std::string(256, 'x'), std::string(".hidden"),
                          std::string("."), std::string(".."), std::string("a/b"),
                          std::string("a\\b"), std::string("a\0b", 3)}) {
    Status s = CheckSnapshotName(bad);
    EXPECT_TRUE(s.IsInvalidArgument()) << bad;
    EXPECT_EQ(s.subject(), StatusSubject::kSnapshot);
  }
}

TEST_F(SnapshotStoreTest, CreateListGetRemove) {
  SnapshotStore store(Dir(), "b");
  auto first = Make(store, "first", 200, std::string(10000, 'd'));
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_EQ(first->name, "first");
  EXPECT_EQ(first->box_id, "box1");
  EXPECT_EQ(first->created_unix, 200);
  EXPECT_FALSE(first->memory);
  EXPECT_GE(first->container_disk_bytes, 10000u);  // Allocated bytes of the disk file.
  EXPECT_GE(first->size_bytes, first->container_disk_bytes);
  ASSERT_TRUE(Make(store, "b-older", 100).ok());
  ASSERT_TRUE(Make(store, "a-same-time", 200).ok());
  auto list = store.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  // Oldest first, then by name.
  EXPECT_EQ((*list)[0].name, "b-older");
  EXPECT_EQ((*list)[1].name, "a-same-time");
  EXPECT_EQ((*list)[2].name, "first");

  auto got = store.Get("first");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->id, "0123456789ab");
  EXPECT_FALSE(store.Get("nope")->has_value());
  EXPECT_FALSE(store.Get("../x")->has_value());

  ASSERT_TRUE(store.Remove("first").ok());
  EXPECT_FALSE(sys::Exists(store.PathOf("first")));
  Status again = store.Remove("first");
  EXPECT_TRUE(again.IsNotFound());
  EXPECT_EQ(again.subject(), StatusSubject::kSnapshot);
  EXPECT_TRUE(store.Remove("../snapshots").IsNotFound());
  EXPECT_EQ(store.List()->size(), 2u);
}

TEST_F(SnapshotStoreTest, DuplicateIsAlreadyExistsAndLosesNothing) {
  SnapshotStore store(Dir(), "b");
  ASSERT_TRUE(Make(store, "s", 1, "original").ok());
  auto dup = Make(store, "s", 2, "other");
  ASSERT_FALSE(dup.ok());
  EXPECT_TRUE(dup.error().IsAlreadyExists());
  EXPECT_EQ(dup.error().subject(), StatusSubject::kSnapshot);
  EXPECT_EQ(*sys::ReadFile(store.PathOf("s") + "/disk.qcow2"), "original");
  // A name taken between Begin and Commit: Commit refuses and cleans up.
  auto tmp = store.Begin("raced");
  ASSERT_TRUE(tmp.ok());
  // (Another process's snapshot of that name, which a box lock would have kept out.)
  ASSERT_TRUE(sys::MakeDirs(store.PathOf("raced") + "/x").ok());
  SnapshotInfo info;
  info.name = "raced";
  auto late = store.Commit(*tmp, info);
  EXPECT_TRUE(late.error().IsAlreadyExists());
  EXPECT_FALSE(sys::Exists(*tmp));
}

TEST_F(SnapshotStoreTest, HalfMadeSnapshotsNeverListAndAreSwept) {
  SnapshotStore store(Dir(), "b");
  ASSERT_TRUE(Make(store, "done", 1).ok());
  // A creation that died before its rename, and a directory with a broken info.json.
  auto tmp = store.Begin("crashed");
  ASSERT_TRUE(tmp.ok());
  ASSERT_TRUE(sys::WriteFileAtomic(*tmp + "/disk.qcow2", "x").ok());
  ASSERT_TRUE(sys::MakeDirs(store.PathOf("broken")).ok());
  ASSERT_TRUE(sys::WriteFileAtomic(store.PathOf("broken") + "/info.json", "{not json").ok());
  auto list = store.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "done");
  EXPECT_TRUE(store.Get("broken").error().code() == StatusCode::kCorruption);
  // The next creation sweeps the leftover.
  ASSERT_TRUE(Make(store, "next", 2).ok());
  EXPECT_FALSE(sys::Exists(*tmp));
}

TEST_F(SnapshotStoreTest, MemorySnapshotSizes) {
  SnapshotStore store(Dir(), "b");
  auto tmp = store.Begin("mem");
  ASSERT_TRUE(tmp.ok());
  ASSERT_TRUE(sys::WriteFileAtomic(*tmp + "/disk.qcow2", std::string(4096, 'd')).ok());
  ASSERT_TRUE(sys::WriteFileAtomic(*tmp + "/memory.state", std::string(8192, 's')).ok());
  ASSERT_TRUE(sys::WriteFileAtomic(*tmp + "/memory.ram", std::string(65536, 'r')).ok());
  SnapshotInfo info;
  info.name = "mem";
  info.memory = true;
  auto made = store.Commit(*tmp, info);
  ASSERT_TRUE(made.ok());
  EXPECT_TRUE(made->memory);
  EXPECT_GE(made->memory_bytes, 8192u + 65536u);
  EXPECT_GE(made->size_bytes, made->memory_bytes + made->container_disk_bytes);
}

TEST_F(SnapshotStoreTest, CopyDiskFileKeepsContentAndHoles) {
  std::string src = root_ + "/src";
  auto fd = sys::Open(src, O_RDWR | O_CREAT, 0600);
  ASSERT_TRUE(fd.ok());
  // Data, a 64 MiB hole, data.
  ASSERT_EQ(::pwrite(fd->get(), "head", 4, 0), 4);
  ASSERT_EQ(::pwrite(fd->get(), "tail", 4, 64 << 20), 4);
  ASSERT_TRUE(CopyDiskFile(fd->get(), root_ + "/dst").ok());
  auto copied = sys::ReadFile(root_ + "/dst");
  ASSERT_TRUE(copied.ok());
  ASSERT_EQ(copied->size(), (64u << 20) + 4);
  EXPECT_EQ(copied->substr(0, 4), "head");
  EXPECT_EQ(copied->substr(64 << 20), "tail");
  EXPECT_EQ(copied->find_first_not_of('\0', 4), static_cast<size_t>(64 << 20));
  struct stat st;
  ASSERT_EQ(::stat((root_ + "/dst").c_str(), &st), 0);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 8u << 20);  // The hole stayed one.
  // Never over an existing file.
  EXPECT_FALSE(CopyDiskFile(fd->get(), root_ + "/dst").ok());
  EXPECT_EQ(sys::ReadFile(root_ + "/dst")->size(), (64u << 20) + 4);
}

}  // namespace
}  // namespace boxlite::runtime
