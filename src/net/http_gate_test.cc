// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
// HttpRequestGate: the Host check on every request of a kept-alive HTTP/1.x flow.
#include "src/net/http_gate.h"

#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <string>
#include <vector>

namespace boxlite::net {
namespace {

bool OnlyA(std::string_view name) { return name == "a.test"; }

struct GateRun {
  bool ok = true;
  std::string out;
  size_t requests = 0;
};

// Feeds `in` in pieces of `step` bytes (0: all at once).
GateRun Gate(std::string_view in, size_t step = 0) {
  HttpRequestGate gate(OnlyA);
  GateRun r;
  if (step == 0) step = in.size() ? in.size() : 1;
  for (size_t at = 0; at < in.size() && r.ok; at += step) {
    r.ok = gate.Feed(in.substr(at, step), &r.out);
  }
  r.requests = gate.requests();
  return r;
}

const std::string kGetA = "GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\n";
const std::string kGetB = "GET /2 HTTP/1.1\r\nHost: b.test\r\n\r\n";

TEST(HttpRequestGate, AllowedKeptAliveAndPipelinedRequestsPassUnchanged) {
  std::string post = "POST /p HTTP/1.1\r\nHost: A.Test:80\r\nContent-Length: 5\r\n\r\nhello";
  std::string in = kGetA + post + "\r\n" + kGetA;
  for (size_t step : {size_t{0}, size_t{1}, size_t{7}}) {
    GateRun r = Gate(in, step);
    EXPECT_TRUE(r.ok) << step;
    EXPECT_EQ(r.out, in) << step;
    EXPECT_EQ(r.requests, 3u) << step;
  }
}

TEST(HttpRequestGate, ALaterRequestForAnotherHostIsRefusedBeforeAnyOfItPasses) {
  HttpRequestGate gate(OnlyA);
  std::string out;
  ASSERT_TRUE(gate.Feed(kGetA, &out));
  EXPECT_EQ(out, kGetA);
  out.clear();
  // The start of the second head is held, not passed on.
  ASSERT_TRUE(gate.Feed(kGetB.substr(0, 20), &out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(gate.Feed(kGetB.substr(20), &out));
  EXPECT_EQ(out.find("b.test"), std::string::npos);
  // Refused for good.
  EXPECT_FALSE(gate.Feed(kGetA, &out));
  // Pipelined in one piece: refused, and the refused head is not in the output.
  GateRun r = Gate(kGetA + kGetB);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.out.find("b.test"), std::string::npos);
  // No Host at all on a later request.
  EXPECT_FALSE(Gate(kGetA + "GET / HTTP/1.1\r\n\r\n").ok);
}

TEST(HttpRequestGate, BodiesAreSkippedByTheirFramingNotReadAsRequests) {
  // A body that looks like a request for another host is a body.
  std::string post = "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: " +
                     std::to_string(kGetB.size()) + "\r\n\r\n" + kGetB;
  // Chunked: the same, with chunk extensions and trailers.
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", kGetB.size());
  std::string chunked = "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
                        std::string(size) + ";ext=1\r\n" + kGetB +
                        "\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
  for (const std::string& first : {post, chunked}) {
    for (size_t step : {size_t{0}, size_t{1}, size_t{5}}) {
      GateRun r = Gate(first + kGetA, step);
      EXPECT_TRUE(r.ok) << step;
      EXPECT_EQ(r.out, first + kGetA);
      EXPECT_EQ(r.requests, 2u);
      EXPECT_FALSE(Gate(first + kGetB, step).ok) << step;
    }
  }
}

TEST(HttpRequestGate, HostileFramingIsRefused) {
  for (const std::string& bad : {
           // Content-Length and chunked together, two lengths: ambiguous framing.
           std::string("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
           std::string("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n"
                       "Content-Length: 4\r\n\r\nabcd"),
           std::string("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: -1\r\n\r\n"),
           // A bad chunk size.
           std::string("POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "zz\r\n"),
           // Bare LF, folding, two Hosts, a target naming another host.
           std::string("GET / HTTP/1.1\nHost: a.test\n\n"),
           std::string("GET / HTTP/1.1\r\nHost: a.test\r\n Host: b.test\r\n\r\n"),
           std::string("GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n"),
           std::string("GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"),
           // Not HTTP/1.x.
           std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
           std::string(64, '\x01'),
       }) {
    EXPECT_FALSE(Gate(kGetA + bad).ok) << bad;
    EXPECT_FALSE(Gate(kGetA + bad, 1).ok) << bad;
  }
  // A head over the bound is refused even before it ends.
  HttpRequestGate gate(OnlyA);
  std::string out;
  ASSERT_TRUE(gate.Feed(kGetA + "GET / HTTP/1.1\r\nX: ", &out));
  EXPECT_FALSE(gate.Feed(std::string(HttpRequestGate::kMaxHead, 'y'), &out));
  EXPECT_EQ(out, kGetA);
}

const std::string kUpgrade = "GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\n"
                             "Upgrade: websocket\r\n\r\n";
const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const std::string k101 = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                         "Upgrade: websocket\r\n\r\n";

TEST(HttpRequestGate, AnUpgradeTheServerAcceptsMakesTheRestOpaque) {
  HttpRequestGate gate(OnlyA);
  std::string out;
  // A pipelined request first, then the upgrade, then bytes the guest sends early.
  std::string frames = "\x81\x05hello" + kGetB;
  ASSERT_TRUE(gate.Feed(kGetA + kUpgrade + frames, &out));
  EXPECT_EQ(out, kGetA + kUpgrade);  // The frames are held.
  ASSERT_TRUE(gate.FromServer(kOk));
  ASSERT_TRUE(gate.Feed("", &out));
  EXPECT_EQ(out, kGetA + kUpgrade);  // Still held: that was the first request's answer.
  ASSERT_TRUE(gate.FromServer(k101 + "\x81\x02hi"));
  ASSERT_TRUE(gate.Feed("", &out));
  EXPECT_TRUE(gate.opaque());
  ASSERT_TRUE(gate.Feed(kGetB, &out));
  EXPECT_EQ(out, kGetA + kUpgrade + frames + kGetB);
  // A CONNECT answered 2xx opens the same way.
  HttpRequestGate connect(OnlyA);
  std::string cout_;
  ASSERT_TRUE(connect.Feed("CONNECT a.test:80 HTTP/1.1\r\nHost: a.test\r\n\r\nraw", &cout_));
  ASSERT_TRUE(connect.FromServer("HTTP/1.1 200 Connection established\r\n\r\nraw-back"));
  ASSERT_TRUE(connect.Feed("", &cout_));
  EXPECT_TRUE(connect.opaque());
  EXPECT_EQ(cout_.substr(cout_.size() - 3), "raw");
}

TEST(HttpRequestGate, AnUpgradeTheServerIgnoresKeepsEveryRequestChecked) {
  // A server that ignores Upgrade answers 200 and reads the next request: it is checked.
  for (const std::string& answer : {kOk, std::string("HTTP/1.1 100 Continue\r\n\r\n") + kOk}) {
    HttpRequestGate gate(OnlyA);
    std::string out;
    ASSERT_TRUE(gate.Feed(kUpgrade + kGetB, &out));
    EXPECT_EQ(out, kUpgrade);
    // Read a byte at a time, the answer puts the held request back under the check
    // once its head is whole (a 100 Continue is not the answer).
    bool refused = false;
    for (size_t i = 0; i < answer.size() && !refused; ++i) {
      ASSERT_TRUE(gate.FromServer(answer.substr(i, 1)));
      refused = !gate.Feed("", &out);
      if (refused) {
        EXPECT_EQ(answer.substr(0, i + 1).rfind("200 OK"), answer.rfind("200 OK"));
      }
    }
    EXPECT_TRUE(refused);
    EXPECT_FALSE(gate.opaque());
    EXPECT_EQ(out.find("b.test"), std::string::npos);
  }
  // The answer to a HEAD has no body whatever its Content-Length says.
  HttpRequestGate gate(OnlyA);
  std::string out;
  ASSERT_TRUE(gate.Feed("HEAD / HTTP/1.1\r\nHost: a.test\r\n\r\n" + kUpgrade, &out));
  ASSERT_TRUE(gate.FromServer("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + k101));
  ASSERT_TRUE(gate.Feed("", &out));
  EXPECT_TRUE(gate.opaque());
  // Responses that do not parse: requests are still checked, an upgrade is refused.
  HttpRequestGate broken(OnlyA);
  out.clear();
  ASSERT_TRUE(broken.Feed(kGetA, &out));
  ASSERT_TRUE(broken.FromServer("NOT HTTP AT ALL\r\n\r\n"));
  ASSERT_TRUE(broken.Feed(kGetA, &out));
  EXPECT_FALSE(broken.Feed(kUpgrade, &out));
  // Too much held while waiting: refused.
  HttpRequestGate greedy(OnlyA);
  ASSERT_TRUE(greedy.Feed(kUpgrade, &out));
  EXPECT_FALSE(greedy.Feed(std::string(HttpRequestGate::kMaxHead + 1, 'x'), &out));
}

// The Host values (lower case, port removed) of the requests a server parses from
// `bytes`, read with http-parser independently of the gate's state.
std::vector<std::string> ServerSeenHosts(const std::string& bytes) {
  struct State {
    std::string field, value, host;
    bool in_value = false;
    std::vector<std::string> hosts;
    void EndHeader() {
      std::string f;
      for (char c : field) f += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (f == "host") host = value;
      field.clear();
      value.clear();
      in_value = false;
    }
  } st;
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_header_field = [](http_parser* p, const char* at, size_t n) {
    auto* state = static_cast<State*>(p->data);
    if (state->in_value) state->EndHeader();
    state->field.append(at, n);
    return 0;
  };
  s.on_header_value = [](http_parser* p, const char* at, size_t n) {
    auto* state = static_cast<State*>(p->data);
    state->in_value = true;
    state->value.append(at, n);
    return 0;
  };
  s.on_headers_complete = [](http_parser* p) {
    auto* state = static_cast<State*>(p->data);
    if (state->in_value) state->EndHeader();
    std::string h;
    for (char c : state->host) h += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    h = h.substr(0, h.find(':'));
    while (!h.empty() && h.back() == ' ') h.pop_back();
    while (!h.empty() && h.front() == ' ') h.erase(0, 1);
    state->hosts.push_back(h);
    state->host.clear();
    return 0;
  };
  http_parser p;
  http_parser_init(&p, HTTP_REQUEST);
  p.data = &st;
  http_parser_execute(&p, &s, bytes.data(), bytes.size());
  return st.hosts;
}

TEST(HttpRequestGate, RandomSplitsAndMutationsNeverPassAnotherHost) {
  std::mt19937 rng(15);
  std::string post = "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n0\r\n\r\n";
  std::string base = kGetA + post + kGetA;
  for (int i = 0; i < 3000; ++i) {
    std::string in = base;
    int edits = static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % in.size();
      switch (rng() % 3) {
        case 0: in[at] = static_cast<char>(rng()); break;
        case 1: in.erase(at, 1 + rng() % 8); break;
        default: in.insert(at, kGetB.substr(0, 1 + rng() % kGetB.size())); break;
      }
      if (in.empty()) in = "x";
    }
    HttpRequestGate gate(OnlyA);
    std::string out;
    for (size_t at = 0; at < in.size();) {
      size_t n = 1 + rng() % 40;
      if (!gate.Feed(std::string_view(in).substr(at, n), &out)) break;
      at += n;
    }
    EXPECT_LE(out.size(), in.size());
    EXPECT_EQ(out, in.substr(0, out.size()));  // Only a prefix, unchanged.
    // What a server reads from the bytes that passed names a.test only.
    if (!gate.opaque()) {
      for (const std::string& host : ServerSeenHosts(out)) EXPECT_EQ(host, "a.test") << in;
    }
  }
}

}  // namespace
}  // namespace boxlite::net
