// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/volumes.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "boxlite/config.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

class VolumeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxlite-volumes-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    home_ = tmpl;
  }
  void TearDown() override { (void)sys::RemoveTree(home_); }
  std::string home_;
};

TEST(VolumeIdTest, TwelveBase62AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string id = NewVolumeId();
    EXPECT_TRUE(LooksLikeVolumeId(id)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST_F(VolumeStoreTest, CreateGetListRemove) {
  VolumeStore store(home_);
  auto a = store.Create();
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(a->path, home_ + "/volumes/" + a->id);
  EXPECT_TRUE(sys::IsDirectory(a->path));
  EXPECT_GT(a->created_unix, 0);
  if (::geteuid() != 0) {
    struct stat st;
    ASSERT_EQ(::stat(a->path.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, ::geteuid());
  }
  std::ofstream(a->path + "/f") << std::string(10000, 'x');
  auto got = store.Get(a->id);
  ASSERT_TRUE(got.ok());
  EXPECT_GE(got->size_bytes, 10000u);
  auto b = store.Create("box123");
  ASSERT_TRUE(b.ok());
  auto all = store.List();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  EXPECT_TRUE(store.Remove(a->id).ok());
  EXPECT_FALSE(sys::Exists(a->path));
  EXPECT_TRUE(store.Get(a->id).error().IsNotFound());
  EXPECT_TRUE(store.Remove(a->id).IsNotFound());
  EXPECT_TRUE(store.Get("../../etc").error().IsNotFound());
  EXPECT_TRUE(store.Remove("../../etc").IsNotFound());
}

TEST_F(VolumeStoreTest, AnonymousVolumesGoWithTheirBox) {
  VolumeStore store(home_);
  auto named = store.Create();
  auto mine = store.Create("boxA");
  auto other = store.Create("boxB");
  ASSERT_TRUE(named.ok() && mine.ok() && other.ok());
  store.RemoveAnonymousOf("boxA");
  EXPECT_TRUE(store.Get(named->id).ok());
  EXPECT_TRUE(store.Get(mine->id).error().IsNotFound());
  EXPECT_FALSE(sys::Exists(mine->path));
  EXPECT_TRUE(store.Get(other->id).ok());
  store.RemoveAnonymousOf("");
  EXPECT_TRUE(store.Get(named->id).ok());
}

TEST_F(VolumeStoreTest, AnonymousVolumesOfADeadProcessAreSweptByList) {
  VolumeStore store(home_);
  auto mine = store.Create("liveBox");       // This process is alive: kept.
  auto orphan = store.Create("deadBox");     // Rewritten below to a dead process.
  auto persistent = store.Create("diskBox");  // Its box has a record on disk: kept.
  auto named = store.Create();
  ASSERT_TRUE(mine.ok() && orphan.ok() && persistent.ok() && named.ok());
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  for (const auto* v : {&*orphan, &*persistent}) {
    std::string path = home_ + "/volumes/" + v->id + ".json";
    std::string box = v == &*orphan ? "deadBox" : "diskBox";
    std::ofstream(path) << "{\"id\":\"" << v->id << "\",\"created_unix\":1,\"box\":\"" << box
                        << "\",\"pid\":" << child << ",\"pid_start_time\":12345}";
  }
  ASSERT_TRUE(sys::MakeDirs(home_ + "/boxes/diskBox").ok());
  auto all = store.List();
  ASSERT_TRUE(all.ok());
  std::set<std::string> ids;
  for (const auto& v : *all) ids.insert(v.id);
  EXPECT_EQ(ids, (std::set<std::string>{mine->id, persistent->id, named->id}));
  EXPECT_FALSE(sys::Exists(orphan->path));
}

}  // namespace
}  // namespace boxlite::runtime
