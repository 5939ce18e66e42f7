// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/server/exec_session.h"

#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boxlite/config.h"

namespace boxlite::server {

namespace {

// Reader threads still running, over every session of the process (Shutdown waits).
std::mutex g_live_mu;
std::condition_variable g_live_cv;
int g_live = 0;

std::string ExitFrame(int code) {
  return nlohmann::json{{"type", "exit"}, {"exit_code", code}}.dump();
}

Result<std::chrono::seconds> EnvSeconds(const char* name, std::chrono::seconds fallback) {
  auto value = EnvironmentValue(name);
  if (!value) return fallback;
  const char* v = value->c_str();
  char* end = nullptr;
  long long n = std::strtoll(v, &end, 10);
  if (end == v || *end != '\0' || n < 0) {
    return Status::InvalidArgument(std::string(name) + "=" + *value +
                                   " is not a number of seconds: set a whole number >= 0");
  }
  return std::chrono::seconds(n);
}

}  // namespace

Result<ReaperConfig> ReaperConfig::FromEnv() {
  ReaperConfig c;
  struct Item {
    const char* name;
    std::chrono::seconds* field;
  } items[] = {{"BOXLITE_REAPER_TICK", &c.tick},
               {"BOXLITE_RECONNECT_GRACE", &c.reconnect_grace},
               {"BOXLITE_SHUTDOWN_GRACE", &c.shutdown_grace},
               {"BOXLITE_MAX_SESSION_LIFETIME", &c.max_lifetime},
               {"BOXLITE_COMPLETED_EXEC_TTL", &c.completed_ttl}};
  for (auto& item : items) {
    auto v = EnvSeconds(item.name, *item.field);
    if (!v.ok()) return v.error();
    *item.field = *v;
  }
  if (c.tick.count() == 0) c.tick = std::chrono::seconds(1);
  return c;
}

// --- Outbox ---

bool Outbox::Send(Frame frame) {
  std::function<void()> wake;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || bytes_ < capacity_; });
    if (closed_) return false;
    bytes_ += frame.data.size();
    frames_.push_back(std::move(frame));
    wake = wake_;
  }
  if (wake) wake();
  return true;
}

void Outbox::Push(Frame frame) {
  std::function<void()> wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    bytes_ += frame.data.size();
    frames_.push_back(std::move(frame));
    wake = wake_;
  }
  if (wake) wake();
}

std::optional<Frame> Outbox::Pop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (frames_.empty()) return std::nullopt;
  Frame f = std::move(frames_.front());
  frames_.pop_front();
  bytes_ -= f.data.size();
  cv_.notify_all();
  return f;
}

void Outbox::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  frames_.clear();
  bytes_ = 0;
  wake_ = nullptr;
  cv_.notify_all();
}

bool Outbox::closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

void Outbox::SetWake(std::function<void()> wake) {
  bool pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    wake_ = wake;
    pending = !frames_.empty();
  }
  if (pending && wake) wake();
}

size_t Outbox::queued_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

// --- ExecSession ---

ExecSession::ExecSession(std::string id, std::string box_id, std::shared_ptr<Exec> exec,
                         bool tty, std::optional<double> timeout_seconds,
                         std::optional<std::string> inline_stdin, bool main)
    : id_(std::move(id)),
      box_id_(std::move(box_id)),
      exec_(std::move(exec)),
      tty_(tty),
      main_(main),
      timeout_seconds_(timeout_seconds),
      inline_stdin_(std::move(inline_stdin)) {}

ExecSession::~ExecSession() = default;

void ExecSession::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return;
    started_ = true;
  }
  {
    std::lock_guard<std::mutex> lock(g_live_mu);
    ++g_live;
  }
  std::thread([self = shared_from_this()] { self->Drive(); }).detach();
}

void ExecSession::PumpStream(int fd) {
  uint8_t tag = fd == 1 ? 0x01 : 0x02;
  for (;;) {
    auto chunk = exec_->Read(fd);
    if (!chunk.ok() || chunk->empty()) return;
    std::shared_ptr<Outbox> outbox;
    {
      std::lock_guard<std::mutex> lock(mu_);
      (fd == 1 ? out_ : err_).Append(*chunk);
      outbox = outbox_;
    }
    if (outbox) {
      Frame f;
      f.data.reserve(chunk->size() + 1);
      f.data.push_back(static_cast<char>(tag));
      f.data += *chunk;
      // Blocks while the client is behind: the exec's flow control holds the process.
      outbox->Send(std::move(f));
    }
  }
}

void ExecSession::Drive() {
  std::thread stdin_writer;
  if (inline_stdin_) {
    stdin_writer = std::thread([this] {
      if (!inline_stdin_->empty()) (void)exec_->WriteStdin(*inline_stdin_);
      (void)exec_->CloseStdin();
    });
  }
  // ExecRequest.timeout_seconds: the process is killed when it runs longer, output or not.
  std::thread watchdog;
  if (timeout_seconds_ && *timeout_seconds_ > 0) {
    auto limit = std::chrono::milliseconds(static_cast<int64_t>(*timeout_seconds_ * 1000));
    watchdog = std::thread([this, limit] {
      bool expired;
      {
        std::unique_lock<std::mutex> lock(mu_);
        expired = !done_cv_.wait_for(lock, limit, [&] { return done_; });
      }
      if (expired) (void)exec_->Kill();
    });
  }
  std::thread err_reader;
  if (!tty_) err_reader = std::thread([this] { PumpStream(2); });
  PumpStream(1);
  if (err_reader.joinable()) err_reader.join();
  auto status = exec_->Wait(std::nullopt);
  if (stdin_writer.joinable()) {
    (void)exec_->Kill();
    stdin_writer.join();
  }
  int code = status.ok() ? status->exit_code : 137;
  {
    // Queued under the lock, as Attach does: a client sees the exit exactly once.
    std::lock_guard<std::mutex> lock(mu_);
    exit_code_ = code;
    done_ = true;
    idle_since_ = Clock::now();
    if (outbox_) outbox_->Push(Frame{true, ExitFrame(code), true});
    done_cv_.notify_all();
  }
  if (watchdog.joinable()) watchdog.join();
  std::lock_guard<std::mutex> lock(g_live_mu);
  --g_live;
  g_live_cv.notify_all();
}

bool ExecSession::Attach(const std::shared_ptr<Outbox>& outbox) {
  std::lock_guard<std::mutex> lock(mu_);
  if (outbox_ && !outbox_->closed()) return false;
  for (auto [tag, backlog] : {std::pair<char, Backlog*>{0x01, &out_}, {0x02, &err_}}) {
    if (backlog->size() == 0) continue;
    Frame f;
    f.data.push_back(tag);
    f.data += backlog->Contents();
    outbox->Push(std::move(f));
  }
  if (done_) outbox->Push(Frame{true, ExitFrame(exit_code_.value_or(-1)), true});
  outbox_ = outbox;
  stage_ = Stage::kNone;
  return true;
}

void ExecSession::Detach(const std::shared_ptr<Outbox>& outbox) {
  std::lock_guard<std::mutex> lock(mu_);
  if (outbox_ != outbox) return;
  outbox_.reset();
  if (!done_) idle_since_ = Clock::now();
}

std::optional<int> ExecSession::exit_code() {
  std::lock_guard<std::mutex> lock(mu_);
  return exit_code_;
}

bool ExecSession::done() {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

bool ExecSession::WaitDone(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return done_cv_.wait_for(lock, timeout, [&] { return done_; });
}

ExecSession::ReapState ExecSession::reap_state() {
  std::lock_guard<std::mutex> lock(mu_);
  bool attached = outbox_ && !outbox_->closed();
  return ReapState{attached, done_, idle_since_, created_, stage_, stage_at_};
}

void ExecSession::set_stage(Stage stage, Clock::time_point at) {
  std::lock_guard<std::mutex> lock(mu_);
  stage_ = stage;
  stage_at_ = at;
}

void ExecSession::Abort(bool keep_process) {
  if (!keep_process) (void)exec_->Kill();
  std::shared_ptr<Outbox> outbox;
  {
    std::lock_guard<std::mutex> lock(mu_);
    outbox = outbox_;
  }
  if (outbox) outbox->Close();
}

// --- SessionTable ---

SessionTable::~SessionTable() { Shutdown(std::chrono::milliseconds(0)); }

void SessionTable::Add(const std::shared_ptr<ExecSession>& session) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_[session->id()] = session;
}

std::shared_ptr<ExecSession> SessionTable::Get(const std::string& id, bool* reaped) {
  std::lock_guard<std::mutex> lock(mu_);
  *reaped = false;
  auto it = sessions_.find(id);
  if (it != sessions_.end()) return it->second;
  *reaped = reaped_.count(id) > 0;
  return nullptr;
}

void SessionTable::MarkReapedLocked(const std::string& id) {
  if (reaped_.insert(id).second) reaped_order_.push_back(id);
  while (reaped_order_.size() > 4096) {
    reaped_.erase(reaped_order_.front());
    reaped_order_.pop_front();
  }
}

bool SessionTable::WasReaped(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return reaped_.count(id) > 0;
}

void SessionTable::Remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(id);
  for (auto it = main_.begin(); it != main_.end();) {
    it = it->second == id ? main_.erase(it) : std::next(it);
  }
}

std::shared_ptr<ExecSession> SessionTable::Main(const std::string& box_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = main_.find(box_id);
  if (it == main_.end()) return nullptr;
  auto s = sessions_.find(it->second);
  return s == sessions_.end() ? nullptr : s->second;
}

void SessionTable::SetMain(const std::string& box_id,
                           const std::shared_ptr<ExecSession>& session) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_[session->id()] = session;
  main_[box_id] = session->id();
}

void SessionTable::DropBox(const std::string& box_id) {
  std::vector<std::shared_ptr<ExecSession>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second->box_id() == box_id) {
        dropped.push_back(it->second);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
    main_.erase(box_id);
  }
  for (auto& s : dropped) s->Abort();
}

void SessionTable::Reap(ExecSession::Clock::time_point now) {
  std::vector<std::pair<std::shared_ptr<ExecSession>, ExecSession::Stage>> act;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      auto st = it->second->reap_state();
      bool evict = false;
      if (st.done) {
        evict = !st.attached && now - st.idle_since >= config_.completed_ttl;
      } else if (it->second->is_main()) {
        // The box's main command lives as long as the box does.
      } else if (now - st.started >= config_.max_lifetime) {
        act.emplace_back(it->second, ExecSession::Stage::kKill);
        evict = true;
      } else if (!st.attached) {
        using S = ExecSession::Stage;
        if (st.stage == S::kNone && now - st.idle_since >= config_.reconnect_grace) {
          act.emplace_back(it->second, S::kHangup);
        } else if (st.stage == S::kHangup && now - st.stage_at >= config_.shutdown_grace) {
          act.emplace_back(it->second, S::kTerminate);
        } else if (st.stage == S::kTerminate && now - st.stage_at >= config_.shutdown_grace) {
          act.emplace_back(it->second, S::kKill);
          evict = true;
        }
      }
      if (evict) {
        MarkReapedLocked(it->first);
        for (auto m = main_.begin(); m != main_.end();) {
          m = m->second == it->first ? main_.erase(m) : std::next(m);
        }
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [session, stage] : act) {
    session->set_stage(stage, now);
    switch (stage) {
      case ExecSession::Stage::kHangup:
        (void)session->exec().Signal(SIGHUP);
        break;
      case ExecSession::Stage::kTerminate:
        (void)session->exec().Signal(SIGTERM);
        break;
      case ExecSession::Stage::kKill:
        session->Abort();
        break;
      case ExecSession::Stage::kNone:
        break;
    }
  }
}

void SessionTable::StartReaper() {
  reaper_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, config_.tick, [&] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      Reap(ExecSession::Clock::now());
      lock.lock();
    }
  });
}

void SessionTable::Shutdown(std::chrono::milliseconds timeout) {
  std::vector<std::shared_ptr<ExecSession>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
    for (auto& [id, s] : sessions_) all.push_back(s);
    sessions_.clear();
    main_.clear();
  }
  if (reaper_.joinable()) reaper_.join();
  // The execs die with the server; a main command stays with its box (a detached box
  // outlives the server; Runtime::Shutdown stops the others).
  for (auto& s : all) s->Abort(/*keep_process=*/s->is_main());
  all.clear();
  std::unique_lock<std::mutex> lock(g_live_mu);
  g_live_cv.wait_for(lock, timeout, [] { return g_live == 0; });
}

size_t SessionTable::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

}  // namespace boxlite::server
