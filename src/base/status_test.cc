// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "boxlite/status.h"

#include <gtest/gtest.h>

#include "boxlite/result.h"
#include "src/base/macros.h"

namespace boxlite {
namespace {

TEST(StatusTest, OkIsCheapAndEmpty) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, FactoriesSetCodeAndJoinDetail) {
  Status s = Status::NotFound("image", "docker.io/library/x:latest");
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_FALSE(s.IsIoError());
  EXPECT_EQ(s.message(), "image: docker.io/library/x:latest");
  EXPECT_EQ(s.ToString(), "not_found: image: docker.io/library/x:latest");
}

TEST(StatusTest, WrapAddsContextAndKeepsCodeAndErrno) {
  Status s = Status(StatusCode::kIoError, "connection refused", 111).Wrap("fetch layer");
  EXPECT_TRUE(s.IsIoError());
  EXPECT_EQ(s.sys_errno(), 111);
  EXPECT_EQ(s.Wrap("pull alpine").message(), "pull alpine: fetch layer: connection refused");
  EXPECT_TRUE(Status::OK().Wrap("anything").ok());
}

TEST(StatusTest, SubjectIsSetKeptByWrapAndCopiesAndNamed) {
  EXPECT_EQ(Status::OK().subject(), StatusSubject::kNone);
  EXPECT_TRUE(Status::OK().WithSubject(StatusSubject::kBox).ok());
  Status plain = Status::NotFound("x");
  EXPECT_EQ(plain.subject(), StatusSubject::kNone);
  Status image = plain.WithSubject(StatusSubject::kImage);
  EXPECT_EQ(plain.subject(), StatusSubject::kNone);  // A copy: the original is unchanged.
  EXPECT_EQ(image.subject(), StatusSubject::kImage);
  EXPECT_TRUE(image.IsNotFound());
  EXPECT_EQ(image.message(), "x");
  Status wrapped = image.Wrap("start box b").Wrap("run");
  EXPECT_EQ(wrapped.subject(), StatusSubject::kImage);
  EXPECT_EQ(wrapped.message(), "run: start box b: x");
  Status copied = wrapped;
  Status moved = std::move(copied);
  EXPECT_EQ(moved.subject(), StatusSubject::kImage);
  EXPECT_EQ(Status(wrapped).WithSubject(StatusSubject::kBox).subject(), StatusSubject::kBox);
  EXPECT_EQ(Status(StatusCode::kIoError, "disk", 5).WithSubject(StatusSubject::kExec).sys_errno(), 5);
  for (int i = 0; i <= static_cast<int>(StatusSubject::kSnapshot); ++i) {
    auto subject = static_cast<StatusSubject>(i);
    EXPECT_EQ(StatusSubjectFromName(StatusSubjectName(subject)), subject);
  }
  EXPECT_EQ(StatusSubjectName(StatusSubject::kRegistry), "registry");
  EXPECT_EQ(StatusSubjectName(StatusSubject::kNone), "");
  EXPECT_EQ(StatusSubjectFromName("no_such_subject"), StatusSubject::kNone);
}

TEST(StatusTest, DefaultSubjectKeepsTheSubjectOfTheBirth) {
  // A registry failure passed on by the image store stays about the registry; an
  // unmarked store failure becomes about the image.
  Status registry = Status::Unavailable("connection refused").WithSubject(StatusSubject::kRegistry);
  EXPECT_EQ(registry.WithDefaultSubject(StatusSubject::kImage).subject(), StatusSubject::kRegistry);
  EXPECT_EQ(Status::IoError("disk full").WithDefaultSubject(StatusSubject::kImage).subject(),
            StatusSubject::kImage);
  EXPECT_TRUE(Status::OK().WithDefaultSubject(StatusSubject::kImage).ok());
  Result<int> failed = Status::NotFound("gone");
  Result<int> marked = AboutSubject(std::move(failed), StatusSubject::kBox);
  ASSERT_FALSE(marked.ok());
  EXPECT_EQ(marked.error().subject(), StatusSubject::kBox);
  EXPECT_EQ(AboutSubject(Result<int>(3), StatusSubject::kBox).value(), 3);
  EXPECT_EQ(AboutSubject(Status::Internal("x"), StatusSubject::kExec).subject(), StatusSubject::kExec);
}

TEST(StatusTest, CopyIsDeep) {
  Status a = Status::Internal("a");
  Status b = a;
  a = Status::OK();
  EXPECT_EQ(b.message(), "a");
  EXPECT_TRUE(a.ok());
}

TEST(StatusTest, CodeNamesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(StatusCode::kAuthentication); ++i) {
    auto code = static_cast<StatusCode>(i);
    EXPECT_EQ(StatusCodeFromName(StatusCodeName(code)), code);
  }
  EXPECT_EQ(StatusCodeFromName("no_such_code"), StatusCode::kInternal);
}

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  BOXLITE_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(ResultTest, PropagatesValueAndError) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsInvalidArgument());
  EXPECT_EQ(r.value_or(-1), -1);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  EXPECT_DEATH({ (void)Half(1).value(); }, "value\\(\\) of a failed Result");
}

}  // namespace
}  // namespace boxlite
