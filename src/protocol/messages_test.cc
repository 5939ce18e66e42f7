// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/protocol/messages.h"

#include <gtest/gtest.h>

#include <random>

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
  req.root_dir = "/var/lib/boxlite/containers/c1/rootfs";
  req.container_mounts = {{"/var/lib/boxlite/pod-mounts/c1/0", "/data", false},
                          {"/var/lib/boxlite/pod-mounts/c1/3", "/var/run/token", true}};
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
  EXPECT_EQ(back.root_dir, req.root_dir);
  ASSERT_EQ(back.container_mounts.size(), 2u);
  EXPECT_EQ(back.container_mounts[0].source, "/var/lib/boxlite/pod-mounts/c1/0");
  EXPECT_EQ(back.container_mounts[0].destination, "/data");
  EXPECT_FALSE(back.container_mounts[0].read_only);
  EXPECT_EQ(back.container_mounts[1].destination, "/var/run/token");
  EXPECT_TRUE(back.container_mounts[1].read_only);
}

TEST(MessagesTest, ContainerMountsAreBoundedAndNeedARoot) {
  ExecRequest out;
  // Without root_dir, with a missing field, with a NUL byte, or more than the agent takes.
  EXPECT_TRUE(FromJson(Json::parse(R"({"argv": ["sh"],
      "container_mounts": [{"source": "/s", "destination": "/d"}]})"), &out).IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"argv": ["sh"], "root_dir": "/r",
      "container_mounts": [{"source": "/s"}]})"), &out).IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"argv": ["sh"], "root_dir": "/r",
      "container_mounts": [{"source": "/s\u0000x", "destination": "/d"}]})"), &out)
                  .IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"argv": ["sh"], "root_dir": "/r",
      "container_mounts": {"source": "/s"}})"), &out).IsInvalidArgument());
  Json many = Json::parse(R"({"argv": ["sh"], "root_dir": "/r"})");
  many["container_mounts"] = Json::array();
  for (size_t i = 0; i <= kMaxContainerMounts; ++i) {
    many["container_mounts"].push_back({{"source", "/s"}, {"destination", "/d"}});
  }
  EXPECT_TRUE(FromJson(many, &out).IsInvalidArgument());
  many["container_mounts"].erase(many["container_mounts"].begin());
  ExecRequest fits;
  EXPECT_TRUE(FromJson(many, &fits).ok());
  EXPECT_EQ(fits.container_mounts.size(), kMaxContainerMounts);
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

// The host leaves every field at its default out of an exec request, the response and
// the exit event (docs/protocol.md); the reader fills the defaults back in.
TEST(MessagesTest, ExecMessagesLeaveDefaultsOut) {
  ExecRequest req;
  req.argv = {"/bin/true"};
  Json j = ToJson(req);
  EXPECT_EQ(j, Json::parse(R"({"argv": ["/bin/true"], "window": 4194304})"));
  ExecRequest back;
  ASSERT_TRUE(FromJson(j, &back).ok());
  EXPECT_EQ(back.argv, req.argv);
  EXPECT_EQ(back.window, kDefaultWindow);
  EXPECT_TRUE(back.env.empty() && back.cwd.empty() && back.user.empty());
  EXPECT_FALSE(back.tty || back.stdin_open || back.detached || back.main || back.main_optional);
  // rows and cols travel with a terminal only.
  req.rows = 50;
  EXPECT_FALSE(ToJson(req).contains("rows"));
  req.tty = true;
  EXPECT_EQ(ToJson(req)["rows"], 50);
  req.tty = false;
  req.detached = true;
  req.main_optional = true;
  req.user = "1000";
  Json k = ToJson(req);
  EXPECT_EQ(k["detached"], true);
  EXPECT_EQ(k["main_optional"], true);
  EXPECT_EQ(k["user"], "1000");
  EXPECT_FALSE(k.contains("main") || k.contains("stdin") || k.contains("root_dir") ||
               k.contains("container_mounts") || k.contains("cwd"));

  ExecResponse resp;
  resp.pid = 42;
  EXPECT_EQ(ToJson(resp), Json::parse(R"({"pid": 42})"));
  ExecResponse resp_back;
  resp_back.stdin_window = 5;
  ASSERT_TRUE(FromJson(Json::parse(R"({"pid": 42})"), &resp_back).ok());
  EXPECT_EQ(resp_back.pid, 42);
  resp.stdin_window = 1 << 20;
  EXPECT_EQ(ToJson(resp)["stdin_window"], 1 << 20);

  ExitEvent ev;
  ev.exit_code = 3;
  EXPECT_EQ(ToJson(ev), Json::parse(R"({"event": "exit", "exit_code": 3})"));
  ExitEvent ev_back;
  ASSERT_TRUE(FromJson(ToJson(ev), &ev_back).ok());
  EXPECT_EQ(ev_back.exit_code, 3);
  EXPECT_EQ(ev_back.signal, 0);
  EXPECT_TRUE(ev_back.error.empty());
  ev.signal = 9;
  ev.exit_code = 137;
  ASSERT_TRUE(FromJson(ToJson(ev), &ev_back).ok());
  EXPECT_EQ(ev_back.signal, 9);
}

// What a hostile peer sends instead: a missing or mistyped required field, a mistyped
// optional one, or a truncated message, is an error and never a default.
TEST(MessagesTest, CompactExecMessagesRefuseHostileShapes) {
  ExecResponse resp;
  EXPECT_FALSE(FromJson(Json::parse(R"({})"), &resp).ok());
  EXPECT_FALSE(FromJson(Json::parse(R"({"pid": "42"})"), &resp).ok());
  EXPECT_FALSE(FromJson(Json::parse(R"({"pid": 42, "stdin_window": true})"), &resp).ok());
  ExitEvent ev;
  EXPECT_FALSE(FromJson(Json::parse(R"({"event": "exit"})"), &ev).ok());
  EXPECT_FALSE(FromJson(Json::parse(R"({"event": "exit", "exit_code": 1, "signal": "9"})"), &ev).ok());
  EXPECT_FALSE(FromJson(Json::parse(R"({"event": "exit", "exit_code": 1, "error": 5})"), &ev).ok());
  ExecRequest req;
  EXPECT_FALSE(FromJson(Json::parse(R"({"window": 1})"), &req).ok());
  EXPECT_FALSE(FromJson(Json::parse(R"({"argv": ["sh"], "window": -1})"), &req).ok());
  EXPECT_FALSE(FromJson(Json::parse(R"({"argv": ["sh"], "window": 4294967296})"), &req).ok());
  EXPECT_FALSE(FromJson(Json::parse(R"({"argv": ["sh"], "stdin": 1})"), &req).ok());
  ExecRequest minimal;
  minimal.argv = {"sh"};
  std::string whole = EncodeRequest("exec", ToJson(minimal));
  for (size_t cut = 0; cut < whole.size(); ++cut) {
    EXPECT_FALSE(ParseObject(std::string_view(whole).substr(0, cut)).ok()) << cut;
  }
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

// Byte strings that are not text: lone and truncated sequences, an overlong "/", a UTF-16
// surrogate, a code point above U+10FFFF, control bytes; and two that are text.
const std::vector<std::string> kNasty = {
    "\xff", "a\xff/b", "\xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
    "\xe2\x82", "\x01\x02\x1b[31m", "h\xc3\xa9llo", ""};

TEST(ByteStringsTest, EveryStringFieldRoundTripsExactly) {
  for (const std::string& b : kNasty) {
    SCOPED_TRACE(testing::PrintToString(b));
    ExecRequest req;
    req.argv = {"x" + b, b};
    req.env = {"K=" + b};
    req.cwd = "/" + b;
    req.user = b;
    auto parsed = ParseObject(EncodeRequest("exec", ToJson(req)));
    ASSERT_TRUE(parsed.ok());
    ExecRequest exec;
    ASSERT_TRUE(FromJson(*parsed, &exec).ok());
    EXPECT_EQ(exec.argv, req.argv);
    EXPECT_EQ(exec.env, req.env);
    EXPECT_EQ(exec.cwd, req.cwd);
    EXPECT_EQ(exec.user, req.user);

    FileInfo info;
    info.path = "d/" + b;
    info.kind = "symlink";
    info.target = "../" + b;
    auto listed = ParseObject(EncodeOkResponse({{"entries", {ToJson(info)}}}));
    ASSERT_TRUE(listed.ok());
    FileInfo got;
    ASSERT_TRUE(FromJson((*listed)["entries"][0], &got).ok());
    EXPECT_EQ(got.path, info.path);
    EXPECT_EQ(got.target, info.target);

    HelloRequest hello;
    hello.config.hostname = b;
    hello.config.mounts.push_back({b, "/m" + b, false});
    hello.config.network.dns = {b};
    auto h = ParseObject(EncodeRequest("hello", ToJson(hello)));
    ASSERT_TRUE(h.ok());
    HelloRequest hello_back;
    ASSERT_TRUE(FromJson(*h, &hello_back).ok());
    EXPECT_EQ(hello_back.config.hostname, b);
    EXPECT_EQ(hello_back.config.mounts[0].tag, b);
    EXPECT_EQ(hello_back.config.mounts[0].guest_path, "/m" + b);
    EXPECT_EQ(hello_back.config.network.dns[0], b);

    HelloResponse hr;
    hr.kernel = b;
    hr.agent_version = b;
    HelloResponse hr_back;
    ASSERT_TRUE(FromJson(*DecodeResponse(EncodeOkResponse(ToJson(hr))), &hr_back).ok());
    EXPECT_EQ(hr_back.kernel, b);
    EXPECT_EQ(hr_back.agent_version, b);

    ExitEvent ev;
    ev.error = "exec " + b;
    auto e = ParseObject(Dump(ToJson(ev)));
    ASSERT_TRUE(e.ok());
    ExitEvent ev_back;
    ASSERT_TRUE(FromJson(*e, &ev_back).ok());
    EXPECT_EQ(ev_back.error, ev.error);

    auto err = DecodeResponse(EncodeErrorResponse(Status::NotFound("no file", b)));
    ASSERT_FALSE(err.ok());
    EXPECT_EQ(err.error().message(), b.empty() ? "no file" : "no file: " + b);
  }
}

TEST(ByteStringsTest, TextStaysAPlainStringAndBytesUseB64) {
  EXPECT_EQ(Dump({{"path", "/tmp/h\xc3\xa9"}}), "{\"path\":\"/tmp/h\xc3\xa9\"}");
  EXPECT_EQ(Dump({{"path", "/\xff"}}), R"({"path":{"b64":"L/8="}})");
  EXPECT_EQ(BytesToJson("\xff\x01"), (Json{{"b64", "/wE="}}));
}

TEST(ByteStringsTest, BothFormsAreAccepted) {
  std::string out;
  ASSERT_TRUE(GetString(Json::parse(R"({"p": {"b64": "/w=="}})"), "p", &out).ok());
  EXPECT_EQ(out, "\xff");
  ASSERT_TRUE(GetString(Json::parse(R"({"p": {"b64": "YWJj"}})"), "p", &out).ok());
  EXPECT_EQ(out, "abc");  // Text may come as b64 too.
  ASSERT_TRUE(GetString(Json::parse(R"({"p": "abc"})"), "p", &out).ok());
  EXPECT_EQ(out, "abc");
  ASSERT_TRUE(GetString(Json::parse(R"({"p": {"b64": ""}})"), "p", &out).ok());
  EXPECT_EQ(out, "");
  std::vector<std::string> list;
  ASSERT_TRUE(GetStrings(Json::parse(R"({"l": ["a", {"b64": "/w=="}]})"), "l", &list).ok());
  EXPECT_EQ(list, (std::vector<std::string>{"a", "\xff"}));
}

TEST(ByteStringsTest, MalformedB64IsAnErrorNotBytes) {
  std::string out = "unchanged";
  for (const char* bad : {R"({"p": {"b64": "/w"}})", R"({"p": {"b64": " /w=="}})",
                          R"({"p": {"b64": "/x=="}})", R"({"p": {"b64": "/w==\n"}})",
                          R"({"p": {"b64": "*w=="}})", R"({"p": {"b64": 1}})",
                          R"({"p": {"b64": "/w==", "x": 1}})", R"({"p": {}})",
                          R"({"p": ["a"]})", R"({"p": 7})", R"({"p": {"b64": "===="}})"}) {
    SCOPED_TRACE(bad);
    Status s = GetString(Json::parse(bad), "p", &out);
    EXPECT_TRUE(s.IsInvalidArgument());
    EXPECT_NE(s.message().find("\"p\""), std::string::npos) << s.message();
  }
  EXPECT_EQ(out, "unchanged");
}

TEST(ByteStringsTest, OversizeStringsAreRefused) {
  std::string big(kMaxByteString + 1, 'a');
  std::string out;
  EXPECT_TRUE(GetString(Json{{"p", big}}, "p", &out).IsInvalidArgument());
  EXPECT_TRUE(GetString(Json::parse(Dump({{"p", big + "\xff"}})), "p", &out).IsInvalidArgument());
  std::string limit(kMaxByteString - 1, 'a');
  ASSERT_TRUE(GetString(Json::parse(Dump({{"p", limit + "\xff"}})), "p", &out).ok());
  EXPECT_EQ(out.size(), kMaxByteString);
}

TEST(ByteStringsTest, NulBytesInPathsArgvAndEnvAreRefused) {
  using namespace std::string_literals;
  ExecRequest req;
  req.argv = {"sh\0x"s};
  ExecRequest back;
  EXPECT_TRUE(FromJson(*ParseObject(EncodeRequest("exec", ToJson(req))), &back).IsInvalidArgument());
  req.argv = {"sh"};
  req.env = {"A=b\0c"s};
  EXPECT_TRUE(FromJson(*ParseObject(EncodeRequest("exec", ToJson(req))), &back).IsInvalidArgument());
  FileInfo info;
  info.path = "a\0/../b"s;
  FileInfo info_back;
  EXPECT_TRUE(FromJson(*ParseObject(Dump(ToJson(info))), &info_back).IsInvalidArgument());
}

// IsUtf8 must say yes exactly when the serialiser's strict mode would not throw: then no
// dump of a message can throw (every other string takes the b64 form).
TEST(ByteStringsTest, IsUtf8MatchesTheSerialiser) {
  auto strict_ok = [](const std::string& s) {
    try {
      (void)Json(s).dump();
      return true;
    } catch (const Json::type_error&) {
      return false;
    }
  };
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      std::string s = {static_cast<char>(a), static_cast<char>(b)};
      ASSERT_EQ(IsUtf8(s), strict_ok(s)) << a << " " << b;
    }
  }
  std::mt19937 rng(11);
  // Bytes biased towards lead and continuation bytes so sequences are often almost valid.
  const int picks[] = {0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf,
                       0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff};
  for (int i = 0; i < 200000; ++i) {
    std::string s(1 + rng() % 6, '\0');
    for (auto& c : s) c = static_cast<char>(picks[rng() % std::size(picks)]);
    ASSERT_EQ(IsUtf8(s), strict_ok(s)) << testing::PrintToString(s);
  }
}

TEST(ByteStringsTest, DumpNeverThrows) {
  Json j = {{"a", {{"b", Json::array({"\xff", 1, {{"c", "\xc0"}}})}}}, {"\xfe", "key"}};
  std::string text = Dump(j);
  auto back = ParseObject(text);
  ASSERT_TRUE(back.ok());
  std::string s;
  ASSERT_TRUE(BytesFromJson((*back)["a"]["b"][0], &s).ok());
  EXPECT_EQ(s, "\xff");
  ASSERT_TRUE(BytesFromJson((*back)["a"]["b"][2]["c"], &s).ok());
  EXPECT_EQ(s, "\xc0");
  EXPECT_TRUE(back->contains("\xef\xbf\xbd"));  // The key, replaced.
}

// The security part of the box config: capability set, limits, close_fds; a negative
// value is refused rather than handed to setrlimit.
TEST(MessagesTest, BoxConfigSecurityRoundTrip) {
  BoxConfig c;
  c.capabilities = 0xa80425fb;
  c.limits = {256, 1 << 20, 64, int64_t{1} << 32, 30};
  c.close_fds = false;
  auto parsed = ParseObject(Dump(ToJson(c)));
  ASSERT_TRUE(parsed.ok());
  BoxConfig back;
  ASSERT_TRUE(FromJson(*parsed, &back).ok());
  EXPECT_EQ(back.capabilities, 0xa80425fb);
  EXPECT_EQ(back.limits.nofile, 256);
  EXPECT_EQ(back.limits.fsize, 1 << 20);
  EXPECT_EQ(back.limits.nproc, 64);
  EXPECT_EQ(back.limits.as, int64_t{1} << 32);
  EXPECT_EQ(back.limits.cpu, 30);
  EXPECT_FALSE(back.close_fds);
  // Absent: every capability, no limits, descriptors closed.
  BoxConfig defaults;
  ASSERT_TRUE(FromJson(Json::object(), &defaults).ok());
  EXPECT_EQ(defaults.capabilities, -1);
  EXPECT_EQ(defaults.limits.nofile, 0);
  EXPECT_TRUE(defaults.close_fds);
  BoxConfig bad;
  EXPECT_FALSE(FromJson(Json{{"limits", {{"fsize", -1}}}}, &bad).ok());
  EXPECT_FALSE(FromJson(Json{{"capabilities", -2}}, &bad).ok());
}

}  // namespace
}  // namespace boxlite::protocol

namespace boxlite::protocol {
namespace {

TEST(FileMessagesTest, RequestsRoundTripWithByteStringPaths) {
  StatRequest stat{"/d/\xff", true};
  StatRequest stat_back;
  ASSERT_TRUE(FromJson(*ParseObject(EncodeRequest("stat", ToJson(stat))), &stat_back).ok());
  EXPECT_EQ(stat_back.path, stat.path);
  EXPECT_TRUE(stat_back.follow);

  ListDirRequest list{"/\x01", 4000};
  ListDirRequest list_back;
  ASSERT_TRUE(FromJson(*ParseObject(EncodeRequest("list_dir", ToJson(list))), &list_back).ok());
  EXPECT_EQ(list_back.path, list.path);
  EXPECT_EQ(list_back.offset, 4000);

  GetFileRequest get{"/f\xfe", 1234};
  GetFileRequest get_back;
  ASSERT_TRUE(FromJson(*ParseObject(EncodeRequest("get_file", ToJson(get))), &get_back).ok());
  EXPECT_EQ(get_back.path, get.path);
  EXPECT_EQ(get_back.window, 1234);
}

TEST(FileMessagesTest, BadRequestsAreRefused) {
  StatRequest stat;
  EXPECT_TRUE(FromJson(Json::parse(R"({})"), &stat).IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"path": "/a\u0000b"})"), &stat).IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"path": "/", "follow": 1})"), &stat).IsInvalidArgument());
  ListDirRequest list;
  EXPECT_TRUE(FromJson(Json::parse(R"({"path": "/", "offset": -1})"), &list).IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"path": "/", "offset": "1"})"), &list).IsInvalidArgument());
  GetFileRequest get;
  EXPECT_TRUE(FromJson(Json::parse(R"({"path": "/f", "window": -1})"), &get).IsInvalidArgument());
  EXPECT_TRUE(
      FromJson(Json::parse(R"({"path": "/f", "window": 4294967296})"), &get).IsInvalidArgument());
}

TEST(FileMessagesTest, ListDirPagesRoundTripAndHostileOnesAreRefused) {
  ListDirResponse page;
  FileInfo entry;
  entry.path = "n\xff";
  entry.kind = "symlink";
  entry.target = "/t\x01";
  page.entries = {entry, entry};
  page.next_offset = 2;
  ListDirResponse back;
  ASSERT_TRUE(FromJson(*DecodeResponse(EncodeOkResponse(ToJson(page))), &back).ok());
  ASSERT_EQ(back.entries.size(), 2u);
  EXPECT_EQ(back.entries[1].path, entry.path);
  EXPECT_EQ(back.entries[1].target, entry.target);
  EXPECT_EQ(back.next_offset, 2);

  EXPECT_TRUE(FromJson(Json::parse(R"({"next_offset": -1})"), &back).IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"entries": {}, "next_offset": -1})"), &back).IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"entries": []})"), &back).IsInvalidArgument());
  for (const char* offset : {"-2", "0", "1.5", "\"3\"", "9223372036854775808"}) {
    SCOPED_TRACE(offset);
    auto j = Json::parse(std::string(R"({"entries": [], "next_offset": )") + offset + "}");
    EXPECT_TRUE(FromJson(j, &back).IsInvalidArgument());
  }
  // An entry that is not a FileInfo spoils the page.
  EXPECT_TRUE(FromJson(Json::parse(R"({"entries": [{"path": "a", "mode": 65536}], "next_offset": -1})"),
                       &back)
                  .IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"entries": [{"kind": "file"}], "next_offset": -1})"), &back)
                  .IsInvalidArgument());
  // More entries than a page holds.
  Json big = {{"entries", Json::array()}, {"next_offset", -1}};
  for (size_t i = 0; i <= kListDirMaxEntries; ++i) big["entries"].push_back({{"path", "x"}});
  Status s = FromJson(big, &back);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("4001"), std::string::npos) << s.message();
}

TEST(GuestMetricsTest, RoundTripsWithAndWithoutTheOptionalCounts) {
  GuestMetrics m;
  m.mem_total = 1 << 30;
  m.mem_available = 1 << 29;
  m.processes = 7;
  m.execs_running = 2;
  m.uptime_ms = 1234;
  GuestMetrics back;
  ASSERT_TRUE(FromJson(*DecodeResponse(EncodeOkResponse(ToJson(m))), &back).ok());
  EXPECT_EQ(back.mem_total, m.mem_total);
  EXPECT_EQ(back.mem_available, m.mem_available);
  EXPECT_EQ(back.processes, 7);
  EXPECT_EQ(back.execs_running, 2);
  EXPECT_EQ(back.uptime_ms, 1234);
  EXPECT_FALSE(back.net_rx_bytes.has_value());
  EXPECT_FALSE(back.cpu_busy_ticks.has_value());
  EXPECT_FALSE(ToJson(m).contains("net_rx_bytes"));

  m.net_rx_bytes = 10;
  m.net_tx_bytes = 0;
  m.tcp_opens = 3;
  m.tcp_errors = kMaxGuestCount;
  m.cpu_busy_ticks = 5;
  m.cpu_idle_ticks = 6;
  m.ticks_per_second = 100;
  ASSERT_TRUE(FromJson(ToJson(m), &back).ok());
  EXPECT_EQ(back.net_rx_bytes, 10);
  EXPECT_EQ(back.net_tx_bytes, 0);
  EXPECT_EQ(back.tcp_opens, 3);
  EXPECT_EQ(back.tcp_errors, kMaxGuestCount);
  EXPECT_EQ(back.ticks_per_second, 100);
}

TEST(GuestMetricsTest, HostileCountsAreRefusedAndLeaveTheOutputAlone) {
  GuestMetrics good;
  good.mem_total = 100;
  good.mem_available = 50;
  Json base = ToJson(good);
  auto with = [&](const char* key, Json value) {
    Json j = base;
    if (value.is_null()) {
      j.erase(key);
    } else {
      j[key] = std::move(value);
    }
    return j;
  };
  std::vector<Json> hostile = {
      with("mem_total", nullptr),              // Missing.
      with("mem_total", -1),                   // Negative.
      with("mem_total", kMaxGuestCount + 1),   // Beyond any machine.
      with("mem_available", 101),              // More available than there is.
      with("processes", "7"),                  // Not a number.
      with("uptime_ms", 1.5),                  // Not an integer.
      with("net_rx_bytes", -5),                // An optional count, negative.
      with("tcp_errors", Json::array()),       // An optional count, mistyped.
      with("execs_running", uint64_t{1} << 63),  // Beyond int64.
  };
  for (const auto& j : hostile) {
    SCOPED_TRACE(j.dump());
    GuestMetrics out;
    out.processes = 42;
    EXPECT_TRUE(FromJson(j, &out).IsInvalidArgument());
    EXPECT_EQ(out.processes, 42);  // Untouched.
  }
  EXPECT_FALSE(FromJson(Json::array(), &good).ok());
}

TEST(FreezeMessagesTest, RoundTripAndBoundsAreChecked) {
  FreezeRequest req{2500};
  FreezeRequest back;
  ASSERT_TRUE(FromJson(*ParseObject(EncodeRequest("freeze", ToJson(req))), &back).ok());
  EXPECT_EQ(back.thaw_after_ms, 2500);
  FreezeRequest defaulted;
  ASSERT_TRUE(FromJson(Json::parse("{}"), &defaulted).ok());
  EXPECT_EQ(defaulted.thaw_after_ms, kDefaultThawAfterMs);
  for (const char* bad : {R"({"thaw_after_ms": 0})", R"({"thaw_after_ms": -5})",
                          R"({"thaw_after_ms": 60001})", R"({"thaw_after_ms": "1"})"}) {
    FreezeRequest r;
    EXPECT_TRUE(FromJson(Json::parse(bad), &r).IsInvalidArgument()) << bad;
  }
  FreezeResponse resp;
  ASSERT_TRUE(FromJson(Json::parse(R"({"frozen": true})"), &resp).ok());
  EXPECT_TRUE(resp.frozen);
  EXPECT_TRUE(FromJson(Json::parse(R"({})"), &resp).IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"frozen": "yes"})"), &resp).IsInvalidArgument());
}

}  // namespace
}  // namespace boxlite::protocol

namespace boxlite::protocol {
namespace {

TEST(RefreshRequestTest, RoundTripsBinaryEntropyAndRefusesHostileValues) {
  RefreshRequest m;
  m.entropy = std::string(kRefreshEntropyBytes, '\xff');  // Not UTF-8: travels as base64.
  m.entropy[0] = '\0';
  m.clock_unix_ns = 1700000000123456789;
  m.hostname = "fork-1";
  m.box_id = "AbCdEf123456";
  Json wire = ParseObject(Dump(ToJson(m))).value();
  RefreshRequest back;
  ASSERT_TRUE(FromJson(wire, &back).ok());
  EXPECT_EQ(back.entropy, m.entropy);
  EXPECT_EQ(back.clock_unix_ns, m.clock_unix_ns);
  EXPECT_EQ(back.hostname, "fork-1");
  EXPECT_EQ(back.box_id, "AbCdEf123456");

  auto refused = [&](auto change) {
    Json j = ToJson(m);
    change(j);
    RefreshRequest r;
    return !FromJson(j, &r).ok();
  };
  EXPECT_TRUE(refused([](Json& j) { j["entropy"] = "short"; }));
  EXPECT_TRUE(refused([](Json& j) { j["hostname"] = ""; }));
  EXPECT_TRUE(refused([](Json& j) { j["hostname"] = std::string(65, 'h'); }));
  EXPECT_TRUE(refused([](Json& j) { j["hostname"] = "a b"; }));
  EXPECT_TRUE(refused([](Json& j) { j["hostname"] = std::string("a\0b", 3); }));
  EXPECT_TRUE(refused([](Json& j) { j.erase("clock_unix_ns"); }));
  EXPECT_TRUE(refused([](Json& j) { j["box_id"] = std::string(65, 'x'); }));
}

TEST(MessagesTest, ExecLimitsAndCgroupRoundTrip) {
  // A pod container's process: its own rlimits and its container's cgroup.
  ExecRequest req;
  req.argv = {"sh"};
  req.limits.nofile = 321;
  req.limits.cpu = 7;
  req.cgroup = {"web-1", 64 << 20, 50000, 100000, 32};
  ExecRequest back;
  ASSERT_TRUE(FromJson(ToJson(req), &back).ok());
  EXPECT_EQ(back.limits.nofile, 321);
  EXPECT_EQ(back.limits.cpu, 7);
  EXPECT_EQ(back.limits.as, 0);
  EXPECT_EQ(back.cgroup.name, "web-1");
  EXPECT_EQ(back.cgroup.memory_max, 64 << 20);
  EXPECT_EQ(back.cgroup.cpu_quota, 50000);
  EXPECT_EQ(back.cgroup.cpu_period, 100000);
  EXPECT_EQ(back.cgroup.pids_max, 32);
  // A request without them (an older host): none.
  ExecRequest old;
  ASSERT_TRUE(FromJson(Json::parse(R"({"argv": ["sh"]})"), &old).ok());
  EXPECT_TRUE(old.cgroup.name.empty());
  EXPECT_EQ(old.limits.nofile, 0);
}

TEST(MessagesTest, ExecCgroupNamesAndLimitsAreBounded) {
  // The name becomes a directory of the guest's cgroup tree: one safe component only.
  for (const char* bad : {"..", ".", "../box", "a/b", "-x", "_x", "a b", "a\nb", "é"}) {
    EXPECT_TRUE(ValidateExecCgroup({bad, 0, 0, 0, 0}).IsInvalidArgument()) << bad;
  }
  EXPECT_TRUE(ValidateExecCgroup({std::string(129, 'a'), 0, 0, 0, 0}).IsInvalidArgument());
  EXPECT_TRUE(ValidateExecCgroup({std::string(128, 'a'), 0, 0, 0, 0}).ok());
  EXPECT_TRUE(ValidateExecCgroup({"h-0123abcd.x_Y", 0, 0, 0, 0}).ok());
  const ExecCgroup bad_limits[] = {
      {"c", (4 << 20) - 1, 0, 0, 0}, {"c", int64_t{1} << 47, 0, 0, 0}, {"c", -1, 0, 0, 0},
      {"c", 0, 999, 0, 0},           {"c", 0, 1000, 999, 0},           {"c", 0, 1000, 1000001, 0},
      {"c", 0, 0, 100000, 0},        {"c", 0, 0, 0, -5},               {"c", 0, 0, 0, 4194305},
      {"", 64 << 20, 0, 0, 0},
  };
  for (const auto& c : bad_limits) {
    Status s = ValidateExecCgroup(c);
    EXPECT_TRUE(s.IsInvalidArgument()) << c.memory_max << " " << c.cpu_quota << " " << c.cpu_period
                                       << " " << c.pids_max;
  }
  EXPECT_TRUE(ValidateExecCgroup({"c", 4 << 20, 1000, 1000000, 4194304}).ok());
  // Through the decoder too: the agent refuses them before making anything.
  ExecRequest out;
  EXPECT_TRUE(FromJson(Json::parse(R"({"argv": ["sh"], "cgroup": {"name": "../x"}})"), &out)
                  .IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"argv": ["sh"], "cgroup": {"name": "c", "pids_max": -1}})"),
                       &out)
                  .IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"argv": ["sh"], "limits": {"nofile": 1048577}})"), &out)
                  .IsInvalidArgument());
  EXPECT_TRUE(FromJson(Json::parse(R"({"argv": ["sh"], "limits": {"fsize": -1}})"), &out)
                  .IsInvalidArgument());
}

}  // namespace
}  // namespace boxlite::protocol
