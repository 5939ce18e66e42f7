// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/server/tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <memory>
#include <string_view>
#include <vector>

#include "src/image/tar_path.h"

namespace boxlite::server {

namespace {

struct ArchiveDeleter {
  void operator()(archive* a) const {
    if (a != nullptr) archive_free(a);
  }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;
struct EntryDeleter {
  void operator()(archive_entry* e) const {
    if (e != nullptr) archive_entry_free(e);
  }
};

std::string ArchiveError(archive* a) {
  const char* e = archive_error_string(a);
  return e != nullptr ? e : "unknown error";
}

// A name from the tar made relative and checked: no absolute path, nothing that leaves the
// tree ("a/../b" is "b"; "../x" is refused), not empty. "./a//b/" becomes "a/b".
bool CleanName(std::string_view name, std::string* out) {
  if (name.empty() || name.front() == '/') return false;
  auto clean = image::CleanTarPath(name);
  if (!clean.ok() || clean->empty()) return false;
  *out = clean->str();
  return true;
}

// Whether dest/rel is a regular file reached without any symlink on the way.
bool PlainFileBeneath(const std::string& dest, const std::string& rel) {
  std::string path = dest;
  size_t i = 0;
  while (i < rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    path += "/" + rel.substr(i, j - i);
    i = j + 1;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return false;
    if (i >= rel.size()) return S_ISREG(st.st_mode);
    if (!S_ISDIR(st.st_mode)) return false;
  }
  return false;
}

}  // namespace

Status ExtractTar(const std::string& tar_path, const std::string& dest_dir, uint64_t max_bytes) {
  ArchivePtr in(archive_read_new());
  archive_read_support_format_tar(in.get());
  if (archive_read_open_filename(in.get(), tar_path.c_str(), 64 * 1024) != ARCHIVE_OK) {
    return Status::InvalidArgument("the upload is not a tar archive: " + ArchiveError(in.get()));
  }
  ArchivePtr out(archive_write_disk_new());
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                                ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                                ARCHIVE_EXTRACT_NO_OVERWRITE);
  uint64_t total = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return Status::InvalidArgument("the upload is not a valid tar archive: " +
                                     ArchiveError(in.get()));
    }
    const char* raw = archive_entry_pathname(entry);
    std::string shown = raw != nullptr ? raw : "";
    std::string name;
    if (!CleanName(shown, &name)) {
      return Status::InvalidArgument("tar entry '" + shown +
                                     "' is refused: names must be relative and stay inside the archive");
    }
    mode_t type = archive_entry_filetype(entry);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
      return Status::InvalidArgument("tar entry '" + shown +
                                     "' is refused: only files, directories and links are "
                                     "copied");
    }
    if (const char* hard = archive_entry_hardlink(entry)) {
      std::string target;
      if (!CleanName(hard, &target)) {
        return Status::InvalidArgument("tar entry '" + shown + "' links to '" + hard +
                                       "': a hard link must stay inside the archive");
      }
      if (!PlainFileBeneath(dest_dir, target)) {
        return Status::InvalidArgument("tar entry '" + shown + "' links to '" + hard +
                                       "': not a file extracted before it (or through a "
                                       "symlink)");
      }
      archive_entry_set_hardlink(entry, (dest_dir + "/" + target).c_str());
    }
    int64_t size = archive_entry_size(entry);
    if (size > 0) total += static_cast<uint64_t>(size);
    if (total > max_bytes) {
      return Status::ResourceExhausted("the tar holds more than " + std::to_string(max_bytes) +
                                       " bytes of files: raise serve's --max-upload-bytes");
    }
    archive_entry_set_pathname(entry, (dest_dir + "/" + name).c_str());
    archive_entry_set_perm(entry, archive_entry_perm(entry) & 0777);
    archive_entry_set_uid(entry, 0);
    archive_entry_set_gid(entry, 0);
    r = archive_write_header(out.get(), entry);
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return Status::InvalidArgument("tar entry '" + shown + "' is refused: " +
                                     ArchiveError(out.get()));
    }
    if (type == AE_IFREG && size > 0) {
      const void* buf = nullptr;
      size_t len = 0;
      la_int64_t offset = 0;
      for (;;) {
        r = archive_read_data_block(in.get(), &buf, &len, &offset);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK) {
          return Status::InvalidArgument("tar entry '" + shown + "' is truncated: " +
                                         ArchiveError(in.get()));
        }
        if (archive_write_data_block(out.get(), buf, len, offset) != ARCHIVE_OK) {
          return Status::IoError("writing '" + shown + "': " + ArchiveError(out.get()));
        }
      }
    }
    if (archive_write_finish_entry(out.get()) < ARCHIVE_WARN) {
      return Status::IoError("writing '" + shown + "': " + ArchiveError(out.get()));
    }
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) {
    return Status::IoError("finishing the extraction: " + ArchiveError(out.get()));
  }
  return Status::OK();
}

Status CreateTar(const std::string& src_dir, const std::string& tar_path) {
  ArchivePtr out(archive_write_new());
  archive_write_set_format_pax_restricted(out.get());
  if (archive_write_open_filename(out.get(), tar_path.c_str()) != ARCHIVE_OK) {
    return Status::IoError("creating " + tar_path + ": " + ArchiveError(out.get()));
  }
  // Top-level entries in name order, each walked without following symlinks.
  std::vector<std::string> tops;
  if (DIR* d = opendir(src_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") tops.push_back(n);
    }
    closedir(d);
  } else {
    return Status(StatusCode::kIoError, "reading " + src_dir, errno);
  }
  std::string prefix = src_dir + "/";
  for (const auto& top : tops) {
    ArchivePtr disk(archive_read_disk_new());
    archive_read_disk_set_symlink_physical(disk.get());
    archive_read_disk_set_standard_lookup(disk.get());
    std::string path = prefix + top;
    if (archive_read_disk_open(disk.get(), path.c_str()) != ARCHIVE_OK) {
      return Status::IoError("reading " + path + ": " + ArchiveError(disk.get()));
    }
    for (;;) {
      std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
      int r = archive_read_next_header2(disk.get(), entry.get());
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        return Status::IoError("reading " + path + ": " + ArchiveError(disk.get()));
      }
      archive_read_disk_descend(disk.get());
      std::string name = archive_entry_pathname(entry.get());
      if (name.compare(0, prefix.size(), prefix) == 0) name = name.substr(prefix.size());
      archive_entry_set_pathname(entry.get(), name.c_str());
      r = archive_write_header(out.get(), entry.get());
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        return Status::IoError("writing the tar: " + ArchiveError(out.get()));
      }
      if (archive_entry_filetype(entry.get()) == AE_IFREG && archive_entry_size(entry.get()) > 0) {
        char buf[64 * 1024];
        la_ssize_t n;
        while ((n = archive_read_data(disk.get(), buf, sizeof(buf))) > 0) {
          if (archive_write_data(out.get(), buf, static_cast<size_t>(n)) < 0) {
            return Status::IoError("writing the tar: " + ArchiveError(out.get()));
          }
        }
        if (n < 0) return Status::IoError("reading " + name + ": " + ArchiveError(disk.get()));
      }
    }
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) {
    return Status::IoError("finishing the tar: " + ArchiveError(out.get()));
  }
  return Status::OK();
}

}  // namespace boxlite::server
