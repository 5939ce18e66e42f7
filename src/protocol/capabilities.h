// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Linux capability names and the capability set of a box's processes: Docker's default
// set changed by BoxOptions.capabilities (include/boxlite/options.h has the rules). The
// host checks the names at create and sends the resulting set in the box config; the
// agent applies it to every process it starts. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "boxlite/result.h"

namespace boxlite::protocol {

// The highest capability number this table names (CAP_CHECKPOINT_RESTORE).
constexpr int kLastCapability = 40;

// The number of a capability name: case-insensitive, "CAP_" optional; -1 when unknown
// (and for "ALL", which names no single capability).
int CapabilityNumber(std::string_view name);
// "CAP_CHOWN" for 0; "CAP_<n>" beyond the table.
std::string CapabilityName(int number);
// Docker's default set: CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID
// SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE.
uint64_t DefaultCapabilities();
// Every capability of the table.
uint64_t AllCapabilities();
// The set (bit n = capability n) from `add` and `drop`, like Docker: add ALL is every
// capability minus the named drops; else drop ALL is just the adds; else the default
// set minus the drops, plus the adds. An unknown name is InvalidArgument naming it.
Result<uint64_t> ComputeCapabilities(const std::vector<std::string>& add,
                                     const std::vector<std::string>& drop);
// The names of a set, "CAP_CHOWN ..." in number order.
std::string CapabilityNames(uint64_t set);

}  // namespace boxlite::protocol
