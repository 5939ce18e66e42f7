// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/file_transfer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/runtime/exec_impl.h"
#include "src/runtime/tree_copy.h"
#include "src/sys/errno_status.h"
#include "src/sys/beneath.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

constexpr auto kCallTimeout = std::chrono::seconds(60);

Clock::time_point Deadline() { return Clock::now() + kCallTimeout; }

// The shared_ptr the ExecImpl needs; the channel outlives the transfer.
std::shared_ptr<AgentChannel> Borrow(AgentChannel* channel) {
  return std::shared_ptr<AgentChannel>(channel, [](AgentChannel*) {});
}

Result<protocol::FileInfo> GuestStat(AgentChannel* channel, const std::string& path,
                                     bool follow = false) {
  protocol::StatRequest request{path, follow};
  BOXLITE_ASSIGN_OR_RETURN(auto reply, channel->Call("stat", protocol::ToJson(request), Deadline()));
  protocol::FileInfo info;
  Status parsed = protocol::FromJson(reply, &info);
  if (!parsed.ok()) return Status::ProtocolError("stat: " + parsed.message());
  if (follow && info.kind == "symlink") {
    return Status::NotSupported("the box's agent does not follow symlinks (it predates "
                                "follow_symlinks); copy without it",
                                sys::PrintableName(path));
  }
  return info;
}

// A host tree going into the box (CopyOptions as in file_transfer.h).
class HostTreeSender {
 public:
  HostTreeSender(AgentChannel* channel, const CopyOptions& options)
      : channel_(channel), options_(options) {}

  // lstat, or stat when following symlinks.
  Status Stat(const std::string& host_path, struct stat* st) const {
    int rc = options_.follow_symlinks ? ::stat(host_path.c_str(), st)
                                      : ::lstat(host_path.c_str(), st);
    if (rc != 0) return sys::ErrnoStatus(errno, "%s", host_path.c_str());
    return Status::OK();
  }

  Status Tree(const std::string& host_path, const struct stat& st, const std::string& guest_path) {
    if (S_ISREG(st.st_mode)) return File(host_path, st, guest_path);
    protocol::FileInfo info;
    info.path = guest_path;
    info.mode = st.st_mode & 07777;
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = ::readlink(host_path.c_str(), target, sizeof(target));
      if (n < 0) return sys::ErrnoStatus(errno, "readlink %s", host_path.c_str());
      info.kind = "symlink";
      info.target.assign(target, static_cast<size_t>(n));
      return Entry(info);
    }
    if (!S_ISDIR(st.st_mode)) {
      return Status::NotSupported("cannot copy special file " + host_path);
    }
    info.kind = "dir";
    BOXLITE_RETURN_IF_ERROR(Entry(info));
    return Children(host_path, st, guest_path);
  }

  // The entries of the host directory `host_path` into the guest directory `guest_path`.
  Status Children(const std::string& host_path, const struct stat& st,
                  const std::string& guest_path) {
    // Followed symlinks can make a loop: a directory already on the way down is an error.
    auto id = std::make_pair(st.st_dev, st.st_ino);
    for (const auto& seen : path_) {
      if (seen == id) {
        return Status::InvalidArgument("copy " + host_path +
                                       ": a symlink loop (the directory contains itself)");
      }
    }
    path_.push_back(id);
    BOXLITE_ASSIGN_OR_RETURN(auto names, sys::ListDir(host_path));
    for (const auto& name : names) {
      std::string child = sys::JoinPath(host_path, name);
      struct stat child_st;
      BOXLITE_RETURN_IF_ERROR(Stat(child, &child_st));
      BOXLITE_RETURN_IF_ERROR(Tree(child, child_st, sys::JoinPath(guest_path, name)));
    }
    path_.pop_back();
    return Status::OK();
  }

 private:
  protocol::Json Request(const protocol::FileInfo& info) const {
    protocol::Json request = protocol::ToJson(info);
    if (!options_.overwrite) request["no_replace"] = true;
    return request;
  }

  Status Entry(const protocol::FileInfo& info) {
    auto reply = channel_->Call("put_file", Request(info), Deadline());
    return reply.ok() ? Status::OK() : reply.error().Wrap("copy to " + info.path);
  }

  Status File(const std::string& host_path, const struct stat& st, const std::string& guest_path) {
    BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(host_path, O_RDONLY));
    protocol::FileInfo info;
    info.path = guest_path;
    info.kind = "file";
    info.mode = st.st_mode & 07777;
    info.size = st.st_size;
    std::shared_ptr<StreamSink> sink;
    uint32_t stream = 0;
    auto reply = channel_->Call("put_file", Request(info), Deadline(), &sink, &stream);
    if (!reply.ok()) return reply.error().Wrap("copy to " + guest_path);
    int64_t window = 0;
    BOXLITE_RETURN_IF_ERROR(protocol::GetInt(*reply, "stdin_window", &window));
    ExecImpl transfer(Borrow(channel_), stream, sink, 0, window, false, nullptr);
    std::vector<char> buf(1 << 20);
    uint64_t sent = 0;
    while (true) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        (void)transfer.Kill();
        return sys::ErrnoStatus(errno, "read %s", host_path.c_str());
      }
      if (n == 0) break;
      BOXLITE_RETURN_IF_ERROR(
          transfer.WriteStdin(std::string_view(buf.data(), static_cast<size_t>(n))));
      sent += static_cast<uint64_t>(n);
    }
    if (sent != static_cast<uint64_t>(st.st_size)) {
      return Status::IoError(host_path + " changed size while being copied");
    }
    BOXLITE_RETURN_IF_ERROR(transfer.CloseStdin());
    BOXLITE_ASSIGN_OR_RETURN(ExitStatus done, transfer.Wait(std::chrono::minutes(10)));
    if (done.exit_code != 0) return Status::IoError("copy to " + guest_path, done.error_message);
    return Status::OK();
  }

  AgentChannel* channel_;
  CopyOptions options_;
  std::vector<std::pair<dev_t, ino_t>> path_;  // Directories being copied, top first.
};

Status NotRecursive(const std::string& path) {
  return Status::InvalidArgument(path +
                                 " is a directory; copy it with recursive=True (CopyOptions)");
}

// The agent's list_dir and get_file as a GuestTreeSource (docs/protocol.md).
class ChannelTreeSource : public GuestTreeSource {
 public:
  explicit ChannelTreeSource(AgentChannel* channel) : channel_(channel) {}

  Result<GuestListPage> List(const std::string& guest_path, int64_t offset) override {
    protocol::ListDirRequest request{guest_path, offset};
    BOXLITE_ASSIGN_OR_RETURN(auto reply,
                             channel_->Call("list_dir", protocol::ToJson(request), Deadline()));
    protocol::ListDirResponse listed;
    Status parsed = protocol::FromJson(reply, &listed);
    if (!parsed.ok()) return Status::ProtocolError("list_dir: " + parsed.message());
    GuestListPage page;
    page.entries = std::move(listed.entries);
    page.next_offset = listed.next_offset;
    return page;
  }

  Result<protocol::FileInfo> Follow(const std::string& guest_path) override {
    return GuestStat(channel_, guest_path, /*follow=*/true);
  }

  Status Read(const std::string& guest_path, protocol::FileInfo* info,
              const std::function<Status(std::string_view)>& write) override {
    std::shared_ptr<StreamSink> sink;
    uint32_t stream = 0;
    protocol::GetFileRequest request{guest_path, protocol::kDefaultWindow};
    auto reply = channel_->Call("get_file", protocol::ToJson(request), Deadline(), &sink, &stream);
    if (!reply.ok()) return reply.error().Wrap("copy from " + sys::PrintableName(guest_path));
    Status parsed = protocol::FromJson(*reply, info);
    if (!parsed.ok()) return Status::ProtocolError("get_file: " + parsed.message());
    ExecImpl transfer(Borrow(channel_), stream, sink, 0, 0, false, nullptr);
    while (true) {
      BOXLITE_ASSIGN_OR_RETURN(auto chunk, transfer.Read(1, std::chrono::minutes(10)));
      if (chunk.empty()) break;
      BOXLITE_RETURN_IF_ERROR(write(chunk));
    }
    (void)transfer.Wait(std::chrono::seconds(30));
    return Status::OK();
  }

 private:
  AgentChannel* channel_;
};

}  // namespace

Status CopyToGuest(AgentChannel* channel, const std::string& host_path,
                   const std::string& guest_path, const CopyOptions& options) {
  if (guest_path.empty() || guest_path[0] != '/') {
    return Status::InvalidArgument("the guest path must be absolute", guest_path);
  }
  HostTreeSender sender(channel, options);
  struct stat st;
  Status found = sender.Stat(host_path, &st);
  if (!found.ok()) return found.Wrap("copy");
  if (S_ISDIR(st.st_mode) && !options.recursive) return NotRecursive(host_path);
  std::string target = guest_path;
  auto existing = GuestStat(channel, guest_path);
  if (existing.ok() && existing->kind == "dir") {
    if (S_ISDIR(st.st_mode) && !options.include_parent) {
      return sender.Children(host_path, st, guest_path);
    }
    target = sys::JoinPath(guest_path, sys::Basename(host_path));
  }
  return sender.Tree(host_path, st, target);
}

Status CopyFromGuest(AgentChannel* channel, const std::string& guest_path,
                     const std::string& host_path, const CopyOptions& options) {
  if (guest_path.empty() || guest_path[0] != '/') {
    return Status::InvalidArgument("the guest path must be absolute", guest_path);
  }
  auto info = GuestStat(channel, guest_path);
  if (info.ok() && info->kind == "symlink" && options.follow_symlinks) {
    info = GuestStat(channel, guest_path, /*follow=*/true);
  }
  if (!info.ok()) return info.error().Wrap("copy from the box");
  if (info->kind == "dir" && !options.recursive) return NotRecursive(guest_path);
  ChannelTreeSource source(channel);
  // The destination's parent is the caller's (its path may go through the caller's own
  // symlinks); everything below it is the box's and is written beneath the parent's fd.
  std::string parent_path = sys::Dirname(host_path);
  std::string name = sys::Basename(host_path);
  if (sys::IsDirectory(host_path)) {
    if (info->kind == "dir" && !options.include_parent) {
      BOXLITE_ASSIGN_OR_RETURN(auto dir, sys::Open(host_path, O_RDONLY | O_DIRECTORY));
      return CopyChildrenOut(&source, guest_path, dir.get(), TreeLimits(), options);
    }
    parent_path = host_path;
    name = sys::Basename(guest_path);
  }
  if (!sys::IsSafeName(name)) {
    return Status::InvalidArgument("copy from the box: name the destination file or directory",
                                   host_path);
  }
  BOXLITE_ASSIGN_OR_RETURN(auto parent, sys::Open(parent_path, O_RDONLY | O_DIRECTORY));
  return CopyTreeOut(&source, guest_path, *info, parent.get(), name, TreeLimits(), options);
}

}  // namespace boxlite::runtime
