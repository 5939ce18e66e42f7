// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-desktopd's screen reader: the root window through MIT-SHM (XGetImage when
// shared memory is refused) and the conversion of its rows to RGB for the PNG encoder
// (png.h). Included by main.cc only (one translation unit: the daemon's X side).
#pragma once

#include <X11/XKBlib.h>
#include <X11/Xatom.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
#include <X11/extensions/XTest.h>
#include <X11/keysym.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace boxlite::desktopd {

// The last X protocol error code seen by the error handler (main.cc); reset to 0 before
// a request whose failure must be noticed. Single-threaded.
inline int g_x_error = 0;

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

inline int ShiftOf(unsigned long mask) {
  int s = 0;
  while (mask != 0 && (mask & 1) == 0) {
    mask >>= 1;
    ++s;
  }
  return s;
}

// Converts row `y` of a ZPixmap TrueColor image to 8-bit RGB.
inline void RowToRgb(const XImage* img, int y, unsigned char* dst) {
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

}  // namespace boxlite::desktopd
