// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-console: copies a box's serial console from stdin (a pipe QEMU writes) into
// the log file open on stdout, under the cap of src/runtime/console_log.h, until QEMU
// closes the pipe. Started by StartConsoleWriter only.
#include "src/runtime/console_log.h"

int main() { return boxlite::runtime::CopyConsole(0, 1) == 0 ? 0 : 1; }
