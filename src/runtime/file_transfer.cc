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

Result<protocol::FileInfo> GuestStat(AgentChannel* channel, const std::string& path) {
  BOXLITE_ASSIGN_OR_RETURN(auto reply, channel->Call("stat", {{"path", path}}, Deadline()));
  protocol::FileInfo info;
  BOXLITE_RETURN_IF_ERROR(protocol::FromJson(reply, &info));
  return info;
}

Status PutEntry(AgentChannel* channel, protocol::FileInfo info) {
  auto reply = channel->Call("put_file", protocol::ToJson(info), Deadline());
  return reply.ok() ? Status::OK() : reply.error().Wrap("copy to " + info.path);
}

Status PutFile(AgentChannel* channel, const std::string& host_path, const struct stat& st,
               const std::string& guest_path) {
  BOXLITE_ASSIGN_OR_RETURN(auto fd, sys::Open(host_path, O_RDONLY));
  protocol::FileInfo info;
  info.path = guest_path;
  info.kind = "file";
  info.mode = st.st_mode & 07777;
  info.size = st.st_size;
  std::shared_ptr<StreamSink> sink;
  uint32_t stream = 0;
  auto reply = channel->Call("put_file", protocol::ToJson(info), Deadline(), &sink, &stream);
  if (!reply.ok()) return reply.error().Wrap("copy to " + guest_path);
  int64_t window = 0;
  BOXLITE_RETURN_IF_ERROR(protocol::GetInt(*reply, "stdin_window", &window));
  ExecImpl transfer(Borrow(channel), stream, sink, 0, window, false, nullptr);
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
    BOXLITE_RETURN_IF_ERROR(transfer.WriteStdin(std::string_view(buf.data(), static_cast<size_t>(n))));
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

Status PutTree(AgentChannel* channel, const std::string& host_path, const std::string& guest_path) {
  struct stat st;
  if (::lstat(host_path.c_str(), &st) != 0) return sys::ErrnoStatus(errno, "%s", host_path.c_str());
  if (S_ISREG(st.st_mode)) return PutFile(channel, host_path, st, guest_path);
  protocol::FileInfo info;
  info.path = guest_path;
  info.mode = st.st_mode & 07777;
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = ::readlink(host_path.c_str(), target, sizeof(target));
    if (n < 0) return sys::ErrnoStatus(errno, "readlink %s", host_path.c_str());
    info.kind = "symlink";
    info.target.assign(target, static_cast<size_t>(n));
    return PutEntry(channel, info);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::NotSupported("cannot copy special file " + host_path);
  }
  info.kind = "dir";
  BOXLITE_RETURN_IF_ERROR(PutEntry(channel, info));
  BOXLITE_ASSIGN_OR_RETURN(auto names, sys::ListDir(host_path));
  for (const auto& name : names) {
    BOXLITE_RETURN_IF_ERROR(
        PutTree(channel, sys::JoinPath(host_path, name), sys::JoinPath(guest_path, name)));
  }
  return Status::OK();
}

// The agent's list_dir and get_file as a GuestTreeSource (docs/protocol.md).
class ChannelTreeSource : public GuestTreeSource {
 public:
  explicit ChannelTreeSource(AgentChannel* channel) : channel_(channel) {}

  Result<GuestListPage> List(const std::string& guest_path, int64_t offset) override {
    BOXLITE_ASSIGN_OR_RETURN(auto reply,
                             channel_->Call("list_dir", {{"path", guest_path}, {"offset", offset}},
                                            Deadline()));
    if (!reply.contains("entries") || !reply["entries"].is_array()) {
      return Status::ProtocolError("list_dir without entries");
    }
    GuestListPage page;
    for (const auto& entry : reply["entries"]) {
      protocol::FileInfo child;
      BOXLITE_RETURN_IF_ERROR(protocol::FromJson(entry, &child));
      page.entries.push_back(std::move(child));
    }
    BOXLITE_RETURN_IF_ERROR(protocol::GetInt(reply, "next_offset", &page.next_offset));
    return page;
  }

  Status Read(const std::string& guest_path, protocol::FileInfo* info,
              const std::function<Status(std::string_view)>& write) override {
    std::shared_ptr<StreamSink> sink;
    uint32_t stream = 0;
    auto reply = channel_->Call("get_file",
                                {{"path", guest_path}, {"window", protocol::kDefaultWindow}},
                                Deadline(), &sink, &stream);
    if (!reply.ok()) return reply.error().Wrap("copy from " + sys::PrintableName(guest_path));
    BOXLITE_RETURN_IF_ERROR(protocol::FromJson(*reply, info));
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
                   const std::string& guest_path) {
  if (guest_path.empty() || guest_path[0] != '/') {
    return Status::InvalidArgument("the guest path must be absolute", guest_path);
  }
  struct stat st;
  if (::lstat(host_path.c_str(), &st) != 0) {
    return sys::ErrnoStatus(errno, "copy %s", host_path.c_str());
  }
  std::string target = guest_path;
  auto existing = GuestStat(channel, guest_path);
  if (existing.ok() && existing->kind == "dir") {
    target = sys::JoinPath(guest_path, sys::Basename(host_path));
  }
  return PutTree(channel, host_path, target);
}

Status CopyFromGuest(AgentChannel* channel, const std::string& guest_path,
                     const std::string& host_path) {
  if (guest_path.empty() || guest_path[0] != '/') {
    return Status::InvalidArgument("the guest path must be absolute", guest_path);
  }
  auto info = GuestStat(channel, guest_path);
  if (!info.ok()) return info.error().Wrap("copy from the box");
  // The destination's parent is the caller's (its path may go through the caller's own
  // symlinks); everything below it is the box's and is written beneath the parent's fd.
  std::string parent_path = sys::Dirname(host_path);
  std::string name = sys::Basename(host_path);
  if (sys::IsDirectory(host_path)) {
    parent_path = host_path;
    name = sys::Basename(guest_path);
  }
  if (!sys::IsSafeName(name)) {
    return Status::InvalidArgument("copy from the box: name the destination file or directory",
                                   host_path);
  }
  BOXLITE_ASSIGN_OR_RETURN(auto parent, sys::Open(parent_path, O_RDONLY | O_DIRECTORY));
  ChannelTreeSource source(channel);
  return CopyTreeOut(&source, guest_path, *info, parent.get(), name);
}

}  // namespace boxlite::runtime
