// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/box_state.h"

#include <fstream>

#include <gtest/gtest.h>

#include "src/runtime/box_record.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

TEST(BoxStateTest, NamesRoundTripAndParseAnyCase) {
  for (BoxStatus s : {BoxStatus::kUnknown, BoxStatus::kConfigured, BoxStatus::kRunning,
                      BoxStatus::kStopping, BoxStatus::kStopped, BoxStatus::kPaused,
                      BoxStatus::kFailed}) {
    EXPECT_EQ(ParseStatus(StatusName(s)), s) << StatusName(s);
  }
  EXPECT_EQ(ParseStatus("Paused"), BoxStatus::kPaused);
  EXPECT_EQ(ParseStatus("FAILED"), BoxStatus::kFailed);
  EXPECT_EQ(ParseStatus("created"), std::nullopt);
  EXPECT_EQ(ParseStatus(""), std::nullopt);
}

// BoxLite 0.9's table: which calls each status allows.
TEST(BoxStateTest, TransitionRules) {
  struct Row {
    BoxStatus s;
    bool active, start, stop, remove, exec;
  };
  const Row rows[] = {
      {BoxStatus::kUnknown, false, false, false, true, false},
      {BoxStatus::kConfigured, false, true, false, true, true},
      {BoxStatus::kRunning, true, false, true, false, true},
      {BoxStatus::kStopping, false, false, false, false, false},
      {BoxStatus::kStopped, false, true, false, true, true},
      {BoxStatus::kPaused, true, false, true, false, false},
      {BoxStatus::kFailed, false, true, false, true, false},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(std::string(StatusName(r.s)));
    EXPECT_EQ(IsActive(r.s), r.active);
    EXPECT_EQ(CanStart(r.s), r.start);
    EXPECT_EQ(CanStop(r.s), r.stop);
    EXPECT_EQ(CanRemove(r.s), r.remove);
    EXPECT_EQ(CanExec(r.s), r.exec);
  }
}

TEST(BoxStateTest, RefusalsSayWhatToDo) {
  EXPECT_EQ(RefusalReason("start", BoxStatus::kFailed), "");
  EXPECT_EQ(RefusalReason("start", BoxStatus::kRunning), "");  // Start is idempotent.
  EXPECT_EQ(RefusalReason("exec", BoxStatus::kFailed),
            "cannot exec a box that is failed: start it again, or remove it");
  EXPECT_EQ(RefusalReason("start", BoxStatus::kStopping),
            "cannot start a box that is stopping: wait for the stop to end");
  EXPECT_EQ(RefusalReason("remove", BoxStatus::kRunning),
            "cannot remove a box that is running: stop it first, or remove it with force");
  EXPECT_EQ(RefusalReason("exec", BoxStatus::kPaused),
            "cannot exec a box that is paused: resume it first");
}

StatusFacts Facts(bool started, bool recorded, bool alive, std::string_view phase, bool exited) {
  StatusFacts f;
  f.ever_started = started;
  f.vm_recorded = recorded;
  f.vm_alive = alive;
  f.phase = phase;
  f.main_exited = exited;
  return f;
}

TEST(BoxStateTest, DerivedFromTheRecordAndTheVm) {
  // Never started.
  EXPECT_EQ(DeriveStatus(Facts(false, false, false, "", false)), BoxStatus::kConfigured);
  // Its VM runs; a stop in progress makes it stopping.
  EXPECT_EQ(DeriveStatus(Facts(true, true, true, "", false)), BoxStatus::kRunning);
  EXPECT_EQ(DeriveStatus(Facts(true, true, true, kPhaseStopping, false)), BoxStatus::kStopping);
  EXPECT_EQ(DeriveStatus(Facts(true, true, true, kPhasePaused, false)), BoxStatus::kPaused);
  EXPECT_EQ(DeriveStatus(Facts(true, true, false, kPhasePaused, false)), BoxStatus::kFailed);
  // A stop cleared the VM from the record.
  EXPECT_EQ(DeriveStatus(Facts(true, false, false, "", false)), BoxStatus::kStopped);
  // The VM ended because its main command exited (the box stops itself).
  EXPECT_EQ(DeriveStatus(Facts(true, true, false, "", true)), BoxStatus::kStopped);
  // The VM is gone with no stop and no main command exit: killed or crashed.
  EXPECT_EQ(DeriveStatus(Facts(true, true, false, "", false)), BoxStatus::kFailed);
  // A stop that was under way when the VM ended (killed by the stop itself).
  EXPECT_EQ(DeriveStatus(Facts(true, true, false, kPhaseStopping, false)), BoxStatus::kStopped);
  // Marked failed (a start that failed, or a death noted by a lifecycle call).
  EXPECT_EQ(DeriveStatus(Facts(true, false, false, kPhaseFailed, false)), BoxStatus::kFailed);
  EXPECT_EQ(DeriveStatus(Facts(false, false, false, kPhaseFailed, false)), BoxStatus::kFailed);
  // A running VM wins over an old mark.
  EXPECT_EQ(DeriveStatus(Facts(true, true, true, kPhaseFailed, false)), BoxStatus::kRunning);
}

// Each test gets a directory of its own, removed afterwards.
class BoxStateRecordTest : public ::testing::Test {
 protected:
  sys::TempDir tmp_ = std::move(sys::TempDir::Create("/tmp", "boxlite-state-test").value());
  const std::string& dir_ = tmp_.path();
};

TEST_F(BoxStateRecordTest, PhaseAndFailureSurviveTheRecord) {
  BoxRecord r;
  r.id = "abcdefabcdef";
  r.phase = std::string(kPhaseFailed);
  r.failure = "the VM ended without a stop";
  ASSERT_TRUE(SaveRecord(dir_, r).ok());
  auto back = LoadRecord(dir_);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->phase, kPhaseFailed);
  EXPECT_EQ(back->failure, r.failure);
  // A mark this build does not know is no mark.
  r.phase = "exploded";
  ASSERT_TRUE(SaveRecord(dir_, r).ok());
  EXPECT_EQ(LoadRecord(dir_)->phase, "");
}

TEST_F(BoxStateRecordTest, HealthRoundTripsAndRejectsNonsense) {
  EXPECT_FALSE(LoadHealth(dir_).has_value());
  HealthStatus h;
  h.state = "unhealthy";
  h.failures = 3;
  h.last_check_unix = 1700000000;
  ASSERT_TRUE(SaveHealth(dir_, h).ok());
  auto back = LoadHealth(dir_);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->state, "unhealthy");
  EXPECT_EQ(back->failures, 3);
  EXPECT_EQ(back->last_check_unix, 1700000000);
  for (const char* bad : {R"({"state":"on fire","failures":0,"last_check":0})",
                          R"({"state":"healthy","failures":-1,"last_check":0})", "not json",
                          "[]"}) {
    std::ofstream(dir_ + "/health.json", std::ios::trunc) << bad;
    EXPECT_FALSE(LoadHealth(dir_).has_value()) << bad;
  }
}

}  // namespace
}  // namespace boxlite::runtime
