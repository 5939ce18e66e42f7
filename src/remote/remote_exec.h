// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// An exec on a remote box (docs/remote.md, "Exec"): its output, input and exit over a
// WebSocket attach (BoxLite 0.9's protocol), its signals, resize and kill over REST. A
// dropped connection is recovered: the exec is looked up (GET .../executions/{id}) and,
// while it runs, attached again with backoff for up to 270 s (the server replays up to
// 256 KiB of each stream, so output near the drop may arrive twice).
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "boxlite/exec.h"
#include "src/remote/http.h"

namespace boxlite::remote {

class RemoteExec final : public Exec {
 public:
  // `attach_target` is the WebSocket route of this exec's attach.
  RemoteExec(std::shared_ptr<HttpClient> client, std::string box_id, std::string execution_id,
             bool tty);
  ~RemoteExec() override;

  // Attaches (first time). `main_target`: the box's main-session route instead of the
  // exec's (the execution id then comes from the upgrade's response).
  Status Attach(const std::string& main_target = "");
  // An exec started detached: nothing to attach; Wait() polls.
  void MarkDetached() { detached_ = true; }

  int pid() const override { return 0; }
  std::string execution_id() const override { return execution_id_; }
  Status WriteStdin(std::string_view bytes) override;
  Status CloseStdin() override;
  Result<std::string> Read(int fd, std::optional<std::chrono::milliseconds> timeout) override;
  Status Signal(int signo) override;
  Status Resize(int rows, int cols) override;
  Result<ExitStatus> Wait(std::optional<std::chrono::milliseconds> timeout) override;
  Status Kill() override;
  Status DiscardOutput(int fd) override;

 private:
  bool OnMessage(bool binary, std::string data);
  void OnEnd(bool clean, const Status& why);
  // With mu_ held: called when the stream ended without an exit; looks the exec up and
  // re-attaches, or settles its end. Drops and retakes the lock.
  void Recover(std::unique_lock<std::mutex>& lock);
  std::string ExecRoute(std::string_view tail) const;
  Result<std::unique_ptr<WsStream>> OpenStream();
  void Settle(ExitStatus status);  // mu_ held.

  std::shared_ptr<HttpClient> client_;
  std::string box_id_;
  std::string execution_id_;
  bool tty_;
  bool detached_ = false;
  std::string main_target_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> out_[3];  // [1] stdout, [2] stderr.
  size_t buffered_ = 0;
  bool discard_[3] = {false, false, false};
  bool paused_ = false;
  bool stream_down_ = false;  // The WebSocket ended without an exit frame.
  bool recovering_ = false;
  bool killed_ = false;
  std::optional<ExitStatus> exit_;
  Status failure_;  // The exec's end is unknown (server gone).
  std::string last_error_;  // From {"type":"error"} frames.
  std::shared_ptr<WsStream> ws_;
};

}  // namespace boxlite::remote
