// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The whole public C++ API of BoxLite.
#pragma once

#include "boxlite/box.h"
#include "boxlite/box_state.h"
#include "boxlite/config.h"
#include "boxlite/exec.h"
#include "boxlite/options.h"
#include "boxlite/result.h"
#include "boxlite/runtime.h"
#include "boxlite/status.h"

namespace boxlite {
constexpr char kVersion[] = "0.1.0";
}  // namespace boxlite
