// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "boxlite/status.h"

#include <array>
#include <utility>

namespace boxlite {
namespace {

// One row of a name table: an enum value and its stable name.
template <typename Enum>
struct Named {
  Enum value;
  std::string_view name;
};

template <typename Enum, size_t N>
std::string_view NameIn(const std::array<Named<Enum>, N>& table, Enum value,
                        std::string_view fallback) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return fallback;
}

template <typename Enum, size_t N>
Enum ValueIn(const std::array<Named<Enum>, N>& table, std::string_view name, Enum fallback) {
  for (const auto& entry : table) {
    if (entry.name == name) return entry.value;
  }
  return fallback;
}

constexpr std::array<Named<StatusCode>, 16> kCodeNames = {{
    {StatusCode::kOk, "ok"},
    {StatusCode::kInvalidArgument, "invalid_argument"},
    {StatusCode::kNotFound, "not_found"},
    {StatusCode::kAlreadyExists, "already_exists"},
    {StatusCode::kFailedPrecondition, "failed_precondition"},
    {StatusCode::kDeadlineExceeded, "deadline_exceeded"},
    {StatusCode::kCancelled, "cancelled"},
    {StatusCode::kUnavailable, "unavailable"},
    {StatusCode::kPermissionDenied, "permission_denied"},
    {StatusCode::kIoError, "io_error"},
    {StatusCode::kProtocolError, "protocol_error"},
    {StatusCode::kCorruption, "corruption"},
    {StatusCode::kNotSupported, "not_supported"},
    {StatusCode::kInternal, "internal"},
    {StatusCode::kResourceExhausted, "resource_exhausted"},
    {StatusCode::kAuthentication, "authentication"},
}};

constexpr std::array<Named<StatusSubject>, 7> kSubjectNames = {{
    {StatusSubject::kNone, ""},
    {StatusSubject::kBox, "box"},
    {StatusSubject::kImage, "image"},
    {StatusSubject::kExec, "exec"},
    {StatusSubject::kVolume, "volume"},
    {StatusSubject::kRegistry, "registry"},
    {StatusSubject::kSnapshot, "snapshot"},
}};

std::string Join(std::string_view msg, std::string_view detail) {
  std::string out(msg);
  if (!detail.empty()) {
    out += ": ";
    out += detail;
  }
  return out;
}

const std::string& EmptyString() {
  static const std::string* empty = new std::string();
  return *empty;
}

}  // namespace

std::string_view StatusCodeName(StatusCode code) { return NameIn(kCodeNames, code, "internal"); }

StatusCode StatusCodeFromName(std::string_view name) {
  return ValueIn(kCodeNames, name, StatusCode::kInternal);
}

std::string_view StatusSubjectName(StatusSubject subject) {
  return NameIn(kSubjectNames, subject, "");
}

StatusSubject StatusSubjectFromName(std::string_view name) {
  return ValueIn(kSubjectNames, name, StatusSubject::kNone);
}

Status::Status(StatusCode code, std::string message, int sys_errno) {
  if (code != StatusCode::kOk) {
    rep_ = std::make_unique<Rep>(Rep{code, sys_errno, std::move(message), StatusSubject::kNone});
  }
}

Status::Status(const Status& other)
    : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
  return *this;
}

#define BOXLITE_STATUS_FACTORY(Name, Code)                                 \
  Status Status::Name(std::string_view msg, std::string_view detail) {    \
    return Status(StatusCode::Code, Join(msg, detail));                   \
  }
BOXLITE_STATUS_FACTORY(InvalidArgument, kInvalidArgument)
BOXLITE_STATUS_FACTORY(NotFound, kNotFound)
BOXLITE_STATUS_FACTORY(AlreadyExists, kAlreadyExists)
BOXLITE_STATUS_FACTORY(FailedPrecondition, kFailedPrecondition)
BOXLITE_STATUS_FACTORY(DeadlineExceeded, kDeadlineExceeded)
BOXLITE_STATUS_FACTORY(Cancelled, kCancelled)
BOXLITE_STATUS_FACTORY(Unavailable, kUnavailable)
BOXLITE_STATUS_FACTORY(PermissionDenied, kPermissionDenied)
BOXLITE_STATUS_FACTORY(IoError, kIoError)
BOXLITE_STATUS_FACTORY(ProtocolError, kProtocolError)
BOXLITE_STATUS_FACTORY(Corruption, kCorruption)
BOXLITE_STATUS_FACTORY(NotSupported, kNotSupported)
BOXLITE_STATUS_FACTORY(Internal, kInternal)
BOXLITE_STATUS_FACTORY(ResourceExhausted, kResourceExhausted)
BOXLITE_STATUS_FACTORY(Authentication, kAuthentication)
#undef BOXLITE_STATUS_FACTORY

const std::string& Status::message() const { return rep_ ? rep_->message : EmptyString(); }

Status Status::Wrap(std::string_view context) const {
  if (ok()) return Status();
  Status out(rep_->code, Join(context, rep_->message), rep_->sys_errno);
  out.rep_->subject = rep_->subject;
  return out;
}

Status Status::WithSubject(StatusSubject subject) const {
  Status out(*this);
  if (out.rep_) out.rep_->subject = subject;
  return out;
}

Status Status::WithDefaultSubject(StatusSubject subject) const {
  if (ok() || rep_->subject != StatusSubject::kNone) return *this;
  return WithSubject(subject);
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(StatusCodeName(rep_->code));
  out += ": ";
  out += rep_->message;
  return out;
}

}  // namespace boxlite
