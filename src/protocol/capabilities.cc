// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/protocol/capabilities.h"

#include <array>
#include <cctype>

#include "src/base/strings.h"

namespace boxlite::protocol {
namespace {

// Index = capability number (include/uapi/linux/capability.h).
constexpr std::array<std::string_view, kLastCapability + 1> kNames = {
    "CHOWN",           "DAC_OVERRIDE",    "DAC_READ_SEARCH", "FOWNER",       "FSETID",
    "KILL",            "SETGID",          "SETUID",          "SETPCAP",      "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE", "NET_BROADCAST",  "NET_ADMIN",       "NET_RAW",      "IPC_LOCK",
    "IPC_OWNER",       "SYS_MODULE",      "SYS_RAWIO",       "SYS_CHROOT",   "SYS_PTRACE",
    "SYS_PACCT",       "SYS_ADMIN",       "SYS_BOOT",        "SYS_NICE",     "SYS_RESOURCE",
    "SYS_TIME",        "SYS_TTY_CONFIG",  "MKNOD",           "LEASE",        "AUDIT_WRITE",
    "AUDIT_CONTROL",   "SETFCAP",         "MAC_OVERRIDE",    "MAC_ADMIN",    "SYSLOG",
    "WAKE_ALARM",      "BLOCK_SUSPEND",   "AUDIT_READ",      "PERFMON",      "BPF",
    "CHECKPOINT_RESTORE"};

constexpr std::array<std::string_view, 14> kDefault = {
    "CHOWN",  "DAC_OVERRIDE", "FSETID",  "FOWNER",           "MKNOD",      "NET_RAW", "SETGID",
    "SETUID", "SETFCAP",      "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",    "AUDIT_WRITE"};

std::string Upper(std::string_view name) {
  std::string out(name);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool IsAll(std::string_view name) { return Upper(name) == "ALL"; }

bool Contains(const std::vector<std::string>& names, int number) {
  for (const auto& n : names) {
    if (CapabilityNumber(n) == number) return true;
  }
  return false;
}

}  // namespace

int CapabilityNumber(std::string_view name) {
  std::string upper = Upper(name);
  std::string_view bare = upper;
  if (bare.starts_with("CAP_")) bare.remove_prefix(4);
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == bare) return static_cast<int>(i);
  }
  return -1;
}

std::string CapabilityName(int number) {
  if (number >= 0 && number <= kLastCapability) {
    return "CAP_" + std::string(kNames[static_cast<size_t>(number)]);
  }
  return "CAP_" + std::to_string(number);
}

uint64_t DefaultCapabilities() {
  uint64_t set = 0;
  for (auto name : kDefault) set |= uint64_t{1} << CapabilityNumber(name);
  return set;
}

uint64_t AllCapabilities() { return (uint64_t{1} << (kLastCapability + 1)) - 1; }

Result<uint64_t> ComputeCapabilities(const std::vector<std::string>& add,
                                     const std::vector<std::string>& drop) {
  bool add_all = false;
  bool drop_all = false;
  for (const auto* list : {&add, &drop}) {
    const char* which = list == &add ? "add" : "drop";
    for (const auto& name : *list) {
      if (IsAll(name)) {
        (list == &add ? add_all : drop_all) = true;
        continue;
      }
      if (CapabilityNumber(name) < 0) {
        return Status::InvalidArgument(base::StrFormat(
            "unknown capability \"%s\" in capabilities.%s; use a Linux capability name such "
            "as NET_ADMIN or CAP_SYS_PTRACE, or ALL",
            name.c_str(), which));
      }
    }
  }
  uint64_t set = 0;
  if (add_all) {
    for (int n = 0; n <= kLastCapability; ++n) {
      if (!Contains(drop, n)) set |= uint64_t{1} << n;
    }
    return set;
  }
  if (!drop_all) {
    set = DefaultCapabilities();
    for (int n = 0; n <= kLastCapability; ++n) {
      if (Contains(drop, n)) set &= ~(uint64_t{1} << n);
    }
  }
  for (const auto& name : add) set |= uint64_t{1} << CapabilityNumber(name);
  return set;
}

std::string CapabilityNames(uint64_t set) {
  std::vector<std::string> names;
  for (int n = 0; n < 64; ++n) {
    if (set & (uint64_t{1} << n)) names.push_back(CapabilityName(n));
  }
  return base::Join(names, " ");
}

}  // namespace boxlite::protocol
