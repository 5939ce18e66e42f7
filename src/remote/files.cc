// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/remote/files.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <vector>

#include "src/base/macros.h"
#include "src/base/scope_exit.h"
#include "src/sys/fs.h"

namespace boxlite::remote {
namespace {

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;

Status ArchiveError(struct archive* a, const std::string& what) {
  const char* msg = archive_error_string(a);
  return Status::IoError(what + ": " + (msg ? msg : "archive error"));
}

std::string BaseName(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string DirName(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Moves `src` to `dst`, merging directories into existing ones.
Status MoveInto(const std::string& src, const std::string& dst, bool overwrite) {
  struct stat s, d;
  if (::lstat(src.c_str(), &s) != 0) return Status::IoError("stat " + src + ": " + std::strerror(errno));
  if (::lstat(dst.c_str(), &d) != 0) {
    if (::rename(src.c_str(), dst.c_str()) != 0) {
      return Status::IoError("move to " + dst + ": " + std::strerror(errno));
    }
    return Status::OK();
  }
  if (S_ISDIR(s.st_mode) && S_ISDIR(d.st_mode)) {
    BOXLITE_ASSIGN_OR_RETURN(auto names, sys::ListDir(src));
    for (const auto& n : names) BOXLITE_RETURN_IF_ERROR(MoveInto(src + "/" + n, dst + "/" + n, overwrite));
    return Status::OK();
  }
  if (!overwrite) return Status::AlreadyExists(dst + " exists (copy with overwrite to replace it)");
  if (S_ISDIR(d.st_mode)) return Status::FailedPrecondition("cannot replace the directory " + dst + " with a file");
  if (::rename(src.c_str(), dst.c_str()) != 0) {
    return Status::IoError("replace " + dst + ": " + std::strerror(errno));
  }
  return Status::OK();
}

}  // namespace

Result<std::string> MakeTempDir() {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);  // $TMPDIR, else /tmp.
  if (ec) base = "/tmp";
  std::string pattern = (base / "boxlite-remote-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return Status::IoError("create a temporary directory: " + std::string(std::strerror(errno)));
  }
  return std::string(buf.data());
}

std::pair<std::string, std::string> CopyInTarget(const std::string& host_path,
                                                 const std::string& guest_path) {
  if (sys::IsDirectory(host_path)) return {guest_path, ""};
  if (guest_path.ends_with("/")) {
    std::string dir = guest_path;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return {dir, BaseName(host_path)};
  }
  return {DirName(guest_path), BaseName(guest_path)};
}

Status PackForCopyIn(const std::string& host_path, const std::string& tar_path,
                     const CopyOptions& options, const std::string& top) {
  struct stat st;
  int rc = options.follow_symlinks ? ::stat(host_path.c_str(), &st) : ::lstat(host_path.c_str(), &st);
  if (rc != 0) return Status::NotFound("no such file or directory on this host: " + host_path);
  if (S_ISDIR(st.st_mode) && !options.recursive) {
    return Status::InvalidArgument(host_path + " is a directory (copy it with recursive=True)");
  }
  std::string root = host_path;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  bool dir = S_ISDIR(st.st_mode);
  ArchivePtr out(archive_write_new(), archive_write_free);
  archive_write_set_format_pax_restricted(out.get());
  if (archive_write_open_filename(out.get(), tar_path.c_str()) != ARCHIVE_OK) {
    return ArchiveError(out.get(), "create " + tar_path);
  }
  ArchivePtr disk(archive_read_disk_new(), archive_read_free);
  if (options.follow_symlinks) {
    archive_read_disk_set_symlink_logical(disk.get());
  } else {
    archive_read_disk_set_symlink_physical(disk.get());
  }
  archive_read_disk_set_standard_lookup(disk.get());
  if (archive_read_disk_open(disk.get(), root.c_str()) != ARCHIVE_OK) {
    return ArchiveError(disk.get(), "read " + root);
  }
  std::vector<char> buf(1 << 16);
  for (;;) {
    std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)> entry(archive_entry_new(),
                                                                                  archive_entry_free);
    int r = archive_read_next_header2(disk.get(), entry.get());
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ArchiveError(disk.get(), "read " + root);
    if (options.recursive) archive_read_disk_descend(disk.get());
    std::string path = archive_entry_pathname(entry.get());
    std::string rel = path.size() > root.size() + 1 ? path.substr(root.size() + 1) : "";
    if (dir && rel.empty()) continue;  // The directory itself: its contents are the archive.
    archive_entry_set_pathname(entry.get(), (dir ? rel : top).c_str());
    if (archive_write_header(out.get(), entry.get()) != ARCHIVE_OK) {
      return ArchiveError(out.get(), "pack " + path);
    }
    if (archive_entry_filetype(entry.get()) == AE_IFREG) {
      for (;;) {
        la_ssize_t n = archive_read_data(disk.get(), buf.data(), buf.size());
        if (n < 0) return ArchiveError(disk.get(), "read " + path);
        if (n == 0) break;
        if (archive_write_data(out.get(), buf.data(), static_cast<size_t>(n)) < 0) {
          return ArchiveError(out.get(), "pack " + path);
        }
      }
    }
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) return ArchiveError(out.get(), "write " + tar_path);
  return Status::OK();
}

Status UnpackForCopyOut(const std::string& tar_path, const std::string& host_path,
                        const CopyOptions& options) {
  bool into_dir = sys::IsDirectory(host_path);
  std::string parent = into_dir ? host_path : DirName(host_path);
  if (!sys::IsDirectory(parent)) {
    return Status::NotFound("the destination's directory does not exist: " + parent);
  }
  std::string pattern = parent + "/.boxlite-copy-XXXXXX";
  std::vector<char> tmpl(pattern.begin(), pattern.end());
  tmpl.push_back('\0');
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Status::IoError("create a directory in " + parent + ": " + std::strerror(errno));
  }
  std::string tmp(tmpl.data());
  base::ScopeExit cleanup([&] { (void)sys::RemoveTree(tmp); });

  ArchivePtr in(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  if (archive_read_open_filename(in.get(), tar_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return ArchiveError(in.get(), "read the archive from the server");
  }
  ArchivePtr out(archive_write_disk_new(), archive_write_free);
  // Entry paths are checked below (relative, no "..") and then placed under `tmp`, which
  // makes them absolute: libarchive's NOABSOLUTEPATHS check would refuse every one.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                                ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                                ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  std::set<std::string> tops;
  struct archive_entry* entry = nullptr;
  for (;;) {
    int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ArchiveError(in.get(), "read the archive from the server");
    auto type = archive_entry_filetype(entry);
    if ((type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) || archive_entry_hardlink(entry)) {
      continue;  // Devices, fifos and hard links from a box are not copied out.
    }
    std::string path = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    while (path.starts_with("./")) path.erase(0, 2);
    while (!path.empty() && path.back() == '/') path.pop_back();
    if (path.empty() || path == ".") continue;
    if (path[0] == '/' || path == ".." || path.starts_with("../") || path.find("/../") != std::string::npos ||
        path.ends_with("/..")) {
      return Status::ProtocolError("the server's archive has an unsafe path: " + path.substr(0, 200));
    }
    tops.insert(path.substr(0, path.find('/')));
    archive_entry_set_pathname(entry, (tmp + "/" + path).c_str());
    archive_entry_set_perm(entry, archive_entry_perm(entry) & 0777);
    if (archive_write_header(out.get(), entry) != ARCHIVE_OK) {
      return ArchiveError(out.get(), "write " + path.substr(0, 200));
    }
    const void* block;
    size_t size;
    la_int64_t offset;
    for (;;) {
      int d = archive_read_data_block(in.get(), &block, &size, &offset);
      if (d == ARCHIVE_EOF) break;
      if (d != ARCHIVE_OK) return ArchiveError(in.get(), "read " + path.substr(0, 200));
      if (archive_write_data_block(out.get(), block, size, offset) != ARCHIVE_OK) {
        return ArchiveError(out.get(), "write " + path.substr(0, 200));
      }
    }
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) return ArchiveError(out.get(), "finish the copy");
  if (tops.size() != 1) {
    return Status::ProtocolError("the server's archive has " + std::to_string(tops.size()) +
                                 " top-level entries, expected one");
  }
  std::string name = *tops.begin();
  std::string src = tmp + "/" + name;
  bool src_dir = sys::IsDirectory(src);
  std::string target = host_path;
  if (into_dir && (!src_dir || options.include_parent)) target = host_path + "/" + name;
  return MoveInto(src, target, options.overwrite);
}

}  // namespace boxlite::remote
