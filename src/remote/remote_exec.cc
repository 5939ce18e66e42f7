// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/remote/remote_exec.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "src/base/macros.h"
#include "src/remote/endpoint.h"
#include "src/remote/wire.h"

namespace boxlite::remote {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kPauseAbove = size_t{8} << 20;   // Output buffered here before reading pauses.
constexpr size_t kResumeBelow = size_t{2} << 20;
constexpr size_t kStdinFrame = 64 << 10;
constexpr auto kReconnectFor = std::chrono::seconds(270);  // BoxLite 0.9's window.

ExitStatus ExitFromCode(int code) {
  ExitStatus st;
  if (code < 0) {  // 0.9 reports a signal as its negative number.
    st.signal = -code;
    st.exit_code = 128 + st.signal;
  } else {
    st.exit_code = code;
  }
  return st;
}

}  // namespace

RemoteExec::RemoteExec(std::shared_ptr<HttpClient> client, std::string box_id,
                       std::string execution_id, bool tty)
    : client_(std::move(client)), box_id_(std::move(box_id)),
      execution_id_(std::move(execution_id)), tty_(tty) {}

RemoteExec::~RemoteExec() {
  std::shared_ptr<WsStream> ws;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ws = std::move(ws_);
  }
  if (ws) ws->Close();
}

std::string RemoteExec::ExecRoute(std::string_view tail) const {
  return client_->BoxTarget("/boxes/" + EscapeComponent(box_id_) + "/executions/" +
                            EscapeComponent(execution_id_) + std::string(tail));
}

Result<std::unique_ptr<WsStream>> RemoteExec::OpenStream() {
  if (!main_target_.empty()) {
    std::string id;
    auto ws = client_->OpenWs(main_target_, "attach to the main command of box " + box_id_,
                              "x-boxlite-execution-id", &id);
    if (ws.ok() && !id.empty()) execution_id_ = id;
    return ws;
  }
  return client_->OpenWs(ExecRoute("/attach"), "attach to exec " + execution_id_);
}

Status RemoteExec::Attach(const std::string& main_target) {
  main_target_ = main_target;
  BOXLITE_ASSIGN_OR_RETURN(std::unique_ptr<WsStream> ws, OpenStream());
  std::shared_ptr<WsStream> shared(std::move(ws));
  {
    std::lock_guard<std::mutex> lock(mu_);
    ws_ = shared;
  }
  shared->Start({[this](bool binary, std::string data) { return OnMessage(binary, std::move(data)); },
                 [this](bool clean, const Status& why) { OnEnd(clean, why); }});
  return Status::OK();
}

bool RemoteExec::OnMessage(bool binary, std::string data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (binary) {
    if (data.empty()) return true;
    int fd = data[0] == 0x02 ? 2 : 1;  // [0x01|stdout] or [0x02|stderr].
    if (data.size() == 1 || discard_[fd]) return true;
    data.erase(0, 1);
    buffered_ += data.size();
    out_[fd].push_back(std::move(data));
    cv_.notify_all();
    if (buffered_ > kPauseAbove) {
      paused_ = true;
      return false;
    }
    return true;
  }
  json j = json::parse(data, nullptr, false);
  if (!j.is_object()) return true;
  auto type = j.value("type", std::string());
  if (type == "exit") {
    auto code = j.find("exit_code");
    int value = code != j.end() && code->is_number_integer() ? code->get<int>() : -1;
    Settle(ExitFromCode(value));
  } else if (type == "error") {
    auto message = j.find("message");
    if (message != j.end() && message->is_string()) {
      last_error_ = message->get<std::string>().substr(0, 1024);
    }
  }
  return true;
}

void RemoteExec::OnEnd(bool, const Status&) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!exit_) stream_down_ = true;
  cv_.notify_all();
}

void RemoteExec::Settle(ExitStatus status) {
  if (exit_) return;
  if (status.error_message.empty()) status.error_message = last_error_;
  exit_ = std::move(status);
  cv_.notify_all();
}

void RemoteExec::Recover(std::unique_lock<std::mutex>& lock) {
  recovering_ = true;
  std::shared_ptr<WsStream> old = ws_;
  lock.unlock();
  if (old) old->Close();
  const auto give_up = Clock::now() + kReconnectFor;
  const int delays_ms[] = {0, 500, 1000, 2000, 4000, 8000, 15000};
  Status last;
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) {
      int ms = attempt < 7 ? delays_ms[attempt] : 30000;
      if (Clock::now() + std::chrono::milliseconds(ms) > give_up) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    if (execution_id_.empty()) {
      last = Status::Unavailable("the connection to the main command of box " + box_id_ + " was lost");
      break;
    }
    auto state = client_->CallJson("GET", ExecRoute(""), nullptr, "look up exec " + execution_id_);
    if (!state.ok()) {
      last = state.error();
      if (last.IsUnavailable()) continue;  // The server is restarting or out of reach.
      lock.lock();
      if (last.IsNotFound() && killed_) {
        ExitStatus st;
        st.signal = 9;
        st.exit_code = 137;
        Settle(st);
      } else {
        failure_ = last.Wrap("the connection to exec " + execution_id_ + " was lost");
      }
      stream_down_ = false;
      recovering_ = false;
      cv_.notify_all();
      return;
    }
    if (state->is_object() && state->value("status", std::string()) != "running") {
      auto code = state->find("exit_code");
      lock.lock();
      Settle(ExitFromCode(code != state->end() && code->is_number_integer() ? code->get<int>() : -1));
      stream_down_ = false;
      recovering_ = false;
      return;
    }
    auto ws = OpenStream();
    if (!ws.ok()) {
      last = ws.error();
      continue;
    }
    std::shared_ptr<WsStream> shared(std::move(*ws));
    lock.lock();
    ws_ = shared;
    stream_down_ = false;
    recovering_ = false;
    cv_.notify_all();
    lock.unlock();
    shared->Start({[this](bool binary, std::string data) { return OnMessage(binary, std::move(data)); },
                   [this](bool clean, const Status& why) { OnEnd(clean, why); }});
    lock.lock();
    return;
  }
  lock.lock();
  failure_ = last.ok() ? Status::Unavailable("lost exec " + execution_id_) : last;
  stream_down_ = false;
  recovering_ = false;
  cv_.notify_all();
}

Status RemoteExec::WriteStdin(std::string_view bytes) {
  std::shared_ptr<WsStream> ws;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (exit_) return Status::FailedPrecondition("exec " + execution_id_ + " has exited");
    ws = ws_;
  }
  if (!ws) return Status::FailedPrecondition("exec " + execution_id_ + " has no stdin here (detached)");
  while (!bytes.empty()) {
    size_t n = std::min(bytes.size(), kStdinFrame);
    BOXLITE_RETURN_IF_ERROR(ws->Send(true, std::string(bytes.substr(0, n))));
    bytes.remove_prefix(n);
  }
  return Status::OK();
}

Status RemoteExec::CloseStdin() {
  std::shared_ptr<WsStream> ws;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (exit_) return Status::OK();
    ws = ws_;
  }
  if (!ws) return Status::OK();
  return ws->Send(false, json{{"type", "stdin_eof"}}.dump());
}

Result<std::string> RemoteExec::Read(int fd, std::optional<std::chrono::milliseconds> timeout) {
  if (fd != 1 && fd != 2) return Status::InvalidArgument("fd must be 1 (stdout) or 2 (stderr)");
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (!out_[fd].empty()) {
      std::string chunk = std::move(out_[fd].front());
      out_[fd].pop_front();
      buffered_ -= chunk.size();
      if (paused_ && buffered_ < kResumeBelow && ws_) {
        paused_ = false;
        ws_->Resume();
      }
      return chunk;
    }
    if (exit_ || detached_ || discard_[fd]) return std::string();
    if (!failure_.ok()) return failure_;
    if (stream_down_ && !recovering_) {
      Recover(lock);
      continue;
    }
    if (deadline) {
      if (cv_.wait_until(lock, *deadline) == std::cv_status::timeout && out_[fd].empty() && !exit_ &&
          !stream_down_ && failure_.ok()) {
        return Status::DeadlineExceeded("no output within the timeout");
      }
    } else {
      cv_.wait(lock);
    }
  }
}

Status RemoteExec::Signal(int signo) {
  auto r = client_->CallJson("POST", ExecRoute("/signal"), json{{"signal", signo}},
                             "signal exec " + execution_id_);
  return r.ok() ? Status::OK() : r.error();
}

Status RemoteExec::Resize(int rows, int cols) {
  if (rows < 1 || cols < 1 || rows > 65535 || cols > 65535) {
    return Status::InvalidArgument("terminal size must be 1..65535 rows and columns");
  }
  auto r = client_->CallJson("POST", ExecRoute("/resize"), json{{"cols", cols}, {"rows", rows}},
                             "resize exec " + execution_id_);
  return r.ok() ? Status::OK() : r.error();
}

Status RemoteExec::Kill() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (exit_) return Status::OK();
    killed_ = true;
  }
  auto r = client_->CallJson("DELETE", ExecRoute(""), nullptr, "kill exec " + execution_id_);
  if (!r.ok() && !r.error().IsNotFound()) return r.error();
  std::lock_guard<std::mutex> lock(mu_);
  if (!exit_ && (detached_ || !ws_ || (r.ok() == false))) {
    ExitStatus st;
    st.signal = 9;
    st.exit_code = 137;
    Settle(st);
  }
  return Status::OK();
}

Status RemoteExec::DiscardOutput(int fd) {
  if (fd != 1 && fd != 2) return Status::InvalidArgument("fd must be 1 (stdout) or 2 (stderr)");
  std::lock_guard<std::mutex> lock(mu_);
  discard_[fd] = true;
  for (const auto& chunk : out_[fd]) buffered_ -= chunk.size();
  out_[fd].clear();
  if (paused_ && buffered_ < kResumeBelow && ws_) {
    paused_ = false;
    ws_->Resume();
  }
  cv_.notify_all();
  return Status::OK();
}

Result<ExitStatus> RemoteExec::Wait(std::optional<std::chrono::milliseconds> timeout) {
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (exit_) return *exit_;
    if (!failure_.ok()) return failure_;
    if (stream_down_ && !recovering_) {
      Recover(lock);
      continue;
    }
    if (detached_) {
      // Nothing streams: poll the exec's state.
      lock.unlock();
      auto state = client_->CallJson("GET", ExecRoute(""), nullptr, "look up exec " + execution_id_);
      lock.lock();
      if (!state.ok()) return state.error();
      if (state->is_object() && state->value("status", std::string()) != "running") {
        auto code = state->find("exit_code");
        Settle(ExitFromCode(code != state->end() && code->is_number_integer() ? code->get<int>() : -1));
        continue;
      }
      auto wake = Clock::now() + std::chrono::milliseconds(200);
      if (deadline && *deadline < wake) wake = *deadline;
      cv_.wait_until(lock, wake);
    } else if (deadline) {
      cv_.wait_until(lock, *deadline);
    } else {
      cv_.wait(lock);
    }
    if (deadline && Clock::now() >= *deadline && !exit_) {
      lock.unlock();
      Status killed = Kill();
      lock.lock();
      cv_.wait_for(lock, std::chrono::seconds(10), [this] { return exit_.has_value(); });
      ExitStatus st = exit_.value_or(ExitStatus{137, 9, true, ""});
      st.timed_out = true;
      if (!killed.ok() && !exit_) return killed;
      return st;
    }
  }
}

}  // namespace boxlite::remote
