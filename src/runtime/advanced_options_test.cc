// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "boxlite/options.h"
#include "src/runtime/health.h"

namespace boxlite {
namespace {

std::string Error(const BoxOptions& o) {
  Status s = ValidateAdvancedOptions(o);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  return s.message();
}

TEST(AdvancedOptionsTest, DefaultsAreValid) {
  BoxOptions o;
  EXPECT_TRUE(ValidateAdvancedOptions(o).ok());
  EXPECT_TRUE(o.security.jailer_enabled);
  EXPECT_TRUE(o.security.network_enabled);
  EXPECT_TRUE(o.security.close_fds);
  EXPECT_FALSE(o.health_check.enabled);
  EXPECT_EQ(o.health_check.interval_s, 30);
  EXPECT_EQ(o.health_check.timeout_s, 10);
  EXPECT_EQ(o.health_check.retries, 3);
  EXPECT_EQ(o.health_check.start_period_s, 60);
  // The jail flags cannot turn the host jail off, so false is no error.
  o.security.jailer_enabled = o.security.seccomp_enabled = false;
  EXPECT_TRUE(ValidateAdvancedOptions(o).ok());
}

TEST(AdvancedOptionsTest, LimitsNeedARange) {
  BoxOptions o;
  o.security.max_open_files = 0;
  EXPECT_NE(Error(o).find("security.max_open_files must be between 1 and 1048576"), std::string::npos);
  o.security.max_open_files = kMaxOpenFilesLimit + 1;
  EXPECT_NE(Error(o).find("not 1048577"), std::string::npos);
  o.security.max_open_files = kMaxOpenFilesLimit;
  o.security.max_file_size = uint64_t{1} << 63;  // Beyond int64.
  EXPECT_NE(Error(o).find("security.max_file_size"), std::string::npos);
  o.security.max_file_size = 1;
  o.security.max_memory = 0;
  EXPECT_NE(Error(o).find("security.max_memory"), std::string::npos);
  o.security.max_memory = 1 << 30;
  o.security.max_processes = 100;
  o.security.max_cpu_time = 60;
  EXPECT_TRUE(ValidateAdvancedOptions(o).ok());
}

TEST(AdvancedOptionsTest, NoNetworkRefusesPortsAndHost) {
  BoxOptions o;
  o.security.network_enabled = false;
  EXPECT_TRUE(ValidateAdvancedOptions(o).ok());
  o.ports.push_back({8080, 80});
  EXPECT_NE(Error(o).find("published ports need the network"), std::string::npos);
  o.ports.clear();
  o.allow_host = true;
  EXPECT_NE(Error(o).find("allow_host needs the network"), std::string::npos);
}

TEST(AdvancedOptionsTest, CapabilityNamesAreChecked) {
  BoxOptions o;
  o.capabilities.add = {"net_admin", "CAP_SYS_PTRACE", "ALL"};
  o.capabilities.drop = {"all", "chown"};
  EXPECT_TRUE(ValidateAdvancedOptions(o).ok());
  o.capabilities.drop.push_back("CAP_TELEPORT");
  EXPECT_NE(Error(o).find("unknown capability \"CAP_TELEPORT\" in capabilities.drop"),
            std::string::npos);
}

TEST(AdvancedOptionsTest, HealthCheckChecksOnlyWhenEnabled) {
  BoxOptions o;
  o.health_check.interval_s = 0;
  EXPECT_TRUE(ValidateAdvancedOptions(o).ok());
  o.health_check.enabled = true;
  EXPECT_NE(Error(o).find("health_check.interval must be between 1 and 86400 seconds, not 0"),
            std::string::npos);
  o.health_check.interval_s = 1;
  o.health_check.timeout_s = 0;
  EXPECT_NE(Error(o).find("health_check.timeout"), std::string::npos);
  o.health_check.timeout_s = 1;
  o.health_check.start_period_s = -1;
  EXPECT_NE(Error(o).find("health_check.start_period"), std::string::npos);
  o.health_check.start_period_s = 0;
  o.health_check.retries = 0;
  EXPECT_NE(Error(o).find("health_check.retries must be between 1 and 1000"), std::string::npos);
  o.health_check.retries = 1;
  EXPECT_TRUE(ValidateAdvancedOptions(o).ok());
}

TEST(HealthProbeTest, StartingHealthyUnhealthyAndBack) {
  HealthStatus st;
  EXPECT_EQ(st.state, "none");
  st.state = "starting";  // What a box with a health check begins with.
  // Failures in the start period do not count.
  for (int i = 0; i < 5; ++i) runtime::RecordProbe(&st, false, true, 2, 100 + i);
  EXPECT_EQ(st.state, "starting");
  EXPECT_EQ(st.failures, 0);
  EXPECT_EQ(st.last_check_unix, 104);
  runtime::RecordProbe(&st, true, true, 2, 105);
  EXPECT_EQ(st.state, "healthy");
  // One failure of two allowed: still healthy, counted.
  runtime::RecordProbe(&st, false, false, 2, 106);
  EXPECT_EQ(st.state, "healthy");
  EXPECT_EQ(st.failures, 1);
  runtime::RecordProbe(&st, false, false, 2, 107);
  EXPECT_EQ(st.state, "unhealthy");
  EXPECT_EQ(st.failures, 2);
  runtime::RecordProbe(&st, false, false, 2, 108);
  EXPECT_EQ(st.failures, 3);
  runtime::RecordProbe(&st, true, false, 2, 109);
  EXPECT_EQ(st.state, "healthy");
  EXPECT_EQ(st.failures, 0);
  EXPECT_EQ(st.last_check_unix, 109);
}

TEST(HealthProbeTest, NeverAnsweringAfterTheStartPeriodIsUnhealthy) {
  HealthStatus st;
  st.state = "starting";
  runtime::RecordProbe(&st, false, false, 3, 1);
  runtime::RecordProbe(&st, false, false, 3, 2);
  EXPECT_EQ(st.state, "starting");
  runtime::RecordProbe(&st, false, false, 3, 3);
  EXPECT_EQ(st.state, "unhealthy");
}

}  // namespace
}  // namespace boxlite
