// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The string forms shared by the CLI and the SDK (ParsePortSpec, ParseEnvSpec in
// include/boxlite/options.h).
#include <stdlib.h>

#include <gtest/gtest.h>

#include "boxlite/options.h"

namespace boxlite {
namespace {

TEST(PortSpecTest, Forms) {
  auto p = ParsePortSpec("8080:80");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_EQ(p->host_port, 8080);
  EXPECT_EQ(p->guest_port, 80);
  EXPECT_EQ(p->host_ip, "127.0.0.1");
  EXPECT_EQ(p->protocol, "tcp");

  p = ParsePortSpec("80");  // A bare guest port: an automatic host port.
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host_port, 0);
  EXPECT_EQ(p->guest_port, 80);

  p = ParsePortSpec("9000:443/tcp");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host_port, 9000);
  EXPECT_EQ(p->guest_port, 443);

  p = ParsePortSpec("127.0.0.1:5000:5001");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host_ip, "127.0.0.1");
  EXPECT_EQ(p->host_port, 5000);
  EXPECT_EQ(p->guest_port, 5001);

  p = ParsePortSpec("0.0.0.0:8080:80");  // BoxLite 0.9's default address, asked for.
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host_ip, "0.0.0.0");
  EXPECT_EQ(p->host_port, 8080);

  p = ParsePortSpec("localhost::22");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host_ip, "127.0.0.1");
  EXPECT_EQ(p->host_port, 0);
  EXPECT_EQ(p->guest_port, 22);

  p = ParsePortSpec("0:65535");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host_port, 0);
  EXPECT_EQ(p->guest_port, 65535);
}

TEST(PortSpecTest, BadSpecsSayWhy) {
  struct Case {
    const char* spec;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{
           {"80/udp", "only TCP ports can be published"},
           {"8080:80/udp", "only TCP ports can be published"},
           {"80/sctp", "protocol must be tcp"},
           {"0", "guest port must be a number from 1 to 65535"},
           {"8080:0", "guest port"},
           {"65536", "guest port"},
           {"70000:80", "host port must be a number from 0 to 65535"},
           {"-1:80", "host port"},
           {"x:80", "host port"},
           {"", "must be [HOST_IP:][HOST_PORT:]GUEST_PORT[/tcp]"},
           {"1:2:3:4", "must be [HOST_IP:]"},
           {"300.0.0.1:80:80", "is not an IPv4 address"},
           {"nohost:80:80", "is not an IPv4 address"},
           {"80:", "guest port"},
           {" 80", "guest port"},
       }) {
    auto p = ParsePortSpec(c.spec);
    ASSERT_FALSE(p.ok()) << c.spec;
    EXPECT_TRUE(p.error().IsInvalidArgument()) << c.spec;
    EXPECT_NE(p.error().message().find(c.says), std::string::npos)
        << c.spec << ": " << p.error().message();
    EXPECT_EQ(p.error().message().find('\n'), std::string::npos);
  }
}

TEST(EnvSpecTest, KeyValueAndBareNames) {
  auto kv = ParseEnvSpec("A=1");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->first, "A");
  EXPECT_EQ(kv->second, "1");
  kv = ParseEnvSpec("A=b=c");  // Only the first '=' splits.
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->second, "b=c");
  kv = ParseEnvSpec("EMPTY=");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->second, "");

  ASSERT_EQ(::setenv("BOXLITE_SPEC_TEST", "from host", 1), 0);
  kv = ParseEnvSpec("BOXLITE_SPEC_TEST");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->first, "BOXLITE_SPEC_TEST");
  EXPECT_EQ(kv->second, "from host");
  ASSERT_EQ(::unsetenv("BOXLITE_SPEC_TEST"), 0);
  kv = ParseEnvSpec("BOXLITE_SPEC_TEST");  // Unset on the host: an empty value.
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->second, "");

  for (const char* bad : {"", "=x", "="}) {
    auto r = ParseEnvSpec(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.error().IsInvalidArgument());
    EXPECT_NE(r.error().message().find("has no name"), std::string::npos);
  }
}

TEST(ContainerMountSpec, SourceUpToTheFirstColonAndAMode) {
  auto m = ParseContainerMount("/var/lib/pod/c/0:/data");
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->source, "/var/lib/pod/c/0");
  EXPECT_EQ(m->destination, "/data");
  EXPECT_FALSE(m->read_only);
  m = ParseContainerMount("/s:/etc/a:b:ro");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->destination, "/etc/a:b");
  EXPECT_TRUE(m->read_only);
  m = ParseContainerMount("/s:/d:rw");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->destination, "/d");
  EXPECT_FALSE(m->read_only);
  for (const char* bad : {"/s", "s:/d", "/s:d", ":/d", "/s:", "/s:ro", ""}) {
    auto r = ParseContainerMount(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace boxlite
