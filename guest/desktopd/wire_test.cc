// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-desktopd's wire format without a display: request parsing (every verb's
// usage errors, hostile numbers), answers, and the request stream over a pipe.

#include "guest/desktopd/wire.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace boxlite::desktopd {
namespace {

Parsed::Kind KindOf(std::string_view line) { return ParseRequest(line).kind; }

std::string InvalidBody(std::string_view line) {
  Parsed p = ParseRequest(line);
  EXPECT_EQ(p.kind, Parsed::kInvalid) << line;
  EXPECT_EQ(p.reply.status, "invalid") << line;
  return p.reply.body;
}

TEST(DesktopdWireTest, BlankLinesAreSkippedAndAVerbIsRequired) {
  EXPECT_EQ(KindOf(""), Parsed::kEmpty);
  EXPECT_EQ(KindOf("   "), Parsed::kEmpty);
  Parsed p = ParseRequest("7");
  EXPECT_EQ(p.kind, Parsed::kInvalid);
  EXPECT_EQ(p.id, "7");
  EXPECT_EQ(p.reply.body, "no verb");
  EXPECT_EQ(InvalidBody("1 fly"), "unknown verb \"fly\"");
}

TEST(DesktopdWireTest, ParsesEachVerb) {
  Parsed p = ParseRequest("  12   move 3  4 ");
  ASSERT_EQ(p.kind, Parsed::kRequest);
  EXPECT_EQ(p.id, "12");
  EXPECT_EQ(p.request.verb, Verb::kMove);
  EXPECT_EQ(p.request.x, 3);
  EXPECT_EQ(p.request.y, 4);

  p = ParseRequest("1 click right 2 10 -1");  // The range is checked against the screen.
  ASSERT_EQ(p.kind, Parsed::kRequest);
  EXPECT_EQ(p.request.button, 3u);
  EXPECT_EQ(p.request.count, 2);
  EXPECT_TRUE(p.request.has_point);
  EXPECT_EQ(p.request.y, -1);

  p = ParseRequest("1 click Middle 1");
  ASSERT_EQ(p.kind, Parsed::kRequest);
  EXPECT_EQ(p.request.button, 2u);
  EXPECT_FALSE(p.request.has_point);

  p = ParseRequest("1 drag 1 2 3 4");
  ASSERT_EQ(p.kind, Parsed::kRequest);
  EXPECT_EQ(p.request.button, 1u);
  EXPECT_EQ(p.request.x2, 3);
  EXPECT_EQ(p.request.y2, 4);
  EXPECT_EQ(ParseRequest("1 drag 1 2 3 4 9").request.button, 9u);

  p = ParseRequest("1 scroll 5 6 LEFT 3");
  ASSERT_EQ(p.kind, Parsed::kRequest);
  EXPECT_EQ(p.request.button, 6u);
  EXPECT_EQ(p.request.count, 3);

  EXPECT_EQ(ParseRequest("1 down").request.button, 1u);
  EXPECT_EQ(ParseRequest("1 up left").request.verb, Verb::kUp);
  EXPECT_EQ(ParseRequest("1 screenshot").request.level, kDefaultPngLevel);
  EXPECT_EQ(ParseRequest("1 screenshot 9").request.level, 9);
  EXPECT_EQ(ParseRequest("1 type 0").request.text_bytes, 0u);
  EXPECT_EQ(ParseRequest("1 type 1048576").request.text_bytes, kMaxText);
  for (auto [line, verb] : {std::pair{"1 ping", Verb::kPing}, {"1 size", Verb::kSize},
                            {"1 cursor", Verb::kCursor}, {"1 ready", Verb::kReady},
                            {"1 quit", Verb::kQuit}}) {
    Parsed q = ParseRequest(line);
    EXPECT_EQ(q.kind, Parsed::kRequest) << line;
    EXPECT_EQ(q.request.verb, verb) << line;
  }
}

TEST(DesktopdWireTest, UsageErrorsNameTheVerb) {
  EXPECT_EQ(InvalidBody("1 move 3"), "usage: move X Y");
  EXPECT_EQ(InvalidBody("1 move 3 x"), "usage: move X Y");
  EXPECT_EQ(InvalidBody("1 move 3 4 5"), "usage: move X Y");
  EXPECT_EQ(InvalidBody("1 down 10"), "usage: down [BUTTON]");
  EXPECT_EQ(InvalidBody("1 up left 1"), "usage: up [BUTTON]");
  EXPECT_EQ(InvalidBody("1 click left 0"), "usage: click BUTTON COUNT [X Y]");
  EXPECT_EQ(InvalidBody("1 click left 11"), "usage: click BUTTON COUNT [X Y]");
  EXPECT_EQ(InvalidBody("1 click left 1 5"), "usage: click BUTTON COUNT [X Y]");
  EXPECT_EQ(InvalidBody("1 click left 1 5 y"), "usage: click BUTTON COUNT [X Y]");
  EXPECT_EQ(InvalidBody("1 drag 1 2 3"), "usage: drag X1 Y1 X2 Y2 [BUTTON]");
  EXPECT_EQ(InvalidBody("1 drag 1 2 3 4 0"), "usage: drag X1 Y1 X2 Y2 [BUTTON]");
  EXPECT_EQ(InvalidBody("1 scroll 1 2 sideways 1"), "usage: scroll X Y up|down|left|right AMOUNT");
  EXPECT_EQ(InvalidBody("1 scroll 1 2 up 1001"), "usage: scroll X Y up|down|left|right AMOUNT");
  EXPECT_EQ(InvalidBody("1 scroll 1 2 up -1"), "usage: scroll X Y up|down|left|right AMOUNT");
  EXPECT_EQ(InvalidBody("1 screenshot 10"), "usage: screenshot [PNG_LEVEL 0-9]");
  EXPECT_EQ(InvalidBody("1 screenshot 1 2"), "usage: screenshot [PNG_LEVEL 0-9]");
}

TEST(DesktopdWireTest, HostileNumbersAreRefusedNotWrapped) {
  // Past long's range: refused, never read as some other coordinate.
  EXPECT_EQ(InvalidBody("1 move 99999999999999999999999 0"), "usage: move X Y");
  EXPECT_EQ(InvalidBody("1 move -99999999999999999999999 0"), "usage: move X Y");
  EXPECT_EQ(InvalidBody("1 move +5 0"), "usage: move X Y");
  EXPECT_EQ(InvalidBody("1 move 0x10 0"), "usage: move X Y");
  EXPECT_EQ(InvalidBody("1 move - 0"), "usage: move X Y");
  EXPECT_EQ(ParseLong("9223372036854775807"), 9223372036854775807L);
  EXPECT_FALSE(ParseLong("9223372036854775808"));
  EXPECT_FALSE(ParseLong(""));
  EXPECT_FALSE(ParseLong("1 "));
}

TEST(DesktopdWireTest, ABadTypeCountStopsTheStream) {
  // The bytes that follow cannot be told from the next request: the daemon must stop.
  for (const char* line : {"1 type", "1 type -1", "1 type 1048577", "1 type x",
                           "1 type 99999999999999999999"}) {
    Parsed p = ParseRequest(line);
    EXPECT_EQ(p.kind, Parsed::kFatal) << line;
    EXPECT_EQ(p.reply.status, "invalid");
  }
}

TEST(DesktopdWireTest, KeySpecIsTheRestOfTheLineEvenWhenTheIdContainsKey) {
  EXPECT_EQ(ParseRequest("1 key ctrl+a  Return").request.key_spec, " ctrl+a  Return");
  // The id is the host's choice; a "key" inside it is not the verb.
  Parsed p = ParseRequest("monkey key a");
  ASSERT_EQ(p.kind, Parsed::kRequest);
  EXPECT_EQ(p.id, "monkey");
  EXPECT_EQ(p.request.key_spec, " a");
}

TEST(DesktopdWireTest, SplitChordKeepsThePlusKey) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(SplitChord("ctrl+shift+a"), (V{"ctrl", "shift", "a"}));
  EXPECT_EQ(SplitChord("+"), (V{"+"}));
  EXPECT_EQ(SplitChord("ctrl++"), (V{"ctrl", "+"}));
  // Only a trailing "++" is the plus key; "ctrl++a" holds an empty name (refused).
  EXPECT_EQ(SplitChord("ctrl++a"), (V{"ctrl", "", "a"}));
  EXPECT_EQ(SplitChord("a+"), (V{"a", ""}));  // An empty name: refused as unknown.
  EXPECT_EQ(SplitChord("F5"), (V{"F5"}));
}

TEST(DesktopdWireTest, DecodeUtf8ReplacesInvalidBytes) {
  EXPECT_EQ(DecodeUtf8("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
            (std::vector<uint32_t>{'a', 0xE9, 0x20AC, 0x1F600}));
  EXPECT_EQ(DecodeUtf8("\xff" "b"), (std::vector<uint32_t>{0xFFFD, 'b'}));
  EXPECT_EQ(DecodeUtf8("\xc3"), (std::vector<uint32_t>{0xFFFD}));      // Truncated.
  EXPECT_EQ(DecodeUtf8("\xc3(" ), (std::vector<uint32_t>{0xFFFD, '('}));  // Bad continuation.
}

TEST(DesktopdWireTest, RepliesCarryTheirLength) {
  EXPECT_EQ(FormatReplyHead("4", Reply::Ok("pong")), "4 ok 4\n");
  EXPECT_EQ(FormatReplyHead("x", Reply::Range("")), "x range 0\n");

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string big(200000, 'p');
  std::thread writer([&] {
    EXPECT_TRUE(SendReply(fds[1], "9", Reply::Ok(big)));
    EXPECT_TRUE(SendReply(fds[1], "10", Reply::Failed("no")));
    ::close(fds[1]);
  });
  LineReader r(fds[0]);
  std::string line;
  ASSERT_TRUE(r.ReadLine(&line));
  EXPECT_EQ(line, "9 ok 200000");
  std::string body;
  ASSERT_TRUE(r.ReadBytes(big.size(), &body));
  EXPECT_EQ(body, big);
  ASSERT_TRUE(r.ReadLine(&line));
  EXPECT_EQ(line, "10 failed 2");
  ASSERT_TRUE(r.ReadBytes(2, &body));
  EXPECT_EQ(body, "no");
  EXPECT_FALSE(r.ReadLine(&line));
  writer.join();
  ::close(fds[0]);
}

TEST(DesktopdWireTest, ReaderBoundsLinesAndReadsTypedBytes) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string input = "1 type 5\nab\ncd2 ping\n" + std::string(kMaxLine + 10, 'x') + "\n3 quit\n";
  std::thread writer([&] {
    const char* p = input.data();
    size_t n = input.size();
    while (n > 0) {
      ssize_t w = ::write(fds[1], p, n);
      ASSERT_GT(w, 0);
      p += w;
      n -= static_cast<size_t>(w);
    }
    ::close(fds[1]);
  });
  LineReader r(fds[0]);
  std::string line;
  std::string text;
  ASSERT_TRUE(r.ReadLine(&line));
  EXPECT_EQ(line, "1 type 5");
  ASSERT_TRUE(r.ReadBytes(5, &text));
  EXPECT_EQ(text, "ab\ncd");  // A newline inside typed text is text.
  ASSERT_TRUE(r.ReadLine(&line));
  EXPECT_EQ(line, "2 ping");
  ASSERT_TRUE(r.ReadLine(&line));
  EXPECT_EQ(line.size(), kMaxLine);  // Cut at the bound...
  ASSERT_TRUE(r.ReadLine(&line));
  EXPECT_EQ(line, std::string(10, 'x'));  // ...and the rest is a line of its own.
  ASSERT_TRUE(r.ReadLine(&line));
  EXPECT_EQ(line, "3 quit");
  EXPECT_FALSE(r.ReadLine(&line));
  EXPECT_FALSE(r.ReadBytes(1, &text));
  writer.join();
  ::close(fds[0]);
}

}  // namespace
}  // namespace boxlite::desktopd
