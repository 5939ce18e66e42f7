// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The agent's request handling in-process: a Server (machine off) serves a temporary
// directory over a socketpair, and the test plays the host. Names, link targets and paths
// are bytes that are not UTF-8; the server must answer every request, exactly, and live.
#include "agent/server.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>

#include <gtest/gtest.h>

#include "agent/guard.h"
#include "src/protocol/frame.h"
#include "src/protocol/messages.h"

namespace boxlite::agent {
namespace {

using protocol::Json;

class AgentServerTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxlite-agent-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    host_.reset(sv[0]);
    std::vector<base::UniqueFd> ports;
    ports.emplace_back(sv[1]);
    ServerOptions options;
    options.machine = false;
    server_ = std::make_unique<Server>(std::move(ports), root_, options);
    ASSERT_TRUE(server_->Open().ok());
  }

  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(root_);
  }

  std::string Path(const std::string& rel) { return root_ + "/" + rel; }

  // Sends one request and serves until its response is in; the response's payload.
  std::string Exchange(std::string_view op, Json body) {
    uint32_t stream = next_stream_ += 2;
    std::string out;
    protocol::AppendFrame(&out, protocol::FrameKind::kRequest, stream,
                          protocol::EncodeRequest(op, std::move(body)));
    return ExchangeRaw(stream, out);
  }

  std::string ExchangeRaw(uint32_t stream, std::string out) {
    size_t sent = 0;
    for (int round = 0; round < 5000; ++round) {
      if (sent < out.size()) {
        ssize_t n = ::write(host_.get(), out.data() + sent, out.size() - sent);
        if (n > 0) sent += static_cast<size_t>(n);
      }
      EXPECT_TRUE(server_->Step(5).ok());
      char buf[65536];
      ssize_t n;
      while ((n = ::read(host_.get(), buf, sizeof(buf))) > 0) {
        decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
      }
      while (true) {
        auto frame = decoder_.Next();
        EXPECT_TRUE(frame.ok());
        if (!frame.ok() || !frame->has_value()) break;
        if ((*frame)->kind == protocol::FrameKind::kResponse && (*frame)->stream == stream) {
          return std::string((*frame)->payload);
        }
        other_frames_.push_back(std::move(**frame));
      }
    }
    ADD_FAILURE() << "no response on stream " << stream;
    return std::string();
  }

  Result<Json> Call(std::string_view op, Json body) {
    return protocol::DecodeResponse(Exchange(op, std::move(body)));
  }

  void ExpectAlive() {
    auto pong = Call("ping", Json::object());
    EXPECT_TRUE(pong.ok()) << pong.error().ToString();
  }

  std::string root_;
  base::UniqueFd host_;
  std::unique_ptr<Server> server_;
  protocol::FrameDecoder decoder_;
  std::vector<protocol::Frame> other_frames_;
  uint32_t next_stream_ = 1;
};

// Names that are not UTF-8: a lone 0xff, an overlong '/', a surrogate, control bytes.
const std::vector<std::string> kNames = {"\xff", "a\xc0\xafz", "\xed\xa0\x80", "\x01\x1b[2J",
                                         "plain", "caf\xc3\xa9"};

// Off a box's own disk (machine off: a directory of the host) the agent never freezes:
// FIFREEZE there would stop the host's file system. Bad deadlines are refused first.
TEST_F(AgentServerTest, FreezeAndThawNeedTheBoxDisk) {
  auto frozen = Call("freeze", {{"thaw_after_ms", 1000}});
  ASSERT_FALSE(frozen.ok());
  EXPECT_EQ(frozen.error().code(), StatusCode::kNotSupported);
  EXPECT_TRUE(Call("freeze", {{"thaw_after_ms", 0}}).error().IsInvalidArgument());
  EXPECT_TRUE(Call("freeze", {{"thaw_after_ms", 600000}}).error().IsInvalidArgument());
  EXPECT_EQ(Call("thaw", Json::object()).error().code(), StatusCode::kNotSupported);
  EXPECT_TRUE(Call("ping", Json::object()).ok());  // The loop goes on.
}

TEST_F(AgentServerTest, ListDirAndStatCarryNamesAndTargetsAsBytes) {
  ASSERT_EQ(::mkdir(Path("d").c_str(), 0755), 0);
  for (const auto& name : kNames) {
    base::UniqueFd f(::open(Path("d/" + name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_TRUE(f);
    ASSERT_EQ(::symlink(("/to/" + name + "\xfe").c_str(), Path("d/l" + name).c_str()), 0);
  }
  auto listed = Call("list_dir", {{"path", "/d"}});
  ASSERT_TRUE(listed.ok()) << listed.error().ToString();
  std::map<std::string, protocol::FileInfo> seen;
  for (const auto& entry : (*listed)["entries"]) {
    protocol::FileInfo info;
    ASSERT_TRUE(protocol::FromJson(entry, &info).ok());
    seen[info.path] = info;
  }
  ASSERT_EQ(seen.size(), 2 * kNames.size());
  for (const auto& name : kNames) {
    SCOPED_TRACE(testing::PrintToString(name));
    ASSERT_EQ(seen.count(name), 1u);
    EXPECT_EQ(seen[name].kind, "file");
    ASSERT_EQ(seen.count("l" + name), 1u);
    EXPECT_EQ(seen["l" + name].kind, "symlink");
    EXPECT_EQ(seen["l" + name].target, "/to/" + name + "\xfe");

    // The host names them back as bytes.
    auto st = Call("stat", {{"path", "/d/l" + name}});
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    protocol::FileInfo info;
    ASSERT_TRUE(protocol::FromJson(*st, &info).ok());
    EXPECT_EQ(info.path, "/d/l" + name);
    EXPECT_EQ(info.target, "/to/" + name + "\xfe");
  }
  ExpectAlive();
}

TEST_F(AgentServerTest, PutAndGetFilesNamedWithBytes) {
  for (const auto& name : kNames) {
    SCOPED_TRACE(testing::PrintToString(name));
    std::string content = "content of " + name;
    protocol::FileInfo info;
    info.path = "/dir" + name + "/f" + name;
    info.kind = "file";
    info.mode = 0640;
    info.uid = ::getuid();  // The test may run unprivileged: chown to itself only.
    info.gid = ::getgid();
    info.size = static_cast<int64_t>(content.size());
    uint32_t stream = next_stream_ += 2;
    std::string out;
    protocol::AppendFrame(&out, protocol::FrameKind::kRequest, stream,
                          protocol::EncodeRequest("put_file", protocol::ToJson(info)));
    protocol::AppendData(&out, stream, protocol::kFdStdin, content);
    protocol::AppendClose(&out, stream, protocol::kFdStdin);
    auto put = protocol::DecodeResponse(ExchangeRaw(stream, out));
    ASSERT_TRUE(put.ok()) << put.error().ToString();
    ExpectAlive();  // Serves the rest of the upload meanwhile.
    struct stat st;
    ASSERT_EQ(::stat(Path("dir" + name + "/f" + name).c_str(), &st), 0) << errno;
    EXPECT_EQ(st.st_size, static_cast<off_t>(content.size()));

    protocol::FileInfo link;
    link.path = "/dir" + name + "/l";
    link.kind = "symlink";
    link.target = "../t" + name;
    link.uid = ::getuid();
    link.gid = ::getgid();
    ASSERT_TRUE(Call("put_file", protocol::ToJson(link)).ok());
    char target[256];
    ssize_t n = ::readlink(Path("dir" + name + "/l").c_str(), target, sizeof(target));
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(target, static_cast<size_t>(n)), link.target);

    auto got = Call("get_file", {{"path", info.path}});
    ASSERT_TRUE(got.ok()) << got.error().ToString();
    protocol::FileInfo back;
    ASSERT_TRUE(protocol::FromJson(*got, &back).ok());
    EXPECT_EQ(back.path, info.path);
    EXPECT_EQ(back.size, info.size);
  }
}

TEST_F(AgentServerTest, NoReplaceKeepsExistingEntriesAndFollowResolvesInsideTheRoot) {
  ASSERT_EQ(::mkdir(Path("etc").c_str(), 0755), 0);
  {
    base::UniqueFd f(::open(Path("etc/kept").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    ASSERT_TRUE(f);
    ASSERT_EQ(::write(f.get(), "mine", 4), 4);
  }
  ASSERT_EQ(::symlink("old-target", Path("etc/link").c_str()), 0);
  for (const auto& [path, kind] : std::vector<std::pair<std::string, std::string>>{
           {"/etc/kept", "file"}, {"/etc/link", "symlink"}, {"/etc/kept", "symlink"}}) {
    protocol::FileInfo info;
    info.path = path;
    info.kind = kind;
    info.target = "new-target";
    info.size = 3;
    info.uid = ::getuid();
    info.gid = ::getgid();
    Json request = protocol::ToJson(info);
    request["no_replace"] = true;
    auto put = Call("put_file", request);
    ASSERT_FALSE(put.ok()) << path;
    EXPECT_TRUE(put.error().IsAlreadyExists()) << put.error().ToString();
    EXPECT_NE(put.error().message().find("overwrite is off"), std::string::npos);
  }
  char target[64];
  ssize_t n = ::readlink(Path("etc/link").c_str(), target, sizeof(target));
  EXPECT_EQ(std::string(target, static_cast<size_t>(std::max<ssize_t>(n, 0))), "old-target");
  struct stat st;
  ASSERT_EQ(::stat(Path("etc/kept").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 4);

  // A directory where a file is: an error, with or without no_replace.
  protocol::FileInfo dir;
  dir.path = "/etc/kept";
  dir.kind = "dir";
  dir.mode = 0755;
  auto made = Call("put_file", protocol::ToJson(dir));
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.error().message().find("not a directory"), std::string::npos);

  // An absolute link resolves inside the root, as the box sees it: to the root's /etc/kept
  // (a regular file of 4 bytes), never the host's /etc.
  ASSERT_EQ(::symlink("/etc/kept", Path("abs").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", Path("absdir").c_str()), 0);
  auto followed = Call("stat", {{"path", "/abs"}, {"follow", true}});
  ASSERT_TRUE(followed.ok()) << followed.error().ToString();
  protocol::FileInfo info;
  ASSERT_TRUE(protocol::FromJson(*followed, &info).ok());
  EXPECT_EQ(info.kind, "file");
  EXPECT_EQ(info.size, 4);
  followed = Call("stat", {{"path", "/absdir"}, {"follow", true}});
  ASSERT_TRUE(followed.ok());
  ASSERT_TRUE(protocol::FromJson(*followed, &info).ok());
  EXPECT_EQ(info.kind, "dir");
  auto plain = Call("stat", {{"path", "/abs"}});
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(protocol::FromJson(*plain, &info).ok());
  EXPECT_EQ(info.kind, "symlink");
  ASSERT_EQ(::symlink("/nowhere", Path("dangling").c_str()), 0);
  EXPECT_TRUE(Call("stat", {{"path", "/dangling"}, {"follow", true}}).error().IsNotFound());
  ExpectAlive();
}

TEST_F(AgentServerTest, ListDirPagesFitInAFrameWhateverTheNames) {
  // 300 links whose 4000-byte targets are control bytes: 24 KB each once escaped, 7 MB in
  // one page of 4000 entries, far beyond a frame.
  ASSERT_EQ(::mkdir(Path("many").c_str(), 0755), 0);
  std::string target(4000, '\x01');
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(::symlink(target.c_str(), Path("many/" + std::to_string(i) + "\xff").c_str()), 0);
  }
  int64_t offset = 0;
  int pages = 0;
  size_t entries = 0;
  while (offset >= 0) {
    auto page = Call("list_dir", {{"path", "/many"}, {"offset", offset}});
    ASSERT_TRUE(page.ok()) << page.error().ToString();
    ++pages;
    for (const auto& entry : (*page)["entries"]) {
      protocol::FileInfo info;
      ASSERT_TRUE(protocol::FromJson(entry, &info).ok());
      EXPECT_EQ(info.target, target);
      ++entries;
    }
    ASSERT_TRUE(protocol::GetInt(*page, "next_offset", &offset).ok());
  }
  EXPECT_EQ(entries, 300u);
  EXPECT_GT(pages, 1);
}

TEST_F(AgentServerTest, AResponseTooLargeForAFrameIsAnError) {
  // A directory of 600000 control bytes, sent in the b64 form (800 KB); the error naming
  // the path would take 3.6 MB escaped.
  std::string path = "/" + std::string(600000, '\x01') + "/x";
  std::string b64(4 * ((path.size() + 2) / 3) + 1, '\0');
  b64.resize(static_cast<size_t>(
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                      reinterpret_cast<const unsigned char*>(path.data()), static_cast<int>(path.size()))));
  auto st = Call("stat", {{"path", {{"b64", b64}}}});
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().IsResourceExhausted()) << st.error().ToString().substr(0, 200);
  ExpectAlive();
}

TEST_F(AgentServerTest, MalformedRequestsGetAnErrorAndTheServerGoesOn) {
  for (const char* payload :
       {"not json", "[1]", R"({"op": 5})", R"({"op": {"b64": "@@"}})",
        R"({"op": "stat", "path": {"b64": "/w"}})", R"({"op": "list_dir", "path": ["x"]})",
        R"({"op": "exec", "argv": [{"b64": "c2gAeA=="}]})", R"({"op": "nope"})",
        R"({"op": "get_file", "path": "/a\u0000b"})"}) {
    SCOPED_TRACE(payload);
    uint32_t stream = next_stream_ += 2;
    std::string out;
    protocol::AppendFrame(&out, protocol::FrameKind::kRequest, stream, payload);
    auto r = protocol::DecodeResponse(ExchangeRaw(stream, out));
    EXPECT_FALSE(r.ok());
  }
  ExpectAlive();
}

TEST_F(AgentServerTest, AnAttachingHelloWaitsForTheLaunchersHello) {
  // A client joining before the launcher's hello is sent away, configuring nothing: the
  // launcher's hello still configures the box, and then the client may attach.
  protocol::HelloRequest attach;
  attach.attach = true;
  auto early = Call("hello", protocol::ToJson(attach));
  ASSERT_FALSE(early.ok());
  EXPECT_TRUE(early.error().IsFailedPrecondition()) << early.error().ToString();
  auto exec = Call("exec", {{"argv", {"/bin/true"}}});
  ASSERT_FALSE(exec.ok());
  EXPECT_TRUE(exec.error().IsFailedPrecondition()) << exec.error().ToString();  // Not configured.
  ASSERT_TRUE(Call("hello", {{"version", protocol::kProtocolVersion}}).ok());
  auto late = Call("hello", protocol::ToJson(attach));
  EXPECT_TRUE(late.ok()) << late.error().ToString();
  ExpectAlive();
}

TEST_F(AgentServerTest, ExecRequestsWithByteArgvAreParsedNotStarted) {
  ASSERT_TRUE(Call("hello", {{"version", protocol::kProtocolVersion}}).ok());
  protocol::ExecRequest req;
  req.argv = {"/bin/\xff", "\x01\xff"};
  req.env = {"K=\x01\xff"};
  auto r = Call("exec", protocol::ToJson(req));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().IsNotSupported()) << r.error().ToString();
  ExpectAlive();
}

TEST_F(AgentServerTest, RefreshTakesAWellFormedIdentityAndRefusesOthers) {
  ASSERT_TRUE(Call("hello", {{"version", protocol::kProtocolVersion}}).ok());
  protocol::RefreshRequest refresh;
  refresh.entropy = std::string(protocol::kRefreshEntropyBytes, '\x7f');
  refresh.clock_unix_ns = 1;
  refresh.hostname = "fork-1";
  refresh.box_id = "AbCdEf123456";
  auto ok = Call("refresh", protocol::ToJson(refresh));
  EXPECT_TRUE(ok.ok()) << ok.error().ToString();
  refresh.hostname = "bad\nname";
  auto bad = Call("refresh", protocol::ToJson(refresh));
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.error().IsInvalidArgument()) << bad.error().ToString();
  ExpectAlive();
}

TEST(CatchAllTest, AnythingThrownBecomesAStatus) {
  Status s = CatchAll("list_dir", []() -> Status { throw std::runtime_error("boom"); });
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("list_dir failed: boom"), std::string::npos) << s.message();
  s = CatchAll("exec", []() -> Status { throw std::bad_alloc(); });
  EXPECT_TRUE(s.IsResourceExhausted());
  s = CatchAll("stat", []() -> Status { throw 42; });
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  s = CatchAll("dump", []() -> Status {
    return Status::NotFound(Json("\xff").dump());  // nlohmann's type_error 316.
  });
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("316"), std::string::npos) << s.message();
  EXPECT_TRUE(CatchAll("ok", [] { return Status::OK(); }).ok());
}

}  // namespace
}  // namespace boxlite::agent
