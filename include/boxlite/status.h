// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Status is the result of an operation that can fail: OK, or an error code with a
// message and, when the failure came from a system call, the original errno. OK is a
// null pointer, so returning success costs nothing. Errors gain context as they rise with
// Wrap(): "pull alpine: fetch layer sha256:ab..: connection refused".
//
// Thread-safety: a Status is a value; distinct objects may be used from distinct threads.
// See docs/errors.md for the contract.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace boxlite {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,  // The object is in the wrong lifecycle state.
  kDeadlineExceeded,
  kCancelled,
  kUnavailable,  // The guest or a remote service cannot be reached.
  kPermissionDenied,
  kIoError,
  kProtocolError,  // A bad or unknown frame on the host-guest channel.
  kCorruption,     // Bad image or store data.
  kNotSupported,
  kInternal,
  kResourceExhausted,
  kAuthentication,  // A registry refused our credentials.
};

// Returns the stable lowercase name of a code ("not_found"); used on the wire and in JSON.
std::string_view StatusCodeName(StatusCode code);
// Parses a name produced by StatusCodeName; unknown names map to kInternal.
StatusCode StatusCodeFromName(std::string_view name);

// What a failure is about, beside its code: the same kNotFound is a missing image for
// kImage and a missing box for kBox. Set where the error is born or crosses a module
// boundary (the image store, the registry client, box lookup and lifecycle, exec), kept
// by Wrap() and copies, and carried to the SDKs, which choose their exception class
// from (code, subject) and never from the message text. kNone: not said.
enum class StatusSubject : int {
  kNone = 0,
  kBox,
  kImage,
  kExec,
  kVolume,
  kRegistry,
  kSnapshot,
};

// Returns the stable lowercase name of a subject ("image"; "" for kNone).
std::string_view StatusSubjectName(StatusSubject subject);
// Parses a name produced by StatusSubjectName; unknown names map to kNone.
StatusSubject StatusSubjectFromName(std::string_view name);

class Status {
 public:
  Status() noexcept = default;
  Status(StatusCode code, std::string message, int sys_errno = 0);
  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&& other) noexcept = default;
  Status& operator=(Status&& other) noexcept = default;
  ~Status() = default;

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string_view msg, std::string_view detail = {});
  static Status NotFound(std::string_view msg, std::string_view detail = {});
  static Status AlreadyExists(std::string_view msg, std::string_view detail = {});
  static Status FailedPrecondition(std::string_view msg, std::string_view detail = {});
  static Status DeadlineExceeded(std::string_view msg, std::string_view detail = {});
  static Status Cancelled(std::string_view msg, std::string_view detail = {});
  static Status Unavailable(std::string_view msg, std::string_view detail = {});
  static Status PermissionDenied(std::string_view msg, std::string_view detail = {});
  static Status IoError(std::string_view msg, std::string_view detail = {});
  static Status ProtocolError(std::string_view msg, std::string_view detail = {});
  static Status Corruption(std::string_view msg, std::string_view detail = {});
  static Status NotSupported(std::string_view msg, std::string_view detail = {});
  static Status Internal(std::string_view msg, std::string_view detail = {});
  static Status ResourceExhausted(std::string_view msg, std::string_view detail = {});
  static Status Authentication(std::string_view msg, std::string_view detail = {});

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  // The message without the code name; empty when OK.
  const std::string& message() const;
  // The errno of the failed system call, or 0.
  int sys_errno() const { return rep_ ? rep_->sys_errno : 0; }
  // What the failure is about; kNone when OK or not said.
  StatusSubject subject() const { return rep_ ? rep_->subject : StatusSubject::kNone; }

  // Returns a copy about `subject` (replacing any subject it had). OK stays OK.
  Status WithSubject(StatusSubject subject) const;
  // Returns a copy about `subject` unless it already names one: a module boundary marks
  // what is not yet marked, and the subject of the error's birth wins (a registry
  // failure stays kRegistry when the image store passes it on as kImage).
  Status WithDefaultSubject(StatusSubject subject) const;

  bool IsInvalidArgument() const { return code() == StatusCode::kInvalidArgument; }
  bool IsNotFound() const { return code() == StatusCode::kNotFound; }
  bool IsAlreadyExists() const { return code() == StatusCode::kAlreadyExists; }
  bool IsFailedPrecondition() const { return code() == StatusCode::kFailedPrecondition; }
  bool IsDeadlineExceeded() const { return code() == StatusCode::kDeadlineExceeded; }
  bool IsCancelled() const { return code() == StatusCode::kCancelled; }
  bool IsUnavailable() const { return code() == StatusCode::kUnavailable; }
  bool IsPermissionDenied() const { return code() == StatusCode::kPermissionDenied; }
  bool IsIoError() const { return code() == StatusCode::kIoError; }
  bool IsProtocolError() const { return code() == StatusCode::kProtocolError; }
  bool IsCorruption() const { return code() == StatusCode::kCorruption; }
  bool IsNotSupported() const { return code() == StatusCode::kNotSupported; }
  bool IsResourceExhausted() const { return code() == StatusCode::kResourceExhausted; }
  bool IsAuthentication() const { return code() == StatusCode::kAuthentication; }

  // Returns a copy whose message is prefixed with "<context>: " (code, errno and subject
  // kept). OK stays OK.
  Status Wrap(std::string_view context) const;

  // "not_found: image docker.io/library/x:latest".
  std::string ToString() const;

 private:
  struct Rep {
    StatusCode code;
    int sys_errno;
    std::string message;
    StatusSubject subject = StatusSubject::kNone;
  };
  std::unique_ptr<Rep> rep_;
};

}  // namespace boxlite
