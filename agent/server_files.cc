// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The agent's file requests: get_file and put_file streams (and their pumping), stat and
// list_dir, every path resolved inside the box's root with OpenInRoot (agent/server.h;
// the design is in agent/server.cc).
#include "agent/server.h"
#include "agent/server_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/init.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"
#include "src/sys/fs.h"

namespace boxlite::agent {

namespace {

// Opens `path` (absolute or relative to the box root) with symlinks and ".." resolved
// inside the box's root, as a process chrooted there would see it.
Result<base::UniqueFd> OpenInRoot(int root, const std::string& path, uint64_t flags,
                                  uint64_t mode = 0) {
  if (path.find('\0') != std::string::npos) return Status::InvalidArgument("path contains a NUL byte");
  struct open_how how = {};
  how.flags = flags | O_CLOEXEC;
  how.mode = mode;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path.empty() ? "." : path;
  int fd = static_cast<int>(::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof(how)));
  if (fd < 0) return sys::ErrnoStatus(errno, "%s", path.c_str());
  return base::UniqueFd(fd);
}

// The parent directory of `path` inside the root and the last component.
Status OpenParent(int root, const std::string& path, bool create, base::UniqueFd* parent,
                  std::string* name) {
  if (path.find('\0') != std::string::npos) return Status::InvalidArgument("path contains a NUL byte");
  std::string clean = path;
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  if (clean.empty() || clean == "/") return Status::InvalidArgument("path names the root", path);
  *name = sys::Basename(clean);
  if (*name == "." || *name == "..") return Status::InvalidArgument("bad path", path);
  std::string dir = sys::Dirname(clean);
  if (create) {
    // mkdir -p, one component at a time, each resolved inside the root.
    std::string cur;
    for (const auto& part : base::Split(dir, '/', true)) {
      auto at = OpenInRoot(root, cur.empty() ? "/" : cur, O_PATH | O_DIRECTORY);
      if (!at.ok()) return at.error();
      if (::mkdirat(at->get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
        return sys::ErrnoStatus(errno, "mkdir %s/%s", cur.c_str(), part.c_str());
      }
      cur += "/" + part;
    }
  }
  auto p = OpenInRoot(root, dir, O_PATH | O_DIRECTORY);
  if (!p.ok()) return p.error();
  *parent = std::move(p).value();
  return Status::OK();
}

protocol::FileInfo InfoFromStat(const std::string& path, const struct stat& st) {
  protocol::FileInfo info;
  info.path = path;
  info.kind = S_ISREG(st.st_mode)   ? "file"
              : S_ISDIR(st.st_mode) ? "dir"
              : S_ISLNK(st.st_mode) ? "symlink"
                                    : "other";
  info.mode = st.st_mode & 07777;
  info.uid = st.st_uid;
  info.gid = st.st_gid;
  info.size = st.st_size;
  info.mtime = st.st_mtim.tv_sec;
  return info;
}

}  // namespace

void Server::PumpFiles() {
  std::vector<ExecKey> files;
  for (auto& [key, exec] : execs_) {
    if (exec->is_file && exec->out[1].fd && !exec->out[1].eof) files.push_back(key);
  }
  for (ExecKey key : files) {
    // PumpOutput frees the exec when it finishes: look it up again every round.
    while (true) {
      auto it = execs_.find(key);
      if (it == execs_.end()) break;
      Exec* exec = it->second.get();
      Output& out = exec->out[1];
      if (!out.fd || out.eof || out.credit <= 0 || !exec->conn->connected ||
          exec->conn->queued_bytes >= kFileQueueLimit) {
        break;
      }
      int64_t before = out.credit;
      PumpOutput(exec, 1);
      auto again = execs_.find(key);
      if (again != execs_.end() && again->second->out[1].credit == before &&
          !again->second->out[1].eof) {
        break;  // No progress (EINTR): the next loop round retries.
      }
    }
  }
}

Status Server::DoGetFile(Conn* conn, uint32_t stream, const protocol::Json& req,
                         protocol::Json* reply) {
  protocol::GetFileRequest r;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &r));
  const std::string& path = r.path;
  if (FindExec(conn, stream) != nullptr) return Status::AlreadyExists("stream in use");
  BOXLITE_ASSIGN_OR_RETURN(auto fd, OpenInRoot(root_dir_.get(), path, O_RDONLY));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return sys::ErrnoStatus(errno, "stat %s", path.c_str());
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(path + " is not a regular file");
  }
  auto exec = std::make_unique<Exec>();
  exec->conn = conn;
  exec->stream = stream;
  exec->is_file = true;
  exec->out[1].fd = std::move(fd);
  exec->out[1].pollable = false;
  exec->out[1].credit = r.window;
  exec->out[2].eof = true;
  execs_[Key(conn, stream)] = std::move(exec);
  *reply = protocol::ToJson(InfoFromStat(path, st));
  return Status::OK();
}

Status Server::DoPutFile(Conn* conn, uint32_t stream, const protocol::Json& req,
                         protocol::Json* reply) {
  WaitForRootfs();
  protocol::FileInfo info;
  bool no_replace = false;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &info));
  BOXLITE_RETURN_IF_ERROR(protocol::GetBool(req, "no_replace", &no_replace));
  if (FindExec(conn, stream) != nullptr) return Status::AlreadyExists("stream in use");
  base::UniqueFd parent;
  std::string name;
  BOXLITE_RETURN_IF_ERROR(OpenParent(root_dir_.get(), info.path, true, &parent, &name));
  struct stat existing;
  bool exists = ::fstatat(parent.get(), name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists && info.kind == "dir" && !S_ISDIR(existing.st_mode)) {
    return Status::FailedPrecondition(info.path + " exists in the box and is not a directory");
  }
  if (exists && no_replace && info.kind != "dir") {
    return Status::AlreadyExists(info.path +
                                 " already exists in the box and overwrite is off; it was left "
                                 "as it was");
  }
  auto apply_owner = [&](int dirfd, const char* entry, int flags) -> Status {
    if (::fchownat(dirfd, entry, static_cast<uid_t>(info.uid), static_cast<gid_t>(info.gid),
                   flags) != 0) {
      return sys::ErrnoStatus(errno, "chown %s", info.path.c_str());
    }
    return Status::OK();
  };
  if (info.kind == "dir") {
    if (::mkdirat(parent.get(), name.c_str(), 0700) != 0 && errno != EEXIST) {
      return sys::ErrnoStatus(errno, "mkdir %s", info.path.c_str());
    }
    BOXLITE_RETURN_IF_ERROR(apply_owner(parent.get(), name.c_str(), AT_SYMLINK_NOFOLLOW));
    if (::fchmodat(parent.get(), name.c_str(), static_cast<mode_t>(info.mode), 0) != 0) {
      return sys::ErrnoStatus(errno, "chmod %s", info.path.c_str());
    }
    return Status::OK();
  }
  if (info.kind == "symlink") {
    if (!no_replace) ::unlinkat(parent.get(), name.c_str(), 0);
    if (::symlinkat(info.target.c_str(), parent.get(), name.c_str()) != 0) {
      return sys::ErrnoStatus(errno, "symlink %s", info.path.c_str());
    }
    return apply_owner(parent.get(), name.c_str(), AT_SYMLINK_NOFOLLOW);
  }
  if (info.kind != "file") return Status::InvalidArgument("put_file kind must be file, dir or symlink");
  // Content goes to a temporary sibling, renamed over the target once complete.
  std::string tmp_name = base::StrFormat(".%s.boxlite-%d-%u", name.c_str(), conn->index, stream);
  int fd = ::openat(parent.get(), tmp_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return sys::ErrnoStatus(errno, "create %s", info.path.c_str());
  auto exec = std::make_unique<Exec>();
  exec->conn = conn;
  exec->stream = stream;
  exec->is_file = true;
  exec->stdin_fd.reset(fd);
  exec->out[1].eof = true;
  exec->out[2].eof = true;
  exec->put.path = info.path;
  exec->put.expected = static_cast<uint64_t>(info.size);
  exec->put.tmp = tmp_name;
  exec->put.name = name;
  exec->put.no_replace = no_replace;
  exec->put.dir = std::move(parent);
  exec->put.mode = static_cast<mode_t>(info.mode);
  exec->put.uid = static_cast<uid_t>(info.uid);
  exec->put.gid = static_cast<gid_t>(info.gid);
  protocol::Json r = {{"stdin_window", kStdinWindow}};
  execs_[Key(conn, stream)] = std::move(exec);
  *reply = r;
  return Status::OK();
}

void Server::FinishPut(Exec* exec) {
  Conn* conn = exec->conn;
  Status s = exec->put.error;
  int dirfd = exec->put.dir.get();
  const std::string& name = exec->put.name;
  if (s.ok() && exec->put.received != exec->put.expected) {
    s = Status::IoError(base::StrFormat("%s: received %llu of %llu bytes", exec->put.path.c_str(),
                                        static_cast<unsigned long long>(exec->put.received),
                                        static_cast<unsigned long long>(exec->put.expected)));
  }
  if (s.ok() && ::fchown(exec->stdin_fd.get(), exec->put.uid, exec->put.gid) != 0) {
    s = sys::ErrnoStatus(errno, "chown %s", exec->put.path.c_str());
  }
  // chmod after chown: chown clears setuid/setgid bits.
  if (s.ok() && ::fchmod(exec->stdin_fd.get(), exec->put.mode) != 0) {
    s = sys::ErrnoStatus(errno, "chmod %s", exec->put.path.c_str());
  }
  // renameat2(RENAME_NOREPLACE): an entry that appeared during the transfer is kept.
  if (s.ok() && ::renameat2(dirfd, exec->put.tmp.c_str(), dirfd, name.c_str(),
                            exec->put.no_replace ? RENAME_NOREPLACE : 0) != 0) {
    s = errno == EEXIST && exec->put.no_replace
            ? Status::AlreadyExists(exec->put.path + " already exists in the box and overwrite is off")
            : sys::ErrnoStatus(errno, "rename into %s", exec->put.path.c_str());
  }
  if (!s.ok()) ::unlinkat(dirfd, exec->put.tmp.c_str(), 0);
  if (exec->stdin_unacked > 0) {
    std::string credit;
    protocol::AppendCredit(&credit, exec->stream, protocol::kFdStdin,
                           static_cast<uint32_t>(exec->stdin_unacked));
    Send(conn, std::move(credit));
  }
  protocol::ExitEvent ev;
  ev.exit_code = s.ok() ? 0 : 1;
  ev.error = s.ok() ? "" : s.message();
  SendExitEvent(conn, exec->stream, std::move(ev));
  execs_.erase(Key(conn, exec->stream));
}

Status Server::DoStat(const protocol::Json& req, protocol::Json* reply) {
  protocol::StatRequest r;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &r));
  const std::string& path = r.path;
  struct stat st;
  if (r.follow) {
    // Symlinks resolve inside the box's root, as the box's own processes see them.
    BOXLITE_ASSIGN_OR_RETURN(auto fd, OpenInRoot(root_dir_.get(), path, O_PATH));
    if (::fstat(fd.get(), &st) != 0) return sys::ErrnoStatus(errno, "%s", path.c_str());
    *reply = protocol::ToJson(InfoFromStat(path, st));
    return Status::OK();
  }
  if (path == "/" || path.empty()) {
    if (::fstat(root_dir_.get(), &st) != 0) return sys::ErrnoStatus(errno, "stat /");
    *reply = protocol::ToJson(InfoFromStat("/", st));
    return Status::OK();
  }
  base::UniqueFd parent;
  std::string name;
  Status opened = OpenParent(root_dir_.get(), path, false, &parent, &name);
  if (!opened.ok()) {
    // Name what was asked for, not the directory that failed on the way.
    return Status(opened.code(), path + ": " + (opened.IsNotFound() ? "no such file or directory"
                                                                    : opened.message()));
  }
  if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return sys::ErrnoStatus(errno, "%s", path.c_str());
  }
  protocol::FileInfo info = InfoFromStat(path, st);
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = ::readlinkat(parent.get(), name.c_str(), target, sizeof(target));
    if (n > 0) info.target.assign(target, static_cast<size_t>(n));
  }
  *reply = protocol::ToJson(info);
  return Status::OK();
}

Status Server::DoListDir(const protocol::Json& req, protocol::Json* reply) {
  protocol::ListDirRequest r;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(req, &r));
  const std::string& path = r.path;
  BOXLITE_ASSIGN_OR_RETURN(auto dirfd, OpenInRoot(root_dir_.get(), path, O_RDONLY | O_DIRECTORY));
  BOXLITE_ASSIGN_OR_RETURN(std::vector<std::string> names, sys::ListDirFd(dirfd.get(), path));
  protocol::ListDirResponse page;
  size_t start = static_cast<size_t>(r.offset);
  size_t end = std::min(names.size(), start + protocol::kListDirMaxEntries);
  size_t page_bytes = 0;
  for (size_t i = start; i < end; ++i) {
    if (page_bytes >= kListDirPageBytes) {
      end = i;
      break;
    }
    struct stat st;
    if (::fstatat(dirfd.get(), names[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    protocol::FileInfo info = InfoFromStat(names[i], st);
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = ::readlinkat(dirfd.get(), names[i].c_str(), target, sizeof(target));
      if (n > 0) info.target.assign(target, static_cast<size_t>(n));
    }
    page_bytes += protocol::Dump(protocol::ToJson(info)).size();
    page.entries.push_back(std::move(info));
  }
  page.next_offset = end < names.size() ? static_cast<int64_t>(end) : -1;
  *reply = protocol::ToJson(page);
  return Status::OK();
}

}  // namespace boxlite::agent
