// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Chooses the accelerator for new VMs: KVM when /dev/kvm can be opened read-write and the
// CPU advertises hardware virtualization (vmx/svm), otherwise TCG (software emulation).
// RuntimeOptions.accel (BOXLITE_ACCEL) = kvm|tcg forces a choice. The decision is a pure
// function of its inputs so every branch is unit-tested; DetectAccel() gathers the inputs
// from the host.
// Thread-safety: pure functions; DetectAccel caches nothing.
#pragma once

#include <string>
#include <string_view>

#include "boxlite/result.h"

namespace boxlite::vmm {

enum class Accel { kKvm, kTcg };

std::string_view AccelName(Accel accel);

struct AccelChoice {
  Accel accel = Accel::kTcg;
  std::string reason;  // One line for `boxlite info` and the TCG warning.
};

struct AccelInputs {
  std::string forced;          // RuntimeOptions.accel (BOXLITE_ACCEL); empty: choose.
  bool kvm_device_usable = false;  // /dev/kvm opened O_RDWR.
  std::string kvm_device_error;    // Why not, when it was not.
  std::string cpu_flags;       // The "flags" line of /proc/cpuinfo.
};

// InvalidArgument for an unknown forced value; forcing kvm on a host without a usable
// /dev/kvm is an error rather than a silent fallback.
Result<AccelChoice> ChooseAccel(const AccelInputs& in);

// The host's inputs, with `forced` as given (RuntimeOptions.accel).
AccelInputs ReadAccelInputs(const std::string& forced);
Result<AccelChoice> DetectAccel(const std::string& forced);

}  // namespace boxlite::vmm
