// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/qmp.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"

namespace boxlite::vmm {
namespace {

using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

// Waits until `fd` is ready for `events`, or the deadline.
Status WaitReady(int fd, short events, Clock::time_point deadline, std::string_view what) {
  for (;;) {
    struct pollfd p = {fd, events, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n > 0) return Status::OK();
    if (n == 0) {
      return Status::DeadlineExceeded(base::StrFormat(
          "QEMU's monitor did not answer in time (%.*s)", static_cast<int>(what.size()),
          what.data()));
    }
    if (errno != EINTR) return sys::ErrnoStatus(errno, "poll QEMU's monitor");
  }
}

// A bounded, printable excerpt of untrusted text for an error message.
std::string Excerpt(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 200)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

}  // namespace

Result<QmpClient> QmpClient::Open(base::UniqueFd fd, std::chrono::milliseconds timeout) {
  if (!fd) return Status::InvalidArgument("QMP needs a connected socket");
  QmpClient client(std::move(fd));
  auto deadline = Clock::now() + timeout;
  BOXLITE_ASSIGN_OR_RETURN(nlohmann::json greeting, client.Read(deadline));
  if (!greeting.is_object() || !greeting.contains("QMP")) {
    return Status::ProtocolError("QEMU's monitor did not greet with QMP");
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  BOXLITE_RETURN_IF_ERROR(
      client.Execute("qmp_capabilities", nullptr, std::max(left, std::chrono::milliseconds(1)))
          .status());
  return client;
}

Status QmpClient::Send(const nlohmann::json& message, int pass_fd, Deadline deadline) {
  std::string text = message.dump() + "\n";
  size_t sent = 0;
  while (sent < text.size()) {
    BOXLITE_RETURN_IF_ERROR(WaitReady(fd_.get(), POLLOUT, deadline, "send"));
    struct iovec iov = {text.data() + sent, text.size() - sent};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0 && sent == 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
    }
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == EPIPE || errno == ECONNRESET) {
        return Status::Unavailable("QEMU's monitor closed (the VM has exited)");
      }
      return sys::ErrnoStatus(errno, "write to QEMU's monitor");
    }
    sent += static_cast<size_t>(n);
  }
  return Status::OK();
}

Result<nlohmann::json> QmpClient::Read(Deadline deadline) {
  for (;;) {
    size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      nlohmann::json message = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (message.is_discarded() || !message.is_object()) {
        return Status::ProtocolError("QEMU's monitor sent a message that is not a JSON object",
                                     Excerpt(line));
      }
      return message;
    }
    if (buffer_.size() > kMaxMessageBytes) {
      return Status::ProtocolError(
          base::StrFormat("QEMU's monitor sent a message over %zu bytes", kMaxMessageBytes));
    }
    BOXLITE_RETURN_IF_ERROR(WaitReady(fd_.get(), POLLIN, deadline, "read"));
    char chunk[16384];
    size_t want = std::min(sizeof(chunk), kMaxMessageBytes + 1 - buffer_.size());
    ssize_t n = ::recv(fd_.get(), chunk, want, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return Status::Unavailable("QEMU's monitor closed (the VM has exited)");
      return sys::ErrnoStatus(errno, "read QEMU's monitor");
    }
    if (n == 0) return Status::Unavailable("QEMU's monitor closed (the VM has exited)");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

Result<nlohmann::json> QmpClient::Answer(std::string_view command, Deadline deadline) {
  std::string what(command);
  for (;;) {
    BOXLITE_ASSIGN_OR_RETURN(nlohmann::json message, Read(deadline));
    if (message.contains("event")) {
      if (events_.size() >= kMaxEvents) events_.erase(events_.begin());
      events_.push_back(std::move(message));
      continue;
    }
    auto id = message.find("id");
    if (id == message.end() || !id->is_number_unsigned() || id->get<uint64_t>() != next_id_ - 1) {
      return Status::ProtocolError("QEMU's monitor answered out of order", what);
    }
    if (auto ret = message.find("return"); ret != message.end()) return *ret;
    if (auto err = message.find("error"); err != message.end() && err->is_object()) {
      auto text = [&](const char* key) {
        auto it = err->find(key);
        return it != err->end() && it->is_string() ? Excerpt(it->get<std::string>())
                                                   : std::string("?");
      };
      return Status::FailedPrecondition(
          base::StrFormat("QEMU refused %s: %s: %s", what.c_str(), text("class").c_str(),
                          text("desc").c_str()));
    }
    return Status::ProtocolError("QEMU's monitor sent an answer with no return or error", what);
  }
}

Result<nlohmann::json> QmpClient::Execute(std::string_view command, const nlohmann::json& args,
                                          std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  nlohmann::json message = {{"execute", command}, {"id", next_id_++}};
  if (!args.is_null()) message["arguments"] = args;
  BOXLITE_RETURN_IF_ERROR(Send(message, -1, deadline));
  return Answer(command, deadline);
}

Status QmpClient::SendFd(std::string_view name, int fd, std::chrono::milliseconds timeout) {
  if (fd < 0) return Status::InvalidArgument("getfd needs a descriptor");
  auto deadline = Clock::now() + timeout;
  nlohmann::json message = {
      {"execute", "getfd"}, {"id", next_id_++}, {"arguments", {{"fdname", name}}}};
  BOXLITE_RETURN_IF_ERROR(Send(message, fd, deadline));
  return Answer("getfd", deadline).status();
}

Result<nlohmann::json> QmpClient::WaitEvent(std::string_view name,
                                            std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    for (auto it = events_.begin(); it != events_.end(); ++it) {
      auto ev = it->find("event");
      if (ev != it->end() && ev->is_string() && ev->get<std::string>() == name) {
        nlohmann::json found = std::move(*it);
        events_.erase(it);
        return found;
      }
    }
    BOXLITE_ASSIGN_OR_RETURN(nlohmann::json message, Read(deadline));
    if (!message.contains("event")) {
      return Status::ProtocolError("QEMU's monitor sent an answer nobody asked for");
    }
    if (events_.size() >= kMaxEvents) events_.erase(events_.begin());
    events_.push_back(std::move(message));
  }
}

std::vector<nlohmann::json> QmpClient::TakeEvents() { return std::exchange(events_, {}); }

}  // namespace boxlite::vmm
