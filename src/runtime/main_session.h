// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// MainSession holds the box's main command (BoxOptions::entrypoint + cmd) for the process
// that started the box. A pump thread moves its output from the guest into a bounded
// backlog, the newest kBacklogBytes of each stream, so the guest never stalls on a reader
// that is not there; Attach() hands out Exec views (Box::AttachMain) that replay the
// backlog and then follow live output. Views see the exit only once `on_exit` has run. A view loses none of the live output: while a view
// has not read bytes the backlog would drop, the pump waits for it (and the command for
// the pump), as an exec whose output is not read waits. When the command exits, `on_exit` runs on the
// pump thread (it may stop and even destroy the box, and with it this session).
//
// Thread-safety: all methods are thread-safe. The pump thread owns only shared state, so
// the session may go away first: the pump then ends when the exec's stream does (the box's
// channel closing ends it).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>

#include "boxlite/exec.h"
#include "src/runtime/exec_impl.h"

namespace boxlite::runtime {

class MainSession {
 public:
  static constexpr size_t kBacklogBytes = 256 * 1024;  // Per stream, as BoxLite 0.9 keeps.
  using OnExit = std::function<void(const ExitStatus&)>;
  // Turns a lost stream into what a view reports (e.g. why the VM died); it runs on the
  // view's caller's thread, never on the pump's.
  using Explainer = std::function<Status(const Status&)>;

  MainSession(std::shared_ptr<ExecImpl> exec, OnExit on_exit, Explainer explain = nullptr);
  ~MainSession();
  MainSession(const MainSession&) = delete;
  MainSession& operator=(const MainSession&) = delete;

  // A new view: the backlog so far, then live output; stdin, signals and kill go to the
  // command.
  std::shared_ptr<Exec> Attach();

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace boxlite::runtime
