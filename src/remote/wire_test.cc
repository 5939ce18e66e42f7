// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/remote/wire.h"

#include <gtest/gtest.h>

namespace boxlite::remote {
namespace {

using nlohmann::json;

std::string Envelope(const std::string& code, const std::string& message) {
  return json{{"error", {{"message", message}, {"type", "X"}, {"code", code}}}}.dump();
}

TEST(WireTest, ErrorEnvelopeCodesMapToStatusCodes) {
  struct Case {
    int http;
    const char* code;
    StatusCode want;
  } cases[] = {
      {400, "invalid_argument", StatusCode::kInvalidArgument},
      {400, "unsupported", StatusCode::kNotSupported},
      {404, "not_found", StatusCode::kNotFound},
      {410, "session_reaped", StatusCode::kNotFound},
      {409, "already_exists", StatusCode::kAlreadyExists},
      {409, "invalid_state", StatusCode::kFailedPrecondition},
      {409, "stopped", StatusCode::kFailedPrecondition},
      {422, "image_pull_failed", StatusCode::kUnavailable},
      {429, "resource_exhausted", StatusCode::kResourceExhausted},
      {503, "engine_unavailable", StatusCode::kUnavailable},
      {500, "storage_error", StatusCode::kIoError},
      {504, "timeout", StatusCode::kDeadlineExceeded},
      {401, "unauthenticated", StatusCode::kPermissionDenied},
      // Our own code names pass through (a BoxLite server says them).
      {409, "failed_precondition", StatusCode::kFailedPrecondition},
      {400, "not_supported", StatusCode::kNotSupported},
  };
  for (const auto& c : cases) {
    Status s = StatusFromResponse(c.http, Envelope(c.code, "it failed"), "do it");
    EXPECT_EQ(s.code(), c.want) << c.code << " " << s.ToString();
    EXPECT_NE(s.message().find("do it: "), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("it failed"), std::string::npos) << s.ToString();
  }
  EXPECT_EQ(StatusFromResponse(422, Envelope("image_pull_failed", "x"), "pull").subject(),
            StatusSubject::kImage);
  EXPECT_TRUE(StatusFromResponse(400, Envelope("unsupported", "ports"), "create")
                  .message()
                  .find("unsupported: ports") != std::string::npos);
}

TEST(WireTest, WithoutACodeTheStatusDecides) {
  Status auth = StatusFromResponse(401, "", "list boxes");
  EXPECT_TRUE(auth.IsPermissionDenied());
  EXPECT_NE(auth.message().find("auth: "), std::string::npos) << auth.ToString();
  EXPECT_TRUE(StatusFromResponse(403, "<html>forbidden</html>", "x").IsPermissionDenied());
  for (int code : {502, 503, 504}) {
    EXPECT_TRUE(StatusFromResponse(code, "Bad Gateway", "x").IsUnavailable()) << code;
  }
  EXPECT_TRUE(StatusFromResponse(404, "{}", "x").IsNotFound());
  EXPECT_TRUE(StatusFromResponse(500, "not json", "x").code() == StatusCode::kInternal);
  // An unknown code falls back on the status too.
  EXPECT_TRUE(StatusFromResponse(409, Envelope("something_new", "m"), "x").IsFailedPrecondition());
}

TEST(WireTest, HostileMessagesStayOneBoundedLine) {
  std::string huge(100000, 'a');
  Status s = StatusFromResponse(500, Envelope("internal", "line1\nline2\r\x1b[31m" + huge), "x");
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
  EXPECT_EQ(s.message().find('\x1b'), std::string::npos);
  EXPECT_LT(s.message().size(), 2000u);
  // Not UTF-8, nested garbage: still a Status, never a throw.
  Status t = StatusFromResponse(500, std::string("{\"error\":{\"message\":\"\xff\xfe\"}}"), "x");
  EXPECT_FALSE(t.ok());
}

TEST(WireTest, CreateRequestCarriesTheOptions) {
  BoxOptions o;
  o.name = "w";
  o.image = "alpine:3";
  o.cpus = 2;
  o.memory_mib = 512;
  o.disk_size_mib = 1500;
  o.env = {{"A", "1"}};
  o.cmd = std::vector<std::string>{"sleep", "9"};
  o.network = "none";
  o.capabilities.add = {"NET_ADMIN"};
  json r = CreateBoxRequest(o);
  EXPECT_EQ(r["name"], "w");
  EXPECT_EQ(r["image"], "alpine:3");
  EXPECT_EQ(r["cpus"], 2);
  EXPECT_EQ(r["memory_mib"], 512);
  EXPECT_EQ(r["disk_size_gb"], 2);
  EXPECT_EQ(r["env"]["A"], "1");
  EXPECT_EQ(r["cmd"], json({"sleep", "9"}));
  EXPECT_FALSE(r.contains("entrypoint"));
  EXPECT_EQ(r["network"]["mode"], "disabled");
  EXPECT_EQ(r["advanced"]["capabilities"]["add"], json({"NET_ADMIN"}));
  EXPECT_EQ(r["auto_delete"], 1);  // auto_remove (the SDK's default): removed on stop.
  o.auto_remove = false;
  EXPECT_EQ(CreateBoxRequest(o)["auto_delete"], 0);
}

TEST(WireTest, WhatRestCannotCarryIsUnsupported) {
  BoxOptions ports;
  ports.ports.push_back(PortForward{8080, 80});
  Status s = CheckRemoteBoxOptions(ports);
  EXPECT_TRUE(s.IsNotSupported());
  EXPECT_TRUE(s.message().starts_with("unsupported: ")) << s.ToString();
  BoxOptions mounts;
  mounts.mounts.push_back(VolumeMount{"/tmp", "/data", false});
  EXPECT_TRUE(CheckRemoteBoxOptions(mounts).IsNotSupported());
  BoxOptions lifecycle;
  lifecycle.auto_pause = 60;
  lifecycle.auto_delete = 30;
  EXPECT_TRUE(CheckRemoteBoxOptions(lifecycle).IsInvalidArgument());
  lifecycle.auto_delete = 120;
  EXPECT_TRUE(CheckRemoteBoxOptions(lifecycle).ok());
  ExecOptions image_entry;
  image_entry.argv = {"id"};
  image_entry.use_image_entrypoint = true;
  EXPECT_TRUE(ExecRequest(image_entry).error().IsNotSupported());
  // A box's client count and an exec's own limits are this host's, not the server's.
  BoxOptions clients;
  clients.max_clients = 8;
  EXPECT_TRUE(CheckRemoteBoxOptions(clients).IsNotSupported());
  ExecOptions limited;
  limited.argv = {"id"};
  limited.limits.max_open_files = 64;
  EXPECT_TRUE(ExecRequest(limited).error().IsNotSupported());
  ExecOptions grouped;
  grouped.argv = {"id"};
  grouped.cgroup.name = "web";
  EXPECT_TRUE(ExecRequest(grouped).error().IsNotSupported());
}

TEST(WireTest, ExecRequestShape) {
  ExecOptions o;
  o.argv = {"sh", "-c", "echo hi"};
  o.env = {{"K", "V"}};
  o.cwd = "/tmp";
  o.tty = true;
  o.timeout_seconds = 2.5;
  json r = ExecRequest(o).value();
  EXPECT_EQ(r["command"], "sh");
  EXPECT_EQ(r["args"], json({"-c", "echo hi"}));
  EXPECT_EQ(r["env"]["K"], "V");
  EXPECT_EQ(r["working_dir"], "/tmp");
  EXPECT_EQ(r["tty"], true);
  EXPECT_DOUBLE_EQ(r["timeout_seconds"].get<double>(), 2.5);
}

TEST(WireTest, ResponsesParseAndBadFieldsTakeDefaults) {
  json box = {{"box_id", "01HZX"}, {"name", "w"}, {"status", "running"},
              {"created_at", "2026-01-02T03:04:05.5Z"}, {"pid", nullptr}, {"image", "alpine"},
              {"cpus", 2}, {"memory_mib", "lots"}, {"auto_delete", 0}, {"exit_code", 3}};
  BoxInfo b = BoxInfoFromJson(box);
  EXPECT_EQ(b.id, "01HZX");
  EXPECT_EQ(b.state, "running");
  EXPECT_EQ(b.created_unix, 1767323045);
  EXPECT_EQ(b.pid, 0);
  EXPECT_EQ(b.cpus, 2);
  EXPECT_EQ(b.memory_mib, 0);
  EXPECT_EQ(b.auto_pause, 900u);
  EXPECT_EQ(b.exit_code, 3);
  EXPECT_EQ(BoxInfoFromJson(json::array()).id, "");
  BoxMetrics m = BoxMetricsFromJson({{"commands_executed_total", 4}, {"memory_bytes", 1024},
                                     {"cpu_percent", 12.5}, {"exec_errors_total", -1},
                                     {"boot_timing", {{"total_create_ms", 1500}}}});
  EXPECT_EQ(m.commands_executed_total, 4u);
  EXPECT_EQ(m.memory_bytes, 1024u);
  EXPECT_EQ(m.exec_errors_total, 0u);
  EXPECT_EQ(m.total_create_duration_ms, 1500);
  EXPECT_EQ(ParseRfc3339("2026-01-02T04:04:05+01:00"), 1767323045);
  EXPECT_EQ(ParseRfc3339("yesterday"), 0);
}

}  // namespace
}  // namespace boxlite::remote
