// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Box is one sandbox: a micro-VM with its own kernel booted from an OCI image. Create it
// with Runtime::Create, then Start() it; Exec runs processes in it. An ephemeral box
// (auto_remove, not detached) leaves nothing behind when it stops or its owner dies.
//
// Thread-safety: all methods may be called from any thread; many execs may run at once.
#pragma once

#include <memory>
#include <string>

#include "boxlite/exec.h"
#include "boxlite/options.h"
#include "boxlite/result.h"
#include "boxlite/status.h"

namespace boxlite {

class Box {
 public:
  virtual ~Box() = default;

  virtual const std::string& id() const = 0;
  virtual const std::string& name() const = 0;

  // Boots the VM (pulling the image first when needed) and waits for the agent. A no-op
  // when already running.
  virtual Status Start() = 0;
  // Stops the VM cleanly (the disk is flushed); for an auto-remove box also removes it.
  virtual Status Stop() = 0;

  virtual Result<std::shared_ptr<Exec>> StartExec(const ExecOptions& options) = 0;
  // The session of the box's main command (BoxOptions::entrypoint + cmd): its output so
  // far (a bounded backlog of the latest 256 KiB per stream) then live, its stdin, signals
  // and exit. Only the process that started the box holds the session; FailedPrecondition
  // when the box is not running one here.
  virtual Result<std::shared_ptr<Exec>> AttachMain() = 0;
  // Runs to completion and collects the output. A non-zero exit is a result, not an error.
  virtual Result<ExecResult> Run(const ExecOptions& options) = 0;

  virtual Result<BoxInfo> Info() = 0;
  virtual Result<BoxMetrics> Metrics() = 0;

  // Copies a file or directory tree between host and guest. Copied in, modes are kept;
  // copied out, the tree is written beneath the destination and never through a symlink,
  // with modes masked to 0777 (no setuid/setgid/sticky from the box). `options` as
  // CopyOptions says (options.h).
  virtual Status CopyIn(const std::string& host_path, const std::string& guest_path,
                        const CopyOptions& options = CopyOptions()) = 0;
  virtual Status CopyOut(const std::string& guest_path, const std::string& host_path,
                         const CopyOptions& options = CopyOptions()) = 0;

  // The guest console (kernel messages, agent errors) so far.
  virtual Result<std::string> ConsoleLog() = 0;
};

}  // namespace boxlite
