// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The one conversion between a Python dict and boxlite::BoxOptions. The dict's keys are
// the C++ field names of BoxOptions (include/boxlite/options.h): "image", "cpus",
// "memory_mib", "env" (a list of (name, value) pairs or a dict), "mounts" (a list of
// (host, guest, read_only)), "ports" (a list of dicts {host_port, guest_port, host_ip,
// protocol} or (host, guest) pairs), "entrypoint"/"cmd" (a list of strings or None), ...
// A missing key, or None, keeps the C++ default; an unknown key is an error, so a typo
// never passes silently. python/boxlite/options.py builds such a dict from the SDK's
// spellings; the rules themselves are ValidateBoxOptions's.
//
// Thread-safety: call with the GIL held.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include "boxlite/options.h"

namespace boxlite::python {

// The options `dict` describes, not yet validated. Throws StatusError (InvalidArgument,
// or NotSupported for features not in this build) naming the key at fault.
BoxOptions BoxOptionsFromDict(nanobind::handle dict);

// `options` as such a dict (every key present): the SDK's defaults come from
// BoxOptionsToDict(BoxOptions{}).
nanobind::dict BoxOptionsToDict(const BoxOptions& options);

}  // namespace boxlite::python
