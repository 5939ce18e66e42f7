// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// What the agent server's source files share (agent/server.cc, server_exec.cc,
// server_files.cc, server_metrics.cc): limits, epoll tags and the orphaned main
// command's stream id. Not part of the agent's API.
#pragma once

#include <cstddef>
#include <cstdint>

#include "src/protocol/frame.h"

namespace boxlite::agent {

constexpr uint64_t kTagPort = 1;
constexpr uint64_t kTagSignal = 2;
constexpr uint64_t kTagTimer = 3;
constexpr uint64_t kTagOutput = 4;
constexpr uint64_t kTagStdin = 5;
constexpr uint64_t kTagCloseTimer = 6;

// How long the end of an exec's output may wait for the process's exit (Output::close_held).
constexpr long kCloseHoldNs = 10 * 1000 * 1000;
// How long a port's report that its host left waits to be believed (OnPortHangup).
constexpr long kReconnectTickNs = 20 * 1000 * 1000;
// A chunk of exec output at least this large marks a bulk writer: its pipe rests for
// kBulkPauseMs before the next read, so the agent takes the next chunk whole instead of
// preempting the writer after every write (the agent outweighs the box's processes). Under
// TCG a writer fills ~0.7 MB of its pipe in 1 ms: 2 ms lets the next chunk be a whole
// frame (kBulkFrameMax), and what it leaves beyond a frame goes without a rest (PumpOutput).
constexpr size_t kBulkChunk = 64 * 1024;
constexpr int kBulkPauseMs = 2;
// An exec's stdout and stderr pipes start at the kernel's default (64 KiB: nothing to set
// up for the many short commands) and grow to this at their first bulk chunk, so that the
// writer has room for what it writes while its pipe rests (kBulkPauseMs) instead of
// blocking on a full pipe with the guest's one CPU idle. 1024 pages: a splice of this
// pipe straight to the port (SendSplice) hands QEMU at most the 1024 descriptors it takes
// in one buffer.
constexpr int kExecPipeSize = 4 << 20;
// What a process without CAP_SYS_RESOURCE may set (the default pipe-max-size).
constexpr int kExecPipeSizeUnprivileged = 1 << 20;
// The most exec output one data frame carries when it is spliced from the exec's pipe:
// the protocol's largest (docs/protocol.md), so a bulk writer costs the agent a loop
// round per MiB instead of per 256 KiB.
constexpr size_t kBulkFrameMax = protocol::kMaxDataChunk;

constexpr int64_t kStdinWindow = 1 << 20;
constexpr size_t kReadChunk = 256 * 1024;
// Files are pumped only while less than this is queued for their port.
constexpr size_t kFileQueueLimit = 1 << 20;
// A connection's staging pipe (Server::Conn::staging): its size, and how many bytes of
// frames it is given at once. The pipe counts pages, not bytes: the slack lets a frame
// whose data sits in many partly filled pages still fit (SendStaged copies what does not).
// A splice to the port hands QEMU one descriptor per page, and QEMU takes at most 1024
// in one buffer: 512 pages stay well below. The limit takes one frame of the largest
// size (kBulkFrameMax) whole.
constexpr int kStagingPipeSize = 2 << 20;
constexpr size_t kStagingLimit = protocol::kLengthSize + protocol::kMaxFrameLength;
// The most one write(2) to a virtio-serial port takes (drivers/char/virtio_console.c).
constexpr size_t kPortWriteMax = 32 * 1024;
// A list_dir page also ends once its entries take this much JSON: names and link targets
// are up to 6 times longer escaped, and a response must fit in one frame.
constexpr size_t kListDirPageBytes = 256 * 1024;
// An exit event's error message is cut to this (it may name a path the host sent).
constexpr size_t kMaxEventError = 4096;
// The newest output of an orphaned main command kept per stream for the next attacher,
// as BoxLite 0.9 keeps for a late attach.
constexpr size_t kMainBacklog = 256 * 1024;
constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr char kAgentVersion[] = "0.1.0";

inline uint64_t Tag(uint64_t type, int conn, uint32_t stream = 0, int which = 0) {
  return (type << 48) | (static_cast<uint64_t>(conn & 0xff) << 40) |
         (static_cast<uint64_t>(stream) << 8) | static_cast<uint64_t>(which & 0xff);
}

// The orphaned main command moves to a stream id no host uses, so a host that connects
// to this port later can reuse every id; its output is read as it comes and dropped.
constexpr uint32_t kOrphanStream = 0xffffffffu;

}  // namespace boxlite::agent
