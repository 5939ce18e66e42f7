// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/box_record.h"

#include <stdlib.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace boxlite::runtime {
namespace {

// Names, paths and environment from the command line are bytes: `boxlite run -e
// $'K=\x01\xff' --name $'\xff'` must be recorded and read back exactly (it used to throw
// out of the JSON writer and abort the CLI).
TEST(BoxRecordTest, ByteStringsRoundTrip) {
  char tmpl[] = "/tmp/boxlite-record-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  BoxRecord r;
  r.id = "0123456789abcdef";
  r.name = "box\xff";
  r.options.env = {{"K", "\x01\xff"}, {"caf\xc3\xa9", "\xc0\xaf"}};
  r.options.working_dir = "/w\xfe";
  r.options.user = "\xed\xa0\x80";
  r.options.mounts.push_back({"/host/\xff", "/guest/\xfe", true});
  r.image_config.cmd = {"sh", "-c", "echo \xff"};
  ASSERT_TRUE(SaveRecord(tmpl, r).ok());
  auto back = LoadRecord(tmpl);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->name, r.name);
  EXPECT_EQ(back->options.env, r.options.env);
  EXPECT_EQ(back->options.working_dir, r.options.working_dir);
  EXPECT_EQ(back->options.user, r.options.user);
  ASSERT_EQ(back->options.mounts.size(), 1u);
  EXPECT_EQ(back->options.mounts[0].host_path, "/host/\xff");
  EXPECT_EQ(back->options.mounts[0].guest_path, "/guest/\xfe");
  EXPECT_EQ(back->image_config.cmd, r.image_config.cmd);
  std::filesystem::remove_all(tmpl);
}

// BoxOptions.security, .capabilities and .health_check survive the record: a stopped box
// restarts with them.
TEST(BoxRecordTest, AdvancedOptionsRoundTrip) {
  char tmpl[] = "/tmp/boxlite-record-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  BoxRecord r;
  r.id = "0123456789ab";
  SecurityOptions& s = r.options.security;
  s.jailer_enabled = false;
  s.max_open_files = 1024;
  s.max_file_size = uint64_t{1} << 40;
  s.max_cpu_time = 7;
  s.network_enabled = false;
  s.close_fds = false;
  r.options.capabilities.add = {"NET_ADMIN", "cap_sys_ptrace"};
  r.options.capabilities.drop = {"ALL"};
  r.options.health_check = {true, 5, 2, 4, 0};
  ASSERT_TRUE(SaveRecord(tmpl, r).ok());
  auto back = LoadRecord(tmpl);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  const SecurityOptions& b = back->options.security;
  EXPECT_FALSE(b.jailer_enabled);
  EXPECT_TRUE(b.seccomp_enabled);
  EXPECT_EQ(b.max_open_files, 1024u);
  EXPECT_EQ(b.max_file_size, uint64_t{1} << 40);
  EXPECT_FALSE(b.max_processes.has_value());
  EXPECT_FALSE(b.max_memory.has_value());
  EXPECT_EQ(b.max_cpu_time, 7u);
  EXPECT_FALSE(b.network_enabled);
  EXPECT_FALSE(b.close_fds);
  EXPECT_EQ(back->options.capabilities.add, r.options.capabilities.add);
  EXPECT_EQ(back->options.capabilities.drop, r.options.capabilities.drop);
  const HealthCheckOptions& h = back->options.health_check;
  EXPECT_TRUE(h.enabled);
  EXPECT_EQ(h.interval_s, 5);
  EXPECT_EQ(h.timeout_s, 2);
  EXPECT_EQ(h.retries, 4);
  EXPECT_EQ(h.start_period_s, 0);
  std::filesystem::remove_all(tmpl);
}

// BoxLite 0.9's lifecycle options and the main command's exit code survive the record;
// unset ones stay unset (nullopt is "the image's", not an empty command).
TEST(BoxRecordTest, LifecycleFieldsRoundTrip) {
  char tmpl[] = "/tmp/boxlite-record-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  BoxRecord r;
  r.id = "AbC123xyz789";
  r.options.entrypoint.emplace();
  r.options.cmd.emplace();
  r.options.cmd->assign({"sh", "-c", "exit 3"});
  r.options.auto_delete = 0;
  r.options.auto_remove = false;
  r.options.detach = true;
  r.options.tty = true;
  r.exit_code = 143;
  r.console_offset = 4096;
  ASSERT_TRUE(SaveRecord(tmpl, r).ok());
  auto back = LoadRecord(tmpl);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  ASSERT_TRUE(back->options.entrypoint.has_value());
  EXPECT_TRUE(back->options.entrypoint->empty());
  EXPECT_EQ(back->options.cmd, r.options.cmd);
  EXPECT_EQ(back->options.auto_delete, std::optional<int64_t>(0));
  EXPECT_TRUE(back->options.tty);
  EXPECT_EQ(back->exit_code, std::optional<int>(143));
  EXPECT_EQ(back->console_offset, 4096u);

  BoxRecord plain;
  plain.id = "plain";
  ASSERT_TRUE(SaveRecord(tmpl, plain).ok());
  back = LoadRecord(tmpl);
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->options.entrypoint.has_value());
  EXPECT_FALSE(back->options.cmd.has_value());
  EXPECT_FALSE(back->options.auto_delete.has_value());
  EXPECT_FALSE(back->exit_code.has_value());
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace boxlite::runtime
