// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

#include "src/image/layer_stream.h"

#include <archive_entry.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/errno_status.h"

namespace boxlite::image {

namespace {

constexpr size_t kReadBlockBytes = 1u << 20;
constexpr size_t kQueueBufferBytes = 1u << 20;
constexpr size_t kQueueBuffers = 4;
constexpr int kPollMillis = 200;
constexpr int kZstdMaxWindowLog = 27;  // 128 MiB, libzstd's default limit.

std::string ArchiveMessage(struct archive* a) {
  const char* msg = archive_error_string(a);
  return msg != nullptr ? msg : "unknown libarchive error";
}

}  // namespace

// Turns compressed input into uncompressed output, piece by piece.
class LayerStream::Decoder {
 public:
  virtual ~Decoder() = default;
  // Decodes from in[0, in_len) into out[0, cap) and reports how much of each was used.
  // `at_eof`: nothing follows `in`. Sets *done once the stream is complete.
  virtual Status Decode(const uint8_t* in, size_t in_len, bool at_eof, uint8_t* out,
                        size_t cap, size_t* consumed, size_t* produced, bool* done) = 0;
};

namespace {

class PlainDecoder final : public LayerStream::Decoder {
 public:
  Status Decode(const uint8_t* in, size_t in_len, bool at_eof, uint8_t* out, size_t cap,
                size_t* consumed, size_t* produced, bool* done) override {
    size_t n = std::min(in_len, cap);
    std::memcpy(out, in, n);
    *consumed = *produced = n;
    *done = at_eof && n == in_len;
    return Status::OK();
  }
};

class GzipDecoder final : public LayerStream::Decoder {
 public:
  GzipDecoder() {
    std::memset(&zs_, 0, sizeof(zs_));
    ok_ = inflateInit2(&zs_, 15 + 16) == Z_OK;  // 16: gzip wrapper only.
  }
  ~GzipDecoder() override {
    if (ok_) inflateEnd(&zs_);
  }
  GzipDecoder(const GzipDecoder&) = delete;
  GzipDecoder& operator=(const GzipDecoder&) = delete;

  Status Decode(const uint8_t* in, size_t in_len, bool at_eof, uint8_t* out, size_t cap,
                size_t* consumed, size_t* produced, bool* done) override {
    *consumed = *produced = 0;
    if (!ok_) return Status::ResourceExhausted("gzip: cannot set up zlib");
    if (state_ == State::kZeros) {
      // Padding after the last member (some tools pad to a block size) is ignored.
      for (size_t i = 0; i < in_len; ++i) {
        if (in[i] != 0) return Status::Corruption("gzip: trailing garbage after the last member");
      }
      *consumed = in_len;
      *done = at_eof;
      return Status::OK();
    }
    if (state_ == State::kBetween) {
      if (in_len == 0) {
        *done = at_eof;
        return Status::OK();
      }
      if (in[0] == 0) {
        state_ = State::kZeros;
        return Status::OK();
      }
      // Another member: zlib checks its header like the first one's.
      inflateReset(&zs_);
      state_ = State::kMember;
    }
    size_t given = std::min<size_t>(in_len, UINT_MAX);
    zs_.next_in = const_cast<Bytef*>(in);
    zs_.avail_in = static_cast<uInt>(given);
    zs_.next_out = out;
    zs_.avail_out = static_cast<uInt>(std::min<size_t>(cap, UINT_MAX));
    uInt avail_out = zs_.avail_out;
    int r = inflate(&zs_, Z_NO_FLUSH);
    *consumed = given - zs_.avail_in;
    *produced = avail_out - zs_.avail_out;
    switch (r) {
      case Z_STREAM_END:  // zlib verified the member's CRC-32 and length.
        state_ = State::kBetween;
        return Status::OK();
      case Z_OK:
        return Status::OK();
      case Z_BUF_ERROR:
        if (at_eof && *consumed == in_len && *produced == 0) {
          return Status::Corruption("gzip: the stream ends in the middle of a member");
        }
        return Status::OK();
      case Z_MEM_ERROR:
        return Status::ResourceExhausted("gzip: out of memory");
      default:
        return Status::Corruption("gzip", zs_.msg != nullptr ? zs_.msg : "invalid data");
    }
  }

 private:
  enum class State { kMember, kBetween, kZeros };
  z_stream zs_;
  bool ok_ = false;
  State state_ = State::kMember;
};

class ZstdDecoder final : public LayerStream::Decoder {
 public:
  ZstdDecoder() : dctx_(ZSTD_createDCtx()) {
    if (dctx_ != nullptr) ZSTD_DCtx_setParameter(dctx_, ZSTD_d_windowLogMax, kZstdMaxWindowLog);
  }
  ~ZstdDecoder() override { ZSTD_freeDCtx(dctx_); }
  ZstdDecoder(const ZstdDecoder&) = delete;
  ZstdDecoder& operator=(const ZstdDecoder&) = delete;

  Status Decode(const uint8_t* in, size_t in_len, bool at_eof, uint8_t* out, size_t cap,
                size_t* consumed, size_t* produced, bool* done) override {
    *consumed = *produced = 0;
    if (dctx_ == nullptr) return Status::ResourceExhausted("zstd: cannot set up libzstd");
    if (in_len == 0 && at_eof && last_ == 0) {
      // The last call ended a frame and flushed it; calling again would start a new one.
      *done = true;
      return Status::OK();
    }
    ZSTD_inBuffer ib{in, in_len, 0};
    ZSTD_outBuffer ob{out, cap, 0};
    size_t r = ZSTD_decompressStream(dctx_, &ob, &ib);
    if (ZSTD_isError(r)) return Status::Corruption("zstd", ZSTD_getErrorName(r));
    *consumed = ib.pos;
    *produced = ob.pos;
    last_ = r;
    if (at_eof && ib.pos == in_len && ob.pos < cap) {
      // All input used and nothing held back: complete only at a frame boundary.
      if (r == 0) {
        *done = true;
      } else if (ob.pos == 0) {
        return Status::Corruption("zstd: the stream ends in the middle of a frame");
      }
    }
    return Status::OK();
  }

 private:
  ZSTD_DCtx* dctx_;
  size_t last_ = 1;  // libzstd's last answer; 0 right after a complete, flushed frame.
};

}  // namespace

Result<std::unique_ptr<LayerStream>> LayerStream::Open(int fd, uint64_t max_uncompressed_bytes) {
  std::unique_ptr<LayerStream> s(new LayerStream());
  s->fd_ = fd;
  s->max_bytes_ = max_uncompressed_bytes;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return sys::ErrnoStatus(errno, "layer fd");
  s->fd_pollable_ = !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
  s->input_.reset(new uint8_t[kReadBlockBytes]);
  // The magic numbers decide the decoder.
  while (s->input_len_ < 4 && !s->input_eof_) {
    BOXLITE_RETURN_IF_ERROR(s->FillInput(&s->input_eof_));
  }
  const uint8_t* p = s->input_.get();
  uint32_t magic = 0;
  if (s->input_len_ >= 4) std::memcpy(&magic, p, 4);
  if (s->input_len_ >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
    s->compression_ = Compression::kGzip;
    s->decoder_ = std::make_unique<GzipDecoder>();
  } else if (magic == 0xFD2FB528u || (magic & 0xFFFFFFF0u) == 0x184D2A50u) {
    s->compression_ = Compression::kZstd;
    s->decoder_ = std::make_unique<ZstdDecoder>();
  } else {
    s->decoder_ = std::make_unique<PlainDecoder>();
  }
  for (size_t i = 0; i < kQueueBuffers; ++i) {
    s->spare_.push_back(Buffer{std::unique_ptr<uint8_t[]>(new uint8_t[kQueueBufferBytes]), 0});
  }
  s->producer_ = std::thread(&LayerStream::Produce, s.get());

  s->inner_ = archive_read_new();
  if (s->inner_ == nullptr) return Status::ResourceExhausted("allocate tar reader");
  if (archive_read_support_format_tar(s->inner_) != ARCHIVE_OK ||
      archive_read_support_format_empty(s->inner_) != ARCHIVE_OK) {
    return Status::Internal("set up tar reader", ArchiveMessage(s->inner_));
  }
  if (archive_read_open(s->inner_, s.get(), nullptr, &LayerStream::ReadUncompressed,
                        nullptr) != ARCHIVE_OK) {
    return s->TarError("open the layer's tar stream");
  }
  return s;
}

LayerStream::~LayerStream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cancelled_.store(true);
  cv_.notify_all();
  if (producer_.joinable()) producer_.join();
  if (inner_ != nullptr) archive_read_free(inner_);
}

Status LayerStream::FillInput(bool* at_eof) {
  if (input_pos_ > 0) {
    std::memmove(input_.get(), input_.get() + input_pos_, input_len_ - input_pos_);
    input_len_ -= input_pos_;
    input_pos_ = 0;
  }
  for (;;) {
    if (cancelled_.load()) return Status::Cancelled("layer read cancelled");
    if (fd_pollable_) {
      // A pipe or socket may stall forever: wake up now and then to notice teardown.
      struct pollfd pfd {fd_, POLLIN, 0};
      int r = ::poll(&pfd, 1, kPollMillis);
      if (r == 0 || (r < 0 && errno == EINTR)) continue;
    }
    ssize_t n = ::read(fd_, input_.get() + input_len_, kReadBlockBytes - input_len_);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return sys::ErrnoStatus(errno, "read layer");
    if (n == 0) *at_eof = true;
    input_len_ += static_cast<size_t>(n);
    return Status::OK();
  }
}

Status LayerStream::ProduceOne(Buffer* out, bool* at_end) {
  out->size = 0;
  int idle = 0;
  while (out->size < kQueueBufferBytes) {
    if (input_pos_ == input_len_ && !input_eof_) {
      BOXLITE_RETURN_IF_ERROR(FillInput(&input_eof_));
    }
    size_t consumed = 0;
    size_t produced = 0;
    bool done = false;
    BOXLITE_RETURN_IF_ERROR(decoder_->Decode(
        input_.get() + input_pos_, input_len_ - input_pos_, input_eof_,
        out->data.get() + out->size, kQueueBufferBytes - out->size, &consumed, &produced,
        &done));
    input_pos_ += consumed;
    out->size += produced;
    if (done) {
      *at_end = true;
      break;
    }
    if (consumed == 0 && produced == 0 && (input_eof_ || input_pos_ < input_len_)) {
      // Decoders move forward whenever they have input and room; a few state changes
      // (between gzip members) are the only calls without progress.
      if (++idle > 4) return Status::Internal("decompressor made no progress");
    } else {
      idle = 0;
    }
  }
  sha_.Update(out->data.get(), out->size);
  bytes_ += out->size;
  if (bytes_ > max_bytes_) {
    return Status::ResourceExhausted(
        "layer stream",
        base::StrFormat("more than %s uncompressed (a decompression bomb, or an image larger "
                        "than planned)",
                        base::HumanBytes(max_bytes_).c_str()));
  }
  return Status::OK();
}

void LayerStream::Produce() {
  for (;;) {
    Buffer buf;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !spare_.empty(); });
      if (stop_) return;
      buf = std::move(spare_.back());
      spare_.pop_back();
    }
    bool at_end = false;
    Status status = ProduceOne(&buf, &at_end);
    bool finished = at_end || !status.ok();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (buf.size > 0) {
        ready_.push_back(std::move(buf));
      } else {
        spare_.push_back(std::move(buf));
      }
      if (finished) {
        producer_status_ = status;
        producer_done_ = true;
      }
    }
    cv_.notify_all();
    if (finished) return;
  }
}

la_ssize_t LayerStream::ReadUncompressed(struct archive* inner, void* self,
                                         const void** buffer) {
  auto* s = static_cast<LayerStream*>(self);
  la_ssize_t n = s->NextBlock(buffer);
  if (n < 0) archive_set_error(inner, EIO, "%s", s->stream_error_.message().c_str());
  return n;
}

la_ssize_t LayerStream::NextBlock(const void** buffer) {
  std::unique_lock<std::mutex> lock(mu_);
  if (current_.data) {
    // libarchive is done with the previous block once it asks for the next one.
    current_.size = 0;
    spare_.push_back(std::move(current_));
    current_ = Buffer{};
    cv_.notify_all();
  }
  cv_.wait(lock, [&] { return !ready_.empty() || producer_done_; });
  if (!ready_.empty()) {
    current_ = std::move(ready_.front());
    ready_.pop_front();
    *buffer = current_.data.get();
    return static_cast<la_ssize_t>(current_.size);
  }
  *buffer = nullptr;
  if (!producer_status_.ok()) {
    stream_error_ = producer_status_;
    return -1;
  }
  return 0;
}

Status LayerStream::TarError(std::string_view context) const {
  if (!stream_error_.ok()) return stream_error_.Wrap(context);
  return Status::Corruption(context, ArchiveMessage(inner_));
}

Status LayerStream::Drain() {
  for (;;) {
    const void* block = nullptr;
    la_ssize_t n = NextBlock(&block);
    if (n < 0) return stream_error_.Wrap("layer stream after the tar end marker");
    if (n == 0) break;
  }
  if (producer_.joinable()) producer_.join();
  diff_id_ = "sha256:" + sha_.FinishHex();
  return Status::OK();
}

}  // namespace boxlite::image
