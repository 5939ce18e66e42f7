// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-desktopd's keyboard: key names (xdotool's syntax and X keysym names) and the
// keysym-to-keycode map with spare keycodes lent to characters the keymap lacks.
// Included by main.cc only (one translation unit: the daemon's X side); the parts that
// need no display are in wire.h.
#pragma once

#include <X11/XKBlib.h>
#include <X11/Xatom.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
#include <X11/extensions/XTest.h>
#include <X11/keysym.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "guest/desktopd/wire.h"

namespace boxlite::desktopd {

// Spare keycodes lent to characters the keymap lacks (see Desktop::Type in main.cc).
inline constexpr int kScratchKeycodes = 16;

// The keysym X uses for a Unicode code point.
inline KeySym KeysymForCodepoint(uint32_t cp) {
  if (cp == '\n' || cp == '\r') return XK_Return;
  if (cp == '\t') return XK_Tab;
  if (cp == 0x08) return XK_BackSpace;
  if (cp == 0x1B) return XK_Escape;
  if ((cp >= 0x20 && cp <= 0x7E) || (cp >= 0xA0 && cp <= 0xFF)) return static_cast<KeySym>(cp);
  return static_cast<KeySym>(0x01000000 | cp);
}

// Key names of xdotool's syntax that are not X keysym names.
inline KeySym KeysymAlias(const std::string& lower) {
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
inline KeySym ParseKeyName(std::string_view name) {
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

}  // namespace boxlite::desktopd
