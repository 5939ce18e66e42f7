// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/box_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <endian.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "src/base/macros.h"
#include "src/base/sha256.h"
#include "src/base/strings.h"
#include "src/protocol/messages.h"
#include "src/runtime/box_record.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

using Json = nlohmann::json;

constexpr size_t kChunk = 1 << 20;
constexpr std::string_view kSha256Prefix = "sha256:";

std::string Quoted(std::string_view s) {
  // Names from a hostile archive, shown in one line of an error: bounded and printable.
  std::string out = "\"";
  for (unsigned char c : s.substr(0, 80)) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += base::StrFormat("\\x%02x", c);
    }
  }
  if (s.size() > 80) out += "...";
  return out + "\"";
}

Status Bad(std::string_view what) {
  return Status::InvalidArgument("bad box archive: " + std::string(what),
                                 "import only archives written by `boxlite export`");
}

bool IsChecksum(std::string_view s) {
  if (!s.starts_with(kSha256Prefix) || s.size() != kSha256Prefix.size() + 64) return false;
  for (char c : s.substr(kSha256Prefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

struct ArchiveReadCloser {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteCloser {
  void operator()(struct archive* a) const { archive_write_free(a); }
};

std::string ArchiveError(struct archive* a) {
  const char* msg = archive_error_string(a);
  return msg ? std::string(msg).substr(0, 200) : "unknown error";
}

// Why an entry's name is not one of ours, in words a user can act on.
std::string NameProblem(std::string_view name) {
  if (name.empty()) return "an entry with no name";
  if (name.front() == '/') return "an absolute path " + Quoted(name);
  for (std::string_view part : base::Split(name, '/')) {
    if (part == "..") return "a path leaving the archive " + Quoted(name);
  }
  return "an unexpected entry " + Quoted(name) + " (only " + kArchiveManifestName + " and " +
         kArchiveDiskName + " belong in a box archive)";
}

uint32_t Be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return be32toh(v);
}
uint64_t Be64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return be64toh(v);
}

Status PreadExactly(int fd, void* buf, size_t len, uint64_t offset, const char* what) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, static_cast<char*>(buf) + done, len - done,
                        static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys::ErrnoStatus(errno, "read the disk's %s", what);
    if (n == 0) return Bad(std::string("disk.qcow2 ends inside its ") + what);
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

}  // namespace

std::string ManifestToJson(const BoxArchiveManifest& m) {
  Json j = {
      {"version", m.version},
      {"box_name", m.box_name},
      {"image",
       {{"reference", m.image_reference},
        {"digest", m.image_digest},
        {"config", ImageConfigToJson(m.image_config)}}},
      {"box_options", BoxOptionsToJson(m.box_options)},
      {"disk",
       {{"name", kArchiveDiskName},
        {"checksum", m.disk_checksum},
        {"bytes", m.disk_bytes},
        {"virtual_bytes", m.disk_virtual_bytes}}},
      {"exported_at", m.exported_at},
  };
  return protocol::Dump(std::move(j), 2) + "\n";
}

Result<BoxArchiveManifest> ParseManifest(std::string_view text) {
  // nlohmann's parser rejects strings that are not UTF-8 as it rejects any other bad JSON.
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("manifest.json is not JSON (or not UTF-8)");
  if (!j.is_object()) return Bad("manifest.json is not a JSON object");
  BoxArchiveManifest m;
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer()) {
    return Bad("manifest.json has no integer \"version\"");
  }
  int64_t v = version->get<int64_t>();
  if (v < 1 || v > kBoxArchiveVersion) {
    return Status::NotSupported(
        base::StrFormat("box archive format version %lld is not one this BoxLite reads (1..%d)",
                        static_cast<long long>(v), kBoxArchiveVersion),
        "export the box again with this BoxLite, or upgrade it");
  }
  m.version = static_cast<int>(v);
  BOXLITE_RETURN_IF_ERROR(protocol::GetString(j, "box_name", &m.box_name)
                              .Wrap("bad box archive: manifest.json"));
  const Json& image = j.value("image", Json::object());
  if (!image.is_object()) return Bad("manifest.json's \"image\" is not an object");
  BOXLITE_RETURN_IF_ERROR(protocol::GetString(image, "reference", &m.image_reference)
                              .Wrap("bad box archive: manifest.json image"));
  BOXLITE_RETURN_IF_ERROR(protocol::GetString(image, "digest", &m.image_digest)
                              .Wrap("bad box archive: manifest.json image"));
  m.image_config = ImageConfigFromJson(image.value("config", Json::object()));
  auto options = j.find("box_options");
  if (options == j.end() || !options->is_object()) {
    return Bad("manifest.json has no \"box_options\" object");
  }
  m.box_options = BoxOptionsFromJson(*options);
  auto disk = j.find("disk");
  if (disk == j.end() || !disk->is_object()) return Bad("manifest.json has no \"disk\" object");
  auto checksum = disk->find("checksum");
  if (checksum == disk->end() || !checksum->is_string() ||
      !IsChecksum(checksum->get<std::string>())) {
    return Bad("manifest.json's disk checksum is not \"sha256:<64 lowercase hex digits>\"");
  }
  m.disk_checksum = checksum->get<std::string>();
  for (auto [key, out] : {std::pair{"bytes", &m.disk_bytes},
                          std::pair{"virtual_bytes", &m.disk_virtual_bytes}}) {
    auto it = disk->find(key);
    if (it == disk->end() || !it->is_number_unsigned()) {
      return Bad(std::string("manifest.json's disk has no unsigned \"") + key + "\"");
    }
    *out = it->get<uint64_t>();
  }
  (void)protocol::GetString(j, "exported_at", &m.exported_at);
  return m;
}

Result<std::string> FileChecksum(const std::string& path) {
  BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(path, O_RDONLY | O_CLOEXEC));
  base::Sha256 hash;
  std::vector<char> buf(kChunk);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys::ErrnoStatus(errno, "read %s", path.c_str());
    if (n == 0) break;
    hash.Update(buf.data(), static_cast<size_t>(n));
  }
  return std::string(kSha256Prefix) + hash.FinishHex();
}

Status WriteBoxArchive(const std::string& dest, const BoxArchiveManifest& manifest,
                       const std::string& disk_path) {
  BOXLITE_ASSIGN_OR_RETURN(auto disk, sys::Open(disk_path, O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (::fstat(disk.get(), &st) != 0) return sys::ErrnoStatus(errno, "stat %s", disk_path.c_str());
  if (static_cast<uint64_t>(st.st_size) != manifest.disk_bytes) {
    return Status::Internal("the disk changed size while it was exported", disk_path);
  }
  BOXLITE_ASSIGN_OR_RETURN(auto out, sys::Open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  std::unique_ptr<struct archive, ArchiveWriteCloser> a(archive_write_new());
  if (!a) return Status::Internal("libarchive: out of memory");
  auto fail = [&](const char* step) {
    return Status::IoError(base::StrFormat("write box archive %s: %s: %s", dest.c_str(), step,
                                           ArchiveError(a.get()).c_str()));
  };
  // pax: entries larger than ustar's 8 GiB.
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK) return fail("tar format");
  if (archive_write_add_filter_zstd(a.get()) != ARCHIVE_OK) return fail("zstd");
  if (archive_write_open_fd(a.get(), out.get()) != ARCHIVE_OK) return fail("open");
  std::string manifest_text = ManifestToJson(manifest);
  auto add = [&](const char* name, uint64_t size) -> Status {
    std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                            archive_entry_free);
    archive_entry_set_pathname(e.get(), name);
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0600);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e.get(), std::time(nullptr), 0);
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) return fail(name);
    return Status::OK();
  };
  BOXLITE_RETURN_IF_ERROR(add(kArchiveManifestName, manifest_text.size()));
  if (archive_write_data(a.get(), manifest_text.data(), manifest_text.size()) !=
      static_cast<la_ssize_t>(manifest_text.size())) {
    return fail(kArchiveManifestName);
  }
  BOXLITE_RETURN_IF_ERROR(add(kArchiveDiskName, manifest.disk_bytes));
  std::vector<char> buf(kChunk);
  uint64_t written = 0;
  while (written < manifest.disk_bytes) {
    ssize_t n = ::read(disk.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys::ErrnoStatus(errno, "read %s", disk_path.c_str());
    if (n == 0) return Status::Internal("the disk shrank while it was exported", disk_path);
    if (archive_write_data(a.get(), buf.data(), static_cast<size_t>(n)) != n) {
      return fail(kArchiveDiskName);
    }
    written += static_cast<uint64_t>(n);
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return fail("finish");
  if (::fsync(out.get()) != 0) return sys::ErrnoStatus(errno, "fsync %s", dest.c_str());
  return Status::OK();
}

Result<BoxArchiveManifest> ReadBoxArchive(const std::string& path, const std::string& dir,
                                          const BoxArchiveLimits& limits) {
  BOXLITE_ASSIGN_OR_RETURN(auto in, sys::Open(path, O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return sys::ErrnoStatus(errno, "stat %s", path.c_str());
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("box archive " + path + " is not a regular file");
  }
  std::unique_ptr<struct archive, ArchiveReadCloser> a(archive_read_new());
  if (!a) return Status::Internal("libarchive: out of memory");
  // Only a tar, plain or compressed with zstd or gzip: nothing else is parsed.
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_gzip(a.get());
  if (archive_read_open_fd(a.get(), in.get(), kChunk) != ARCHIVE_OK) {
    return Bad("not a tar (plain, zstd or gzip): " + ArchiveError(a.get()));
  }
  auto damaged = [&]() {
    return Status::Corruption("box archive is damaged or truncated: " + ArchiveError(a.get()),
                              "export the box again");
  };
  std::optional<BoxArchiveManifest> manifest;
  bool have_disk = false;
  size_t entries = 0;
  std::vector<char> buf(kChunk);
  for (;;) {
    struct archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) return damaged();
    if (++entries > limits.max_entries) {
      return Bad(base::StrFormat("it has more than %zu entries", limits.max_entries));
    }
    const char* raw = archive_entry_pathname(e);
    std::string name = raw ? raw : "";
    if (archive_entry_hardlink(e) != nullptr || archive_entry_symlink(e) != nullptr) {
      return Bad(Quoted(name) + " is a link, not a file");
    }
    if (archive_entry_filetype(e) != AE_IFREG) return Bad(Quoted(name) + " is not a regular file");
    if (name != kArchiveManifestName && name != kArchiveDiskName) return Bad(NameProblem(name));
    if (archive_entry_sparse_count(e) > 0) return Bad(Quoted(name) + " is a sparse entry");
    bool is_manifest = name == kArchiveManifestName;
    if ((is_manifest && manifest) || (!is_manifest && have_disk)) {
      return Bad(Quoted(name) + " is in it twice");
    }
    if (!is_manifest && !manifest) {
      return Bad(std::string(kArchiveManifestName) + " must come before " + kArchiveDiskName);
    }
    uint64_t cap = is_manifest ? limits.max_manifest_bytes
                               : std::min(limits.max_disk_bytes, manifest->disk_bytes);
    auto too_big = [&](uint64_t size) {
      if (is_manifest || manifest->disk_bytes > limits.max_disk_bytes) {
        return Bad(base::StrFormat("%s is %llu bytes, more than the %llu allowed", name.c_str(),
                                   static_cast<unsigned long long>(size),
                                   static_cast<unsigned long long>(
                                       is_manifest ? limits.max_manifest_bytes
                                                   : limits.max_disk_bytes)));
      }
      return Bad(base::StrFormat("%s is %llu bytes, not the %llu its manifest says", name.c_str(),
                                 static_cast<unsigned long long>(size),
                                 static_cast<unsigned long long>(manifest->disk_bytes)));
    };
    if (!is_manifest && manifest->disk_bytes > limits.max_disk_bytes) {
      return too_big(manifest->disk_bytes);
    }
    if (archive_entry_size_is_set(e)) {
      int64_t declared = archive_entry_size(e);
      if (declared < 0 || static_cast<uint64_t>(declared) > cap) {
        return too_big(static_cast<uint64_t>(declared));
      }
    }
    if (is_manifest) {
      std::string text;
      for (;;) {
        la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n < 0) return damaged();
        if (n == 0) break;
        if (text.size() + static_cast<size_t>(n) > cap) return too_big(text.size() + n);
        text.append(buf.data(), static_cast<size_t>(n));
      }
      BOXLITE_ASSIGN_OR_RETURN(manifest, ParseManifest(text));
      continue;
    }
    // The disk, into a file of our own naming, hashed as it streams.
    std::string disk_path = sys::JoinPath(dir, kArchiveDiskName);
    BOXLITE_ASSIGN_OR_RETURN(auto out, sys::Open(disk_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
                                                                O_CLOEXEC,
                                                 0600));
    base::Sha256 hash;
    uint64_t total = 0;
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
      if (n < 0) return damaged();
      if (n == 0) break;
      total += static_cast<uint64_t>(n);
      if (total > cap) return too_big(total);
      hash.Update(buf.data(), static_cast<size_t>(n));
      BOXLITE_RETURN_IF_ERROR(sys::WriteAll(out.get(), buf.data(), static_cast<size_t>(n)));
    }
    if (total != manifest->disk_bytes) return too_big(total);
    std::string sum = std::string(kSha256Prefix) + hash.FinishHex();
    if (sum != manifest->disk_checksum) {
      return Status::Corruption("box archive's disk.qcow2 does not match its checksum (" + sum +
                                    ", the manifest says " + manifest->disk_checksum + ")",
                                "the archive was damaged or altered: export the box again");
    }
    BOXLITE_ASSIGN_OR_RETURN(Qcow2Facts facts,
                             CheckStandaloneQcow2(out.get(), limits.max_virtual_bytes));
    if (facts.virtual_bytes != manifest->disk_virtual_bytes) {
      return Bad("disk.qcow2's size differs from its manifest's");
    }
    have_disk = true;
  }
  if (!manifest) return Bad(std::string("it has no ") + kArchiveManifestName);
  if (!have_disk) return Bad(std::string("it has no ") + kArchiveDiskName);
  return *std::move(manifest);
}

Result<Qcow2Facts> CheckStandaloneQcow2(int fd, uint64_t max_virtual_bytes) {
  // The qcow2 header (QEMU's docs/interop/qcow2.txt), big-endian.
  uint8_t h[104] = {};
  BOXLITE_RETURN_IF_ERROR(PreadExactly(fd, h, 72, 0, "header"));
  auto bad = [](std::string_view why) { return Bad("disk.qcow2 " + std::string(why)); };
  if (std::memcmp(h, "QFI\xfb", 4) != 0) return bad("is not a qcow2 image");
  Qcow2Facts facts;
  facts.version = Be32(h + 4);
  if (facts.version != 2 && facts.version != 3) {
    return bad(base::StrFormat("has qcow2 version %u (2 or 3 expected)", facts.version));
  }
  if (Be64(h + 8) != 0 || Be32(h + 16) != 0) return bad("names a backing file");
  uint32_t cluster_bits = Be32(h + 20);
  if (cluster_bits < 9 || cluster_bits > 21) return bad("has an impossible cluster size");
  facts.virtual_bytes = Be64(h + 24);
  if (facts.virtual_bytes > max_virtual_bytes) {
    return bad(base::StrFormat("is %llu bytes large, more than the %llu allowed",
                               static_cast<unsigned long long>(facts.virtual_bytes),
                               static_cast<unsigned long long>(max_virtual_bytes)));
  }
  if (Be32(h + 32) != 0) return bad("is encrypted");
  if (Be32(h + 60) != 0) return bad("holds internal snapshots");
  uint32_t header_length = 72;
  if (facts.version == 3) {
    BOXLITE_RETURN_IF_ERROR(PreadExactly(fd, h + 72, 32, 72, "header"));
    uint64_t incompatible = Be64(h + 72);
    constexpr uint64_t kDirty = 1, kCorrupt = 2, kExternalData = 4, kCompressionType = 8,
                       kExtendedL2 = 16;
    if (incompatible & kExternalData) return bad("uses an external data file");
    if (incompatible & kCorrupt) return bad("is marked corrupt");
    if (incompatible & kDirty) return bad("is marked dirty (not cleanly closed)");
    if (incompatible & ~(kCompressionType | kExtendedL2)) {
      return bad(base::StrFormat("needs unknown qcow2 features (0x%llx)",
                                 static_cast<unsigned long long>(incompatible)));
    }
    header_length = Be32(h + 100);
    if (header_length < 104 || header_length > 4096 || header_length % 8 != 0) {
      return bad("has a bad header length");
    }
  }
  // Header extensions (type, length, data padded to 8), up to the first cluster: none may
  // name an external data file or a backing format.
  uint64_t offset = header_length;
  uint64_t end = uint64_t{1} << cluster_bits;
  for (int i = 0; i < 64; ++i) {
    if (offset + 8 > end) return bad("has header extensions past its first cluster");
    uint8_t ext[8];
    BOXLITE_RETURN_IF_ERROR(PreadExactly(fd, ext, sizeof(ext), offset, "header extensions"));
    uint32_t type = Be32(ext), length = Be32(ext + 4);
    if (type == 0) return facts;
    if (type == 0x44415441) return bad("names an external data file");
    if (type == 0xe2792aca) return bad("names a backing file format");
    uint64_t padded = (uint64_t{length} + 7) & ~uint64_t{7};
    offset += 8 + padded;
  }
  return bad("has too many header extensions");
}

}  // namespace boxlite::runtime
