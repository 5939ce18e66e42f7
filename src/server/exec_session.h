// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Exec sessions of `boxlite serve` (docs/server.md, "WebSocket attach"): an exec started
// over REST keeps running whether or not a client is attached. Two threads per exec read
// its stdout and stderr into a 256 KiB backlog per stream and, while a client is attached,
// into that client's outbox; a full outbox blocks the reader, so a client that does not
// read holds the process back through the exec's flow control instead of filling the
// server's memory. A late (or second) attach replays the backlog, then goes live; one
// client at a time. The table's reaper signals execs whose client went away (SIGHUP, then
// SIGTERM, then SIGKILL) and evicts completed ones. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "boxlite/exec.h"
#include "boxlite/result.h"
#include "src/server/backlog.h"

namespace boxlite::server {

// One WebSocket frame on its way to a client.
struct Frame {
  bool text = false;
  std::string data;
  bool close_after = false;  // Close the connection (1000) once this frame is sent.
};

// The frames queued for one attached client, at most `capacity` bytes of output. The exec
// session's readers push (blocking while it is full); the connection pops.
class Outbox {
 public:
  explicit Outbox(size_t capacity = size_t{1} << 20) : capacity_(capacity) {}

  // Queues output; blocks while the outbox is full. false: the outbox is closed.
  bool Send(Frame frame);
  // Queues without waiting (the replayed backlog, the exit and error frames).
  void Push(Frame frame);
  std::optional<Frame> Pop();
  // Wakes blocked senders for good; later sends fail.
  void Close();
  bool closed();
  // Called (from any thread) whenever a frame is queued; set once by the connection.
  void SetWake(std::function<void()> wake);
  size_t queued_bytes();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Frame> frames_;
  size_t bytes_ = 0;
  size_t capacity_;
  bool closed_ = false;
  std::function<void()> wake_;
};

// How long the reaper waits (docs/server.md lists the variables that set them).
struct ReaperConfig {
  std::chrono::seconds tick{30};               // BOXLITE_REAPER_TICK
  std::chrono::seconds reconnect_grace{300};   // BOXLITE_RECONNECT_GRACE: then SIGHUP
  std::chrono::seconds shutdown_grace{30};     // BOXLITE_SHUTDOWN_GRACE: then SIGTERM, SIGKILL
  std::chrono::seconds max_lifetime{86400};    // BOXLITE_MAX_SESSION_LIFETIME
  std::chrono::seconds completed_ttl{300};     // BOXLITE_COMPLETED_EXEC_TTL
  // Reads the variables; a bad value is an error naming it.
  static Result<ReaperConfig> FromEnv();
};

class ExecSession : public std::enable_shared_from_this<ExecSession> {
 public:
  using Clock = std::chrono::steady_clock;

  // `main`: the session of the box's main command (Box::AttachMain). The box's lifecycle
  // owns that process: the reaper never signals it, and server shutdown leaves it running.
  ExecSession(std::string id, std::string box_id, std::shared_ptr<Exec> exec, bool tty,
              std::optional<double> timeout_seconds, std::optional<std::string> inline_stdin,
              bool main = false);
  ~ExecSession();

  // Starts the reader threads (once).
  void Start();

  const std::string& id() const { return id_; }
  const std::string& box_id() const { return box_id_; }
  bool is_main() const { return main_; }
  Exec& exec() { return *exec_; }

  // Makes `outbox` the attached client: the backlog (and the exit, when it came) is queued
  // first, then live output. false when another client is attached.
  bool Attach(const std::shared_ptr<Outbox>& outbox);
  void Detach(const std::shared_ptr<Outbox>& outbox);

  std::optional<int> exit_code();
  // Waits until the exec ended and its output was read; false on timeout.
  bool WaitDone(std::chrono::milliseconds timeout);
  bool done();

  // Reaper bookkeeping (SessionTable only).
  enum class Stage { kNone, kHangup, kTerminate, kKill };
  struct ReapState {
    bool attached;
    bool done;
    Clock::time_point idle_since;  // Detached (or started) at; done: ended at.
    Clock::time_point started;
    Stage stage;
    Clock::time_point stage_at;
  };
  ReapState reap_state();
  void set_stage(Stage stage, Clock::time_point at);
  // Closes the attached outbox and, unless `keep_process`, kills the process.
  void Abort(bool keep_process = false);

 private:
  void Drive();
  void PumpStream(int fd);

  const std::string id_;
  const std::string box_id_;
  const std::shared_ptr<Exec> exec_;
  const bool tty_;
  const bool main_;
  const std::optional<double> timeout_seconds_;
  std::optional<std::string> inline_stdin_;

  std::mutex mu_;
  std::condition_variable done_cv_;
  Backlog out_, err_;
  std::shared_ptr<Outbox> outbox_;
  std::optional<int> exit_code_;
  bool done_ = false;
  bool started_ = false;
  Clock::time_point created_ = Clock::now();
  Clock::time_point idle_since_ = Clock::now();
  Stage stage_ = Stage::kNone;
  Clock::time_point stage_at_{};
};

// The exec sessions of a server, by execution id; ids of reaped sessions are remembered
// (bounded) so a late client gets 410 rather than 404.
class SessionTable {
 public:
  explicit SessionTable(ReaperConfig config) : config_(config) {}
  ~SessionTable();

  void Add(const std::shared_ptr<ExecSession>& session);
  // nullptr and *reaped=true when the id was reaped; nullptr and false when unknown.
  std::shared_ptr<ExecSession> Get(const std::string& id, bool* reaped);
  void Remove(const std::string& id);
  // Whether `id` was evicted by the reaper (remembered for the last 4096 ids).
  bool WasReaped(const std::string& id);
  // The live session of a box's main command, when there is one.
  std::shared_ptr<ExecSession> Main(const std::string& box_id);
  void SetMain(const std::string& box_id, const std::shared_ptr<ExecSession>& session);
  // Kills and forgets every session of a box (it was removed).
  void DropBox(const std::string& box_id);

  // One reaper pass at `now`.
  void Reap(ExecSession::Clock::time_point now);
  // Starts the reaper thread; Shutdown stops it.
  void StartReaper();
  // Kills every session, stops the reaper, waits up to `timeout` for the readers to end.
  void Shutdown(std::chrono::milliseconds timeout);

  size_t size();
  const ReaperConfig& config() const { return config_; }

 private:
  void MarkReapedLocked(const std::string& id);

  ReaperConfig config_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<ExecSession>> sessions_;
  std::map<std::string, std::string> main_;  // box id -> session id
  std::set<std::string> reaped_;
  std::deque<std::string> reaped_order_;
  std::thread reaper_;
};

}  // namespace boxlite::server
