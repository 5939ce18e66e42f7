// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/net/secret_http.h"

#include <strings.h>

#include <algorithm>
#include <climits>

#include "src/base/strings.h"

namespace boxlite::net {
namespace {

bool NameIs(const std::string& name, const char* want) {
  return ::strcasecmp(name.c_str(), want) == 0;
}

// The earliest placeholder in `text` at or after `from`: its position and index, or
// npos.
std::pair<size_t, size_t> FindFirst(std::string_view text, size_t from,
                                    const std::vector<Replacement>& r) {
  size_t best = std::string_view::npos, which = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    size_t at = text.find(r[i].placeholder, from);
    if (at < best) best = at, which = i;
  }
  return {best, which};
}

}  // namespace

StreamReplacer::StreamReplacer(const std::vector<Replacement>* replacements)
    : replacements_(replacements) {
  for (const auto& r : *replacements_) keep_ = std::max(keep_, r.placeholder.size() - 1);
}

void StreamReplacer::Push(std::string_view in, std::string* out) {
  pending_.append(in);
  size_t pos = 0;
  for (;;) {
    auto [at, which] = FindFirst(pending_, pos, *replacements_);
    if (at == std::string::npos) break;
    out->append(pending_, pos, at - pos);
    out->append((*replacements_)[which].value);
    pos = at + (*replacements_)[which].placeholder.size();
  }
  // A placeholder that starts before `safe` would have ended inside pending_ and been
  // found; later bytes may begin one.
  size_t safe = pending_.size() > keep_ ? pending_.size() - keep_ : 0;
  if (safe > pos) {
    out->append(pending_, pos, safe - pos);
    pos = safe;
  }
  pending_.erase(0, pos);
}

void StreamReplacer::Finish(std::string* out) {
  out->append(pending_);
  pending_.clear();
}

std::string StreamReplacer::ReplaceAll(std::string_view text, const std::vector<Replacement>& r) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    auto [at, which] = FindFirst(text, pos, r);
    if (at == std::string_view::npos) break;
    out.append(text.substr(pos, at - pos));
    out.append(r[which].value);
    pos = at + r[which].placeholder.size();
  }
  out.append(text.substr(pos));
  return out;
}

RequestRewriter::RequestRewriter(std::vector<Replacement> replacements)
    : replacements_(std::move(replacements)), body_(&replacements_) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_message_begin = &OnMessageBegin;
  settings_.on_url = &OnUrl;
  settings_.on_header_field = &OnHeaderField;
  settings_.on_header_value = &OnHeaderValue;
  settings_.on_headers_complete = &OnHeadersComplete;
  settings_.on_body = &OnBody;
  settings_.on_message_complete = &OnMessageComplete;
}

size_t RequestRewriter::buffered() const {
  return head_bytes_ + held_body_.size() + head_out_.size();
}

Status RequestRewriter::Feed(std::string_view in, std::string* out) {
  if (upgraded_) {
    out->append(in);
    return Status::OK();
  }
  out_ = out;
  size_t n = http_parser_execute(&parser_, &settings_, in.data(), in.size());
  out_ = nullptr;
  if (parser_.upgrade) {
    upgraded_ = true;
    out->append(in.substr(n));
    return Status::OK();
  }
  auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err != HPE_OK) {
    if (!error_.empty()) return Status::InvalidArgument(error_);
    return Status::ProtocolError(std::string("malformed HTTP request from the guest (") +
                                 http_errno_description(err) + ")");
  }
  return Status::OK();
}

int RequestRewriter::OnMessageBegin(http_parser* p) {
  auto* self = static_cast<RequestRewriter*>(p->data);
  self->url_.clear();
  self->headers_.clear();
  self->head_bytes_ = 0;
  self->in_value_ = false;
  self->head_done_ = false;
  self->mode_ = BodyMode::kNone;
  self->held_body_.clear();
  self->head_out_.clear();
  return 0;
}

int RequestRewriter::OnUrl(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<RequestRewriter*>(p->data);
  self->head_bytes_ += n;
  if (self->head_bytes_ > kMaxHead) {
    self->error_ = "request head over 64 KiB";
    return 1;
  }
  self->url_.append(at, n);
  return 0;
}

int RequestRewriter::OnHeaderField(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<RequestRewriter*>(p->data);
  if (self->head_done_) return 0;  // A trailer: dropped.
  self->head_bytes_ += n;
  if (self->head_bytes_ > kMaxHead) {
    self->error_ = "request head over 64 KiB";
    return 1;
  }
  if (self->in_value_ || self->headers_.empty()) self->headers_.emplace_back();
  self->in_value_ = false;
  self->headers_.back().first.append(at, n);
  return 0;
}

int RequestRewriter::OnHeaderValue(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<RequestRewriter*>(p->data);
  if (self->head_done_) return 0;
  self->head_bytes_ += n;
  if (self->head_bytes_ > kMaxHead) {
    self->error_ = "request head over 64 KiB";
    return 1;
  }
  self->in_value_ = true;
  if (self->headers_.empty()) self->headers_.emplace_back();
  self->headers_.back().second.append(at, n);
  return 0;
}

int RequestRewriter::OnHeadersComplete(http_parser* p) {
  return static_cast<RequestRewriter*>(p->data)->HeadersComplete();
}

int RequestRewriter::HeadersComplete() {
  head_done_ = true;
  bool chunked = (parser_.flags & F_CHUNKED) != 0;
  bool has_length = !chunked && parser_.content_length != ULLONG_MAX && parser_.content_length > 0;
  bool expect_continue = false;
  for (const auto& [name, value] : headers_) {
    if (NameIs(name, "Expect") && base::ToLower(value).find("100-continue") != std::string::npos) {
      expect_continue = true;
    }
  }
  bool http11 = parser_.http_major > 1 || (parser_.http_major == 1 && parser_.http_minor >= 1);
  bool drop_length = false, add_chunked = false;
  if (chunked) {
    mode_ = BodyMode::kChunked;
  } else if (has_length) {
    drop_length = true;
    if (parser_.content_length <= kMaxBufferedBody && !expect_continue) {
      mode_ = BodyMode::kBuffer;
    } else if (http11) {
      mode_ = BodyMode::kChunked;
      add_chunked = true;
    } else {
      error_ = "HTTP/1.0 request body over 1 MiB with a secret placeholder host: use HTTP/1.1";
      return 1;
    }
  }
  std::string head = http_method_str(static_cast<http_method>(parser_.method));
  head += ' ';
  head += StreamReplacer::ReplaceAll(url_, replacements_);
  head += base::StrFormat(" HTTP/%u.%u\r\n", parser_.http_major, parser_.http_minor);
  for (const auto& [name, value] : headers_) {
    if (drop_length && NameIs(name, "Content-Length")) continue;
    head += name;
    head += ": ";
    head += StreamReplacer::ReplaceAll(value, replacements_);
    head += "\r\n";
  }
  if (add_chunked) head += "Transfer-Encoding: chunked\r\n";
  url_.clear();
  headers_.clear();
  head_bytes_ = 0;
  if (mode_ == BodyMode::kBuffer) {
    head_out_ = std::move(head);
  } else {
    out_->append(head);
    out_->append("\r\n");
  }
  return 0;
}

void RequestRewriter::WriteChunk(std::string_view data) {
  if (data.empty()) return;
  out_->append(base::StrFormat("%zx\r\n", data.size()));
  out_->append(data);
  out_->append("\r\n");
}

int RequestRewriter::OnBody(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<RequestRewriter*>(p->data);
  std::string_view data(at, n);
  if (self->mode_ == BodyMode::kBuffer) {
    self->held_body_.append(data);
  } else if (self->mode_ == BodyMode::kChunked) {
    std::string piece;
    self->body_.Push(data, &piece);
    self->WriteChunk(piece);
  }
  return 0;
}

int RequestRewriter::OnMessageComplete(http_parser* p) {
  auto* self = static_cast<RequestRewriter*>(p->data);
  if (self->mode_ == BodyMode::kBuffer) {
    std::string body = StreamReplacer::ReplaceAll(self->held_body_, self->replacements_);
    self->out_->append(self->head_out_);
    self->out_->append(base::StrFormat("Content-Length: %zu\r\n\r\n", body.size()));
    self->out_->append(body);
    self->head_out_.clear();
    self->held_body_.clear();
  } else if (self->mode_ == BodyMode::kChunked) {
    std::string rest;
    self->body_.Finish(&rest);
    self->WriteChunk(rest);
    self->out_->append("0\r\n\r\n");
  }
  self->mode_ = BodyMode::kNone;
  return 0;
}

}  // namespace boxlite::net
