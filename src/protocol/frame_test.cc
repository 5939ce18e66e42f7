// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Edge cases of the frame codec in the style of leveldb's log_test: every way a byte
// stream can be cut, corrupted or interleaved.
#include "src/protocol/frame.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

namespace boxlite::protocol {
namespace {

std::vector<Frame> DecodeAll(FrameDecoder* d) {
  std::vector<Frame> out;
  while (true) {
    auto next = d->Next();
    EXPECT_TRUE(next.ok()) << next.error().ToString();
    if (!next.ok() || !next->has_value()) break;
    out.push_back(std::move(**next));
  }
  return out;
}

std::string U32(uint32_t v) {
  std::string s;
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

TEST(FrameTest, RoundTripEveryKind) {
  std::string wire;
  AppendFrame(&wire, FrameKind::kRequest, 7, R"({"op":"hello"})");
  AppendData(&wire, 7, kFdStdout, std::string("\0bin\xff", 5));
  AppendClose(&wire, 7, kFdStderr);
  AppendCredit(&wire, 9, kFdStdin, 123456);
  AppendFrame(&wire, FrameKind::kEvent, 0, "{}");
  AppendFrame(&wire, FrameKind::kResponse, 7, "");
  FrameDecoder d;
  d.Feed(wire);
  auto frames = DecodeAll(&d);
  ASSERT_EQ(frames.size(), 6u);
  EXPECT_EQ(frames[0].kind, FrameKind::kRequest);
  EXPECT_EQ(frames[0].stream, 7u);
  EXPECT_EQ(frames[0].payload, R"({"op":"hello"})");
  auto data = ParseData(frames[1].payload);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->fd, kFdStdout);
  EXPECT_EQ(data->bytes, std::string_view("\0bin\xff", 5));
  EXPECT_EQ(*ParseClose(frames[2].payload), kFdStderr);
  auto credit = ParseCredit(frames[3].payload);
  ASSERT_TRUE(credit.ok());
  EXPECT_EQ(credit->fd, kFdStdin);
  EXPECT_EQ(credit->bytes, 123456u);
  EXPECT_EQ(frames[3].stream, 9u);
  EXPECT_EQ(frames[4].kind, FrameKind::kEvent);
  EXPECT_EQ(frames[5].payload, "");
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameTest, HeaderIsLittleEndianLengthKindStream) {
  std::string wire;
  AppendFrame(&wire, FrameKind::kData, 0x01020304, "xy");
  EXPECT_EQ(wire, U32(7) + "\x03" + U32(0x01020304) + "xy");
}

TEST(FrameTest, TruncatedHeaderWaitsForMore) {
  // Every prefix shorter than a whole frame yields "need more", never a frame or error.
  std::string wire;
  AppendFrame(&wire, FrameKind::kRequest, 1, "payload");
  for (size_t cut = 0; cut < wire.size(); ++cut) {
    FrameDecoder d;
    d.Feed(wire.substr(0, cut));
    auto next = d.Next();
    ASSERT_TRUE(next.ok()) << "cut at " << cut;
    EXPECT_FALSE(next->has_value()) << "cut at " << cut;
  }
}

TEST(FrameTest, SplitAcrossReadsAtEveryByte) {
  std::string wire;
  AppendFrame(&wire, FrameKind::kRequest, 1, "first");
  AppendData(&wire, 2, kFdStdout, std::string(3000, 'z'));
  AppendFrame(&wire, FrameKind::kResponse, 1, "third");
  for (size_t chunk = 1; chunk <= 17; ++chunk) {
    FrameDecoder d;
    std::vector<Frame> frames;
    for (size_t off = 0; off < wire.size(); off += chunk) {
      d.Feed(wire.substr(off, chunk));
      auto more = DecodeAll(&d);
      for (auto& f : more) frames.push_back(std::move(f));
    }
    ASSERT_EQ(frames.size(), 3u) << "chunk " << chunk;
    EXPECT_EQ(frames[0].payload, "first");
    EXPECT_EQ(frames[1].payload.size(), 3001u);
    EXPECT_EQ(frames[2].payload, "third");
  }
}

TEST(FrameTest, PrepareCommitReadsDirectly) {
  std::string wire;
  AppendFrame(&wire, FrameKind::kEvent, 3, "ev");
  FrameDecoder d;
  char* p = d.Prepare(4096);
  std::memcpy(p, wire.data(), wire.size());
  d.Commit(wire.size());
  auto frames = DecodeAll(&d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, "ev");
}

TEST(FrameTest, OversizeLengthIsProtocolError) {
  FrameDecoder d;
  d.Feed(U32(kMaxFrameLength + 1) + "\x01" + U32(0));
  auto next = d.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_TRUE(next.error().IsProtocolError());
  EXPECT_NE(next.error().message().find("length"), std::string::npos);
}

TEST(FrameTest, MaximumLengthIsAccepted) {
  std::string wire;
  AppendFrame(&wire, FrameKind::kData, 1, std::string(kMaxPayload, 'm'));
  FrameDecoder d;
  d.Feed(wire);
  auto frames = DecodeAll(&d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload.size(), kMaxPayload);
}

TEST(FrameTest, LengthTooSmallForHeaderIsProtocolError) {
  FrameDecoder d;
  d.Feed(U32(4) + "\x01" + "abc");
  EXPECT_TRUE(d.Next().error().IsProtocolError());
}

TEST(FrameTest, UnknownKindIsProtocolErrorBeforePayloadArrives) {
  // The kind is checked as soon as the header is in: a bad peer is cut off early.
  for (char kind : {'\x00', '\x07', '\xff'}) {
    FrameDecoder d;
    d.Feed(U32(1000) + std::string(1, kind) + U32(0));
    auto next = d.Next();
    ASSERT_FALSE(next.ok());
    EXPECT_NE(next.error().message().find("unknown frame kind"), std::string::npos);
  }
}

TEST(FrameTest, ErrorIsSticky) {
  FrameDecoder d;
  d.Feed(U32(0));
  EXPECT_FALSE(d.Next().ok());
  std::string good;
  AppendFrame(&good, FrameKind::kRequest, 1, "x");
  d.Feed(good);
  EXPECT_FALSE(d.Next().ok());
}

TEST(FrameTest, InterleavedStreamsKeepPerStreamOrder) {
  // Four execs' output interleaved frame by frame comes apart intact per stream.
  std::string wire;
  std::map<uint32_t, std::string> sent;
  std::mt19937 rng(42);
  for (int i = 0; i < 400; ++i) {
    uint32_t stream = 2 + (rng() % 4) * 2;
    std::string chunk(rng() % 100 + 1, static_cast<char>('a' + stream));
    chunk += std::to_string(i);
    sent[stream] += chunk;
    AppendData(&wire, stream, kFdStdout, chunk);
  }
  FrameDecoder d;
  std::map<uint32_t, std::string> got;
  for (size_t off = 0; off < wire.size(); off += 333) {
    d.Feed(wire.substr(off, 333));
    for (auto& f : DecodeAll(&d)) got[f.stream] += std::string(ParseData(f.payload)->bytes);
  }
  EXPECT_EQ(got, sent);
}

TEST(FrameTest, MalformedSmallPayloads) {
  EXPECT_TRUE(ParseData("").error().IsProtocolError());
  EXPECT_TRUE(ParseClose("").error().IsProtocolError());
  EXPECT_TRUE(ParseClose("12").error().IsProtocolError());
  EXPECT_TRUE(ParseCredit("1234").error().IsProtocolError());
  EXPECT_TRUE(ParseCredit("123456").error().IsProtocolError());
}

std::string ReadGolden(const std::string& name) {
  std::ifstream in(std::string(BOXLITE_TEST_DATA_DIR) + "/frames/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(FrameTest, GoldenFramesMatchTheDocumentedBytes) {
  // tests/data/frames holds frames exactly as docs/protocol.md shows them; an encoder
  // change that breaks old agents or hosts fails here.
  std::string hello;
  AppendFrame(&hello, FrameKind::kRequest, 1, R"({"op":"hello","version":1})");
  EXPECT_EQ(hello, ReadGolden("hello_request.bin"));
  std::string data;
  AppendData(&data, 2, kFdStdout, "hi\n");
  EXPECT_EQ(data, ReadGolden("stdout_data.bin"));
  std::string credit;
  AppendCredit(&credit, 2, kFdStdout, 65536);
  EXPECT_EQ(credit, ReadGolden("stdout_credit.bin"));
}

}  // namespace
}  // namespace boxlite::protocol
