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
//
// This file is the X side; the wire format (wire.h) and the PNG encoder (png.h) live
// apart and are unit-tested without a display. The image recipe
// (scripts/test-images/build.py) copies the binary CMake builds here into boxlite/desktop.

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

#include <algorithm>
#include <charconv>
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

#include "guest/desktopd/png.h"
#include "guest/desktopd/wire.h"

namespace boxlite::desktopd {
namespace {

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

// Converts row `y` of a ZPixmap TrueColor image to 8-bit RGB.
void RowToRgb(const XImage* img, int y, unsigned char* dst) {
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
      for (std::string_view name : SplitChord(chord)) {
        KeySym ks = name == "+" ? XK_plus : ParseKeyName(name);
        if (ks == NoSymbol) return Reply::Invalid("key: unknown key name \"" + std::string(name) + "\"");
        keys.push_back(ks);
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
    Frame frame;
    frame.width = img->width;
    frame.height = img->height;
    frame.stride = static_cast<size_t>(img->bytes_per_line);
    frame.data = reinterpret_cast<const unsigned char*>(img->data);
    frame.row_to_rgb = [img](int y, unsigned char* rgb) { RowToRgb(img, y, rgb); };
    if (!png_.Encode(frame, level, &r.body, &error)) return Reply::Failed(error);
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

// Carries out one parsed request.
Reply Dispatch(Desktop* desk, const Request& r, const std::string& text) {
  switch (r.verb) {
    case Verb::kPing:
      return Reply::Ok("pong");
    case Verb::kSize:
      return desk->SizeReply();
    case Verb::kCursor:
      return desk->Cursor();
    case Verb::kMove:
      if (auto bad = desk->CheckPoint(r.x, r.y)) return *bad;
      desk->MoveTo(r.x, r.y);
      return Reply::Ok();
    case Verb::kDown:
    case Verb::kUp:
      desk->Button(r.button, r.verb == Verb::kDown);
      return Reply::Ok();
    case Verb::kClick:
      if (r.has_point) {
        if (auto bad = desk->CheckPoint(r.x, r.y)) return *bad;
        desk->MoveTo(r.x, r.y);
      }
      desk->Click(r.button, r.count);
      return Reply::Ok();
    case Verb::kDrag:
      if (auto bad = desk->CheckPoint(r.x, r.y)) return *bad;
      if (auto bad = desk->CheckPoint(r.x2, r.y2)) return *bad;
      desk->Drag(r.x, r.y, r.x2, r.y2, r.button);
      return Reply::Ok();
    case Verb::kScroll:
      if (auto bad = desk->CheckPoint(r.x, r.y)) return *bad;
      desk->MoveTo(r.x, r.y);
      desk->Click(r.button, r.count);
      return Reply::Ok();
    case Verb::kType:
      return desk->Type(text);
    case Verb::kKey:
      return desk->Key(r.key_spec);
    case Verb::kScreenshot:
      return desk->Screenshot(r.level);
    case Verb::kReady:
      return desk->Ready();
    case Verb::kQuit:
      return Reply::Ok();
  }
  return Reply::Failed("unhandled verb");
}

// Handles one request line (and its payload). Returns false to stop.
bool Serve(Desktop* desk, LineReader* in, const std::string& line, bool* quit) {
  Parsed p = ParseRequest(line);
  switch (p.kind) {
    case Parsed::kEmpty:
      return true;
    case Parsed::kFatal:
      SendReply(1, p.id, p.reply);
      return false;
    case Parsed::kInvalid:
      desk->Flush();
      return SendReply(1, p.id, p.reply);
    case Parsed::kRequest:
      break;
  }
  std::string text;
  if (p.request.verb == Verb::kType && !in->ReadBytes(p.request.text_bytes, &text)) return false;
  if (p.request.verb == Verb::kQuit) *quit = true;
  Reply r = Dispatch(desk, p.request, text);
  desk->Flush();
  return SendReply(1, p.id, r);
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
}  // namespace boxlite::desktopd

int main(int argc, char** argv) {
  using namespace boxlite::desktopd;  // NOLINT: the program's own namespace.
  const char* display = std::getenv("DISPLAY");
  if (display == nullptr || *display == '\0') display = ":0";
  double wait_s = 30;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--display" && i + 1 < argc) {
      display = argv[++i];
    } else if (a == "--wait" && i + 1 < argc) {
      std::string_view v = argv[++i];
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), wait_s);
      if (v.empty() || ec != std::errc() || end != v.data() + v.size() || wait_s < 0) {
        std::fprintf(stderr, "boxlite-desktopd: --wait takes a number of seconds, not \"%s\"\n",
                     argv[i]);
        return 64;
      }
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
    SendReply(1, "0", r);
    return 2;
  }
  int event_base = 0;
  int error_base = 0;
  int major = 0;
  int minor = 0;
  if (!XTestQueryExtension(dpy, &event_base, &error_base, &major, &minor)) {
    SendReply(1, "0", Reply::Failed("the X server has no XTEST extension"));
    return 2;
  }
  XTestGrabControl(dpy, True);
  int exit_code = 0;
  {
    Desktop desk(dpy);
    int w = 0;
    int h = 0;
    desk.Size(&w, &h);
    if (!SendReply(1, "0", Reply::Ok("boxlite-desktopd " + std::to_string(kProtocolVersion) + " " +
                                  std::to_string(w) + " " + std::to_string(h)))) {
      return 1;
    }
    LineReader in(0);
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
