// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/vmm/accel.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "src/base/strings.h"
#include "src/sys/fs.h"

namespace boxlite::vmm {
namespace {

bool HasFlag(const std::string& flags, std::string_view flag) {
  for (const auto& f : base::Split(flags, ' ', true)) {
    if (f == flag) return true;
  }
  return false;
}

}  // namespace

std::string_view AccelName(Accel accel) { return accel == Accel::kKvm ? "kvm" : "tcg"; }

Result<AccelChoice> ChooseAccel(const AccelInputs& in) {
  bool hw = HasFlag(in.cpu_flags, "vmx") || HasFlag(in.cpu_flags, "svm");
  if (!in.forced.empty()) {
    std::string forced = base::ToLower(in.forced);
    if (forced == "tcg") return AccelChoice{Accel::kTcg, "forced by BOXLITE_ACCEL=tcg"};
    if (forced == "kvm") {
      if (!in.kvm_device_usable) {
        return Status::FailedPrecondition(
            "BOXLITE_ACCEL=kvm but /dev/kvm is not usable: " + in.kvm_device_error,
            "unset BOXLITE_ACCEL to fall back to software emulation");
      }
      return AccelChoice{Accel::kKvm, "forced by BOXLITE_ACCEL=kvm"};
    }
    return Status::InvalidArgument("BOXLITE_ACCEL must be kvm or tcg, not \"" + in.forced + "\"");
  }
  if (!in.kvm_device_usable) {
    return AccelChoice{Accel::kTcg, "/dev/kvm is not usable (" + in.kvm_device_error +
                                        "): using software emulation (TCG), boxes boot slower"};
  }
  if (!hw) {
    return AccelChoice{Accel::kTcg,
                       "the CPU shows no vmx/svm (nested or paravirtual KVM cannot run the "
                       "guest): using software emulation (TCG), boxes boot slower"};
  }
  return AccelChoice{Accel::kKvm, "/dev/kvm is usable and the CPU has hardware virtualization"};
}

AccelInputs ReadAccelInputs(const std::string& forced) {
  AccelInputs in;
  in.forced = forced;
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    in.kvm_device_usable = true;
    ::close(fd);
  } else {
    in.kvm_device_error = std::string("open /dev/kvm: ") + std::strerror(errno);
  }
  auto cpuinfo = sys::ReadFile("/proc/cpuinfo");
  if (cpuinfo.ok()) {
    for (const auto& line : base::Split(*cpuinfo, '\n')) {
      if (line.starts_with("flags")) {
        size_t colon = line.find(':');
        if (colon != std::string::npos) in.cpu_flags = line.substr(colon + 1);
        break;
      }
    }
  }
  return in;
}

Result<AccelChoice> DetectAccel(const std::string& forced) {
  return ChooseAccel(ReadAccelInputs(forced));
}

}  // namespace boxlite::vmm
