// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Tests of the warm-start template store (templates.h): keys, layout, validation, the
// race of two captures, removal while in use, collection with the image, the LRU bound.
#include "src/runtime/templates.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "src/base/sha256.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

class TemplatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxlite-templates-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    home_ = tmpl;
    rootfs_ = sys::JoinPath(home_, "base.ext4");
    ASSERT_TRUE(sys::WriteFileAtomic(rootfs_, "base").ok());
  }
  void TearDown() override { (void)sys::RemoveTree(home_); }

  TemplateInputs Inputs(int memory_mib = 512) const {
    TemplateInputs in;
    in.rootfs = rootfs_;
    in.rootfs_bytes = 4;
    in.disk_size_mib = 2048;
    in.cpus = 1;
    in.memory_mib = memory_mib;
    in.kernel_sha256 = std::string(64, 'a');
    in.initramfs_sha256 = std::string(64, 'b');
    in.qemu = "/usr/bin/qemu-system-x86_64:1:2";
    in.accel = "tcg";
    in.network = true;
    in.agent_ports = 1;
    return in;
  }

  // Captures and publishes a template of `in` with the files a memory snapshot leaves.
  std::string Make(TemplateStore& store, const TemplateInputs& in) {
    std::string key = TemplateKey(in);
    auto capture = store.BeginCapture(key);
    EXPECT_TRUE(capture.ok() && capture->has_value());
    if (!capture.ok() || !capture->has_value()) return key;
    for (const char* name : {"memory.ram", "memory.state", "disk.qcow2"}) {
      EXPECT_TRUE(sys::WriteFileAtomic(sys::JoinPath((*capture)->dir(), name), name).ok());
    }
    auto committed = store.Commit(std::move(**capture), in);
    EXPECT_TRUE(committed.ok() && *committed);
    return key;
  }

  std::string home_;
  std::string rootfs_;
};

TEST_F(TemplatesTest, KeyChangesWithEveryInput) {
  TemplateInputs base = Inputs();
  std::string key = TemplateKey(base);
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(key, TemplateKey(Inputs()));
  std::vector<void (*)(TemplateInputs&)> changes = {
      [](TemplateInputs& i) { i.rootfs += "x"; },
      [](TemplateInputs& i) { i.rootfs_bytes++; },
      [](TemplateInputs& i) { i.disk_size_mib++; },
      [](TemplateInputs& i) { i.cpus++; },
      [](TemplateInputs& i) { i.memory_mib++; },
      [](TemplateInputs& i) { i.kernel_sha256[0] = 'c'; },
      [](TemplateInputs& i) { i.initramfs_sha256[0] = 'c'; },
      [](TemplateInputs& i) { i.qemu += "x"; },
      [](TemplateInputs& i) { i.accel = "kvm"; },
      [](TemplateInputs& i) { i.tsc_khz = 1; },
      [](TemplateInputs& i) { i.network = false; },
      [](TemplateInputs& i) { i.shares_read_only.push_back(true); },
      [](TemplateInputs& i) { i.agent_ports = 4; },
      [](TemplateInputs& i) { i.kernel_args = "boxlite.volatile_disk=1"; },
      [](TemplateInputs& i) { i.free_page_reporting = !i.free_page_reporting; },
  };
  std::vector<std::string> seen = {key};
  for (auto change : changes) {
    TemplateInputs in = base;
    change(in);
    std::string k = TemplateKey(in);
    EXPECT_EQ(std::count(seen.begin(), seen.end(), k), 0) << "an input left the key unchanged";
    seen.push_back(k);
  }
  // A read-only share and a read-write one are different devices.
  TemplateInputs ro = base, rw = base;
  ro.shares_read_only = {true};
  rw.shares_read_only = {false};
  EXPECT_NE(TemplateKey(ro), TemplateKey(rw));
}

TEST_F(TemplatesTest, CaptureIsPublishedWholeAndFound) {
  TemplateStore store(home_);
  TemplateInputs in = Inputs();
  std::string key = TemplateKey(in);
  auto none = store.Find(key);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  auto capture = store.BeginCapture(key);
  ASSERT_TRUE(capture.ok());
  ASSERT_TRUE(capture->has_value());
  std::string tmp = (*capture)->dir();
  ASSERT_TRUE(sys::WriteFileAtomic(sys::JoinPath(tmp, "memory.ram"), "ram").ok());
  // Not visible until committed.
  EXPECT_FALSE(sys::Exists(store.PathOf(key)));
  auto found_early = store.Find(key);
  ASSERT_TRUE(found_early.ok());
  EXPECT_FALSE(found_early->has_value());
  auto committed = store.Commit(std::move(**capture), in);
  ASSERT_TRUE(committed.ok()) << committed.error().ToString();
  EXPECT_TRUE(*committed);
  EXPECT_FALSE(sys::Exists(tmp));
  EXPECT_TRUE(sys::Exists(sys::JoinPath(store.PathOf(key), "template.json")));
  EXPECT_EQ(store.PathOf(key), sys::JoinPath(sys::JoinPath(home_, "templates"), key));

  auto found = store.Find(key);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->record.key, key);
  EXPECT_EQ((*found)->record.inputs.memory_mib, 512);
  ASSERT_EQ((*found)->record.files.size(), 1u);
  EXPECT_EQ((*found)->record.files[0].first, "memory.ram");
  // A second capture of a published key is not started.
  auto again = store.BeginCapture(key);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
}

TEST_F(TemplatesTest, DroppedCaptureLeavesNothing) {
  TemplateStore store(home_);
  std::string key = TemplateKey(Inputs());
  std::string tmp;
  {
    auto capture = store.BeginCapture(key);
    ASSERT_TRUE(capture.ok() && capture->has_value());
    tmp = (*capture)->dir();
    ASSERT_TRUE(sys::WriteFileAtomic(sys::JoinPath(tmp, "memory.ram"), "ram").ok());
  }
  EXPECT_FALSE(sys::Exists(tmp));
  EXPECT_FALSE(sys::Exists(store.PathOf(key)));
}

TEST_F(TemplatesTest, TwoProcessesRacingOneWinsTheOtherGoesOn) {
  TemplateStore store(home_);
  TemplateInputs in = Inputs();
  std::string key = TemplateKey(in);
  // Process A holds the capture: B cannot start one (it boots without capturing).
  auto a = store.BeginCapture(key);
  ASSERT_TRUE(a.ok() && a->has_value());
  pid_t pid = ::fork();
  if (pid == 0) {
    TemplateStore other(home_);
    auto b = other.BeginCapture(key);
    _exit(b.ok() && !b->has_value() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_TRUE(sys::WriteFileAtomic(sys::JoinPath((*a)->dir(), "memory.ram"), "A").ok());
  ASSERT_TRUE(store.Commit(std::move(**a), in).ok());

  // Another process publishes the key while a capture runs (as one whose capture started
  // before a killed capturer's lock went would): the first rename wins, the later commit
  // is dropped and leaves nothing.
  std::string key2 = TemplateKey(Inputs(768));
  auto c1 = store.BeginCapture(key2);
  ASSERT_TRUE(c1.ok() && c1->has_value());
  std::string tmp1 = (*c1)->dir();
  ASSERT_TRUE(sys::WriteFileAtomic(sys::JoinPath(tmp1, "memory.ram"), "first").ok());
  pid = ::fork();
  if (pid == 0) {
    TemplateStore other(home_);
    std::string tmp2 = tmp1 + "-other";
    if (::mkdir(tmp2.c_str(), 0700) != 0) _exit(2);
    if (!sys::WriteFileAtomic(sys::JoinPath(tmp2, "memory.ram"), "second").ok()) _exit(2);
    if (::rename(tmp2.c_str(), other.PathOf(key2).c_str()) != 0) _exit(3);
    _exit(0);
  }
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto lost = store.Commit(std::move(**c1), Inputs(768));
  ASSERT_TRUE(lost.ok()) << lost.error().ToString();
  EXPECT_FALSE(*lost);
  EXPECT_FALSE(sys::Exists(tmp1));
  auto content = sys::ReadFile(sys::JoinPath(store.PathOf(key2), "memory.ram"));
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "second");
}

TEST_F(TemplatesTest, CaptureOfAKilledProcessIsTakenOver) {
  TemplateStore store(home_);
  std::string key = TemplateKey(Inputs());
  pid_t pid = ::fork();
  if (pid == 0) {
    TemplateStore other(home_);
    auto c = other.BeginCapture(key);
    if (!c.ok() || !c->has_value()) _exit(1);
    if (!sys::WriteFileAtomic(sys::JoinPath((*c)->dir(), "memory.ram"), "half").ok()) _exit(1);
    _exit(0);  // Killed mid-capture: no destructor runs, the lock goes with the process.
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(sys::Exists(sys::JoinPath(store.dir(), ".tmp-" + key)));
  auto c = store.BeginCapture(key);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  ASSERT_TRUE(c->has_value());
  EXPECT_FALSE(sys::Exists(sys::JoinPath((*c)->dir(), "memory.ram")));  // A clean start.
  c->reset();
  auto names = sys::ListDir(store.dir());
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty()) << (*names)[0] << " left behind";
}

TEST_F(TemplatesTest, DamagedTemplateIsRemovedNotUsed) {
  TemplateStore store(home_);
  std::string key = Make(store, Inputs());
  // A file of another size than recorded (a torn copy): not used, and removed.
  ASSERT_TRUE(
      sys::WriteFileAtomic(sys::JoinPath(store.PathOf(key), "memory.ram"), "torn").ok());
  auto found = store.Find(key);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  EXPECT_FALSE(sys::Exists(store.PathOf(key)));

  // A missing file.
  key = Make(store, Inputs());
  ASSERT_EQ(::unlink(sys::JoinPath(store.PathOf(key), "memory.state").c_str()), 0);
  found = store.Find(key);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());

  // A record naming another key.
  key = Make(store, Inputs());
  std::string other = Make(store, Inputs(1024));
  ASSERT_TRUE(sys::WriteFileAtomic(
                  sys::JoinPath(store.PathOf(key), "template.json"),
                  *sys::ReadFile(sys::JoinPath(store.PathOf(other), "template.json")))
                  .ok());
  found = store.Find(key);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  EXPECT_FALSE(sys::Exists(store.PathOf(key)));
}

TEST_F(TemplatesTest, TemplateInUseIsNotRemoved) {
  TemplateStore store(home_);
  std::string key = Make(store, Inputs());
  {
    auto held = store.Find(key);
    ASSERT_TRUE(held.ok() && held->has_value());
    auto removed = store.Remove(key);
    ASSERT_TRUE(removed.ok());
    EXPECT_FALSE(*removed);
    EXPECT_TRUE(sys::Exists(sys::JoinPath(store.PathOf(key), "memory.ram")));
  }
  auto removed = store.Remove(key);
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(sys::Exists(store.PathOf(key)));
  auto names = sys::ListDir(store.dir());
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty()) << (*names)[0] << " left behind";
}

TEST_F(TemplatesTest, CollectedWithTheirImage) {
  TemplateStore store(home_);
  std::string kept = Make(store, Inputs());
  std::string other_base = sys::JoinPath(home_, "other.ext4");
  ASSERT_TRUE(sys::WriteFileAtomic(other_base, "other").ok());
  TemplateInputs in = Inputs();
  in.rootfs = other_base;
  std::string gone = Make(store, in);
  // A capture a killed process left behind.
  std::string stale = sys::JoinPath(store.dir(), ".tmp-" + std::string(64, 'f') + "-1-1");
  ASSERT_EQ(::mkdir(stale.c_str(), 0700), 0);

  ASSERT_EQ(::unlink(other_base.c_str()), 0);  // The image was removed and collected.
  auto n = store.Collect();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_TRUE(sys::Exists(store.PathOf(kept)));
  EXPECT_FALSE(sys::Exists(store.PathOf(gone)));
  EXPECT_FALSE(sys::Exists(stale));
  // `keep` decides too.
  n = store.Collect([](const TemplateRecord&) { return false; });
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_FALSE(sys::Exists(store.PathOf(kept)));
}

TEST_F(TemplatesTest, LeastRecentlyUsedGoBeyondTheBound) {
  TemplateStore store(home_, 2);
  std::string a = Make(store, Inputs(256));
  std::string b = Make(store, Inputs(512));
  // Ages by mtime (one-second resolution is enough: set them apart).
  struct timespec old_times[2] = {{1000, 0}, {1000, 0}};
  struct timespec mid_times[2] = {{2000, 0}, {2000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, sys::JoinPath(store.PathOf(a), "template.json").c_str(),
                        old_times, 0), 0);
  ASSERT_EQ(::utimensat(AT_FDCWD, sys::JoinPath(store.PathOf(b), "template.json").c_str(),
                        mid_times, 0), 0);
  // Using a makes it the most recent: b is then the oldest.
  ASSERT_TRUE(store.Find(a).ok());
  std::string c = Make(store, Inputs(1024));
  EXPECT_TRUE(sys::Exists(store.PathOf(a)));
  EXPECT_FALSE(sys::Exists(store.PathOf(b)));
  EXPECT_TRUE(sys::Exists(store.PathOf(c)));
  auto list = store.List();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
}

TEST_F(TemplatesTest, FileDigestIsCachedByIdentity) {
  std::string file = sys::JoinPath(home_, "vmlinux");
  std::string cache = sys::JoinPath(home_, "digests");
  ASSERT_TRUE(sys::WriteFileAtomic(file, "kernel").ok());
  auto d1 = FileDigest(file, cache);
  ASSERT_TRUE(d1.ok());
  EXPECT_EQ(*d1, base::Sha256Hex("kernel"));
  auto cached = sys::ListDir(cache);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached->size(), 1u);
  // Another file at the path (a new kernel, same size): a new digest.
  ASSERT_TRUE(sys::WriteFileAtomic(file, "kerneL").ok());
  auto d2 = FileDigest(file, cache);
  ASSERT_TRUE(d2.ok());
  EXPECT_EQ(*d2, base::Sha256Hex("kerneL"));
  // Appended to in place: its size and ctime change, so does the digest.
  {
    auto fd = sys::Open(file, O_WRONLY | O_APPEND);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(sys::WriteAll(fd->get(), "x").ok());
  }
  auto d3 = FileDigest(file, cache);
  ASSERT_TRUE(d3.ok());
  EXPECT_EQ(*d3, base::Sha256Hex("kerneLx"));
}

}  // namespace
}  // namespace boxlite::runtime
