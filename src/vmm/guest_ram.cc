// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/guest_ram.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::vmm {
namespace {

constexpr size_t kBlock = 64 * 1024;
constexpr size_t kChunk = 4 * 1024 * 1024;

bool AllZero(const char* p, size_t n) {
  // Word-wise: the RAM of a booted guest is mostly zeroed pages.
  size_t i = 0;
  for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
    uint64_t w;
    std::memcpy(&w, p + i, sizeof(w));
    if (w != 0) return false;
  }
  for (; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

Status PreadFull(int fd, char* buf, size_t len, off_t off) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, buf + done, len - done, off + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys::ErrnoStatus(errno, "read memory");
    }
    if (n == 0) {
      std::memset(buf + done, 0, len - done);  // Past the end: zeros, as a hole reads.
      return Status::OK();
    }
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

Status PwriteFull(int fd, const char* buf, size_t len, off_t off) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(fd, buf + done, len - done, off + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys::ErrnoStatus(errno, "write memory");
    }
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

}  // namespace

Result<base::UniqueFd> CreateGuestRam(uint64_t bytes) {
  base::UniqueFd fd(::memfd_create(kGuestRamName, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return sys::ErrnoStatus(errno, "memfd_create for guest memory");
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
    return sys::ErrnoStatus(errno, "size guest memory");
  }
  return fd;
}

Result<uint64_t> SparseCopy(int src, int dst, uint64_t bytes) {
  if (::ftruncate(dst, 0) != 0 || ::ftruncate(dst, static_cast<off_t>(bytes)) != 0) {
    return sys::ErrnoStatus(errno, "size the copy");
  }
  std::vector<char> buf(kChunk);
  uint64_t written = 0;
  off_t end = static_cast<off_t>(bytes);
  off_t pos = 0;
  while (pos < end) {
    off_t data = ::lseek(src, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // Only a hole is left.
      if (errno != EINVAL) return sys::ErrnoStatus(errno, "find data in memory");
      data = pos;  // No SEEK_DATA here: copy everything.
    }
    if (data >= end) break;
    off_t hole = ::lseek(src, data, SEEK_HOLE);
    if (hole < 0 || hole > end) hole = end;
    for (off_t off = data; off < hole;) {
      size_t len = static_cast<size_t>(std::min<off_t>(kChunk, hole - off));
      BOXLITE_RETURN_IF_ERROR(PreadFull(src, buf.data(), len, off));
      for (size_t b = 0; b < len; b += kBlock) {
        size_t n = std::min(kBlock, len - b);
        if (AllZero(buf.data() + b, n)) continue;
        BOXLITE_RETURN_IF_ERROR(PwriteFull(dst, buf.data() + b, n, off + static_cast<off_t>(b)));
        written += n;
      }
      off += static_cast<off_t>(len);
    }
    pos = hole;
  }
  return written;
}

Status SealGuestRam(int fd) {
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return sys::ErrnoStatus(errno, "seal guest memory");
  }
  return Status::OK();
}

Result<base::UniqueFd> OpenGuestRamOf(pid_t pid, uint64_t bytes) {
  std::string dir = base::StrFormat("/proc/%d/fd", static_cast<int>(pid));
  BOXLITE_ASSIGN_OR_RETURN(auto names, sys::ListDir(dir));
  std::string want = std::string("/memfd:") + kGuestRamName + " (deleted)";
  for (const auto& name : names) {
    std::string path = sys::JoinPath(dir, name);
    char target[256];
    ssize_t n = ::readlink(path.c_str(), target, sizeof(target) - 1);
    if (n < 0 || std::string_view(target, static_cast<size_t>(n)) != want) continue;
    auto fd = sys::Open(path, O_RDONLY | O_CLOEXEC);
    if (!fd.ok()) continue;
    struct stat st;
    if (::fstat(fd->get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != bytes) continue;
    return fd;
  }
  return Status::NotFound(
      base::StrFormat("QEMU (pid %d) holds no guest memory file of %llu bytes",
                      static_cast<int>(pid), static_cast<unsigned long long>(bytes)),
      "the box was started by an older BoxLite: restart it to snapshot its memory");
}

}  // namespace boxlite::vmm
