// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/main_session.h"

#include <algorithm>
#include <condition_variable>
#include <list>
#include <mutex>
#include <string>
#include <thread>

namespace boxlite::runtime {

// One output stream: `data` holds bytes [base, base + data.size()) of everything the
// command wrote; older bytes were dropped to keep within kBacklogBytes.
struct Backlog {
  std::string data;
  uint64_t base = 0;
  bool eof = false;
  uint64_t end() const { return base + data.size(); }
};

// Where one view has read up to, per stream; a discarded stream holds nothing back.
struct ViewPos {
  uint64_t pos[3] = {0, 0, 0};
  bool discard[3] = {false, false, false};
};

struct MainSession::Shared {
  std::shared_ptr<ExecImpl> exec;
  MainSession::Explainer explain;
  std::mutex mu;
  std::condition_variable cv;
  Backlog out[3];                 // Guarded by mu; 1 = stdout, 2 = stderr.
  std::list<ViewPos> views;       // Guarded by mu: the views alive.
  std::optional<ExitStatus> exit;  // Guarded by mu.
  Status failure;                  // Guarded by mu: the stream broke (box gone).
};

namespace {

constexpr size_t kReadMax = 64 * 1024;

void Pump(std::shared_ptr<MainSession::Shared> s, MainSession::OnExit on_exit) {
  Status broke;
  // Once the stream is lost, no view is waited for again: the output still queued is
  // the rest of a dead stream (up to a window of it), and waiting a view out per chunk
  // would hold back the failure, and the box's stop, for a minute.
  bool lost = false;
  while (true) {
    int fd = 0;
    auto chunk = s->exec->ReadAny(&fd, std::nullopt);
    if (!chunk.ok()) {
      broke = chunk.error();
      break;
    }
    std::unique_lock<std::mutex> lock(s->mu);
    if (fd == 0) {
      s->out[1].eof = s->out[2].eof = true;
      s->cv.notify_all();
      break;
    }
    Backlog& b = s->out[fd];
    b.data += *chunk;
    // Views that have read everything sleep until told of new bytes: tell them before
    // waiting for them below (a chunk larger than the backlog waits at once).
    s->cv.notify_all();
    // A view that follows the output loses none of it: past the backlog's size the
    // command waits for the slowest reader (the guest holds its output meanwhile).
    auto unread_by_a_view = [&] {
      uint64_t drop_to = b.base + (b.data.size() - MainSession::kBacklogBytes);
      for (const ViewPos& v : s->views) {
        if (!v.discard[fd] && v.pos[fd] < drop_to) return true;
      }
      return false;
    };
    // A lost stream ends the wait (the views then learn why from the read below).
    while (!lost && b.data.size() > MainSession::kBacklogBytes && unread_by_a_view()) {
      if (s->cv.wait_for(lock, std::chrono::milliseconds(200)) == std::cv_status::timeout &&
          !s->exec->StreamFailure().ok()) {
        lost = true;
      }
    }
    if (b.data.size() > MainSession::kBacklogBytes) {
      size_t drop = b.data.size() - MainSession::kBacklogBytes;
      b.data.erase(0, drop);
      b.base += drop;
    }
    s->cv.notify_all();
  }
  Result<ExitStatus> st = broke.ok() ? s->exec->Wait(std::nullopt) : Result<ExitStatus>(broke);
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->out[1].eof = s->out[2].eof = true;
    s->cv.notify_all();
  }
  // The box records the exit and stops before the views see it: a view's Wait returning
  // means the box has stopped with its code (`boxlite run` may exit right after).
  if (st.ok() && on_exit) on_exit(*st);
  std::lock_guard<std::mutex> lock(s->mu);
  if (st.ok()) {
    s->exit = *st;
  } else {
    s->failure = st.error();
  }
  s->cv.notify_all();
}

// What Box::AttachMain returns: a reader of the session's backlog.
class MainView final : public Exec {
 public:
  explicit MainView(std::shared_ptr<MainSession::Shared> s) : s_(std::move(s)) {
    std::lock_guard<std::mutex> lock(s_->mu);
    ViewPos start;
    for (int fd = 1; fd <= 2; ++fd) start.pos[fd] = s_->out[fd].base;
    me_ = s_->views.insert(s_->views.end(), start);
  }

  ~MainView() override {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->views.erase(me_);
    s_->cv.notify_all();
  }

  int pid() const override { return s_->exec->pid(); }
  Status WriteStdin(std::string_view bytes) override { return s_->exec->WriteStdin(bytes); }
  Status CloseStdin() override { return s_->exec->CloseStdin(); }
  Status Signal(int signo) override { return s_->exec->Signal(signo); }
  Status Resize(int rows, int cols) override { return s_->exec->Resize(rows, cols); }
  Status Kill() override { return s_->exec->Kill(); }

  Result<std::string> Read(int fd, std::optional<std::chrono::milliseconds> timeout) override {
    if (fd != 1 && fd != 2) return Status::InvalidArgument("read: fd must be 1 or 2");
    Status failed;
    {
      std::unique_lock<std::mutex> lock(s_->mu);
      uint64_t& pos = me_->pos[fd];
      auto ready = [&] {
        const Backlog& b = s_->out[fd];
        return me_->discard[fd] ? b.eof : (pos < b.end() || b.eof);
      };
      if (timeout) {
        if (!s_->cv.wait_for(lock, *timeout, ready)) {
          return Status::DeadlineExceeded("no output within the timeout");
        }
      } else {
        s_->cv.wait(lock, ready);
      }
      const Backlog& b = s_->out[fd];
      pos = std::max(pos, b.base);  // Bytes dropped from the backlog are skipped.
      if (!me_->discard[fd] && pos < b.end()) {
        size_t offset = static_cast<size_t>(pos - b.base);
        size_t n = std::min(kReadMax, b.data.size() - offset);
        pos += n;
        s_->cv.notify_all();  // The pump may be waiting for this reader.
        return b.data.substr(offset, n);
      }
      if (s_->failure.ok() || s_->exit) return std::string();
      failed = s_->failure;
    }
    return Explain(failed);
  }

  Result<ExitStatus> Wait(std::optional<std::chrono::milliseconds> timeout) override {
    Status failed;
    {
      std::unique_lock<std::mutex> lock(s_->mu);
      auto done = [&] { return s_->exit.has_value() || !s_->failure.ok(); };
      if (timeout && !s_->cv.wait_for(lock, *timeout, done)) {
        lock.unlock();
        (void)s_->exec->Kill();
        lock.lock();
        s_->cv.wait(lock, done);
        if (s_->exit) {
          ExitStatus st = *s_->exit;
          st.timed_out = true;
          return st;
        }
      }
      s_->cv.wait(lock, done);
      if (s_->exit) return *s_->exit;
      failed = s_->failure;
    }
    return Explain(failed);
  }

  Status DiscardOutput(int fd) override {
    if (fd != 1 && fd != 2) return Status::InvalidArgument("discard: fd must be 1 or 2");
    std::lock_guard<std::mutex> lock(s_->mu);
    me_->discard[fd] = true;
    s_->cv.notify_all();
    return Status::OK();
  }

 private:
  // Outside the session's lock: the explainer takes the box's.
  Status Explain(const Status& failed) const {
    return s_->explain ? s_->explain(failed) : failed;
  }

  std::shared_ptr<MainSession::Shared> s_;
  std::list<ViewPos>::iterator me_;  // In s_->views; guarded by s_->mu.
};

}  // namespace

MainSession::MainSession(std::shared_ptr<ExecImpl> exec, OnExit on_exit, Explainer explain)
    : shared_(std::make_shared<Shared>()) {
  shared_->exec = std::move(exec);
  shared_->explain = std::move(explain);
  // Lifetime: the thread holds the shared state; it ends with the command's stream.
  std::thread(Pump, shared_, std::move(on_exit)).detach();
}

MainSession::~MainSession() = default;

std::shared_ptr<Exec> MainSession::Attach() { return std::make_shared<MainView>(shared_); }

}  // namespace boxlite::runtime
