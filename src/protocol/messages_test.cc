// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/protocol/messages.h"

#include <gtest/gtest.h>

namespace boxlite::protocol {
namespace {

TEST(MessagesTest, ExecRequestRoundTrip) {
  ExecRequest req;
  req.argv = {"sh", "-c", "echo \"hi\""};
  req.env = {"A=1", "PATH=/bin"};
  req.cwd = "/tmp";
  req.user = "1000:1000";
  req.tty = true;
  req.rows = 50;
  req.cols = 132;
  req.stdin_open = true;
  auto parsed = ParseObject(EncodeRequest("exec", ToJson(req)));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)["op"], "exec");
  ExecRequest back;
  ASSERT_TRUE(FromJson(*parsed, &back).ok());
  EXPECT_EQ(back.argv, req.argv);
  EXPECT_EQ(back.env, req.env);
  EXPECT_EQ(back.cwd, "/tmp");
  EXPECT_EQ(back.user, "1000:1000");
  EXPECT_TRUE(back.tty);
  EXPECT_EQ(back.rows, 50);
  EXPECT_EQ(back.cols, 132);
  EXPECT_TRUE(back.stdin_open);
}

TEST(MessagesTest, ExecRequestRejectsBadFields) {
  ExecRequest out;
  EXPECT_TRUE(FromJson(Json::parse(R"({"argv": []})"), &out).IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({})"), &out).IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"argv": "sh"})"), &out).IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"argv": ["sh", 1]})"), &out).IsInvalidArgument());
  EXPECT_TRUE(
      FromJson(Json::parse(R"({"argv": ["sh"], "rows": 70000})"), &out).IsInvalidArgument());
  Status s = FromJson(Json::parse(R"({"argv": ["sh"], "tty": "yes"})"), &out);
  EXPECT_NE(s.message().find("\"tty\" must be a boolean"), std::string::npos);
}

TEST(MessagesTest, BoxConfigRoundTrip) {
  BoxConfig config;
  config.hostname = "web";
  config.mounts.push_back({"m0", "/data", true});
  config.network.mode = "nat";
  config.network.dns = {"10.0.2.3"};
  config.pids_max = 1024;
  BoxConfig back;
  ASSERT_TRUE(FromJson(ToJson(config), &back).ok());
  EXPECT_EQ(back.hostname, "web");
  ASSERT_EQ(back.mounts.size(), 1u);
  EXPECT_EQ(back.mounts[0].guest_path, "/data");
  EXPECT_TRUE(back.mounts[0].read_only);
  EXPECT_EQ(back.network.dns, std::vector<std::string>{"10.0.2.3"});
  EXPECT_EQ(back.pids_max, 1024);
}

TEST(MessagesTest, ErrorResponseCarriesCodeAndMessage) {
  auto r = DecodeResponse(EncodeErrorResponse(Status::NotFound("no such file", "/x")));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().IsNotFound());
  EXPECT_EQ(r.error().message(), "no such file: /x");
  auto ok = DecodeResponse(EncodeOkResponse(ToJson(ExecResponse{42, 100})));
  ASSERT_TRUE(ok.ok());
  ExecResponse resp;
  ASSERT_TRUE(FromJson(*ok, &resp).ok());
  EXPECT_EQ(resp.pid, 42);
}

TEST(MessagesTest, ErrorMessageWithInvalidUtf8StillEncodes) {
  auto r = DecodeResponse(EncodeErrorResponse(Status::IoError("bad \xff byte")));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().IsIoError());
}

TEST(MessagesTest, GarbageIsProtocolErrorNotException) {
  EXPECT_TRUE(ParseObject("{").error().IsProtocolError());
  EXPECT_TRUE(ParseObject("[1,2]").error().IsProtocolError());
  EXPECT_TRUE(DecodeResponse("{}").error().IsInvalidArgument());
  EXPECT_TRUE(DecodeResponse(R"({"ok": false})").error().IsProtocolError());
  SignalRequest sig;
  EXPECT_TRUE(FromJson(Json::parse(R"({"target": 1, "signal": 99})"), &sig).IsInvalidArgument());
}

}  // namespace
}  // namespace boxlite::protocol
