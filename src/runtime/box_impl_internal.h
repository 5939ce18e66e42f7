// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Helpers shared by the files that implement BoxImpl (box_impl.cc defines them; box_exec.cc
// and box_observe.cc use them too). Not for use outside those files.
#pragma once

#include <string_view>

#include "boxlite/status.h"
#include "src/protocol/messages.h"
#include "src/runtime/channel.h"

namespace boxlite::runtime {

// A duration in seconds, fractions kept.
double Seconds(Clock::duration d);

// One request must fit in one frame: InvalidArgument naming `what` when the encoded `op`
// request with `body` is larger than protocol::kMaxPayload.
Status FitsInAFrame(std::string_view op, protocol::Json body, const char* what);

}  // namespace boxlite::runtime
