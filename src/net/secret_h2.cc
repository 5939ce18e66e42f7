// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/secret_h2.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace boxlite::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

// One direction of a stream: bytes received from `from` waiting to be sent to `to`.
struct H2Bridge::Half {
  nghttp2_session* from = nullptr;
  int32_t from_id = 0;
  nghttp2_session* to = nullptr;
  int32_t to_id = 0;
  std::string buf;
  size_t unconsumed = 0;  // Received, window not yet reopened (waits for buf to drain).
  bool eof = false;
  bool deferred = false;
  bool has_trailers = false;
  Headers trailers;
  std::unique_ptr<StreamReplacer> replacer;  // Requests only.
};

struct H2Bridge::Stream {
  int32_t guest_id = 0;
  int32_t up_id = 0;
  Half req;   // Guest -> server.
  Half resp;  // Server -> guest.
  Headers headers;  // The header block being received (either side).
  size_t header_bytes = 0;
  bool final_response = false;
  bool guest_closed = false;
  bool up_closed = false;
};

namespace {

constexpr size_t kMaxHeaderBytes = 64 << 10;

std::vector<nghttp2_nv> ToNv(const Headers& h) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(h.size());
  for (const auto& [name, value] : h) {
    nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                  reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                  value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nv;
}

void Consume(H2Bridge::Half& h) {
  if (h.unconsumed > 0 && h.buf.size() < H2Bridge::kMaxBuffered && h.from_id > 0) {
    nghttp2_session_consume(h.from, h.from_id, h.unconsumed);
    h.unconsumed = 0;
  }
}

void Resume(H2Bridge::Half& h) {
  if (h.deferred && h.to_id > 0) {
    h.deferred = false;
    nghttp2_session_resume_data(h.to, h.to_id);
  }
}

ssize_t ReadHalf(nghttp2_session* session, int32_t stream_id, uint8_t* out, size_t length,
                 uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* h = static_cast<H2Bridge::Half*>(source->ptr);
  size_t n = std::min(length, h->buf.size());
  std::memcpy(out, h->buf.data(), n);
  h->buf.erase(0, n);
  Consume(*h);
  if (h->buf.empty() && h->eof) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (h->has_trailers) {
      auto nv = ToNv(h->trailers);
      if (nghttp2_submit_trailer(session, stream_id, nv.data(), nv.size()) == 0) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
    }
    return static_cast<ssize_t>(n);
  }
  if (n == 0) {
    h->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

}  // namespace

struct H2Callbacks {
  static H2Bridge::Stream* Get(nghttp2_session* s, int32_t id) {
    return static_cast<H2Bridge::Stream*>(nghttp2_session_get_stream_user_data(s, id));
  }

  static int OnBeginHeaders(nghttp2_session* s, const nghttp2_frame* f, void* user) {
    auto* b = static_cast<H2Bridge*>(user);
    if (f->hd.type != NGHTTP2_HEADERS) return 0;
    H2Bridge::Stream* st = Get(s, f->hd.stream_id);
    if (s == b->guest_ && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
      auto owned = std::make_unique<H2Bridge::Stream>();
      st = owned.get();
      st->guest_id = f->hd.stream_id;
      st->req.from = b->guest_;
      st->req.from_id = f->hd.stream_id;
      st->req.to = b->upstream_;
      st->req.replacer = std::make_unique<StreamReplacer>(&b->replacements_);
      st->resp.from = b->upstream_;
      st->resp.to = b->guest_;
      st->resp.to_id = f->hd.stream_id;
      b->streams_[f->hd.stream_id] = std::move(owned);
      nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    }
    if (st != nullptr) {
      st->headers.clear();
      st->header_bytes = 0;
    }
    return 0;
  }

  static int OnHeader(nghttp2_session* s, const nghttp2_frame* f, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void*) {
    H2Bridge::Stream* st = Get(s, f->hd.stream_id);
    if (st == nullptr) return 0;
    st->header_bytes += namelen + valuelen + 32;
    if (st->header_bytes > kMaxHeaderBytes) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->headers.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                             std::string(reinterpret_cast<const char*>(value), valuelen));
    return 0;
  }

  // The guest's request head: opened as a stream to the server, placeholders replaced.
  static void SubmitRequest(H2Bridge* b, H2Bridge::Stream* st, bool end_stream) {
    Headers out;
    for (auto& [name, value] : st->headers) {
      if (name == "content-length") continue;
      out.emplace_back(name, StreamReplacer::ReplaceAll(value, b->replacements_));
    }
    auto nv = ToNv(out);
    st->req.eof = end_stream;
    nghttp2_data_provider prd{};
    prd.source.ptr = &st->req;
    prd.read_callback = &ReadHalf;
    int32_t id = nghttp2_submit_request(b->upstream_, nullptr, nv.data(), nv.size(),
                                        end_stream ? nullptr : &prd, st);
    if (id < 0) {
      nghttp2_submit_rst_stream(b->guest_, NGHTTP2_FLAG_NONE, st->guest_id,
                                NGHTTP2_REFUSED_STREAM);
      st->up_closed = true;
      return;
    }
    st->up_id = id;
    st->req.to_id = id;
    st->resp.from_id = id;
  }

  // The server's response head (informational, final) or trailers, to the guest.
  static void SubmitResponse(H2Bridge* b, H2Bridge::Stream* st, bool end_stream) {
    auto nv = ToNv(st->headers);
    if (st->final_response) {  // Trailers.
      st->resp.trailers = st->headers;
      st->resp.has_trailers = true;
      st->resp.eof = true;
      Resume(st->resp);
      return;
    }
    bool informational = false;
    for (const auto& [name, value] : st->headers) {
      if (name == ":status") informational = !value.empty() && value[0] == '1';
    }
    if (informational) {
      nghttp2_submit_headers(b->guest_, NGHTTP2_FLAG_NONE, st->guest_id, nullptr, nv.data(),
                             nv.size(), nullptr);
      return;
    }
    st->final_response = true;
    st->resp.eof = end_stream;
    nghttp2_data_provider prd{};
    prd.source.ptr = &st->resp;
    prd.read_callback = &ReadHalf;
    nghttp2_submit_response(b->guest_, st->guest_id, nv.data(), nv.size(),
                            end_stream ? nullptr : &prd);
  }

  static int OnFrameRecv(nghttp2_session* s, const nghttp2_frame* f, void* user) {
    auto* b = static_cast<H2Bridge*>(user);
    H2Bridge::Stream* st = f->hd.stream_id ? Get(s, f->hd.stream_id) : nullptr;
    if (st == nullptr) return 0;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    bool guest = s == b->guest_;
    H2Bridge::Half& half = guest ? st->req : st->resp;
    if (f->hd.type == NGHTTP2_HEADERS) {
      if (!guest) {
        SubmitResponse(b, st, end);
      } else if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        SubmitRequest(b, st, end);
      } else {  // The guest's trailers.
        Headers t;
        for (auto& [name, value] : st->headers) {
          t.emplace_back(name, StreamReplacer::ReplaceAll(value, b->replacements_));
        }
        half.replacer->Finish(&half.buf);
        half.trailers = std::move(t);
        half.has_trailers = true;
        half.eof = true;
        Resume(half);
      }
    } else if (f->hd.type == NGHTTP2_DATA && end) {
      if (half.replacer) half.replacer->Finish(&half.buf);
      half.eof = true;
      Resume(half);
    }
    return 0;
  }

  static int OnData(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    auto* b = static_cast<H2Bridge*>(user);
    H2Bridge::Stream* st = Get(s, id);
    if (st == nullptr) {
      nghttp2_session_consume(s, id, len);
      return 0;
    }
    H2Bridge::Half& half = s == b->guest_ ? st->req : st->resp;
    std::string_view in(reinterpret_cast<const char*>(data), len);
    if (half.replacer) {
      half.replacer->Push(in, &half.buf);
    } else {
      half.buf.append(in);
    }
    half.unconsumed += len;
    Consume(half);
    Resume(half);
    return 0;
  }

  static int OnStreamClose(nghttp2_session* s, int32_t id, uint32_t error, void* user) {
    auto* b = static_cast<H2Bridge*>(user);
    H2Bridge::Stream* st = Get(s, id);
    if (st == nullptr) return 0;
    if (s == b->guest_) {
      st->guest_closed = true;
      if (error != NGHTTP2_NO_ERROR && !st->up_closed && st->up_id > 0) {
        nghttp2_submit_rst_stream(b->upstream_, NGHTTP2_FLAG_NONE, st->up_id, error);
      }
      if (st->up_id <= 0) st->up_closed = true;
    } else {
      st->up_closed = true;
      st->req.to_id = 0;  // Nothing more goes to that stream.
      if (error != NGHTTP2_NO_ERROR && !st->guest_closed) {
        nghttp2_submit_rst_stream(b->guest_, NGHTTP2_FLAG_NONE, st->guest_id, error);
      }
    }
    if (st->guest_closed && st->up_closed) {
      nghttp2_session_set_stream_user_data(b->guest_, st->guest_id, nullptr);
      b->streams_.erase(st->guest_id);
    }
    return 0;
  }
};

H2Bridge::H2Bridge(std::vector<Replacement> replacements)
    : replacements_(std::move(replacements)) {}

H2Bridge::~H2Bridge() {
  nghttp2_session_del(guest_);
  nghttp2_session_del(upstream_);
}

Status H2Bridge::Start(std::string* to_guest, std::string* to_upstream) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_option* opt = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    return Status::Internal("out of memory for HTTP/2");
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &H2Callbacks::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &H2Callbacks::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &H2Callbacks::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2Callbacks::OnData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2Callbacks::OnStreamClose);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  int rs = nghttp2_session_server_new2(&guest_, cbs, this, opt);
  int rc = nghttp2_session_client_new2(&upstream_, cbs, this, opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  if (rs != 0 || rc != 0) return Status::Internal("out of memory for HTTP/2");
  const nghttp2_settings_entry to_guest_settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
  const nghttp2_settings_entry to_up_settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  if (nghttp2_submit_settings(guest_, NGHTTP2_FLAG_NONE, to_guest_settings, 1) != 0 ||
      nghttp2_submit_settings(upstream_, NGHTTP2_FLAG_NONE, to_up_settings, 1) != 0) {
    return Status::Internal("out of memory for HTTP/2");
  }
  return Flush(to_guest, to_upstream);
}

Status H2Bridge::Flush(std::string* to_guest, std::string* to_upstream) {
  for (bool more = true; more;) {
    more = false;
    for (auto [session, out] : {std::pair{guest_, to_guest}, std::pair{upstream_, to_upstream}}) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session, &data);
      if (n < 0) return Status::Internal(std::string("HTTP/2: ") + nghttp2_strerror(static_cast<int>(n)));
      if (n > 0) {
        out->append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
        more = true;
      }
    }
  }
  return Status::OK();
}

Status H2Bridge::FromGuest(std::string_view in, std::string* to_guest, std::string* to_upstream) {
  ssize_t n = nghttp2_session_mem_recv(guest_, reinterpret_cast<const uint8_t*>(in.data()),
                                       in.size());
  Status flushed = Flush(to_guest, to_upstream);
  if (n < 0) {
    return Status::InvalidArgument(std::string("HTTP/2 from the guest: ") +
                                   nghttp2_strerror(static_cast<int>(n)));
  }
  return flushed;
}

Status H2Bridge::FromUpstream(std::string_view in, std::string* to_guest,
                              std::string* to_upstream) {
  ssize_t n = nghttp2_session_mem_recv(upstream_, reinterpret_cast<const uint8_t*>(in.data()),
                                       in.size());
  Status flushed = Flush(to_guest, to_upstream);
  if (n < 0) {
    return Status::InvalidArgument(std::string("HTTP/2 from the server: ") +
                                   nghttp2_strerror(static_cast<int>(n)));
  }
  return flushed;
}

bool H2Bridge::done() const {
  auto over = [](nghttp2_session* s) {
    return !nghttp2_session_want_read(s) && !nghttp2_session_want_write(s);
  };
  return over(guest_) || over(upstream_);
}

}  // namespace boxlite::net
