// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Box is one sandbox: a micro-VM with its own kernel booted from an OCI image. Create it
// with Runtime::Create, then Start() it; Exec runs processes in it. An ephemeral box
// (auto_remove, not detached) leaves nothing behind when it stops or its owner dies.
//
// Thread-safety: all methods may be called from any thread; many execs may run at once.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boxlite/exec.h"
#include "boxlite/options.h"
#include "boxlite/result.h"
#include "boxlite/snapshot.h"
#include "boxlite/status.h"
#include "boxlite/tunnel.h"

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
  // An exec of this box started earlier, by Exec::execution_id(), possibly by another
  // process: a remote box replays its output backlog, then goes live. A local box keeps
  // no executions across processes: NotSupported.
  virtual Result<std::shared_ptr<Exec>> AttachExec(const std::string& execution_id) {
    return Status::NotSupported("attach by execution id needs a remote runtime",
                                execution_id);
  }
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

  // A TCP connection to `port` (1..65535) inside the running box, as a server there
  // sees one from 127.0.0.1 (or, when nothing listens there, from the box's own address):
  // BoxLite 0.9's box.network.tunnel(port).connect(). It needs no network (it rides the
  // agent channel). NotFound when nothing listens on the port; FailedPrecondition when
  // the box is not running.
  virtual Result<std::shared_ptr<Connection>> Tunnel(int port) = 0;

  // The guest console (kernel messages, agent errors) so far.
  virtual Result<std::string> ConsoleLog() = 0;

  // --- Snapshots, clones, forks and export (docs/snapshots.md) ---
  // Saves the box's disk (and, with options.memory, its memory and devices) under `name`.
  // A running box is quiesced for a disk snapshot (its file systems frozen, then thawed).
  // AlreadyExists for a used name; InvalidArgument for a bad one.
  virtual Result<SnapshotInfo> CreateSnapshot(const std::string& name,
                                              const SnapshotOptions& options = {}) = 0;
  virtual Result<std::vector<SnapshotInfo>> ListSnapshots() = 0;
  // nullopt when the box has no snapshot of that name.
  virtual Result<std::optional<SnapshotInfo>> GetSnapshot(const std::string& name) = 0;
  virtual Status RemoveSnapshot(const std::string& name) = 0;
  // Puts the box back as the snapshot saved it. A disk snapshot needs a stopped box
  // (FailedPrecondition otherwise, as in BoxLite 0.9); a memory snapshot stops a running
  // box first and leaves it running from the saved state.
  virtual Status RestoreSnapshot(const std::string& name) = 0;
  // A new stopped box with a copy of this box's disk and options (`name` empty: none).
  virtual Result<std::shared_ptr<Box>> Clone(const std::string& name,
                                             const CloneOptions& options = {}) = 0;
  // Writes a .boxlite archive of the box (docs/snapshots.md has the format) to `dest`, a
  // file path or an existing directory; returns the archive's path.
  virtual Result<std::string> Export(const std::string& dest,
                                     const ExportOptions& options = {}) = 0;
  // Running copies of this running box (or of one of its memory snapshots).
  virtual Result<std::vector<std::shared_ptr<Box>>> Fork(const ForkOptions& options) = 0;
};

}  // namespace boxlite
