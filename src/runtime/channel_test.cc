// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The channel's credit accounting against a fake agent on the other end of a socketpair:
// the peer is hostile, so output beyond the granted credit must drop the connection.
#include "src/runtime/channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "src/protocol/frame.h"
#include "src/protocol/messages.h"
#include "src/runtime/exec_impl.h"
#include "src/runtime/main_session.h"

namespace boxlite::runtime {
namespace {

using std::chrono::seconds;

// The agent's end: reads the host's frames and writes whatever a test wants.
class FakePeer {
 public:
  explicit FakePeer(base::UniqueFd fd) : fd_(std::move(fd)) {}

  protocol::Frame Next() {
    while (true) {
      auto frame = decoder_.Next();
      EXPECT_TRUE(frame.ok());
      if (frame.ok() && frame->has_value()) return std::move(**frame);
      char buf[65536];
      ssize_t n = ::read(fd_.get(), buf, sizeof(buf));
      if (n <= 0) {
        ADD_FAILURE() << "the host closed the channel";
        return {};
      }
      decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }

  void Write(const std::string& bytes) {
    ASSERT_EQ(::write(fd_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void Data(uint32_t stream, uint8_t fd, size_t n) {
    std::string frame;
    protocol::AppendData(&frame, stream, fd, std::string(n, 'x'));
    Write(frame);
  }

 private:
  base::UniqueFd fd_;
  protocol::FrameDecoder decoder_;
};

class ChannelCreditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sp[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    peer_ = std::make_unique<FakePeer>(base::UniqueFd(sp[1]));
    channel_ = std::make_shared<AgentChannel>(base::UniqueFd(sp[0]), [this](const Status& why) {
      closed_.set_value(why);
    });
  }

  // Starts an exec with `window` bytes of output credit per fd, answered by the peer.
  void StartExec(int64_t window) {
    auto call = std::async(std::launch::async, [&] {
      return channel_->Call("exec", {{"argv", {"true"}}, {"window", window}},
                            Clock::now() + seconds(10), &sink_, &stream_);
    });
    protocol::Frame request = peer_->Next();
    ASSERT_EQ(request.kind, protocol::FrameKind::kRequest);
    std::string response;
    protocol::AppendFrame(&response, protocol::FrameKind::kResponse, request.stream,
                          protocol::EncodeOkResponse({{"pid", 7}, {"stdin_window", 0}}));
    peer_->Write(response);
    ASSERT_TRUE(call.get().ok());
    ASSERT_EQ(stream_, request.stream);
  }

  // Waits until the sink holds `bytes` of output on `fd` (or the channel failed).
  size_t Queued(int fd, size_t bytes) {
    std::unique_lock<std::mutex> lock(sink_->mu);
    auto total = [&] {
      size_t n = 0;
      for (const auto& c : sink_->chunks[fd]) n += c.size();
      return n;
    };
    WaitSink(sink_.get(), lock, Clock::now() + seconds(10),
             [&] { return total() >= bytes || !sink_->failure.ok(); });
    return total();
  }

  // Waits for the connection to end and returns why.
  Status ClosedWhy() {
    auto f = closed_.get_future();
    if (f.wait_for(seconds(10)) != std::future_status::ready) {
      return Status::Internal("the channel stayed open");
    }
    return f.get();
  }

  std::unique_ptr<FakePeer> peer_;
  std::promise<Status> closed_;
  std::shared_ptr<AgentChannel> channel_;
  std::shared_ptr<StreamSink> sink_;
  uint32_t stream_ = 0;
};

TEST_F(ChannelCreditTest, OutputWithinTheWindowIsDelivered) {
  StartExec(1000);
  peer_->Data(stream_, 1, 600);
  peer_->Data(stream_, 1, 400);
  peer_->Data(stream_, 2, 1000);  // Each fd has its own window.
  EXPECT_EQ(Queued(1, 1000), 1000u);
  EXPECT_EQ(Queued(2, 1000), 1000u);
  EXPECT_TRUE(channel_->health().ok());
}

TEST_F(ChannelCreditTest, OverrunClosesTheChannelWithAClearError) {
  StartExec(1000);
  peer_->Data(stream_, 1, 1000);
  EXPECT_EQ(Queued(1, 1000), 1000u);
  peer_->Data(stream_, 1, 1);
  Status why = ClosedWhy();
  EXPECT_TRUE(why.IsProtocolError()) << why.ToString();
  EXPECT_NE(why.message().find("more output than it was granted credit"), std::string::npos)
      << why.ToString();
  EXPECT_TRUE(channel_->health().IsProtocolError());
  std::lock_guard<std::mutex> lock(sink_->mu);
  EXPECT_TRUE(sink_->failure.IsProtocolError());
  // Nothing beyond the window was queued.
  size_t queued = 0;
  for (const auto& c : sink_->chunks[1]) queued += c.size();
  EXPECT_EQ(queued, 1000u);
}

TEST_F(ChannelCreditTest, ReturnedCreditAllowsMore) {
  StartExec(1000);
  peer_->Data(stream_, 1, 1000);
  EXPECT_EQ(Queued(1, 1000), 1000u);
  ASSERT_TRUE(channel_->SendCredit(stream_, sink_.get(), 1, 500).ok());
  protocol::Frame credit = peer_->Next();
  ASSERT_EQ(credit.kind, protocol::FrameKind::kCredit);
  auto parsed = protocol::ParseCredit(credit.payload);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->bytes, 500u);
  peer_->Data(stream_, 1, 500);
  EXPECT_EQ(Queued(1, 1500), 1500u);
  EXPECT_TRUE(channel_->health().ok());
  peer_->Data(stream_, 1, 1);
  EXPECT_TRUE(ClosedWhy().IsProtocolError());
}

TEST_F(ChannelCreditTest, AStreamWithoutAWindowAcceptsNoOutput) {
  // put_file and the small requests grant no output credit at all.
  auto call = std::async(std::launch::async, [&] {
    return channel_->Call("put_file", {{"path", "/x"}}, Clock::now() + seconds(10), &sink_,
                          &stream_);
  });
  protocol::Frame request = peer_->Next();
  std::string response;
  protocol::AppendFrame(&response, protocol::FrameKind::kResponse, request.stream,
                        protocol::EncodeOkResponse({{"stdin_window", 10}}));
  peer_->Write(response);
  ASSERT_TRUE(call.get().ok());
  peer_->Data(stream_, 2, 1);
  EXPECT_TRUE(ClosedWhy().IsProtocolError());
}

TEST_F(ChannelCreditTest, FramesThatCostNothingAreNotKept) {
  StartExec(100);
  // Unknown streams, empty chunks and repeated ends neither queue nor fail.
  for (int i = 0; i < 1000; ++i) {
    peer_->Data(stream_ + 100, 1, 1000);
    peer_->Data(stream_, 1, 0);
    std::string close;
    protocol::AppendClose(&close, stream_, 2);
    peer_->Write(close);
  }
  peer_->Data(stream_, 1, 100);
  EXPECT_EQ(Queued(1, 100), 100u);
  EXPECT_TRUE(channel_->health().ok());
  std::lock_guard<std::mutex> lock(sink_->mu);
  EXPECT_EQ(sink_->chunks[1].size(), 1u);
  EXPECT_LE(sink_->order.size(), 2u);
}

TEST_F(ChannelCreditTest, StdinCreditFromThePeerSaturates) {
  StartExec(100);
  std::string credits;
  for (int i = 0; i < 1000; ++i) protocol::AppendCredit(&credits, stream_, 0, 0xffffffffu);
  peer_->Write(credits);
  peer_->Data(stream_, 1, 100);  // Arrives after the credits.
  EXPECT_EQ(Queued(1, 100), 100u);
  std::lock_guard<std::mutex> lock(sink_->mu);
  EXPECT_GT(sink_->stdin_credit, 0);
  EXPECT_LE(sink_->stdin_credit, int64_t{1} << 40);
}

// A main command whose view stopped reading (`boxlite run` whose stdout went away) and
// whose guest then overran its credit: the view learns that the stream broke as soon as
// the pump has moved the queued output (a whole window of it) into the backlog. The pump
// no longer waits for the view per queued chunk (which took a minute for a window).
TEST_F(ChannelCreditTest, AMainViewThatStoppedReadingLearnsOfAnOverrunWithoutWaitingOutTheQueue) {
  constexpr size_t kFrame = 16 * 1024;
  const int64_t window = protocol::kDefaultWindow;
  StartExec(window);
  for (int64_t sent = 0; sent < window; sent += kFrame) peer_->Data(stream_, 1, kFrame);
  ASSERT_EQ(Queued(1, static_cast<size_t>(window)), static_cast<size_t>(window));
  peer_->Data(stream_, 1, 1);
  ASSERT_TRUE(ClosedWhy().IsProtocolError());
  auto exec = std::make_shared<ExecImpl>(channel_, stream_, sink_, 7, 0, false, nullptr);
  MainSession session(exec, nullptr);
  std::shared_ptr<Exec> view = session.Attach();  // Never reads.
  auto waited = std::async(std::launch::async, [view] { return view->Wait(std::nullopt); });
  // Generous: the old pump took 200 ms for each of the window's 256 chunks.
  ASSERT_EQ(waited.wait_for(seconds(20)), std::future_status::ready)
      << "the view was not told the stream broke";
  Result<ExitStatus> status = waited.get();
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(status.error().IsProtocolError()) << status.error().ToString();
}

// A caller waiting with WaitOn reads the socket itself. Whatever it reads for others is
// routed to them as the reader thread would: here a second call's response arrives while
// the first caller waits for its exec's exit, and both get theirs.
TEST_F(ChannelCreditTest, ABorrowingWaiterRoutesOtherStreamsFrames) {
  StartExec(1000);
  auto exit_waiter = std::async(std::launch::async, [&] {
    std::unique_lock<std::mutex> lock(sink_->mu);
    return channel_->WaitOn(sink_.get(), lock, Clock::now() + seconds(10),
                            [&] { return sink_->exit.has_value() || !sink_->failure.ok(); });
  });
  auto ping = std::async(std::launch::async, [&] {
    return channel_->Call("ping", protocol::Json::object(), Clock::now() + seconds(10));
  });
  protocol::Frame request = peer_->Next();
  ASSERT_EQ(request.kind, protocol::FrameKind::kRequest);
  std::string frames;
  protocol::AppendData(&frames, stream_, 1, "out");
  protocol::AppendFrame(&frames, protocol::FrameKind::kResponse, request.stream,
                        protocol::EncodeOkResponse());
  peer_->Write(frames);
  ASSERT_TRUE(ping.get().ok());
  EXPECT_EQ(Queued(1, 3), 3u);
  protocol::ExitEvent ev;
  ev.exit_code = 3;
  std::string exit;
  protocol::AppendFrame(&exit, protocol::FrameKind::kEvent, stream_,
                        protocol::Dump(protocol::ToJson(ev)));
  peer_->Write(exit);
  ASSERT_TRUE(exit_waiter.get());
  std::lock_guard<std::mutex> lock(sink_->mu);
  EXPECT_EQ(sink_->exit->exit_code, 3);
}

// A waiter whose deadline passes gives the socket back: later frames still arrive
// through the reader thread.
TEST_F(ChannelCreditTest, AWaiterPastItsDeadlineGivesTheSocketBack) {
  StartExec(1000);
  {
    std::unique_lock<std::mutex> lock(sink_->mu);
    EXPECT_FALSE(channel_->WaitOn(sink_.get(), lock, Clock::now() + std::chrono::milliseconds(50),
                                  [&] { return sink_->exit.has_value(); }));
  }
  peer_->Data(stream_, 2, 10);
  EXPECT_EQ(Queued(2, 10), 10u);
  EXPECT_TRUE(channel_->health().ok());
}

// A hostile peer that overruns its credit, or a VM that goes away, while a caller reads
// the socket: the channel still ends once, with the reason, on the reader thread
// (on_close sets a promise, which would throw if it ran twice), and the waiter learns it.
TEST_F(ChannelCreditTest, AnOverrunSeenByABorrowingWaiterClosesTheChannelOnce) {
  StartExec(100);
  auto waiter = std::async(std::launch::async, [&] {
    std::unique_lock<std::mutex> lock(sink_->mu);
    channel_->WaitOn(sink_.get(), lock, Clock::now() + seconds(10),
                     [&] { return sink_->exit.has_value() || !sink_->failure.ok(); });
    return sink_->failure;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // Usually borrowed by now.
  peer_->Data(stream_, 1, 101);
  ASSERT_EQ(waiter.wait_for(seconds(10)), std::future_status::ready);
  Status failure = waiter.get();
  EXPECT_TRUE(failure.IsProtocolError()) << failure.ToString();
  Status why = ClosedWhy();
  EXPECT_TRUE(why.IsProtocolError()) << why.ToString();
  EXPECT_NE(why.message().find("more output than it was granted credit"), std::string::npos);
}

TEST_F(ChannelCreditTest, APeerThatGoesAwayWhileACallerReadsFailsTheCall) {
  auto call = std::async(std::launch::async, [&] {
    return channel_->Call("ping", protocol::Json::object(), Clock::now() + seconds(10));
  });
  (void)peer_->Next();
  peer_.reset();  // The VM is gone.
  auto reply = call.get();
  ASSERT_FALSE(reply.ok());
  EXPECT_TRUE(reply.error().IsUnavailable()) << reply.error().ToString();
  EXPECT_TRUE(ClosedWhy().IsUnavailable());
}

// The agent sends a bulk writer's output in frames of up to protocol::kMaxDataChunk, more
// than the main command's backlog holds. A view that had read everything before such a
// frame sleeps until told of new bytes: the pump must tell it before it waits for the view
// to take them (it once waited first, and `boxlite run` of a command printing 10 MiB
// stalled after its first chunk).
TEST_F(ChannelCreditTest, AMainViewGetsAFrameLargerThanTheBacklog) {
  StartExec(protocol::kDefaultWindow);
  auto exec = std::make_shared<ExecImpl>(channel_, stream_, sink_, 7, 0, false, nullptr);
  MainSession session(exec, nullptr);
  std::shared_ptr<Exec> view = session.Attach();
  constexpr size_t kFirst = 64 * 1024;
  peer_->Data(stream_, 1, kFirst);
  auto first = view->Read(1, std::nullopt);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), kFirst);
  const size_t big = protocol::kMaxDataChunk;
  static_assert(protocol::kMaxDataChunk > MainSession::kBacklogBytes);
  auto reader = std::async(std::launch::async, [view, big] {
    size_t got = 0;
    while (got < big) {
      auto chunk = view->Read(1, std::nullopt);
      if (!chunk.ok() || chunk->empty()) break;
      got += chunk->size();
    }
    return got;
  });
  // Let the reader go to sleep on the caught-up view first, where the stall was.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  peer_->Data(stream_, 1, big);
  bool done = reader.wait_for(seconds(30)) == std::future_status::ready;
  if (!done) channel_->Close(Status::Unavailable("the test gave up"));  // Frees the reader.
  ASSERT_TRUE(done) << "the view never got the frame larger than the backlog";
  EXPECT_EQ(reader.get(), big);
}

}  // namespace
}  // namespace boxlite::runtime
