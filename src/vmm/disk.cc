// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>

#include "src/base/macros.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"
#include "src/sys/subprocess.h"

namespace boxlite::vmm {
namespace {

// An empty overlay is a few hundred KiB (header, L1 and refcount tables); anything much
// larger at the template's path is not one.
constexpr off_t kMaxTemplateBytes = 4 << 20;

Status CreateWithQemuImg(const DiskOverlay& disk, const std::string& path) {
  auto created = sys::RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                                  disk.backing, path, std::to_string(disk.size_mib) + "M"});
  if (!created.ok()) {
    ::unlink(path.c_str());
    return created.error().Wrap("create the box disk");
  }
  return Status::OK();
}

uint64_t BigEndian(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// The template's bytes when it is an empty qcow2 overlay of exactly this backing file and
// size (its header says so); nullopt otherwise (missing, stale, or not an overlay).
std::optional<std::string> ReadTemplate(const DiskOverlay& disk) {
  base::UniqueFd fd(::open(disk.template_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st;
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 72 ||
      st.st_size > kMaxTemplateBytes) {
    return std::nullopt;
  }
  auto bytes = sys::ReadAll(fd.get(), static_cast<size_t>(st.st_size));
  if (!bytes.ok() || bytes->size() != static_cast<size_t>(st.st_size)) return std::nullopt;
  // qcow2 header (docs/interop/qcow2.txt in QEMU): magic, version, backing file offset
  // (u64 at 8) and length (u32 at 16), virtual size (u64 at 24), all big-endian.
  const auto* h = reinterpret_cast<const unsigned char*>(bytes->data());
  if (bytes->compare(0, 4, "QFI\xfb") != 0) return std::nullopt;
  uint64_t name_at = BigEndian(h + 8, 8);
  uint64_t name_len = BigEndian(h + 16, 4);
  uint64_t virtual_size = BigEndian(h + 24, 8);
  if (virtual_size != static_cast<uint64_t>(disk.size_mib) << 20) return std::nullopt;
  if (name_at > bytes->size() || name_len > bytes->size() - name_at ||
      bytes->compare(name_at, name_len, disk.backing) != 0 || name_len != disk.backing.size()) {
    return std::nullopt;
  }
  return std::move(bytes).value();
}

// Makes the template with qemu-img next to the box's own overlay and renames it into
// place, so a concurrent reader sees a whole template or none. Next to the overlay: an
// ephemeral box's overlay is in the home's tmp/, whose sweep removes what a killed process
// left (src/runtime/home_tmp.h); a temporary file beside the template would outlive it.
Status MakeTemplate(const DiskOverlay& disk) {
  std::string tmp = disk.path + ".template.qcow2";
  BOXLITE_RETURN_IF_ERROR(CreateWithQemuImg(disk, tmp));
  if (::rename(tmp.c_str(), disk.template_path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return sys::ErrnoStatus(e, "rename %s", disk.template_path.c_str());
  }
  return Status::OK();
}

// A new overlay at `disk.path` copied from the template (made first when missing);
// nullopt when the template cannot be used (the caller runs qemu-img itself then).
std::optional<base::UniqueFd> CopyFromTemplate(const DiskOverlay& disk) {
  auto bytes = ReadTemplate(disk);
  if (!bytes) {
    if (!MakeTemplate(disk).ok()) return std::nullopt;
    bytes = ReadTemplate(disk);
    if (!bytes) return std::nullopt;
  }
  base::UniqueFd fd(
      ::open(disk.path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return std::nullopt;
  if (!sys::WriteAll(fd.get(), *bytes).ok()) {
    fd.reset();
    ::unlink(disk.path.c_str());
    return std::nullopt;
  }
  return fd;
}

}  // namespace

Result<base::UniqueFd> OpenDiskOverlay(const DiskOverlay& disk) {
  bool exists = disk.keep && sys::Exists(disk.path);
  if (!exists && !disk.template_path.empty()) {
    if (auto copied = CopyFromTemplate(disk)) {
      if (!disk.keep) ::unlink(disk.path.c_str());
      return std::move(*copied);
    }
  }
  if (!exists) BOXLITE_RETURN_IF_ERROR(CreateWithQemuImg(disk, disk.path));
  auto opened = sys::Open(disk.path, O_RDWR | O_CLOEXEC);
  if (!disk.keep) ::unlink(disk.path.c_str());
  return opened;
}

}  // namespace boxlite::vmm
