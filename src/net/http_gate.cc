// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/http_gate.h"

#include <cstdint>
#include <span>

namespace boxlite::net {
namespace {

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

HttpRequestGate::HttpRequestGate(AllowFn allowed) : allowed_(std::move(allowed)) {
  http_parser_settings_init(&settings_);
  settings_.on_headers_complete = &HttpRequestGate::OnHeadersComplete;
  settings_.on_message_complete = &HttpRequestGate::OnMessageComplete;
}

int HttpRequestGate::OnHeadersComplete(http_parser* p) {
  static_cast<HttpRequestGate*>(p->data)->head_done_ = true;
  return 0;
}

int HttpRequestGate::OnMessageComplete(http_parser* p) {
  static_cast<HttpRequestGate*>(p->data)->message_done_ = true;
  // Stop right after this request: the next head is read by Process, not by the parser.
  http_parser_pause(p, 1);
  return 0;
}

bool HttpRequestGate::Feed(std::string_view in, std::string* out) {
  if (failed_) return false;
  if (state_ == State::kOpaque && buf_.empty()) {
    out->append(in);
    return true;
  }
  buf_.append(in);
  size_t at = 0;
  bool ok = Process(&at, out);
  buf_.erase(0, at);
  if (!ok) {
    failed_ = true;
    buf_.clear();
  }
  return ok;
}

void HttpRequestGate::EndRequest() {
  state_ = parser_.upgrade ? State::kOpaque : State::kHead;
}

bool HttpRequestGate::StartRequest(std::string_view head, std::string* out) {
  Sniffed s = SniffHttpHost(Bytes(head));
  if (s.state != SniffState::kDone || !allowed_(s.name)) return false;
  // A fresh parser per request: it reads exactly this head and then this body.
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  head_done_ = false;
  message_done_ = false;
  size_t n = http_parser_execute(&parser_, &settings_, head.data(), head.size());
  http_errno err = HTTP_PARSER_ERRNO(&parser_);
  if ((err != HPE_OK && err != HPE_PAUSED) || n != head.size() || !head_done_) return false;
  ++requests_;
  out->append(head);
  if (message_done_ || parser_.upgrade) {
    EndRequest();
  } else {
    state_ = State::kBody;
  }
  return true;
}

bool HttpRequestGate::Process(size_t* at, std::string* out) {
  while (*at < buf_.size()) {
    std::string_view rest = std::string_view(buf_).substr(*at);
    switch (state_) {
      case State::kOpaque:
        out->append(rest);
        *at = buf_.size();
        return true;
      case State::kBody: {
        size_t n = http_parser_execute(&parser_, &settings_, rest.data(), rest.size());
        http_errno err = HTTP_PARSER_ERRNO(&parser_);
        if (err != HPE_OK && err != HPE_PAUSED) return false;
        out->append(rest.substr(0, n));
        *at += n;
        if (message_done_) {
          EndRequest();
        } else if (n != rest.size()) {
          return false;  // The parser stopped without finishing the request.
        }
        break;
      }
      case State::kHead: {
        // Empty lines before a request line are skipped by servers (RFC 9112 section 2.2).
        if (rest.starts_with("\r\n")) {
          out->append("\r\n");
          *at += 2;
          break;
        }
        if (rest == "\r") return true;
        // Only the bytes not scanned before are searched (a head may come a byte at a time).
        size_t end = rest.find("\r\n\r\n", scanned_ >= 3 ? scanned_ - 3 : 0);
        if (end == std::string_view::npos || end + 4 > kMaxHead) {
          // Incomplete: fail early on what cannot become a request head in bounds: a
          // bare LF (SniffHttpHost refuses it), a request line that does not start like
          // one, or too many bytes.
          for (size_t lf = rest.find('\n', scanned_); lf != std::string_view::npos;
               lf = rest.find('\n', lf + 1)) {
            if (lf == 0 || rest[lf - 1] != '\r') return false;
          }
          scanned_ = rest.size();
          return rest.size() < kMaxHead &&
                 SniffHttpHost(Bytes(rest.substr(0, 64))).state == SniffState::kNeedMore;
        }
        scanned_ = 0;
        if (!StartRequest(rest.substr(0, end + 4), out)) return false;
        *at += end + 4;
        break;
      }
    }
  }
  return true;
}

}  // namespace boxlite::net
