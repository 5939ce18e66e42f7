// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-desktopd: the one long-lived input and screenshot process of a ComputerBox.
// ComputerBox starts it once per box with an exec and then sends it requests on stdin and
// reads the answers on stdout, so a click or a screenshot costs one round trip on an
// already open stream instead of a process spawn in the (often emulated) guest.
//
// It connects to the X display (Xvfb), injects input with XTest (pointer motion, buttons,
// keys; text through a keysym-to-keycode mapping, with spare keycodes remapped for
// characters the keymap lacks) and reads the root window with MIT-SHM (XGetImage when
// shared memory is refused), encoding PNG with zlib in bands that are reused while their
// pixels stay the same (PngEncoder).
//
// See docs/computerbox.md for the wire format. In short: a request is one line
// "<id> <verb> [<arg>...]\n" ("type" is followed by a byte count and that many bytes of
// UTF-8); every answer is "<id> <status> <length>\n" followed by <length> bytes of body.
//
// Single-threaded: one request at a time, in order. stderr carries diagnostics only.

#include <X11/XKBlib.h>
#include <X11/Xatom.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
#include <X11/extensions/XTest.h>
#include <X11/keysym.h>
#include <errno.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr int kProtocolVersion = 1;
constexpr size_t kMaxLine = 64 * 1024;
constexpr size_t kMaxText = 1 << 20;
constexpr int kDefaultPngLevel = 1;  // zlib's fastest: most of a screenshot's cost.
// A drag moves in kDragSteps steps, kDragStepMicros apart: applications see motion with
// the button held, as from a hand.
constexpr long kDragStepMicros = 2000;
constexpr int kDragSteps = 8;
// Spare keycodes lent to characters the keymap lacks, and the pause after remapping them
// (see Desktop::Type).
constexpr int kScratchKeycodes = 16;
constexpr long kRemapSettleMicros = 20000;
// How long a button event may stay frozen by a grab before we stop waiting for it.
constexpr long kButtonWaitMicros = 2000000;
constexpr long kButtonPollMicros = 1000;

// The outcome of one request: a status word and a body.
struct Reply {
  std::string status = "ok";
  std::string body;

  static Reply Ok(std::string body = {}) { return Reply{"ok", std::move(body)}; }
  static Reply Invalid(std::string msg) { return Reply{"invalid", std::move(msg)}; }
  static Reply Range(std::string msg) { return Reply{"range", std::move(msg)}; }
  static Reply Failed(std::string msg) { return Reply{"failed", std::move(msg)}; }
};

int g_x_error = 0;  // Last X protocol error code seen by XErrorHandlerRecord.

int XErrorHandlerRecord(Display*, XErrorEvent* ev) {
  g_x_error = ev->error_code;
  return 0;
}

int XIoErrorHandlerExit(Display*) {
  std::fprintf(stderr, "boxlite-desktopd: lost the X display\n");
  std::_Exit(3);
}

void SleepMicros(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

bool WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
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
  if (s.empty() || s.size() > 18) return std::nullopt;
  bool neg = s[0] == '-';
  size_t i = neg ? 1 : 0;
  if (i == s.size()) return std::nullopt;
  long v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return neg ? -v : v;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Decodes UTF-8 into code points; invalid bytes become U+FFFD.
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

// The keysym X uses for a Unicode code point.
KeySym KeysymForCodepoint(uint32_t cp) {
  if (cp == '\n' || cp == '\r') return XK_Return;
  if (cp == '\t') return XK_Tab;
  if (cp == 0x08) return XK_BackSpace;
  if (cp == 0x1B) return XK_Escape;
  if ((cp >= 0x20 && cp <= 0x7E) || (cp >= 0xA0 && cp <= 0xFF)) return static_cast<KeySym>(cp);
  return static_cast<KeySym>(0x01000000 | cp);
}

// Key names of xdotool's syntax that are not X keysym names.
KeySym KeysymAlias(const std::string& lower) {
  static const std::map<std::string, KeySym> kAliases = {
      {"ctrl", XK_Control_L},    {"control", XK_Control_L}, {"shift", XK_Shift_L},
      {"alt", XK_Alt_L},         {"meta", XK_Meta_L},       {"super", XK_Super_L},
      {"win", XK_Super_L},       {"cmd", XK_Super_L},       {"command", XK_Super_L},
      {"enter", XK_Return},      {"return", XK_Return},     {"esc", XK_Escape},
      {"escape", XK_Escape},     {"del", XK_Delete},        {"delete", XK_Delete},
      {"backspace", XK_BackSpace}, {"bksp", XK_BackSpace},  {"tab", XK_Tab},
      {"space", XK_space},       {"pgup", XK_Prior},        {"pageup", XK_Prior},
      {"page_up", XK_Prior},     {"pgdn", XK_Next},         {"pagedown", XK_Next},
      {"page_down", XK_Next},    {"ins", XK_Insert},        {"insert", XK_Insert},
      {"home", XK_Home},         {"end", XK_End},           {"up", XK_Up},
      {"down", XK_Down},         {"left", XK_Left},         {"right", XK_Right},
      {"menu", XK_Menu},         {"capslock", XK_Caps_Lock}, {"print", XK_Print},
      {"minus", XK_minus},       {"plus", XK_plus},
  };
  auto it = kAliases.find(lower);
  return it == kAliases.end() ? NoSymbol : it->second;
}

// Resolves one key name of an xdotool chord ("ctrl", "a", "Return", "F5", "é").
KeySym ParseKeyName(std::string_view name) {
  std::string s(name);
  KeySym ks = XStringToKeysym(s.c_str());
  if (ks != NoSymbol) return ks;
  std::string lower = Lower(s);
  ks = KeysymAlias(lower);
  if (ks != NoSymbol) return ks;
  // Case-insensitive keysym names: "return", "f5", "kp_enter".
  std::string cap = lower;
  if (!cap.empty()) cap[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(cap[0])));
  ks = XStringToKeysym(cap.c_str());
  if (ks != NoSymbol) return ks;
  std::string upper = s;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ks = XStringToKeysym(upper.c_str());
  if (ks != NoSymbol) return ks;
  auto cps = DecodeUtf8(s);
  if (cps.size() == 1 && cps[0] != 0xFFFD) return KeysymForCodepoint(cps[0]);
  return NoSymbol;
}

// Where a keysym sits on the keyboard: a keycode and whether Shift selects it.
struct KeyPlace {
  KeyCode keycode = 0;
  bool shift = false;
};

// Maps keysyms to keycodes from the core keyboard mapping (group 1, levels 1-2) and lends
// spare keycodes to keysyms the keymap lacks, least recently used first.
class Keyboard {
 public:
  explicit Keyboard(Display* dpy) : dpy_(dpy) { Load(); }

  // Whether `ks` needs a spare keycode (it is lent one now, or is not on the keyboard).
  bool NeedsSpare(KeySym ks) const {
    auto it = places_.find(ks);
    return it == places_.end() || lent_.count(it->second.keycode) != 0;
  }

  size_t spare_count() const { return scratch_.size(); }

  // Returns the key for `ks`, remapping a spare keycode if needed (then `*remapped` is
  // set; the caller syncs); nullopt when the keyboard has no spare keycode.
  std::optional<KeyPlace> Find(KeySym ks, bool* remapped = nullptr) {
    auto it = places_.find(ks);
    if (it != places_.end()) {
      Touch(it->second.keycode);
      return it->second;
    }
    if (scratch_.empty()) return std::nullopt;
    // The least recently used spare keycode takes the new keysym.
    KeyCode kc = scratch_.front();
    scratch_.erase(scratch_.begin());
    scratch_.push_back(kc);
    auto old = lent_.find(kc);
    if (old != lent_.end()) {
      places_.erase(old->second);
      lent_.erase(old);
    }
    KeySym syms[2] = {ks, ks};
    XChangeKeyboardMapping(dpy_, kc, 2, syms, 1);
    if (remapped != nullptr) {
      *remapped = true;
    } else {
      XSync(dpy_, False);
    }
    lent_[kc] = ks;
    KeyPlace place{kc, false};
    places_[ks] = place;
    return place;
  }

  // Gives the spare keycodes their empty mapping back.
  void Restore() {
    for (auto& [kc, ks] : lent_) {
      KeySym none[2] = {NoSymbol, NoSymbol};
      XChangeKeyboardMapping(dpy_, kc, 2, none, 1);
    }
    lent_.clear();
    XSync(dpy_, False);
  }

 private:
  void Load() {
    int min_kc = 0;
    int max_kc = 0;
    XDisplayKeycodes(dpy_, &min_kc, &max_kc);
    int per = 0;
    KeySym* map = XGetKeyboardMapping(dpy_, static_cast<KeyCode>(min_kc), max_kc - min_kc + 1, &per);
    if (map == nullptr) return;
    for (int kc = min_kc; kc <= max_kc; ++kc) {
      const KeySym* syms = map + (kc - min_kc) * per;
      bool empty = true;
      for (int i = 0; i < per; ++i) {
        if (syms[i] != NoSymbol) empty = false;
      }
      if (empty) {
        if (static_cast<int>(scratch_.size()) < kScratchKeycodes) {
          scratch_.push_back(static_cast<KeyCode>(kc));
        }
        continue;
      }
      for (int level = 0; level < std::min(per, 2); ++level) {
        KeySym ks = syms[level];
        if (ks == NoSymbol) continue;
        // The first place wins, except that an unshifted place beats a shifted one.
        auto it = places_.find(ks);
        if (it == places_.end() || (it->second.shift && level == 0)) {
          places_[ks] = KeyPlace{static_cast<KeyCode>(kc), level == 1};
        }
      }
      // Letters given only as the lower case: the upper case is the shifted level.
      if (per >= 1 && (per < 2 || syms[1] == NoSymbol)) {
        KeySym lower = NoSymbol;
        KeySym upper = NoSymbol;
        XConvertCase(syms[0], &lower, &upper);
        if (upper != lower && !places_.count(upper)) {
          places_[upper] = KeyPlace{static_cast<KeyCode>(kc), true};
        }
      }
    }
    XFree(map);
  }

  void Touch(KeyCode kc) {
    auto it = std::find(scratch_.begin(), scratch_.end(), kc);
    if (it == scratch_.end()) return;
    scratch_.erase(it);
    scratch_.push_back(kc);
  }

  Display* dpy_;
  std::map<KeySym, KeyPlace> places_;
  std::vector<KeyCode> scratch_;  // Spare keycodes, least recently used first.
  std::map<KeyCode, KeySym> lent_;
};

// Reads the root window: MIT-SHM when the server accepts our segment, else XGetImage.
class Grabber {
 public:
  explicit Grabber(Display* dpy) : dpy_(dpy) {
    use_shm_ = XShmQueryExtension(dpy_) == True && std::getenv("BOXLITE_DESKTOPD_NO_SHM") == nullptr;
  }
  ~Grabber() { ReleaseShm(); }
  Grabber(const Grabber&) = delete;
  Grabber& operator=(const Grabber&) = delete;

  // Returns the root window's pixels (owned by the grabber until the next call), or
  // nullptr with `*error` set.
  XImage* Grab(int width, int height, std::string* error) {
    Window root = DefaultRootWindow(dpy_);
    if (use_shm_ && EnsureShm(width, height)) {
      g_x_error = 0;
      if (XShmGetImage(dpy_, root, shm_image_, 0, 0, AllPlanes) && g_x_error == 0) {
        return shm_image_;
      }
      ReleaseShm();
      use_shm_ = false;
    }
    if (plain_image_ != nullptr) {
      XDestroyImage(plain_image_);
      plain_image_ = nullptr;
    }
    g_x_error = 0;
    plain_image_ = XGetImage(dpy_, root, 0, 0, static_cast<unsigned>(width),
                             static_cast<unsigned>(height), AllPlanes, ZPixmap);
    if (plain_image_ == nullptr) {
      *error = "XGetImage of the root window failed (X error " + std::to_string(g_x_error) + ")";
    }
    return plain_image_;
  }

  bool using_shm() const { return use_shm_; }

 private:
  bool EnsureShm(int width, int height) {
    if (shm_image_ != nullptr && shm_image_->width == width && shm_image_->height == height) {
      return true;
    }
    ReleaseShm();
    int screen = DefaultScreen(dpy_);
    shm_image_ = XShmCreateImage(dpy_, DefaultVisual(dpy_, screen),
                                 static_cast<unsigned>(DefaultDepth(dpy_, screen)), ZPixmap,
                                 nullptr, &shm_info_, static_cast<unsigned>(width),
                                 static_cast<unsigned>(height));
    if (shm_image_ == nullptr) return false;
    size_t bytes = static_cast<size_t>(shm_image_->bytes_per_line) * static_cast<size_t>(height);
    shm_info_.shmid = shmget(IPC_PRIVATE, bytes, IPC_CREAT | 0600);
    if (shm_info_.shmid < 0) {
      XDestroyImage(shm_image_);
      shm_image_ = nullptr;
      return false;
    }
    shm_info_.shmaddr = static_cast<char*>(shmat(shm_info_.shmid, nullptr, 0));
    shm_image_->data = shm_info_.shmaddr;
    // Marked for removal now: the segment disappears when both ends detach, even if we die.
    shmctl(shm_info_.shmid, IPC_RMID, nullptr);
    if (shm_info_.shmaddr == reinterpret_cast<char*>(-1)) {
      shm_image_->data = nullptr;
      XDestroyImage(shm_image_);
      shm_image_ = nullptr;
      return false;
    }
    shm_info_.readOnly = False;
    g_x_error = 0;
    XShmAttach(dpy_, &shm_info_);
    XSync(dpy_, False);
    if (g_x_error != 0) {
      shmdt(shm_info_.shmaddr);
      shm_image_->data = nullptr;
      XDestroyImage(shm_image_);
      shm_image_ = nullptr;
      return false;
    }
    attached_ = true;
    return true;
  }

  void ReleaseShm() {
    if (shm_image_ == nullptr) return;
    if (attached_) {
      XShmDetach(dpy_, &shm_info_);
      XSync(dpy_, False);
      attached_ = false;
    }
    shmdt(shm_info_.shmaddr);
    shm_image_->data = nullptr;
    XDestroyImage(shm_image_);
    shm_image_ = nullptr;
  }

  Display* dpy_;
  bool use_shm_ = false;
  bool attached_ = false;
  XShmSegmentInfo shm_info_{};
  XImage* shm_image_ = nullptr;
  XImage* plain_image_ = nullptr;
};

int ShiftOf(unsigned long mask) {
  int s = 0;
  while (mask != 0 && (mask & 1) == 0) {
    mask >>= 1;
    ++s;
  }
  return s;
}

// Encodes screenshots as PNG (8-bit RGB, filter None) with zlib, in bands of kBandRows
// rows. Each band is deflated on its own (the compressor is reset between bands, and each
// band ends on a byte boundary), so the deflated bytes of a band whose pixels did not
// change since the previous screenshot are reused as they are: a screenshot of a mostly
// unchanged screen compresses only what changed. The zlib stream's Adler-32 is combined
// from the bands' checksums.
//
// Not thread-safe; one encoder per connection.
class PngEncoder {
 public:
  PngEncoder() = default;
  ~PngEncoder() {
    if (zinit_) deflateEnd(&zs_);
  }
  PngEncoder(const PngEncoder&) = delete;
  PngEncoder& operator=(const PngEncoder&) = delete;

  // Appends the PNG of `img` (ZPixmap, TrueColor) to `*out`; false with `*error` set if
  // zlib fails.
  bool Encode(const XImage* img, int level, std::string* out, std::string* error) {
    const int w = img->width;
    const int h = img->height;
    const size_t stride = static_cast<size_t>(img->bytes_per_line);
    const size_t frame_bytes = stride * static_cast<size_t>(h);
    if (w != width_ || h != height_ || stride != stride_ || level != level_) {
      width_ = w;
      height_ = h;
      stride_ = stride;
      level_ = level;
      previous_.assign(frame_bytes, 0);
      bands_.assign(static_cast<size_t>((h + kBandRows - 1) / kBandRows), Band{});
      if (zinit_) deflateEnd(&zs_);
      zs_ = z_stream{};
      zinit_ = deflateInit2(&zs_, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
      if (!zinit_) {
        *error = "deflateInit2 failed";
        return false;
      }
    }
    const auto* data = reinterpret_cast<const unsigned char*>(img->data);
    std::vector<unsigned char> raw;
    uLong adler = adler32(0L, Z_NULL, 0);
    std::string idat = {'\x78', '\x01'};  // zlib header: deflate, 32 KiB window.
    for (size_t b = 0; b < bands_.size(); ++b) {
      const int y0 = static_cast<int>(b) * kBandRows;
      const int rows = std::min(kBandRows, h - y0);
      const size_t offset = static_cast<size_t>(y0) * stride;
      const size_t bytes = static_cast<size_t>(rows) * stride;
      Band& band = bands_[b];
      if (!band.valid || std::memcmp(previous_.data() + offset, data + offset, bytes) != 0) {
        raw.resize(static_cast<size_t>(rows) * (1 + static_cast<size_t>(w) * 3));
        unsigned char* dst = raw.data();
        for (int y = y0; y < y0 + rows; ++y) {
          *dst++ = 0;  // Filter type None.
          RowToRgb(img, y, dst);
          dst += static_cast<size_t>(w) * 3;
        }
        if (!Deflate(raw, &band.deflated, error)) return false;
        band.adler = adler32(adler32(0L, Z_NULL, 0), raw.data(), static_cast<uInt>(raw.size()));
        band.length = static_cast<z_off_t>(raw.size());
        band.valid = true;
        std::memcpy(previous_.data() + offset, data + offset, bytes);
      }
      idat += band.deflated;
      adler = adler32_combine(adler, band.adler, band.length);
    }
    idat += std::string("\x03\x00", 2);  // The final block: empty, fixed Huffman codes.
    for (int shift = 24; shift >= 0; shift -= 8) {
      idat += static_cast<char>((adler >> shift) & 0xFF);
    }
    out->append("\x89PNG\r\n\x1a\n", 8);
    std::string ihdr;
    Put32(&ihdr, static_cast<uint32_t>(w));
    Put32(&ihdr, static_cast<uint32_t>(h));
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no interlace.
    Chunk(out, "IHDR", ihdr);
    Chunk(out, "IDAT", idat);
    Chunk(out, "IEND", "");
    return true;
  }

 private:
  static constexpr int kBandRows = 16;

  struct Band {
    bool valid = false;
    std::string deflated;  // Raw deflate blocks, ending on a byte boundary (not final).
    uLong adler = 0;       // Adler-32 of the band's filtered bytes.
    z_off_t length = 0;    // Their count.
  };

  static void Put32(std::string* s, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) *s += static_cast<char>((v >> shift) & 0xFF);
  }

  static void Chunk(std::string* out, const char* type, const std::string& body) {
    Put32(out, static_cast<uint32_t>(body.size()));
    size_t start = out->size();
    out->append(type, 4);
    out->append(body);
    uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(out->data() + start),
                      static_cast<uInt>(body.size() + 4));
    Put32(out, static_cast<uint32_t>(crc));
  }

  static void RowToRgb(const XImage* img, int y, unsigned char* dst) {
    if (img->bits_per_pixel == 32 && img->byte_order == LSBFirst && img->red_mask == 0xFF0000 &&
        img->green_mask == 0xFF00 && img->blue_mask == 0xFF) {
      const unsigned char* src = reinterpret_cast<const unsigned char*>(img->data) +
                                 static_cast<size_t>(y) * static_cast<size_t>(img->bytes_per_line);
      for (int x = 0; x < img->width; ++x, src += 4, dst += 3) {
        dst[0] = src[2];
        dst[1] = src[1];
        dst[2] = src[0];
      }
      return;
    }
    const int rs = ShiftOf(img->red_mask);
    const int gs = ShiftOf(img->green_mask);
    const int bs = ShiftOf(img->blue_mask);
    const unsigned long rmax = std::max(1UL, img->red_mask >> rs);
    const unsigned long gmax = std::max(1UL, img->green_mask >> gs);
    const unsigned long bmax = std::max(1UL, img->blue_mask >> bs);
    for (int x = 0; x < img->width; ++x, dst += 3) {
      unsigned long p = XGetPixel(const_cast<XImage*>(img), x, y);
      dst[0] = static_cast<unsigned char>(((p & img->red_mask) >> rs) * 255 / rmax);
      dst[1] = static_cast<unsigned char>(((p & img->green_mask) >> gs) * 255 / gmax);
      dst[2] = static_cast<unsigned char>(((p & img->blue_mask) >> bs) * 255 / bmax);
    }
  }

  // Deflates `in` from a fresh state into `*out`, ending with a sync flush.
  bool Deflate(const std::vector<unsigned char>& in, std::string* out, std::string* error) {
    if (deflateReset(&zs_) != Z_OK) {
      *error = "deflateReset failed";
      return false;
    }
    out->resize(deflateBound(&zs_, static_cast<uLong>(in.size())) + 16);
    zs_.next_in = const_cast<Bytef*>(in.data());
    zs_.avail_in = static_cast<uInt>(in.size());
    zs_.next_out = reinterpret_cast<Bytef*>(out->data());
    zs_.avail_out = static_cast<uInt>(out->size());
    int rc = deflate(&zs_, Z_SYNC_FLUSH);
    if (rc != Z_OK || zs_.avail_in != 0 || zs_.avail_out == 0) {
      *error = "deflate failed";
      return false;
    }
    out->resize(out->size() - zs_.avail_out);
    return true;
  }

  int width_ = 0;
  int height_ = 0;
  size_t stride_ = 0;
  int level_ = -1;
  std::vector<unsigned char> previous_;  // The last frame's pixels, as the server gave them.
  std::vector<Band> bands_;
  z_stream zs_{};
  bool zinit_ = false;
};

// The desktop: one X connection and the operations of the protocol.
class Desktop {
 public:
  explicit Desktop(Display* dpy) : dpy_(dpy), keyboard_(dpy), grabber_(dpy) {}

  void Size(int* w, int* h) {
    XWindowAttributes attrs;
    if (XGetWindowAttributes(dpy_, DefaultRootWindow(dpy_), &attrs)) {
      *w = attrs.width;
      *h = attrs.height;
    } else {
      *w = DisplayWidth(dpy_, DefaultScreen(dpy_));
      *h = DisplayHeight(dpy_, DefaultScreen(dpy_));
    }
  }

  Reply SizeReply() {
    int w = 0;
    int h = 0;
    Size(&w, &h);
    return Reply::Ok(std::to_string(w) + " " + std::to_string(h));
  }

  Reply Cursor() {
    int x = 0;
    int y = 0;
    QueryPointer(&x, &y);
    return Reply::Ok(std::to_string(x) + " " + std::to_string(y));
  }

  std::optional<Reply> CheckPoint(long x, long y) {
    int w = 0;
    int h = 0;
    Size(&w, &h);
    if (x < 0 || y < 0 || x >= w || y >= h) {
      return Reply::Range("(" + std::to_string(x) + ", " + std::to_string(y) +
                          ") is outside the " + std::to_string(w) + "x" + std::to_string(h) +
                          " screen");
    }
    return std::nullopt;
  }

  void MoveTo(long x, long y) {
    XTestFakeMotionEvent(dpy_, DefaultScreen(dpy_), static_cast<int>(x), static_cast<int>(y),
                         CurrentTime);
  }

  // Presses or releases a button and returns once the server has processed it. A window
  // manager's passive grab (click to focus) freezes the pointer until the manager replays
  // the press; without this wait, keys sent next would overtake the click and go to the
  // window that had the focus before it.
  void Button(unsigned button, bool down) {
    XTestFakeButtonEvent(dpy_, button, down ? True : False, CurrentTime);
    if (button < 1 || button > 5) return;  // The core protocol has no state bit for 6+.
    const unsigned bit = static_cast<unsigned>(Button1Mask) << (button - 1);
    for (long waited = 0; waited < kButtonWaitMicros; waited += kButtonPollMicros) {
      if (((PointerMask() & bit) != 0) == down) return;
      SleepMicros(kButtonPollMicros);
    }
  }

  void Click(unsigned button, long count) {
    for (long i = 0; i < count; ++i) {
      Button(button, true);
      Button(button, false);
    }
  }

  // Presses at the current position, moves in steps to (x, y), releases.
  void Drag(long x1, long y1, long x2, long y2, unsigned button) {
    MoveTo(x1, y1);
    Button(button, true);
    XSync(dpy_, False);
    for (int i = 1; i <= kDragSteps; ++i) {
      SleepMicros(kDragStepMicros);
      MoveTo(x1 + (x2 - x1) * i / kDragSteps, y1 + (y2 - y1) * i / kDragSteps);
      XSync(dpy_, False);
    }
    Button(button, false);
  }

  void KeyEvent(KeyCode kc, bool down) {
    XTestFakeKeyEvent(dpy_, kc, down ? True : False, CurrentTime);
  }

  // Types the text in segments that need at most as many spare keycodes as there are.
  // Each segment's missing keysyms are mapped first, all at once, and then typed: no
  // keycode changes meaning while clients may still be looking up its earlier key.
  Reply Type(std::string_view text) {
    std::vector<KeySym> syms;
    for (uint32_t cp : DecodeUtf8(text)) {
      if (cp != '\r') syms.push_back(KeysymForCodepoint(cp));
    }
    const size_t spares = keyboard_.spare_count();
    size_t begin = 0;
    while (begin < syms.size()) {
      std::vector<KeySym> lent;
      size_t end = begin;
      for (; end < syms.size(); ++end) {
        KeySym ks = syms[end];
        if (!keyboard_.NeedsSpare(ks) ||
            std::find(lent.begin(), lent.end(), ks) != lent.end()) {
          continue;
        }
        if (lent.size() == spares) break;
        lent.push_back(ks);
      }
      if (end == begin) return Reply::Failed("no free keycode for keysym 0x" + Hex(static_cast<uint32_t>(syms[begin])));
      bool remapped = false;
      for (KeySym ks : lent) keyboard_.Find(ks, &remapped);
      if (remapped) {
        XSync(dpy_, False);
        // Clients refresh their copy of the keymap when they read the MappingNotify
        // that now precedes our keys; some (input methods) do it lazily, so give them a
        // moment before the first key that needs the new mapping.
        SleepMicros(kRemapSettleMicros);
      }
      KeyCode shift = XKeysymToKeycode(dpy_, XK_Shift_L);
      for (size_t i = begin; i < end; ++i) {
        auto place = keyboard_.Find(syms[i]);
        if (!place) return Reply::Failed("no free keycode for keysym 0x" + Hex(static_cast<uint32_t>(syms[i])));
        if (place->shift && shift != 0) KeyEvent(shift, true);
        KeyEvent(place->keycode, true);
        KeyEvent(place->keycode, false);
        if (place->shift && shift != 0) KeyEvent(shift, false);
      }
      XSync(dpy_, False);
      begin = end;
    }
    return Reply::Ok();
  }

  // xdotool key syntax: chords separated by spaces, keys of a chord joined by '+'.
  Reply Key(std::string_view spec) {
    auto chords = SplitSpaces(spec);
    if (chords.empty()) return Reply::Invalid("key: no key given");
    std::vector<std::vector<KeySym>> parsed;
    for (auto chord : chords) {
      std::vector<KeySym> keys;
      size_t start = 0;
      while (start <= chord.size()) {
        size_t plus = chord.find('+', start);
        // "ctrl++" and "+" name the plus key itself.
        if (plus == start && (plus + 1 == chord.size() || chord[plus + 1] == '+')) {
          plus = start + 1 < chord.size() ? start + 1 : std::string_view::npos;
          keys.push_back(XK_plus);
          if (plus == std::string_view::npos) break;
          start = plus + 1;
          continue;
        }
        std::string_view name = chord.substr(start, plus == std::string_view::npos ? std::string_view::npos : plus - start);
        KeySym ks = ParseKeyName(name);
        if (ks == NoSymbol) return Reply::Invalid("key: unknown key name \"" + std::string(name) + "\"");
        keys.push_back(ks);
        if (plus == std::string_view::npos) break;
        start = plus + 1;
      }
      parsed.push_back(std::move(keys));
    }
    bool remapped = false;
    for (const auto& keys : parsed) {
      for (KeySym ks : keys) keyboard_.Find(ks, &remapped);
    }
    if (remapped) {
      XSync(dpy_, False);
      SleepMicros(kRemapSettleMicros);
    }
    KeyCode shift = XKeysymToKeycode(dpy_, XK_Shift_L);
    for (const auto& keys : parsed) {
      std::vector<KeyCode> pressed;
      bool has_shift = std::any_of(keys.begin(), keys.end(), [](KeySym k) {
        return k == XK_Shift_L || k == XK_Shift_R;
      });
      for (KeySym ks : keys) {
        auto place = keyboard_.Find(ks);
        if (!place) return Reply::Failed("no free keycode for keysym 0x" + Hex(static_cast<uint32_t>(ks)));
        // A shifted symbol ("A", "exclam") gets Shift unless the chord holds it already.
        if (place->shift && !has_shift && shift != 0) {
          KeyEvent(shift, true);
          pressed.push_back(shift);
          has_shift = true;
        }
        KeyEvent(place->keycode, true);
        pressed.push_back(place->keycode);
      }
      for (auto it = pressed.rbegin(); it != pressed.rend(); ++it) KeyEvent(*it, false);
      XSync(dpy_, False);
    }
    return Reply::Ok();
  }

  Reply Screenshot(int level) {
    int w = 0;
    int h = 0;
    Size(&w, &h);
    std::string error;
    XImage* img = grabber_.Grab(w, h, &error);
    if (img == nullptr) return Reply::Failed(error);
    Reply r;
    r.body.reserve(static_cast<size_t>(w) * static_cast<size_t>(h) / 4);
    if (!png_.Encode(img, level, &r.body, &error)) return Reply::Failed(error);
    return r;
  }

  // Whether the desktop is up: a window manager, a panel, input that moves the pointer
  // and a screen that is not one flat colour.
  Reply Ready() {
    bool wm = HasWindowManager();
    bool panel = HasDock(DefaultRootWindow(dpy_), 0);
    int w = 0;
    int h = 0;
    Size(&w, &h);
    int x0 = 0;
    int y0 = 0;
    QueryPointer(&x0, &y0);
    int tx = x0 == w / 2 ? w / 2 + 1 : w / 2;
    int ty = h / 2;
    MoveTo(tx, ty);
    XSync(dpy_, False);
    int x1 = 0;
    int y1 = 0;
    QueryPointer(&x1, &y1);
    bool input = x1 == tx && y1 == ty;
    MoveTo(x0, y0);
    bool drawn = false;
    std::string error;
    XImage* img = grabber_.Grab(w, h, &error);
    if (img != nullptr) {
      unsigned long first = XGetPixel(img, 0, 0);
      for (int y = 0; y < h && !drawn; y += 7) {
        for (int x = 0; x < w; x += 7) {
          if (XGetPixel(img, x, y) != first) {
            drawn = true;
            break;
          }
        }
      }
    }
    auto flag = [](bool b) { return b ? "1" : "0"; };
    return Reply::Ok(std::string("wm=") + flag(wm) + " panel=" + flag(panel) +
                     " input=" + flag(input) + " drawn=" + flag(drawn) +
                     " shm=" + flag(grabber_.using_shm()));
  }

  void Flush() { XSync(dpy_, False); }
  void Close() { keyboard_.Restore(); }

 private:
  static std::string Hex(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%04X", v);
    return buf;
  }

  unsigned PointerMask() {
    int x = 0;
    int y = 0;
    int wx = 0;
    int wy = 0;
    Window root_ret = 0;
    Window child = 0;
    unsigned mask = 0;
    XQueryPointer(dpy_, DefaultRootWindow(dpy_), &root_ret, &child, &x, &y, &wx, &wy, &mask);
    return mask;
  }

  void QueryPointer(int* x, int* y) {
    Window root_ret = 0;
    Window child = 0;
    int wx = 0;
    int wy = 0;
    unsigned mask = 0;
    XQueryPointer(dpy_, DefaultRootWindow(dpy_), &root_ret, &child, x, y, &wx, &wy, &mask);
  }

  // EWMH: the root's _NET_SUPPORTING_WM_CHECK names a window whose own property names
  // itself. A window manager that died leaves the root's property behind, not the window.
  bool HasWindowManager() {
    Atom check = XInternAtom(dpy_, "_NET_SUPPORTING_WM_CHECK", False);
    auto read = [&](Window w, Window* out) {
      Atom type = 0;
      int format = 0;
      unsigned long n = 0;
      unsigned long after = 0;
      unsigned char* data = nullptr;
      g_x_error = 0;
      int rc = XGetWindowProperty(dpy_, w, check, 0, 1, False, XA_WINDOW, &type, &format, &n,
                                  &after, &data);
      XSync(dpy_, False);
      bool found = rc == Success && g_x_error == 0 && data != nullptr && n == 1 && format == 32;
      if (found) *out = static_cast<Window>(*reinterpret_cast<unsigned long*>(data));
      if (data != nullptr) XFree(data);
      return found;
    };
    Window child = 0;
    Window self = 0;
    return read(DefaultRootWindow(dpy_), &child) && read(child, &self) && self == child;
  }

  // Whether a mapped window below `w` is a dock (a panel), searched two levels deep
  // (reparenting window managers put clients in frames).
  bool HasDock(Window w, int depth) {
    Window root_ret = 0;
    Window parent = 0;
    Window* children = nullptr;
    unsigned n = 0;
    if (!XQueryTree(dpy_, w, &root_ret, &parent, &children, &n)) return false;
    Atom type_atom = XInternAtom(dpy_, "_NET_WM_WINDOW_TYPE", False);
    Atom dock = XInternAtom(dpy_, "_NET_WM_WINDOW_TYPE_DOCK", False);
    bool found = false;
    for (unsigned i = 0; i < n && !found; ++i) {
      XWindowAttributes attrs;
      if (!XGetWindowAttributes(dpy_, children[i], &attrs) || attrs.map_state != IsViewable) {
        continue;
      }
      Atom type = 0;
      int format = 0;
      unsigned long count = 0;
      unsigned long after = 0;
      unsigned char* data = nullptr;
      if (XGetWindowProperty(dpy_, children[i], type_atom, 0, 8, False, XA_ATOM, &type, &format,
                             &count, &after, &data) == Success && data != nullptr) {
        const Atom* atoms = reinterpret_cast<const Atom*>(data);
        for (unsigned long k = 0; k < count; ++k) {
          if (atoms[k] == dock) found = true;
        }
        XFree(data);
      }
      if (!found && depth < 1) found = HasDock(children[i], depth + 1);
    }
    if (children != nullptr) XFree(children);
    return found;
  }

  Display* dpy_;
  Keyboard keyboard_;
  Grabber grabber_;
  PngEncoder png_;
};

// Reads requests from stdin: lines, and byte blocks after "type".
class Input {
 public:
  // Returns false at end of input (or on a read error).
  bool ReadLine(std::string* line) {
    for (;;) {
      size_t nl = buf_.find('\n', pos_);
      if (nl != std::string::npos) {
        line->assign(buf_, pos_, nl - pos_);
        pos_ = nl + 1;
        Compact();
        return true;
      }
      if (buf_.size() - pos_ > kMaxLine) {
        line->assign(buf_, pos_, std::string::npos);
        pos_ = buf_.size();
        Compact();
        return true;
      }
      if (!Fill()) return false;
    }
  }

  bool ReadBytes(size_t n, std::string* out) {
    while (buf_.size() - pos_ < n) {
      if (!Fill()) return false;
    }
    out->assign(buf_, pos_, n);
    pos_ += n;
    Compact();
    return true;
  }

 private:
  bool Fill() {
    char chunk[65536];
    for (;;) {
      ssize_t r = ::read(0, chunk, sizeof(chunk));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      buf_.append(chunk, static_cast<size_t>(r));
      return true;
    }
  }

  void Compact() {
    if (pos_ > 65536 || pos_ == buf_.size()) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
  }

  std::string buf_;
  size_t pos_ = 0;
};

bool SendReply(std::string_view id, const Reply& r) {
  std::string head = std::string(id) + " " + r.status + " " + std::to_string(r.body.size()) + "\n";
  if (r.body.size() < 65536) {
    head += r.body;
    return WriteAll(1, head.data(), head.size());
  }
  return WriteAll(1, head.data(), head.size()) && WriteAll(1, r.body.data(), r.body.size());
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

// Handles one request line (and its payload). Returns false to stop.
bool Serve(Desktop* desk, Input* in, const std::string& line, bool* quit) {
  auto words = SplitSpaces(line);
  if (words.empty()) return true;
  std::string_view id = words[0];
  if (words.size() < 2) return SendReply(id, Reply::Invalid("no verb"));
  std::string verb(words[1]);
  std::vector<long> nums;
  bool numeric = true;
  for (size_t i = 2; i < words.size(); ++i) {
    auto v = ParseLong(words[i]);
    if (!v) numeric = false;
    nums.push_back(v.value_or(0));
  }
  auto want = [&](size_t n) { return numeric && nums.size() == n; };
  Reply r;
  if (verb == "ping") {
    r = Reply::Ok("pong");
  } else if (verb == "size") {
    r = desk->SizeReply();
  } else if (verb == "cursor") {
    r = desk->Cursor();
  } else if (verb == "move") {
    if (!want(2)) {
      r = Reply::Invalid("usage: move X Y");
    } else if (auto bad = desk->CheckPoint(nums[0], nums[1])) {
      r = *bad;
    } else {
      desk->MoveTo(nums[0], nums[1]);
    }
  } else if (verb == "down" || verb == "up") {
    auto button = words.size() == 3 ? ParseButton(words[2]) : std::optional<unsigned>(1u);
    if (!button || words.size() > 3) {
      r = Reply::Invalid("usage: " + verb + " [BUTTON]");
    } else {
      desk->Button(*button, verb == "down");
    }
  } else if (verb == "click") {
    // click BUTTON COUNT [X Y]
    auto button = words.size() >= 3 ? ParseButton(words[2]) : std::nullopt;
    auto count = words.size() >= 4 ? ParseLong(words[3]) : std::nullopt;
    if (!button || !count || *count < 1 || *count > 10 || (words.size() != 4 && words.size() != 6)) {
      r = Reply::Invalid("usage: click BUTTON COUNT [X Y]");
    } else if (words.size() == 6) {
      auto x = ParseLong(words[4]);
      auto y = ParseLong(words[5]);
      if (!x || !y) {
        r = Reply::Invalid("usage: click BUTTON COUNT [X Y]");
      } else if (auto bad = desk->CheckPoint(*x, *y)) {
        r = *bad;
      } else {
        desk->MoveTo(*x, *y);
        desk->Click(*button, *count);
      }
    } else {
      desk->Click(*button, *count);
    }
  } else if (verb == "drag") {
    // drag X1 Y1 X2 Y2 [BUTTON]
    std::optional<unsigned> button = 1u;
    if (words.size() == 7) button = ParseButton(words[6]);
    bool ok = (words.size() == 6 || words.size() == 7) && button;
    std::vector<long> p;
    for (size_t i = 2; ok && i < 6; ++i) {
      auto v = ParseLong(words[i]);
      if (!v) ok = false;
      p.push_back(v.value_or(0));
    }
    if (!ok) {
      r = Reply::Invalid("usage: drag X1 Y1 X2 Y2 [BUTTON]");
    } else if (auto bad = desk->CheckPoint(p[0], p[1])) {
      r = *bad;
    } else if (auto bad2 = desk->CheckPoint(p[2], p[3])) {
      r = *bad2;
    } else {
      desk->Drag(p[0], p[1], p[2], p[3], *button);
    }
  } else if (verb == "scroll") {
    // scroll X Y DIRECTION AMOUNT
    static const std::map<std::string, unsigned> kDirections = {
        {"up", 4}, {"down", 5}, {"left", 6}, {"right", 7}};
    auto x = words.size() == 6 ? ParseLong(words[2]) : std::nullopt;
    auto y = words.size() == 6 ? ParseLong(words[3]) : std::nullopt;
    auto dir = words.size() == 6 ? kDirections.find(Lower(words[4])) : kDirections.end();
    auto amount = words.size() == 6 ? ParseLong(words[5]) : std::nullopt;
    if (!x || !y || dir == kDirections.end() || !amount || *amount < 0 || *amount > 1000) {
      r = Reply::Invalid("usage: scroll X Y up|down|left|right AMOUNT");
    } else if (auto bad = desk->CheckPoint(*x, *y)) {
      r = *bad;
    } else {
      desk->MoveTo(*x, *y);
      desk->Click(dir->second, *amount);
    }
  } else if (verb == "type") {
    auto n = words.size() == 3 ? ParseLong(words[2]) : std::nullopt;
    if (!n || *n < 0 || static_cast<size_t>(*n) > kMaxText) {
      // Without a valid count the stream cannot be resynchronised: stop.
      SendReply(id, Reply::Invalid("usage: type NBYTES, then NBYTES bytes of UTF-8"));
      return false;
    }
    std::string text;
    if (!in->ReadBytes(static_cast<size_t>(*n), &text)) return false;
    r = desk->Type(text);
  } else if (verb == "key") {
    size_t at = line.find("key");
    r = desk->Key(std::string_view(line).substr(at + 3));
  } else if (verb == "screenshot") {
    long level = kDefaultPngLevel;
    if (words.size() == 3) {
      auto v = ParseLong(words[2]);
      level = v && *v >= 0 && *v <= 9 ? *v : -1;
    }
    if (level < 0 || words.size() > 3) {
      r = Reply::Invalid("usage: screenshot [PNG_LEVEL 0-9]");
    } else {
      r = desk->Screenshot(static_cast<int>(level));
    }
  } else if (verb == "ready") {
    r = desk->Ready();
  } else if (verb == "quit") {
    *quit = true;
  } else {
    r = Reply::Invalid("unknown verb \"" + verb + "\"");
  }
  desk->Flush();
  return SendReply(id, r);
}

Display* OpenDisplay(const char* name, double wait_s) {
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    Display* dpy = XOpenDisplay(name);
    if (dpy != nullptr) return dpy;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed = static_cast<double>(now.tv_sec - start.tv_sec) +
                     static_cast<double>(now.tv_nsec - start.tv_nsec) / 1e9;
    if (elapsed >= wait_s) return nullptr;
    SleepMicros(100000);
  }
}

void Usage() {
  std::fprintf(stderr,
               "usage: boxlite-desktopd [--display NAME] [--wait SECONDS]\n"
               "Serves input and screenshot requests on stdin/stdout (docs/computerbox.md).\n");
}

}  // namespace

int main(int argc, char** argv) {
  const char* display = std::getenv("DISPLAY");
  if (display == nullptr || *display == '\0') display = ":0";
  double wait_s = 30;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--display" && i + 1 < argc) {
      display = argv[++i];
    } else if (a == "--wait" && i + 1 < argc) {
      wait_s = std::atof(argv[++i]);
    } else {
      Usage();
      return 64;
    }
  }
  XSetErrorHandler(XErrorHandlerRecord);
  XSetIOErrorHandler(XIoErrorHandlerExit);
  Display* dpy = OpenDisplay(display, wait_s);
  if (dpy == nullptr) {
    Reply r = Reply::Failed(std::string("cannot open display ") + display);
    SendReply("0", r);
    return 2;
  }
  int event_base = 0;
  int error_base = 0;
  int major = 0;
  int minor = 0;
  if (!XTestQueryExtension(dpy, &event_base, &error_base, &major, &minor)) {
    SendReply("0", Reply::Failed("the X server has no XTEST extension"));
    return 2;
  }
  XTestGrabControl(dpy, True);
  int exit_code = 0;
  {
    Desktop desk(dpy);
    int w = 0;
    int h = 0;
    desk.Size(&w, &h);
    if (!SendReply("0", Reply::Ok("boxlite-desktopd " + std::to_string(kProtocolVersion) + " " +
                                  std::to_string(w) + " " + std::to_string(h)))) {
      return 1;
    }
    Input in;
    std::string line;
    bool quit = false;
    while (!quit && in.ReadLine(&line)) {
      if (!Serve(&desk, &in, line, &quit)) {
        exit_code = 1;
        break;
      }
    }
    desk.Close();
  }
  XCloseDisplay(dpy);
  return exit_code;
}
