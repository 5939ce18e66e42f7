// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Drives the guest agent's request handling in-process, as a hostile or broken host could:
// a Server with the machine off (agent/server.h: no configuration applied, no process
// started) serves a fresh temporary directory over a socketpair, and the input is a
// sequence of frames for it. Nothing may crash, throw out of the server, hang, or make it
// send a frame the host could not decode; every request gets a well-formed response.
//
// Input: records of [kind:u8][len:u16 little-endian][payload]. kind % 4: 0 a request
// (payload is the JSON, on a new stream), 1 stdin data on the last request's stream, 2 its
// stdin close, 3 a credit of the payload's first four bytes for its stdout.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "agent/server.h"
#include "src/protocol/frame.h"
#include "src/protocol/messages.h"

namespace {

using namespace boxlite;

// The served directory, made once and removed at exit (a plain array: it must outlive
// the handler that removes it).
char g_root[] = "/tmp/boxlite-agent-fuzz-XXXXXX";

const char* Root() {
  static const bool made = [] {
    if (::mkdtemp(g_root) == nullptr) std::abort();
    std::atexit([] { std::filesystem::remove_all(g_root); });
    return true;
  }();
  (void)made;
  return g_root;
}

// Reads what the server sent; traps on anything a host could not decode.
void Drain(int fd, protocol::FrameDecoder* decoder, std::vector<uint32_t>* answered) {
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) decoder->Feed(std::string_view(buf, n));
  while (true) {
    auto frame = decoder->Next();
    if (!frame.ok()) __builtin_trap();  // The agent framed something badly.
    if (!frame->has_value()) return;
    const protocol::Frame& f = **frame;
    if (f.kind == protocol::FrameKind::kResponse) {
      auto r = protocol::DecodeResponse(f.payload);
      // An error the agent meant is fine; a response that is not one is not.
      if (!r.ok() && (r.error().IsProtocolError() || r.error().IsInvalidArgument())) {
        auto j = protocol::ParseObject(f.payload);
        bool ok_field = false;
        if (!j.ok() || !protocol::GetBool(*j, "ok", &ok_field, true).ok() || ok_field) {
          __builtin_trap();
        }
      }
      if (r.ok() && r->contains("entries")) {
        for (const auto& entry : (*r)["entries"]) {
          protocol::FileInfo info;
          if (!protocol::FromJson(entry, &info).ok()) __builtin_trap();
        }
      }
      answered->push_back(f.stream);
    } else if (f.kind == protocol::FrameKind::kEvent) {
      if (!protocol::ParseObject(f.payload).ok()) __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string root = Root();
  std::filesystem::remove_all(root);
  std::filesystem::create_directory(root);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  base::UniqueFd host(sv[0]);
  std::vector<base::UniqueFd> ports;
  ports.emplace_back(sv[1]);
  agent::ServerOptions options;
  options.machine = false;
  agent::Server server(std::move(ports), root, options);
  if (!server.Open().ok()) std::abort();

  protocol::FrameDecoder decoder;
  std::vector<uint32_t> requests;
  std::vector<uint32_t> answered;
  uint32_t stream = 1;
  size_t off = 0;
  while (off + 3 <= size && !server.shutting_down()) {
    uint8_t kind = data[off] % 4;
    size_t len = data[off + 1] | (static_cast<size_t>(data[off + 2]) << 8);
    off += 3;
    len = std::min(len, size - off);
    std::string_view payload(reinterpret_cast<const char*>(data + off), len);
    off += len;
    std::string frame;
    switch (kind) {
      case 0:
        stream += 2;
        requests.push_back(stream);
        protocol::AppendFrame(&frame, protocol::FrameKind::kRequest, stream, payload);
        break;
      case 1:
        protocol::AppendData(&frame, stream, protocol::kFdStdin, payload);
        break;
      case 2:
        protocol::AppendClose(&frame, stream, protocol::kFdStdin);
        break;
      default: {
        uint32_t credit = 0;
        for (size_t i = 0; i < 4 && i < len; ++i) credit |= static_cast<uint32_t>(data[off - len + i]) << (8 * i);
        protocol::AppendCredit(&frame, stream, 1, credit);
        break;
      }
    }
    size_t sent = 0;
    for (int round = 0; round < 1000 && sent < frame.size(); ++round) {
      ssize_t n = ::write(host.get(), frame.data() + sent, frame.size() - sent);
      if (n > 0) sent += static_cast<size_t>(n);
      if (!server.Step(0).ok()) std::abort();
      Drain(host.get(), &decoder, &answered);
    }
  }
  // Let it finish: every request answered (a shutdown ends the serving early).
  for (int round = 0; round < 200 && answered.size() < requests.size() && !server.shutting_down();
       ++round) {
    if (!server.Step(0).ok()) std::abort();
    Drain(host.get(), &decoder, &answered);
  }
  if (!server.shutting_down() && answered.size() < requests.size()) __builtin_trap();
  return 0;
}
