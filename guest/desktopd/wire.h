// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-desktopd's wire format (docs/computerbox.md, "The boxlite-desktopd protocol"),
// apart from X: parsing a request line into a Request, formatting answers, reading the
// request stream. Everything here is pure or works on a given descriptor, so it is tested
// in-process (wire_test.cc) without a display.
//
// The request stream comes from the host and is not trusted: lines are bounded
// (kMaxLine), numbers are parsed whole and range-checked, text is bounded (kMaxText) and
// not assumed to be UTF-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boxlite::desktopd {

inline constexpr int kProtocolVersion = 1;
inline constexpr size_t kMaxLine = 64 * 1024;
inline constexpr size_t kMaxText = 1 << 20;
inline constexpr int kDefaultPngLevel = 1;  // zlib's fastest: most of a screenshot's cost.

// The outcome of one request: a status word and a body.
struct Reply {
  std::string status = "ok";
  std::string body;

  static Reply Ok(std::string body = {}) { return Reply{"ok", std::move(body)}; }
  static Reply Invalid(std::string msg) { return Reply{"invalid", std::move(msg)}; }
  static Reply Range(std::string msg) { return Reply{"range", std::move(msg)}; }
  static Reply Failed(std::string msg) { return Reply{"failed", std::move(msg)}; }
};

enum class Verb {
  kPing, kSize, kCursor, kMove, kDown, kUp, kClick, kDrag, kScroll, kType, kKey,
  kScreenshot, kReady, kQuit,
};

// One well-formed request. Which fields are set depends on the verb:
//   move: x y; down/up: button; click: button count [x y] (has_point);
//   drag: x y x2 y2 button; scroll: x y button (4-7 for the direction) count;
//   type: text_bytes (the bytes follow the line); key: key_spec; screenshot: level.
struct Request {
  std::string id;
  Verb verb = Verb::kPing;
  long x = 0;
  long y = 0;
  long x2 = 0;
  long y2 = 0;
  bool has_point = false;
  unsigned button = 1;
  long count = 0;
  size_t text_bytes = 0;
  std::string key_spec;
  int level = kDefaultPngLevel;
};

// What ParseRequest made of a line.
struct Parsed {
  enum Kind {
    kEmpty,    // A blank line: no answer.
    kRequest,  // `request` is set.
    kInvalid,  // Answer `reply` under `id` and go on.
    kFatal,    // Answer `reply` under `id` and stop: the stream cannot be resynchronised.
  };
  Kind kind = kEmpty;
  std::string id;
  Request request;
  Reply reply;
};

Parsed ParseRequest(std::string_view line);

// Words separated by one or more spaces.
std::vector<std::string_view> SplitSpaces(std::string_view s);
// A whole decimal number (optional '-'), nullopt on junk or overflow.
std::optional<long> ParseLong(std::string_view s);
std::string Lower(std::string_view s);
// "left", "middle", "right" or a button number 1-9.
std::optional<unsigned> ParseButton(std::string_view s);
// Decodes UTF-8 into code points; invalid bytes become U+FFFD.
std::vector<uint32_t> DecodeUtf8(std::string_view s);
// The key names of one xdotool chord ("ctrl+shift+a"): split at '+', where a '+' that
// is a whole name ("+", "ctrl++") is the name "+" (the plus key).
std::vector<std::string_view> SplitChord(std::string_view chord);

// The answer's bytes: "<id> <status> <length>\n" and the body.
std::string FormatReplyHead(std::string_view id, const Reply& r);
// Writes the answer to `fd`; false on a write error.
bool SendReply(int fd, std::string_view id, const Reply& r);

// Reads requests from a descriptor: lines, and byte blocks after "type". A line longer
// than kMaxLine is cut there and returned as it is (it then fails to parse).
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  // False at end of input (or on a read error).
  bool ReadLine(std::string* line);
  bool ReadBytes(size_t n, std::string* out);

 private:
  bool Fill();
  void Compact();

  int fd_;
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace boxlite::desktopd
