// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/cli/flags.h"

#include <gtest/gtest.h>

#include "src/base/macros.h"

namespace boxlite::cli {
namespace {

const std::vector<FlagSpec> kSpecs = {
    {"rm", 0, false, false, "", ""},
    {"interactive", 'i', false, false, "", ""},
    {"tty", 't', false, false, "", ""},
    {"env", 'e', true, true, "", "K=V"},
    {"name", 0, true, false, "", "NAME"},
};

TEST(FlagsTest, DockerStyleRunLine) {
  auto f = ParseFlags({"--rm", "-it", "-e", "A=1", "--env=B=2", "-eC=3", "img", "sh", "-c", "x -e"},
                      kSpecs, true);
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  EXPECT_TRUE(f->Has("rm"));
  EXPECT_TRUE(f->Has("interactive"));
  EXPECT_TRUE(f->Has("tty"));
  EXPECT_EQ(f->All("env"), (std::vector<std::string>{"A=1", "B=2", "C=3"}));
  EXPECT_EQ(f->positional, (std::vector<std::string>{"img", "sh", "-c", "x -e"}));
}

TEST(FlagsTest, DoubleDashEndsFlags) {
  auto f = ParseFlags({"--", "-x"}, kSpecs, false);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->positional, std::vector<std::string>{"-x"});
}

TEST(FlagsTest, Errors) {
  EXPECT_TRUE(ParseFlags({"--nope"}, kSpecs, true).error().IsInvalidArgument());
  EXPECT_TRUE(ParseFlags({"-z"}, kSpecs, true).error().IsInvalidArgument());
  EXPECT_TRUE(ParseFlags({"-e"}, kSpecs, true).error().IsInvalidArgument());
  EXPECT_TRUE(ParseFlags({"--name", "a", "--name", "b"}, kSpecs, true).error().IsInvalidArgument());
  EXPECT_TRUE(ParseFlags({"--rm=yes"}, kSpecs, true).error().IsInvalidArgument());
}

TEST(FlagsTest, SwitchesThatTakeTrueOrFalse) {
  const std::vector<FlagSpec> specs = {{"include-parent", 0, false, false, "", "", true},
                                       {"rm", 0, false, false, "", ""}};
  auto f = ParseFlags({"--include-parent=false"}, specs, false);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->Switch("include-parent"), false);
  EXPECT_FALSE(f->Has("include-parent"));
  f = ParseFlags({"--include-parent"}, specs, false);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->Switch("include-parent"), true);
  f = ParseFlags({"--include-parent=true"}, specs, false);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->Switch("include-parent"), true);
  EXPECT_EQ(ParseFlags({}, specs, false)->Switch("include-parent"), std::nullopt);
  auto bad = ParseFlags({"--include-parent=maybe"}, specs, false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("takes true or false"), std::string::npos);
  EXPECT_FALSE(ParseFlags({"--rm=false"}, specs, false).ok());  // Plain switches take none.
  EXPECT_NE(FormatHelp("cp", "Copy", specs).find("--include-parent[=true|false]"),
            std::string::npos);
}

TEST(FlagsTest, HelpListsFlags) {
  std::string help = FormatHelp("run IMAGE", "Run it", kSpecs);
  EXPECT_NE(help.find("Usage: boxlite run IMAGE"), std::string::npos);
  EXPECT_NE(help.find("-e, --env K=V"), std::string::npos);
}

// BoxLite 0.9's --disk-size is GiB; a unit spells MiB (or GiB) explicitly.
TEST(FlagsTest, DiskSizeIsGibOrHasAUnit) {
  constexpr int64_t kMax = int64_t{16} << 20;
  EXPECT_EQ(*ParseDiskSizeFlag("0", kMax), 0);
  EXPECT_EQ(*ParseDiskSizeFlag("10", kMax), 10240);
  EXPECT_EQ(*ParseDiskSizeFlag("2G", kMax), 2048);
  EXPECT_EQ(*ParseDiskSizeFlag("2GiB", kMax), 2048);
  EXPECT_EQ(*ParseDiskSizeFlag("2g", kMax), 2048);
  EXPECT_EQ(*ParseDiskSizeFlag("512M", kMax), 512);
  EXPECT_EQ(*ParseDiskSizeFlag("512MiB", kMax), 512);
  EXPECT_EQ(*ParseDiskSizeFlag("512mib", kMax), 512);
  EXPECT_EQ(*ParseDiskSizeFlag("16384", kMax), kMax);
  for (const char* bad : {"16385", "16777217M", "", "G", "-1", "1.5", "2 G", "2GB", "2T", "512K",
                          "18446744073709551616", "9007199254740993G", "0x10", " 2"}) {
    auto v = ParseDiskSizeFlag(bad, kMax);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_TRUE(v.error().IsInvalidArgument());
    EXPECT_NE(v.error().message().find("--disk-size must be a whole number of GiB"),
              std::string::npos)
        << v.error().message();
  }
}

TEST(FlagsTest, NumbersAreNeverNarrowed) {
  EXPECT_EQ(*ParseNumberFlag("--cpus", "1", 1, 16), 1);
  EXPECT_EQ(*ParseNumberFlag("--cpus", "16", 1, 16), 16);
  EXPECT_EQ(*ParseNumberFlag("--disk-size", "17592186044416", 0, int64_t{1} << 44, "MiB"),
            int64_t{1} << 44);
  // 2^32 + 1 is 1 once cast to a 32-bit int: it must be out of range, not 1.
  for (const char* bad : {"4294967297", "0", "17", "-1", "-4294967295", "9223372036854775807",
                          "9223372036854775808", "99999999999999999999999", "", " 2", "2 ",
                          "+2", "0x2", "2x", "1.5", "1e3", "two"}) {
    auto v = ParseNumberFlag("--cpus", bad, 1, 16);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_TRUE(v.error().IsInvalidArgument());
    EXPECT_NE(v.error().message().find("--cpus must be a whole number from 1 to 16, not "),
              std::string::npos)
        << v.error().message();
  }
  auto mem = ParseNumberFlag("--memory", "4294967808", 128, 65536, "MiB");
  ASSERT_FALSE(mem.ok());
  EXPECT_EQ(mem.error().message(),
            "--memory must be a whole number from 128 to 65536 MiB, not 4294967808");
}


TEST(FlagsTest, UlimitSetsOneLimit) {
  SecurityOptions s;
  ASSERT_TRUE(ApplyUlimitFlag("nofile=1024", &s).ok());
  ASSERT_TRUE(ApplyUlimitFlag("cpu=30", &s).ok());
  ASSERT_TRUE(ApplyUlimitFlag("as=1073741824", &s).ok());
  ASSERT_TRUE(ApplyUlimitFlag("fsize=4096", &s).ok());
  ASSERT_TRUE(ApplyUlimitFlag("nproc=64", &s).ok());
  EXPECT_EQ(s.max_open_files, 1024u);
  EXPECT_EQ(s.max_cpu_time, 30u);
  EXPECT_EQ(s.max_memory, 1073741824u);
  EXPECT_EQ(s.max_file_size, 4096u);
  EXPECT_EQ(s.max_processes, 64u);
  for (const char* bad : {"nofile", "nofile=", "nofile=-1", "nofile=1:2", "stack=10", "=5"}) {
    SecurityOptions untouched;
    Status st = ApplyUlimitFlag(bad, &untouched);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.message().find("--ulimit must be NAME=N"), std::string::npos) << st.message();
    EXPECT_FALSE(untouched.max_open_files.has_value());
  }
}

// The exec limit flags, parsed as exec's table declares them (src/cli/commands.cc).
Result<ExecOptions> ExecLimits(std::vector<std::string> args) {
  static const std::vector<FlagSpec> kExecLimitSpecs = {
      {"ulimit", 0, true, true, "", "NAME=N"},  {"cgroup-name", 0, true, false, "", "NAME"},
      {"memory", 'm', true, false, "", "MIB"},  {"cpu-quota", 0, true, false, "", "US"},
      {"cpu-period", 0, true, false, "", "US"}, {"pids-limit", 0, true, false, "", "N"},
  };
  args.push_back("box");
  BOXLITE_ASSIGN_OR_RETURN(ParsedFlags flags, ParseFlags(args, kExecLimitSpecs, true));
  ExecOptions options;
  BOXLITE_RETURN_IF_ERROR(ApplyExecLimitFlags(flags, &options));
  return options;
}

TEST(FlagsTest, ExecLimitFlags) {
  auto o = ExecLimits({"--ulimit", "nofile=321", "--ulimit", "as=1048576", "--cgroup-name",
                       "web-1", "-m", "64", "--cpu-quota", "50000", "--cpu-period", "200000",
                       "--pids-limit", "32"});
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_EQ(o->limits.max_open_files, 321u);
  EXPECT_EQ(o->limits.max_memory, 1048576u);
  EXPECT_FALSE(o->limits.max_cpu_time.has_value());
  EXPECT_EQ(o->cgroup.name, "web-1");
  EXPECT_EQ(o->cgroup.memory_max_bytes, uint64_t{64} << 20);
  EXPECT_EQ(o->cgroup.cpu_quota_us, 50000u);
  EXPECT_EQ(o->cgroup.cpu_period_us, 200000u);
  EXPECT_EQ(o->cgroup.pids_max, 32u);
  // None: no limits and no cgroup of the exec's choosing.
  o = ExecLimits({});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->cgroup.name.empty());
  EXPECT_FALSE(o->limits.max_open_files.has_value());
}

TEST(FlagsTest, ExecLimitFlagErrorsNameTheFlag) {
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"--memory", "64"}, "need --cgroup-name"},
      {{"--pids-limit", "5"}, "need --cgroup-name"},
      {{"--cgroup-name", "c", "--memory", "3"}, "--memory must be a whole number from 4"},
      {{"--cgroup-name", "c", "--cpu-quota", "999"},
       "--cpu-quota must be a whole number from 1000"},
      {{"--cgroup-name", "c", "--cpu-period", "1000001"}, "--cpu-period must be a whole number"},
      {{"--cgroup-name", "c", "--cpu-period", "100000"}, "--cpu-period needs --cpu-quota"},
      {{"--cgroup-name", "c", "--pids-limit", "0"}, "--pids-limit must be a whole number from 1"},
      {{"--ulimit", "nofile=0"}, "--ulimit nofile must be from 1 to 1048576"},
      {{"--ulimit", "nofile=1048577"}, "--ulimit nofile must be from 1 to 1048576"},
      {{"--ulimit", "stack=1"}, "--ulimit must be NAME=N"},
  };
  for (const auto& [args, want] : cases) {
    auto o = ExecLimits(args);
    ASSERT_FALSE(o.ok()) << args[0] << " " << args[1];
    EXPECT_TRUE(o.error().IsInvalidArgument());
    EXPECT_NE(o.error().ToString().find(want), std::string::npos) << o.error().ToString();
  }
}

}  // namespace
}  // namespace boxlite::cli
