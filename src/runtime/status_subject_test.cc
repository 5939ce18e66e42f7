// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The runtime marks its errors with what they are about (StatusSubject) where they are
// born or cross a module boundary; the SDKs choose their exception classes from it. No VM
// is booted here: every failure happens before one would start.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "boxlite/boxlite.h"
#include "src/sys/fs.h"

namespace boxlite {
namespace {

class StatusSubjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxlite-subject-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    home_ = tmpl;
    RuntimeOptions options;
    options.home_dir = home_;
    auto rt = Runtime::Open(options);
    ASSERT_TRUE(rt.ok()) << rt.error().ToString();
    rt_ = *rt;
  }
  void TearDown() override {
    rt_.reset();
    (void)sys::RemoveTree(home_);
  }

  std::string home_;
  std::shared_ptr<Runtime> rt_;
};

TEST_F(StatusSubjectTest, MissingBoxIsAboutABox) {
  auto got = rt_->Get("no-such-box");
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.error().IsNotFound());
  EXPECT_EQ(got.error().subject(), StatusSubject::kBox);
  Status removed = rt_->Remove("no-such-box", true);
  EXPECT_TRUE(removed.IsNotFound());
  EXPECT_EQ(removed.subject(), StatusSubject::kBox);
}

TEST_F(StatusSubjectTest, BadReferenceAndMissingLocalImageAreAboutAnImage) {
  auto pulled = rt_->PullImage("UPPER//bad::ref", nullptr);
  ASSERT_FALSE(pulled.ok());
  EXPECT_TRUE(pulled.error().IsInvalidArgument()) << pulled.error().ToString();
  EXPECT_EQ(pulled.error().subject(), StatusSubject::kImage);
  Status removed = rt_->RemoveImage("example.org/never/pulled:1");
  EXPECT_TRUE(removed.IsNotFound()) << removed.ToString();
  EXPECT_EQ(removed.subject(), StatusSubject::kImage);
}

TEST_F(StatusSubjectTest, UnreachableRegistryIsAboutTheRegistry) {
  // Nothing listens on port 1 of the loopback address: the connection is refused.
  auto pulled = rt_->PullImage("127.0.0.1:1/none:latest", nullptr);
  ASSERT_FALSE(pulled.ok());
  EXPECT_TRUE(pulled.error().IsUnavailable()) << pulled.error().ToString();
  EXPECT_EQ(pulled.error().subject(), StatusSubject::kRegistry);
}

TEST_F(StatusSubjectTest, BoxStateAndTakenNamesAreAboutABox) {
  BoxOptions options;
  options.image = "boxlite/base";
  options.name = "subject-box";
  options.auto_remove = false;
  auto box = rt_->Create(options);
  ASSERT_TRUE(box.ok()) << box.error().ToString();
  auto again = rt_->Create(options);
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(again.error().IsAlreadyExists());
  EXPECT_EQ(again.error().subject(), StatusSubject::kBox);
  ASSERT_TRUE(rt_->Remove("subject-box", false).ok());
  // Removed: an exec (and a start) meets the box's state, not a problem of the command.
  ExecOptions exec;
  exec.argv = {"true"};
  auto started = (*box)->StartExec(exec);
  ASSERT_FALSE(started.ok());
  EXPECT_TRUE(started.error().IsFailedPrecondition()) << started.error().ToString();
  EXPECT_EQ(started.error().subject(), StatusSubject::kBox);
  Status restarted = (*box)->Start();
  EXPECT_TRUE(restarted.IsFailedPrecondition()) << restarted.ToString();
  EXPECT_EQ(restarted.subject(), StatusSubject::kBox);
}

// A persistent box whose object this process let go is found again on disk, by name and
// by id, and listed: an expired entry of the runtime's box table hides nothing.
TEST_F(StatusSubjectTest, PersistentBoxLetGoIsFoundAgain) {
  BoxOptions options;
  options.image = "boxlite/base";
  options.name = "kept-box";
  options.auto_remove = false;
  std::string id;
  {
    auto box = rt_->Create(options);
    ASSERT_TRUE(box.ok()) << box.error().ToString();
    id = (*box)->id();
  }
  for (const std::string& key : {std::string("kept-box"), id}) {
    auto found = rt_->Get(key);
    ASSERT_TRUE(found.ok()) << key << ": " << found.error().ToString();
    EXPECT_EQ((*found)->id(), id);
  }
  auto listed = rt_->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, id);
  EXPECT_TRUE(rt_->Remove("kept-box", false).ok());
}

}  // namespace
}  // namespace boxlite
