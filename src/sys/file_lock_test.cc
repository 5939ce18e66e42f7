// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/file_lock.h"

#include <gtest/gtest.h>

#include "src/sys/fs.h"

namespace boxlite::sys {
namespace {

TEST(FileLockTest, ExclusiveExcludesUntilReleased) {
  auto dir = TempDir::Create(::testing::TempDir(), "lock_test.");
  ASSERT_TRUE(dir.ok());
  std::string path = JoinPath(dir->path(), "lock");
  auto first = FileLock::Acquire(path);
  ASSERT_TRUE(first.ok());
  auto second = FileLock::TryAcquire(path);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.error().IsFailedPrecondition());
  first->Unlock();
  EXPECT_TRUE(FileLock::TryAcquire(path).ok());
}

TEST(FileLockTest, SharedLocksCoexist) {
  auto dir = TempDir::Create(::testing::TempDir(), "lock_test.");
  ASSERT_TRUE(dir.ok());
  std::string path = JoinPath(dir->path(), "lock");
  auto a = FileLock::Acquire(path, FileLock::Mode::kShared);
  auto b = FileLock::TryAcquire(path, FileLock::Mode::kShared);
  EXPECT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(FileLock::TryAcquire(path).ok());
}

}  // namespace
}  // namespace boxlite::sys
