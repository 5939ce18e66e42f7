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
  http_parser_settings_init(&rsettings_);
  rsettings_.on_headers_complete = &HttpRequestGate::OnResponseHeaders;
  http_parser_init(&rparser_, HTTP_RESPONSE);
  rparser_.data = this;
}

// A response head: which request it answers, and what that means for the connection.
int HttpRequestGate::OnResponseHeaders(http_parser* p) {
  auto* self = static_cast<HttpRequestGate*>(p->data);
  unsigned status = p->status_code;
  if (status >= 100 && status < 200 && status != 101) return 0;  // Informational.
  if (self->sent_.empty()) return 0;  // Unsolicited (a 408 before closing, say).
  Sent req = self->sent_.front();
  self->sent_.pop_front();
  bool opened = req.upgrade && (req.connect ? status / 100 == 2 : status == 101);
  if (req.upgrade && self->state_ == State::kAwaitUpgrade && self->sent_.empty()) {
    // The request the guest waits on: opened, or back under the check.
    self->state_ = opened ? State::kOpaque : State::kHead;
    self->scanned_ = 0;
  }
  if (opened) {
    self->responses_done_ = true;
    http_parser_pause(p, 1);
    return 1;
  }
  return req.head ? 1 : 0;  // 1: no body follows.
}

bool HttpRequestGate::FromServer(std::string_view in) {
  if (failed_) return false;
  if (responses_done_ || responses_broken_ || in.empty()) return true;
  http_parser_execute(&rparser_, &rsettings_, in.data(), in.size());
  http_errno err = HTTP_PARSER_ERRNO(&rparser_);
  if (responses_done_) return true;
  if (err != HPE_OK) {
    // Requests are still checked; an upgrade can no longer be confirmed.
    responses_broken_ = true;
    if (state_ == State::kAwaitUpgrade) {
      failed_ = true;
      return false;
    }
  }
  return true;
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
  state_ = parser_.upgrade ? State::kAwaitUpgrade : State::kHead;
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
  bool upgrade = parser_.upgrade != 0;
  // An upgrade nobody can confirm, or more requests in flight than the bound: refused.
  if ((upgrade && responses_broken_) || sent_.size() >= kMaxPipelined) return false;
  sent_.push_back({parser_.method == HTTP_HEAD, upgrade, parser_.method == HTTP_CONNECT});
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
      case State::kAwaitUpgrade:
        return rest.size() <= kMaxHead;  // Held until the server answers.

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
