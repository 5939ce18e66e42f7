// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// boxlite-console: copies a box's serial console from stdin (a pipe QEMU writes) into
// the log file open on stdout, under the cap of src/runtime/console_log.h, until QEMU
// closes the pipe. Started by StartConsoleWriter only. It confines itself first
// (console_log.h says how); when it cannot, the log says why and nothing is copied.
#include "src/runtime/console_log.h"

int main() {
  auto confinement = boxlite::runtime::PrepareWriterConfinement();
  if (!confinement.ok()) {
    boxlite::runtime::NoteConsoleNotLogged(1, confinement.error().message().c_str(), 0);
    return 1;
  }
  return boxlite::runtime::ConfineAndCopy(0, 1, *confinement);
}
