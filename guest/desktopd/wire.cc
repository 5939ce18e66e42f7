// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

#include "guest/desktopd/wire.h"

#include <errno.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <map>

namespace boxlite::desktopd {
namespace {

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

Parsed Answer(Parsed::Kind kind, std::string_view id, Reply reply) {
  Parsed p;
  p.kind = kind;
  p.id = std::string(id);
  p.reply = std::move(reply);
  return p;
}

}  // namespace

std::vector<std::string_view> SplitSpaces(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<long> ParseLong(std::string_view s) {
  long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<unsigned> ParseButton(std::string_view s) {
  std::string l = Lower(s);
  if (l == "left") return 1u;
  if (l == "middle") return 2u;
  if (l == "right") return 3u;
  auto v = ParseLong(s);
  if (!v || *v < 1 || *v > 9) return std::nullopt;
  return static_cast<unsigned>(*v);
}

std::vector<uint32_t> DecodeUtf8(std::string_view s) {
  std::vector<uint32_t> out;
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + static_cast<size_t>(len) > s.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((cc >> 6) != 2) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return out;
}

std::vector<std::string_view> SplitChord(std::string_view chord) {
  std::vector<std::string_view> names;
  size_t start = 0;
  while (start <= chord.size()) {
    size_t plus = chord.find('+', start);
    // "ctrl++" and "+" name the plus key itself.
    if (plus == start && (plus + 1 == chord.size() || chord[plus + 1] == '+')) {
      names.push_back("+");
      if (start + 1 >= chord.size()) break;
      start = start + 2;
      continue;
    }
    names.push_back(chord.substr(start, plus == std::string_view::npos ? std::string_view::npos
                                                                        : plus - start));
    if (plus == std::string_view::npos) break;
    start = plus + 1;
  }
  return names;
}

Parsed ParseRequest(std::string_view line) {
  auto words = SplitSpaces(line);
  if (words.empty()) return Parsed{};
  std::string_view id = words[0];
  if (words.size() < 2) return Answer(Parsed::kInvalid, id, Reply::Invalid("no verb"));
  std::string verb(words[1]);
  const size_t n = words.size();
  Parsed out;
  out.kind = Parsed::kRequest;
  out.id = std::string(id);
  Request& r = out.request;
  r.id = out.id;
  auto invalid = [&](std::string usage) { return Answer(Parsed::kInvalid, id, Reply::Invalid(std::move(usage))); };
  // All of words[from..to) as numbers, or nullopt.
  auto numbers = [&](size_t from, size_t to) -> std::optional<std::vector<long>> {
    std::vector<long> v;
    for (size_t i = from; i < to; ++i) {
      auto x = ParseLong(words[i]);
      if (!x) return std::nullopt;
      v.push_back(*x);
    }
    return v;
  };
  if (verb == "ping") {
    r.verb = Verb::kPing;
  } else if (verb == "size") {
    r.verb = Verb::kSize;
  } else if (verb == "cursor") {
    r.verb = Verb::kCursor;
  } else if (verb == "ready") {
    r.verb = Verb::kReady;
  } else if (verb == "quit") {
    r.verb = Verb::kQuit;
  } else if (verb == "move") {
    auto p = n == 4 ? numbers(2, 4) : std::nullopt;
    if (!p) return invalid("usage: move X Y");
    r.verb = Verb::kMove;
    r.x = (*p)[0];
    r.y = (*p)[1];
  } else if (verb == "down" || verb == "up") {
    auto button = n == 3 ? ParseButton(words[2]) : std::optional<unsigned>(1u);
    if (!button || n > 3) return invalid("usage: " + verb + " [BUTTON]");
    r.verb = verb == "down" ? Verb::kDown : Verb::kUp;
    r.button = *button;
  } else if (verb == "click") {
    // click BUTTON COUNT [X Y]
    auto button = n >= 3 ? ParseButton(words[2]) : std::nullopt;
    const long count = n >= 4 ? ParseLong(words[3]).value_or(0) : 0;
    auto point = n == 6 ? numbers(4, 6) : std::nullopt;
    if (!button || count < 1 || count > 10 || (n != 4 && !(n == 6 && point))) {
      return invalid("usage: click BUTTON COUNT [X Y]");
    }
    r.verb = Verb::kClick;
    r.button = *button;
    r.count = count;
    if (point) {
      r.has_point = true;
      r.x = (*point)[0];
      r.y = (*point)[1];
    }
  } else if (verb == "drag") {
    // drag X1 Y1 X2 Y2 [BUTTON]
    auto button = n == 7 ? ParseButton(words[6]) : std::optional<unsigned>(1u);
    auto p = n == 6 || n == 7 ? numbers(2, 6) : std::nullopt;
    if (!button || !p) return invalid("usage: drag X1 Y1 X2 Y2 [BUTTON]");
    r.verb = Verb::kDrag;
    r.button = *button;
    r.x = (*p)[0];
    r.y = (*p)[1];
    r.x2 = (*p)[2];
    r.y2 = (*p)[3];
  } else if (verb == "scroll") {
    // scroll X Y DIRECTION AMOUNT: buttons 4-7 are up, down, left, right.
    static const std::map<std::string, unsigned> kDirections = {
        {"up", 4}, {"down", 5}, {"left", 6}, {"right", 7}};
    auto p = n == 6 ? numbers(2, 4) : std::nullopt;
    auto dir = n == 6 ? kDirections.find(Lower(words[4])) : kDirections.end();
    const long amount = n == 6 ? ParseLong(words[5]).value_or(-1) : -1;
    if (!p || dir == kDirections.end() || amount < 0 || amount > 1000) {
      return invalid("usage: scroll X Y up|down|left|right AMOUNT");
    }
    r.verb = Verb::kScroll;
    r.x = (*p)[0];
    r.y = (*p)[1];
    r.button = dir->second;
    r.count = amount;
  } else if (verb == "type") {
    auto bytes = n == 3 ? ParseLong(words[2]) : std::nullopt;
    if (!bytes || *bytes < 0 || static_cast<size_t>(*bytes) > kMaxText) {
      // Without a valid count the stream cannot be resynchronised: stop.
      return Answer(Parsed::kFatal, id,
                    Reply::Invalid("usage: type NBYTES, then NBYTES bytes of UTF-8"));
    }
    r.verb = Verb::kType;
    r.text_bytes = static_cast<size_t>(*bytes);
  } else if (verb == "key") {
    // Everything after the verb: the chords keep their own spacing rules (SplitSpaces).
    r.verb = Verb::kKey;
    size_t after = static_cast<size_t>(words[1].data() - line.data()) + words[1].size();
    r.key_spec = std::string(line.substr(after));
  } else if (verb == "screenshot") {
    long level = kDefaultPngLevel;
    if (n == 3) {
      auto v = ParseLong(words[2]);
      level = v && *v >= 0 && *v <= 9 ? *v : -1;
    }
    if (level < 0 || n > 3) return invalid("usage: screenshot [PNG_LEVEL 0-9]");
    r.verb = Verb::kScreenshot;
    r.level = static_cast<int>(level);
  } else {
    return invalid("unknown verb \"" + verb + "\"");
  }
  return out;
}

std::string FormatReplyHead(std::string_view id, const Reply& r) {
  return std::string(id) + " " + r.status + " " + std::to_string(r.body.size()) + "\n";
}

bool SendReply(int fd, std::string_view id, const Reply& r) {
  std::string head = FormatReplyHead(id, r);
  if (r.body.size() < 65536) {
    head += r.body;
    return WriteAll(fd, head.data(), head.size());
  }
  return WriteAll(fd, head.data(), head.size()) && WriteAll(fd, r.body.data(), r.body.size());
}

bool LineReader::ReadLine(std::string* line) {
  for (;;) {
    size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos && nl - pos_ <= kMaxLine) {
      line->assign(buf_, pos_, nl - pos_);
      pos_ = nl + 1;
      Compact();
      return true;
    }
    if (buf_.size() - pos_ > kMaxLine) {
      line->assign(buf_, pos_, kMaxLine);
      pos_ += kMaxLine;
      Compact();
      return true;
    }
    if (!Fill()) return false;
  }
}

bool LineReader::ReadBytes(size_t n, std::string* out) {
  while (buf_.size() - pos_ < n) {
    if (!Fill()) return false;
  }
  out->assign(buf_, pos_, n);
  pos_ += n;
  Compact();
  return true;
}

bool LineReader::Fill() {
  char chunk[65536];
  for (;;) {
    ssize_t r = ::read(fd_, chunk, sizeof(chunk));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf_.append(chunk, static_cast<size_t>(r));
    return true;
  }
}

void LineReader::Compact() {
  if (pos_ > 65536 || pos_ == buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

}  // namespace boxlite::desktopd
