// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Host connections coming and going on one agent port, in-process: a Server (machine off)
// serves a temporary directory over a socketpair and the test plays the hosts.
//
// On a virtio-serial port the guest learns that a host connected or left through a
// control queue handled later in a work queue, while data is taken in at once: a new
// host's hello can be read before the port reports the previous host gone. A socketpair
// the host half-closes after its hello gives the agent the same sequence (the request,
// then end of input, then a port that is still connected).
#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "agent/server.h"
#include "src/protocol/frame.h"
#include "src/protocol/messages.h"

namespace boxlite::agent {
namespace {

using protocol::Json;

class AgentReconnectTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("boxlite-agent-reconnect-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    host_.reset(sv[0]);
    std::vector<base::UniqueFd> ports(1);
    ports[0].reset(sv[1]);
    server_ = std::make_unique<Server>(std::move(ports), root_, ServerOptions{.machine = false});
    ASSERT_TRUE(server_->Open().ok());
  }

  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(root_);
  }

  static std::string Request(uint32_t stream, std::string_view op, Json body) {
    std::string out;
    protocol::AppendFrame(&out, protocol::FrameKind::kRequest, stream,
                          protocol::EncodeRequest(op, std::move(body)));
    return out;
  }

  static std::string Hello(uint32_t stream) {
    return Request(stream, "hello", {{"version", protocol::kProtocolVersion}});
  }

  void Write(const std::string& bytes) {
    ASSERT_EQ(::write(host_.get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }

  // What the agent has sent so far, as frames (a stream out of frame fails the test).
  std::vector<protocol::Frame> Received() {
    std::string bytes(65536, '\0');
    for (ssize_t n; (n = ::read(host_.get(), bytes.data(), bytes.size())) > 0;) {
      decoder_.Feed(std::string_view(bytes.data(), static_cast<size_t>(n)));
    }
    std::vector<protocol::Frame> frames;
    auto next = decoder_.Next();
    for (; next.ok() && next->has_value(); next = decoder_.Next()) frames.push_back(std::move(**next));
    EXPECT_TRUE(next.ok()) << next.error().ToString();
    return frames;
  }

  // Serves until the response on `stream` is in (or rounds run out); its payload.
  std::optional<std::string> AwaitResponse(uint32_t stream, int rounds = 200) {
    for (int round = 0; round < rounds; ++round) {
      EXPECT_TRUE(server_->Step(5).ok());
      for (const auto& f : Received()) {
        if (f.kind == protocol::FrameKind::kResponse && f.stream == stream) return f.payload;
      }
    }
    return std::nullopt;
  }

  void Serve(int rounds) {
    for (int i = 0; i < rounds; ++i) EXPECT_TRUE(server_->Step(5).ok());
  }

  std::vector<std::string> Entries(const std::string& rel) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(root_ + "/" + rel)) {
      names.push_back(e.path().filename().string());
    }
    return names;
  }

  // An upload that stays open: 3 of its 10 bytes sent, its temporary file in /up.
  void StartUnfinishedUpload(uint32_t stream) {
    protocol::FileInfo info;
    info.path = "/up/f";
    info.kind = "file";
    info.mode = 0644;
    info.uid = ::getuid();
    info.gid = ::getgid();
    info.size = 10;
    std::string out = Request(stream, "put_file", protocol::ToJson(info));
    protocol::AppendData(&out, stream, protocol::kFdStdin, "abc");
    Write(out);
    auto put = AwaitResponse(stream);
    ASSERT_TRUE(put.has_value());
    ASSERT_TRUE(protocol::DecodeResponse(*put).ok()) << *put;
    Serve(5);
    ASSERT_EQ(Entries("up").size(), 1u) << "the upload's temporary file";
  }

  std::string root_;
  base::UniqueFd host_;
  std::unique_ptr<Server> server_;
  protocol::FrameDecoder decoder_;
};

// The hang seen as `boxlite exec` waiting for the agent's hello: the hello was read and
// answered, then the end of the previous host was noticed and the answer thrown away.
TEST_F(AgentReconnectTest, HelloAnsweredWhenTheEndOfInputIsNoticedRightAfterIt) {
  Write(Hello(1));
  ASSERT_EQ(::shutdown(host_.get(), SHUT_WR), 0);
  auto reply = AwaitResponse(1);
  ASSERT_TRUE(reply.has_value()) << "the hello's response never reached the host";
  auto hello = protocol::DecodeResponse(*reply);
  ASSERT_TRUE(hello.ok()) << hello.error().ToString();
  protocol::HelloResponse resp;
  EXPECT_TRUE(protocol::FromJson(*hello, &resp).ok());
  EXPECT_FALSE(resp.agent_version.empty());
}

// A host that left unseen: the next host's hello on the same port ends its session, so
// what it left running (here an upload) does not outlive it.
TEST_F(AgentReconnectTest, HelloOnAPortInUseEndsThePreviousHostsSession) {
  Write(Hello(1));
  ASSERT_TRUE(AwaitResponse(1).has_value());
  StartUnfinishedUpload(3);
  Write(Hello(1));  // The next host, on the same port, reusing the stream ids.
  auto reply = AwaitResponse(1);
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(protocol::DecodeResponse(*reply).ok());
  EXPECT_TRUE(Entries("up").empty()) << "the previous host's upload was left behind";
  // Stream 3 is free again for the new host.
  Write(Request(3, "ping", Json::object()));
  auto pong = AwaitResponse(3);
  ASSERT_TRUE(pong.has_value());
  EXPECT_TRUE(protocol::DecodeResponse(*pong).ok()) << *pong;
}

// A host that is really gone (the port stays without a host) ends its session too.
TEST_F(AgentReconnectTest, AHostThatStaysGoneEndsItsSession) {
  Write(Hello(1));
  ASSERT_TRUE(AwaitResponse(1).has_value());
  StartUnfinishedUpload(3);
  host_.reset();
  for (int i = 0; i < 200 && !Entries("up").empty(); ++i) Serve(1);
  EXPECT_TRUE(Entries("up").empty()) << "the gone host's upload was left behind";
}

}  // namespace
}  // namespace boxlite::agent
