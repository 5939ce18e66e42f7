// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/cli/exit_code.h"

#include <gtest/gtest.h>

namespace boxlite::cli {
namespace {

TEST(ExitCodeTest, EveryFailedCommandIsOne) {
  EXPECT_EQ(ExitCodeFor(Status::OK()), 0);
  for (const Status& s :
       {Status::NotFound("x"), Status::InvalidArgument("x"), Status::Unavailable("x"),
        Status::PermissionDenied("x"), Status::Authentication("x"), Status::IoError("x"),
        Status::FailedPrecondition("x"), Status::AlreadyExists("x"), Status::Internal("x"),
        Status::Cancelled("x"), Status::ProtocolError("x")}) {
    EXPECT_EQ(ExitCodeFor(s), 1) << s.ToString();
  }
  EXPECT_EQ(kExitUsage, 2);
}

TEST(ExitCodeTest, CommandsPassTheirCodeAndSignalsGive128PlusN) {
  ExitStatus st;
  EXPECT_EQ(ExitCodeOf(st), 0);
  st.exit_code = 42;
  EXPECT_EQ(ExitCodeOf(st), 42);
  st.exit_code = 255;
  EXPECT_EQ(ExitCodeOf(st), 255);
  st.exit_code = 128 + 9;
  st.signal = 9;
  EXPECT_EQ(ExitCodeOf(st), 137);
  st.exit_code = 0;  // The signal decides, whatever exit_code says.
  st.signal = 15;
  EXPECT_EQ(ExitCodeOf(st), 143);
  // A code no process can exit with (an agent that says so) is a failure, not 0 by
  // truncation: 256 would be 0 as an 8-bit status.
  ExitStatus bogus;
  bogus.exit_code = 256;
  EXPECT_EQ(ExitCodeOf(bogus), 1);
  bogus.exit_code = -1;
  EXPECT_EQ(ExitCodeOf(bogus), 1);
}

}  // namespace
}  // namespace boxlite::cli
