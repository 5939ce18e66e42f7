// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include <string>

#include <gtest/gtest.h>

#include "boxlite/options.h"

namespace boxlite {
namespace {

// The options a test starts from: the defaults, which must pass.
BoxOptions Good() { return BoxOptions{}; }

// Each case breaks one option; the error must be of `code` and name the option.
struct BadCase {
  const char* what;
  void (*mutate)(BoxOptions&);
  StatusCode code;
  const char* mention;
};

TEST(BoxOptionsTest, DefaultsAreBoxLiteNines) {
  BoxOptions o;
  EXPECT_EQ(o.image, "alpine:latest");
  EXPECT_EQ(o.cpus, 1);
  EXPECT_EQ(o.memory_mib, 1024);
  EXPECT_TRUE(o.auto_remove);
  EXPECT_FALSE(o.detach);
  EXPECT_FALSE(o.entrypoint.has_value());
  EXPECT_FALSE(o.cmd.has_value());
  EXPECT_FALSE(o.auto_delete.has_value());
  EXPECT_EQ(o.auto_pause, 0u);
  EXPECT_TRUE(o.auto_resume);
  EXPECT_TRUE(ValidateBoxOptions(o).ok()) << ValidateBoxOptions(o).ToString();
}

TEST(BoxOptionsTest, EachBadOptionIsNamed) {
  const BadCase cases[] = {
      {"no image", [](BoxOptions& o) { o.image.clear(); }, StatusCode::kInvalidArgument, "image"},
      {"cpus 0", [](BoxOptions& o) { o.cpus = 0; }, StatusCode::kInvalidArgument, "cpus"},
      {"cpus 17", [](BoxOptions& o) { o.cpus = 17; }, StatusCode::kInvalidArgument, "cpus"},
      {"memory", [](BoxOptions& o) { o.memory_mib = 64; }, StatusCode::kInvalidArgument, "memory"},
      {"disk", [](BoxOptions& o) { o.disk_size_mib = -1; }, StatusCode::kInvalidArgument,
       "disk_size"},
      {"max_clients 0", [](BoxOptions& o) { o.max_clients = 0; }, StatusCode::kInvalidArgument,
       "max_clients must be from 1 to 30"},
      {"max_clients 31", [](BoxOptions& o) { o.max_clients = 31; },
       StatusCode::kInvalidArgument, "max_clients must be from 1 to 30"},
      {"network", [](BoxOptions& o) { o.network = "bridge"; }, StatusCode::kInvalidArgument,
       "network"},
      {"allow_host without nat",
       [](BoxOptions& o) {
         o.network = "none";
         o.allow_host = true;
       },
       StatusCode::kInvalidArgument, "allow_host"},
      {"allow_net pattern", [](BoxOptions& o) { o.allow_net = {"ok.example.com", "bad host"}; },
       StatusCode::kInvalidArgument, "allow_net pattern 'bad host'"},
      {"allow_net without nat",
       [](BoxOptions& o) {
         o.network = "none";
         o.allow_net = {"example.com"};
       },
       StatusCode::kInvalidArgument, "allow_net needs network"},
      {"name", [](BoxOptions& o) { o.name = "-bad"; }, StatusCode::kInvalidArgument, "name"},
      {"env name", [](BoxOptions& o) { o.env = {{"A=B", "x"}}; }, StatusCode::kInvalidArgument,
       "environment"},
      {"mount relative", [](BoxOptions& o) { o.mounts = {{"rel", "/g", false}}; },
       StatusCode::kInvalidArgument, "mount"},
      {"mount missing",
       [](BoxOptions& o) { o.mounts = {{"/nonexistent/boxlite-test", "/g", false}}; },
       StatusCode::kInvalidArgument, "does not exist"},
      {"mount at /", [](BoxOptions& o) { o.mounts = {{"/tmp", "/", false}}; },
       StatusCode::kInvalidArgument, "guest path"},
      {"guest port 0", [](BoxOptions& o) { o.ports = {PortForward{8080, 0}}; },
       StatusCode::kInvalidArgument, "guest port"},
      {"ports without network",
       [](BoxOptions& o) {
         o.network = "none";
         o.ports = {PortForward{0, 80}};
       },
       StatusCode::kInvalidArgument, "ports"},
      {"working_dir", [](BoxOptions& o) { o.working_dir = "rel"; }, StatusCode::kInvalidArgument,
       "working_dir"},
      {"user", [](BoxOptions& o) { o.user = "a:b:c"; }, StatusCode::kInvalidArgument, "user"},
      {"entrypoint program", [](BoxOptions& o) { o.entrypoint.emplace(1, ""); },
       StatusCode::kInvalidArgument, "entrypoint"},
      {"cmd NUL", [](BoxOptions& o) { o.cmd.emplace(1, std::string("a\0b", 3)); },
       StatusCode::kInvalidArgument, "cmd"},
      {"auto_pause", [](BoxOptions& o) { o.auto_pause = 60; }, StatusCode::kNotSupported,
       "AutoPause is only supported by REST runtimes"},
      {"auto_delete", [](BoxOptions& o) { o.auto_delete = -5; }, StatusCode::kInvalidArgument,
       "auto_delete"},
      {"detach removes on stop", [](BoxOptions& o) { o.detach = true; },
       StatusCode::kInvalidArgument, "remove-on-stop is incompatible with detach=true"},
      {"detach with auto_delete",
       [](BoxOptions& o) {
         o.detach = true;
         o.auto_remove = false;
         o.auto_delete = 30;
       },
       StatusCode::kInvalidArgument, "remove-on-stop is incompatible with detach=true"},
  };
  for (const auto& c : cases) {
    BoxOptions o = Good();
    c.mutate(o);
    Status s = ValidateBoxOptions(o);
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s.ToString();
    EXPECT_NE(s.message().find(c.mention), std::string::npos) << c.what << ": " << s.ToString();
  }
}

// auto_delete, when set, decides removal on stop over auto_remove; that is what lets a
// detached box with auto_delete=0 pass while auto_remove keeps its default.
TEST(BoxOptionsTest, AutoDeleteTakesPrecedence) {
  BoxOptions o = Good();
  EXPECT_TRUE(RemovesOnStop(o));
  o.auto_delete = 0;
  EXPECT_FALSE(RemovesOnStop(o));
  o.detach = true;
  EXPECT_TRUE(ValidateBoxOptions(o).ok());
  o.auto_delete = 10;
  o.auto_remove = false;
  EXPECT_TRUE(RemovesOnStop(o));
  BoxOptions kept = Good();
  kept.auto_remove = false;
  kept.detach = true;
  EXPECT_FALSE(RemovesOnStop(kept));
  EXPECT_TRUE(ValidateBoxOptions(kept).ok());
}

TEST(BoxOptionsTest, MainCommandShapes) {
  BoxOptions o = Good();
  o.entrypoint.emplace();  // No ENTRYPOINT: cmd alone is the command.
  o.cmd.emplace();
  o.cmd->assign({"sleep", "1"});
  EXPECT_TRUE(ValidateBoxOptions(o).ok());
  o.cmd->assign({"", "x"});
  EXPECT_FALSE(ValidateBoxOptions(o).ok());
  o.entrypoint->assign({"/bin/sh", "-c"});
  EXPECT_TRUE(ValidateBoxOptions(o).ok());  // "" is then an argument, not the program.
}

}  // namespace
}  // namespace boxlite
