// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/helper_options.h"

#include <gtest/gtest.h>

namespace boxlite::net {
namespace {

Result<HelperOptions> Parse(std::vector<std::string> args) { return ParseHelperArgs(args); }

TEST(HelperOptionsTest, ParsesEveryFlag) {
  auto o = Parse({"--fd", "3", "--ready-fd=4", "--publish", "8080:80", "--publish=0:22",
                  "--publish", "0.0.0.0:0:443",
                  "--dns", "10.213.0.2", "--dns=2001:db8::1", "--allow-host-loopback",
                  "--owner-pid", "1234", "--allow-net", "*.example.com:443",
                  "--allow-net=10.0.0.0/8", "--secrets-fd", "7"});
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_EQ(o->qemu_fd, 3);
  EXPECT_EQ(o->ready_fd, 4);
  ASSERT_EQ(o->publish.size(), 3u);
  EXPECT_EQ(o->publish[0].host_port, 8080);
  EXPECT_EQ(o->publish[0].guest_port, 80);
  EXPECT_EQ(o->publish[0].host_ip, "127.0.0.1");
  EXPECT_EQ(o->publish[1].host_port, 0);
  EXPECT_EQ(o->publish[1].guest_port, 22);
  EXPECT_EQ(o->publish[2].host_ip, "0.0.0.0");
  EXPECT_EQ(o->publish[2].guest_port, 443);
  EXPECT_EQ(o->dns_servers, (std::vector<std::string>{"10.213.0.2", "2001:db8::1"}));
  EXPECT_TRUE(o->allow_host_loopback);
  EXPECT_EQ(o->owner_pid, 1234);
  EXPECT_EQ(o->allow_net, (std::vector<std::string>{"*.example.com:443", "10.0.0.0/8"}));
  EXPECT_EQ(o->secrets_fd, 7);
}

TEST(HelperOptionsTest, DefaultsAreIsolated) {
  auto o = Parse({"--fd=5"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->ready_fd, 1);
  EXPECT_FALSE(o->allow_host_loopback);
  EXPECT_TRUE(o->publish.empty());
  EXPECT_EQ(o->owner_pid, 0);
  EXPECT_EQ(o->secrets_fd, -1);
}

TEST(HelperOptionsTest, BadArgumentsAreClearErrors) {
  EXPECT_TRUE(Parse({}).error().IsInvalidArgument());
  EXPECT_NE(Parse({}).error().message().find("--fd is required"), std::string::npos);
  EXPECT_TRUE(Parse({"--fd"}).error().IsInvalidArgument());
  EXPECT_TRUE(Parse({"--fd", "x"}).error().IsInvalidArgument());
  EXPECT_TRUE(Parse({"--fd", "3", "--ready-fd", "3"}).error().IsInvalidArgument());
  EXPECT_TRUE(Parse({"--fd", "3", "--frobnicate"}).error().IsInvalidArgument());
  EXPECT_TRUE(Parse({"--fd", "3", "--owner-pid", "0"}).error().IsInvalidArgument());
  for (const char* bad : {"80", "80:0", "x:80", "70000:80", "80:70000", "1:2:3", ":80", "1.2.3:80:80",
                          "0.0.0.0:1:2:3"}) {
    auto r = Parse({"--fd", "3", "--publish", bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.error().IsInvalidArgument()) << bad;
    EXPECT_NE(r.error().message().find("--publish"), std::string::npos) << bad;
  }
}

TEST(HelperOptionsTest, HelpIsCancelledWithUsage) {
  auto r = Parse({"--help"});
  ASSERT_TRUE(r.error().IsCancelled());
  EXPECT_NE(r.error().message().find("usage: boxlite-net"), std::string::npos);
}

TEST(HelperOptionsTest, ReportLines) {
  EXPECT_EQ(FormatReady({}), "ready\n");
  EXPECT_EQ(FormatReady({{8080, 80}, {41234, 22}}), "ready 8080:80 41234:22\n");
  EXPECT_EQ(FormatError(Status::AlreadyExists("127.0.0.1:80 is in use")),
            "error already_exists 127.0.0.1:80 is in use\n");
  EXPECT_EQ(FormatError(Status::Internal("two\nlines")), "error internal two lines\n");
}

}  // namespace
}  // namespace boxlite::net
