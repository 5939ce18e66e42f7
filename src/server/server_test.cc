// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// In-process tests of the server's pure parts: the router, the error mapping, the API-key
// check, the idempotency cache, the backlog ring, the outbox and CreateBoxRequest parsing.
#include <gtest/gtest.h>

#include <csignal>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/server/api.h"
#include "src/server/backlog.h"
#include "src/server/exec_session.h"
#include "src/server/handlers.h"
#include "src/server/idempotency.h"

namespace boxlite::server {
namespace {

TEST(Router, MatchesRoutesAndCapturesDecodedParams) {
  auto m = MatchRoute("GET", "/v1/boxes/ab%2Dc/executions/e1/attach");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->id, RouteId::kExecAttach);
  EXPECT_EQ(m.params["box_id"], "ab-c");
  EXPECT_EQ(m.params["execution_id"], "e1");

  m = MatchRoute("POST", "/v1/boxes/import");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->id, RouteId::kBoxImport);
  m = MatchRoute("GET", "/v1/boxes/import");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->id, RouteId::kBoxGet);
  EXPECT_EQ(m.params["box_id"], "import");
}

TEST(Router, UnknownPathIs404AndWrongMethodIs405) {
  auto m = MatchRoute("GET", "/v1/nothing");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_FALSE(m.path_known);
  m = MatchRoute("PATCH", "/v1/boxes/x");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.path_known);
  // An encoded slash or NUL never makes a parameter; an empty segment matches nothing.
  EXPECT_EQ(MatchRoute("GET", "/v1/boxes/a%2Fb").route, nullptr);
  EXPECT_EQ(MatchRoute("GET", "/v1/boxes/a%00").route, nullptr);
  EXPECT_EQ(MatchRoute("GET", "/v1/boxes/").route, nullptr);
  EXPECT_EQ(MatchRoute("GET", "/v1/boxes/%zz").route, nullptr);
}

TEST(Router, EveryRouteIsUniqueAndOnlyConfigIsPublic) {
  std::set<std::string> seen;
  for (const auto& r : Routes()) {
    EXPECT_TRUE(seen.insert(std::string(r.method) + " " + r.pattern).second) << r.pattern;
    EXPECT_EQ(r.is_public, r.id == RouteId::kConfig) << r.pattern;
    auto m = MatchRoute(r.method, r.pattern);  // "{x}" segments match themselves.
    ASSERT_NE(m.route, nullptr) << r.pattern;
  }
}

TEST(Query, DecodesPairs) {
  auto q = ParseQuery("/v1/boxes/x/files?path=%2Froot%2Fa+b&force=false&empty");
  EXPECT_EQ(q["path"], "/root/a b");
  EXPECT_EQ(q["force"], "false");
  EXPECT_EQ(q["empty"], "");
  EXPECT_EQ(TargetPath("/v1/x?y=1"), "/v1/x");
  EXPECT_EQ(ParseBoolParam("TRUE"), true);
  EXPECT_EQ(ParseBoolParam("0"), false);
  EXPECT_EQ(ParseBoolParam("yes"), std::nullopt);
}

TEST(ErrorMapping, FollowsBoxLite09Table) {
  struct Case {
    Status s;
    unsigned status;
    const char* type;
    const char* code;
  } cases[] = {
      {Status::InvalidArgument("x"), 400, "InvalidArgumentError", "invalid_argument"},
      {Status::NotSupported("x"), 400, "UnsupportedError", "unsupported"},
      {Status::NotFound("x").WithSubject(StatusSubject::kBox), 404, "NotFoundError", "not_found"},
      {Status::NotFound("x").WithSubject(StatusSubject::kImage), 422, "ImageError",
       "image_pull_failed"},
      {Status::AlreadyExists("x"), 409, "AlreadyExistsError", "already_exists"},
      {Status::FailedPrecondition("x"), 409, "InvalidStateError", "invalid_state"},
      {Status::DeadlineExceeded("x"), 504, "TimeoutError", "timeout"},
      {Status::ResourceExhausted("x"), 429, "ResourceExhaustedError", "resource_exhausted"},
      {Status::Unavailable("x"), 503, "EngineError", "engine_unavailable"},
      {Status::Unavailable("x").WithSubject(StatusSubject::kRegistry), 503,
       "UpstreamUnavailableError", "upstream_unavailable"},
      {Status::Internal("x").WithSubject(StatusSubject::kExec), 422, "ExecutionError",
       "execution_failed"},
      {Status::IoError("x"), 500, "StorageError", "storage_error"},
      {Status::Internal("x"), 500, "InternalError", "internal"},
  };
  for (const auto& c : cases) {
    HttpError e = MapStatus(c.s);
    EXPECT_EQ(e.status, c.status) << c.s.ToString();
    EXPECT_EQ(e.type, c.type) << c.s.ToString();
    EXPECT_EQ(e.code, c.code) << c.s.ToString();
  }
}

TEST(ErrorMapping, EnvelopeCarriesRequestIdCodeAndSubject) {
  auto body = ErrorBody(Status::NotFound("box x").WithSubject(StatusSubject::kBox), "rid-1");
  EXPECT_EQ(body["error"]["message"], "box x");
  EXPECT_EQ(body["error"]["type"], "NotFoundError");
  EXPECT_EQ(body["error"]["code"], "not_found");
  EXPECT_EQ(body["error"]["request_id"], "rid-1");
  EXPECT_EQ(body["error"]["boxlite_code"], "not_found");
  EXPECT_EQ(body["error"]["subject"], "box");
  EXPECT_FALSE(ErrorBody(Status::Internal("y"), "")["error"].contains("request_id"));
}

TEST(Auth, BearerInEitherCaseAndExactKeyOnly) {
  struct Case {
    const char* key;
    const char* header;
    bool accepted;
  } cases[] = {{"", "", true},
               {"", "Bearer whatever", true},
               {"s3cret", "Bearer s3cret", true},
               {"s3cret", "bearer s3cret", true},
               {"s3cret", "Bearer s3cre", false},
               {"s3cret", "Bearer s3cret ", false},
               {"s3cret", "Basic s3cret", false},
               {"s3cret", "s3cret", false},
               {"s3cret", "", false},
               {"s3cret", "Bearer ", false}};
  for (const auto& c : cases) {
    EXPECT_EQ(CheckApiKey(c.key, c.header), c.accepted) << c.key << " / " << c.header;
  }
}

TEST(RequestId, HonouredWhenSaneElseMinted) {
  EXPECT_EQ(RequestIdFor("abc-123"), "abc-123");
  std::string minted = RequestIdFor("");
  EXPECT_EQ(minted.size(), 32u);
  EXPECT_NE(minted, RequestIdFor(""));
  EXPECT_NE(RequestIdFor("has space"), "has space");
  EXPECT_NE(RequestIdFor(std::string(129, 'a')), std::string(129, 'a'));
}

TEST(Idempotency, ReplaysSameBodyRefusesOtherBodyAndInFlight) {
  IdempotencyCache cache;
  IdempotencyCache::Reply reply;
  auto t0 = IdempotencyCache::Clock::now();
  EXPECT_EQ(cache.Begin("k", "d1", &reply, t0), IdempotencyCache::Outcome::kRun);
  EXPECT_EQ(cache.Begin("k", "d1", &reply, t0), IdempotencyCache::Outcome::kInFlight);
  cache.Finish("k", {201, "{\"box_id\":\"a\"}"}, t0);
  EXPECT_EQ(cache.Begin("k", "d1", &reply, t0 + std::chrono::hours(1)),
            IdempotencyCache::Outcome::kReplay);
  EXPECT_EQ(reply.status, 201u);
  EXPECT_EQ(reply.body, "{\"box_id\":\"a\"}");
  EXPECT_EQ(cache.Begin("k", "d2", &reply, t0), IdempotencyCache::Outcome::kMismatch);
  // After 24 hours the key is new again.
  EXPECT_EQ(cache.Begin("k", "d2", &reply, t0 + std::chrono::hours(25)),
            IdempotencyCache::Outcome::kRun);
}

TEST(Idempotency, AbandonedKeysRunAgainAndCapacityIsBounded) {
  IdempotencyCache cache(3);
  IdempotencyCache::Reply reply;
  EXPECT_EQ(cache.Begin("a", "d", &reply), IdempotencyCache::Outcome::kRun);
  cache.Abandon("a");
  EXPECT_EQ(cache.Begin("a", "d", &reply), IdempotencyCache::Outcome::kRun);
  for (int i = 0; i < 10; ++i) {
    std::string key = "k" + std::to_string(i);
    EXPECT_EQ(cache.Begin(key, "d", &reply), IdempotencyCache::Outcome::kRun);
    cache.Finish(key, {201, "x"});
  }
  EXPECT_LE(cache.size(), 3u);
}

TEST(Backlog, KeepsTheLatestBytes) {
  Backlog b(8);
  b.Append("abc");
  b.Append("defgh");
  EXPECT_EQ(b.Contents(), "abcdefgh");
  b.Append("ij");
  EXPECT_EQ(b.Contents(), "cdefghij");
  b.Append("0123456789");
  EXPECT_EQ(b.Contents(), "23456789");
  EXPECT_EQ(b.size(), 8u);
  EXPECT_EQ(b.total(), 20u);
  EXPECT_EQ(b.dropped(), 12u);
  Backlog big;
  EXPECT_EQ(big.capacity(), 256u * 1024);
}

TEST(Outbox, SendBlocksWhileFullAndCloseReleases) {
  Outbox box(4);
  ASSERT_TRUE(box.Send(Frame{false, "12345", false}));  // Over the cap once: queued.
  std::atomic<bool> sent{false};
  std::thread sender([&] {
    EXPECT_TRUE(box.Send(Frame{false, "x", false}));
    sent = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(sent.load());  // Still blocked: the queue is full.
  auto f = box.Pop();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->data, "12345");
  sender.join();
  EXPECT_TRUE(sent.load());
  box.Close();
  EXPECT_FALSE(box.Send(Frame{false, "y", false}));
  EXPECT_FALSE(box.Pop().has_value());
}

TEST(CreateBoxRequest, ParsesFieldsAndRefusesUnknownOnes) {
  auto o = ParseCreateBox(nlohmann::json::parse(R"({
      "name": "web", "image": "python:slim", "cpus": 2, "memory_mib": 512,
      "disk_size_gb": 2, "working_dir": "/srv", "env": {"A": "1"},
      "entrypoint": ["/bin/sh"], "cmd": ["-c", "sleep 1"], "tty": true,
      "advanced": {"capabilities": {"add": ["NET_ADMIN"], "drop": []}},
      "network": {"mode": "disabled", "allow_net": []}})"));
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_EQ(o->name, "web");
  EXPECT_EQ(o->cpus, 2);
  EXPECT_EQ(o->memory_mib, 512);
  EXPECT_EQ(o->disk_size_mib, 2048);
  EXPECT_EQ(o->env.size(), 1u);
  EXPECT_EQ(o->network, "none");
  EXPECT_EQ(o->capabilities.add.size(), 1u);
  EXPECT_TRUE(o->tty);
  EXPECT_FALSE(o->auto_remove);
  EXPECT_TRUE(o->detach);  // auto_delete 0: detached (0.9's serve default).

  auto bad = ParseCreateBox(nlohmann::json::parse(R"({"image":"alpine","secrets":[]})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.error().IsInvalidArgument());
  EXPECT_NE(bad.error().message().find("secrets"), std::string::npos);
  EXPECT_FALSE(ParseCreateBox(nlohmann::json::parse(R"({"cpus":"2"})")).ok());
  EXPECT_FALSE(ParseCreateBox(nlohmann::json::parse(R"({"network":{"mode":"bridge"}})")).ok());
  auto deflt = ParseCreateBox(nlohmann::json::object());
  ASSERT_TRUE(deflt.ok());
  EXPECT_EQ(deflt->image, "alpine:latest");
  auto ephemeral = ParseCreateBox(nlohmann::json::parse(R"({"auto_delete": 30})"));
  ASSERT_TRUE(ephemeral.ok());
  EXPECT_FALSE(ephemeral->detach);
}

}  // namespace
}  // namespace boxlite::server

namespace boxlite::server {
namespace {

// An exec whose output ends when it is killed; records the signals it gets.
class FakeExec : public Exec {
 public:
  int pid() const override { return 42; }
  Status WriteStdin(std::string_view) override { return Status::OK(); }
  Status CloseStdin() override { return Status::OK(); }
  Result<std::string> Read(int, std::optional<std::chrono::milliseconds>) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return killed_; });
    return std::string();
  }
  Status Signal(int signo) override {
    std::lock_guard<std::mutex> lock(mu_);
    signals_.push_back(signo);
    return Status::OK();
  }
  Status Resize(int, int) override { return Status::OK(); }
  Result<ExitStatus> Wait(std::optional<std::chrono::milliseconds>) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return killed_; });
    ExitStatus st;
    st.exit_code = 137;
    return st;
  }
  Status Kill() override {
    std::lock_guard<std::mutex> lock(mu_);
    killed_ = true;
    cv_.notify_all();
    return Status::OK();
  }
  Status DiscardOutput(int) override { return Status::OK(); }
  std::vector<int> signals() {
    std::lock_guard<std::mutex> lock(mu_);
    return signals_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool killed_ = false;
  std::vector<int> signals_;
};

ReaperConfig Timings(int reconnect, int shutdown, int completed_ttl = 300,
                     int lifetime = 86400) {
  ReaperConfig c;
  c.reconnect_grace = std::chrono::seconds(reconnect);
  c.shutdown_grace = std::chrono::seconds(shutdown);
  c.completed_ttl = std::chrono::seconds(completed_ttl);
  c.max_lifetime = std::chrono::seconds(lifetime);
  return c;
}

// A started session over a FakeExec, in `table` (as its box's main session when `main`).
std::shared_ptr<ExecSession> StartFake(SessionTable* table, const std::string& id,
                                       std::shared_ptr<FakeExec>* exec, bool main = false) {
  *exec = std::make_shared<FakeExec>();
  auto session = std::make_shared<ExecSession>(id, "box", *exec, false, std::nullopt,
                                               std::nullopt, main);
  if (main) {
    table->SetMain("box", session);
  } else {
    table->Add(session);
  }
  session->Start();
  return session;
}

TEST(Reaper, HangsUpTerminatesThenKillsAnUnattendedExec) {
  SessionTable table(Timings(10, 5));
  std::shared_ptr<FakeExec> exec;
  auto session = StartFake(&table, "e1", &exec);
  auto t0 = ExecSession::Clock::now();
  table.Reap(t0 + std::chrono::seconds(9));
  EXPECT_TRUE(exec->signals().empty());
  table.Reap(t0 + std::chrono::seconds(11));
  EXPECT_EQ(exec->signals(), std::vector<int>{SIGHUP});
  table.Reap(t0 + std::chrono::seconds(17));
  EXPECT_EQ(exec->signals(), (std::vector<int>{SIGHUP, SIGTERM}));
  bool reaped = false;
  EXPECT_NE(table.Get("e1", &reaped), nullptr);
  table.Reap(t0 + std::chrono::seconds(23));
  EXPECT_EQ(table.Get("e1", &reaped), nullptr);
  EXPECT_TRUE(reaped);
  EXPECT_TRUE(table.WasReaped("e1"));
  EXPECT_TRUE(session->WaitDone(std::chrono::seconds(5)));  // Killed.
  EXPECT_EQ(session->exit_code(), 137);
}

TEST(Reaper, AnAttachedExecIsLeftAloneAndAnEndedOneEvicted) {
  SessionTable table(Timings(1, 30, 60));
  std::shared_ptr<FakeExec> exec;
  auto session = StartFake(&table, "e2", &exec);
  auto outbox = std::make_shared<Outbox>();
  ASSERT_TRUE(session->Attach(outbox));
  EXPECT_FALSE(session->Attach(std::make_shared<Outbox>()));  // One client at a time.
  auto t0 = ExecSession::Clock::now();
  table.Reap(t0 + std::chrono::seconds(30));
  EXPECT_TRUE(exec->signals().empty());
  (void)exec->Kill();
  ASSERT_TRUE(session->WaitDone(std::chrono::seconds(5)));
  // The exit frame reached the attached client, and closes it.
  auto frame = outbox->Pop();
  ASSERT_TRUE(frame.has_value());
  EXPECT_TRUE(frame->text && frame->close_after);
  EXPECT_EQ(nlohmann::json::parse(frame->data)["exit_code"], 137);
  session->Detach(outbox);
  bool reaped = false;
  table.Reap(ExecSession::Clock::now() + std::chrono::seconds(30));
  EXPECT_NE(table.Get("e2", &reaped), nullptr);
  table.Reap(ExecSession::Clock::now() + std::chrono::seconds(61));
  EXPECT_EQ(table.Get("e2", &reaped), nullptr);
  EXPECT_TRUE(reaped);
}

TEST(Reaper, NeverSignalsAMainCommandAndShutdownLeavesItRunning) {
  SessionTable table(Timings(1, 1, 300, 2));
  std::shared_ptr<FakeExec> exec;
  auto session = StartFake(&table, "main-box", &exec, /*main=*/true);
  auto t0 = ExecSession::Clock::now();
  for (int s = 1; s < 60; s += 5) table.Reap(t0 + std::chrono::seconds(s));
  EXPECT_TRUE(exec->signals().empty());
  EXPECT_EQ(table.Main("box"), session);
  table.Shutdown(std::chrono::milliseconds(100));
  EXPECT_FALSE(session->done());  // Not killed.
  (void)exec->Kill();
  EXPECT_TRUE(session->WaitDone(std::chrono::seconds(5)));
}

}  // namespace
}  // namespace boxlite::server
