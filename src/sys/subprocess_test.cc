// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/sys/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <thread>

namespace boxlite::sys {
namespace {

TEST(SubprocessTest, RunCommandCapturesOutput) {
  auto out = RunCommand({"sh", "-c", "echo out; echo err >&2"});
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(*out, "out\nerr\n");
}

TEST(SubprocessTest, RunCommandReportsExitStatusAndOutput) {
  auto out = RunCommand({"sh", "-c", "echo broken >&2; exit 4"});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message().find("exited with status 4"), std::string::npos);
  EXPECT_NE(out.error().message().find("broken"), std::string::npos);
}

TEST(SubprocessTest, MissingProgramIsNotFoundAtSpawn) {
  SpawnOptions options;
  options.argv = {"/nonexistent/program"};
  auto child = Subprocess::Spawn(options);
  ASSERT_FALSE(child.ok());
  EXPECT_TRUE(child.error().IsNotFound()) << child.error().ToString();
}

TEST(SubprocessTest, DestructorKillsRunningChild) {
  pid_t pid;
  {
    SpawnOptions options;
    options.argv = {"sleep", "100"};
    auto child = Subprocess::Spawn(options);
    ASSERT_TRUE(child.ok());
    pid = child->pid();
    EXPECT_TRUE(child->running());
  }
  EXPECT_NE(::kill(pid, 0), 0);  // Reaped: the pid no longer exists.
}

TEST(SubprocessTest, WaitForTimesOutThenSeesSignal) {
  SpawnOptions options;
  options.argv = {"sleep", "100"};
  auto child = Subprocess::Spawn(options);
  ASSERT_TRUE(child.ok());
  auto early = child->WaitFor(std::chrono::milliseconds(10));
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->has_value());
  ASSERT_TRUE(child->Signal(SIGTERM).ok());
  auto status = child->Wait();
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFSIGNALED(*status));
  EXPECT_EQ(DescribeWaitStatus(*status).rfind("killed by signal 15", 0), 0u);
}

TEST(SubprocessTest, ChildOutlivesTheThreadThatSpawnedIt) {
  // PR_SET_PDEATHSIG follows the forking thread; a worker thread ending must not kill
  // a child that should live as long as the process.
  std::optional<Subprocess> child;
  std::thread([&] {
    SpawnOptions options;
    options.argv = {"sleep", "100"};
    auto spawned = Subprocess::Spawn(options);
    ASSERT_TRUE(spawned.ok());
    child.emplace(std::move(spawned).value());
  }).join();
  ASSERT_TRUE(child.has_value());
  auto status = child->WaitFor(std::chrono::milliseconds(200));
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(status->has_value()) << "child died with its spawning thread";
}

}  // namespace
}  // namespace boxlite::sys
