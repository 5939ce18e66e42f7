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
// This file is the X side's protocol operations and main(); the keyboard map (x_keys.h)
// and the screen reader (x_screen.h) are beside it, and the wire format (wire.h) and the
// PNG encoder (png.h) live apart and are unit-tested without a display. The image recipe
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
#include "guest/desktopd/x_keys.h"
#include "guest/desktopd/x_screen.h"

namespace boxlite::desktopd {
namespace {

// A drag moves in kDragSteps steps, kDragStepMicros apart: applications see motion with
// the button held, as from a hand.
constexpr long kDragStepMicros = 2000;
constexpr int kDragSteps = 8;
// The pause after remapping spare keycodes (see Desktop::Type).
constexpr long kRemapSettleMicros = 20000;
// How long a button event may stay frozen by a grab before we stop waiting for it, in
// wall-clock time: a window manager starved of CPU (many guests on few cores) can take
// seconds to replay a press.
constexpr long kButtonWaitMicros = 10000000;
constexpr long kButtonPollMicros = 1000;
// Wheel clicks (buttons 4-7) are kWheelGapMicros apart, as a physical wheel's fastest
// notches: clients that turn them into their own wheel events (Tk does for 6 and 7) see
// each click as one.
constexpr long kWheelGapMicros = 10000;

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

long MonotonicMicros() {
  struct timespec ts = {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
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
    if (button < 1 || button > 5) {
      // The core protocol has no state bit for 6+: a round trip instead, so that the
      // server has delivered the event before the next one.
      XSync(dpy_, False);
      return;
    }
    const unsigned bit = static_cast<unsigned>(Button1Mask) << (button - 1);
    const long start = MonotonicMicros();
    while (((PointerMask() & bit) != 0) != down) {
      if (MonotonicMicros() - start >= kButtonWaitMicros) {
        std::fprintf(stderr, "boxlite-desktopd: button %u %s: the X server has not processed it after %ld s (a grab holds the pointer)\n",
                     button, down ? "press" : "release", kButtonWaitMicros / 1000000);
        return;
      }
      SleepMicros(kButtonPollMicros);
    }
  }

  void Click(unsigned button, long count) {
    const bool wheel = button >= 4 && button <= 7;
    for (long i = 0; i < count; ++i) {
      if (wheel && i > 0) SleepMicros(kWheelGapMicros);
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
