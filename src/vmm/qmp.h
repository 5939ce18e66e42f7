// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// A QMP (QEMU Machine Protocol) client over a connected unix stream socket: the greeting,
// capability negotiation, commands with their JSON answers, events, and descriptors passed
// with SCM_RIGHTS for `getfd`.
//
// QEMU runs the hostile guest, so everything it sends is untrusted bytes: each message is
// bounded (kMaxMessageBytes), every read has a deadline, and nothing it says is trusted as a
// size. A QEMU error answer becomes a Status whose message carries QEMU's class and
// description ("migrate: GenericError: ...").
//
// Thread-safety: a QmpClient is used by one thread at a time.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "boxlite/result.h"
#include "src/base/unique_fd.h"

namespace boxlite::vmm {

class QmpClient {
 public:
  static constexpr size_t kMaxMessageBytes = 1 << 20;
  // Events kept for WaitEvent/TakeEvents; older ones are dropped.
  static constexpr size_t kMaxEvents = 256;
  static constexpr std::chrono::milliseconds kDefaultTimeout{10000};

  // Reads the greeting on the connected socket `fd` and negotiates capabilities.
  static Result<QmpClient> Open(base::UniqueFd fd,
                                std::chrono::milliseconds timeout = kDefaultTimeout);

  QmpClient(QmpClient&&) noexcept = default;
  QmpClient& operator=(QmpClient&&) noexcept = default;

  // Runs `command` with `args` (an object, or null for none) and returns its "return"
  // value. Events that arrive meanwhile are kept.
  Result<nlohmann::json> Execute(std::string_view command,
                                 const nlohmann::json& args = nullptr,
                                 std::chrono::milliseconds timeout = kDefaultTimeout);
  // Hands `fd` to QEMU under `name` (QMP getfd), e.g. for `migrate "fd:<name>"`.
  Status SendFd(std::string_view name, int fd,
                std::chrono::milliseconds timeout = kDefaultTimeout);
  // Waits for an event named `name` (one already received counts) and returns it.
  Result<nlohmann::json> WaitEvent(std::string_view name, std::chrono::milliseconds timeout);
  // The events received and not yet taken, oldest first.
  std::vector<nlohmann::json> TakeEvents();

  int fd() const { return fd_.get(); }

 private:
  explicit QmpClient(base::UniqueFd fd) : fd_(std::move(fd)) {}
  using Deadline = std::chrono::steady_clock::time_point;
  // Sends one command; `pass_fd` >= 0 rides along with SCM_RIGHTS.
  Status Send(const nlohmann::json& message, int pass_fd, Deadline deadline);
  // The next message, whatever it is.
  Result<nlohmann::json> Read(Deadline deadline);
  // Reads until the answer to the last command, keeping events.
  Result<nlohmann::json> Answer(std::string_view command, Deadline deadline);

  base::UniqueFd fd_;
  std::string buffer_;
  std::vector<nlohmann::json> events_;
  uint64_t next_id_ = 1;
};

}  // namespace boxlite::vmm
