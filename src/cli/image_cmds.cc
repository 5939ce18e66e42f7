// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Image commands: pull (a progress bar per layer on a terminal, plain lines otherwise),
// images, rmi, import.
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "src/base/strings.h"
#include "src/cli/command.h"

namespace boxlite::cli {
namespace {

std::string ShortDigest(const std::string& digest) {
  size_t colon = digest.find(':');
  std::string hex = colon == std::string::npos ? digest : digest.substr(colon + 1);
  return hex.substr(0, 12);
}

// Draws pull progress on stderr: redrawn bars on a terminal, one line per event otherwise.
class PullPrinter {
 public:
  explicit PullPrinter(bool tty) : tty_(tty) {}

  void OnEvent(const PullEvent& ev) {
    std::lock_guard<std::mutex> lock(mu_);
    switch (ev.kind) {
      case PullEvent::Kind::kResolved:
        std::fprintf(stderr, "Pulling %s\n", ev.reference.c_str());
        break;
      case PullEvent::Kind::kLayerProgress: {
        bool is_new = layers_.count(ev.digest) == 0;
        layers_[ev.digest] = {ev.done_bytes, ev.total_bytes};
        if (is_new) order_.push_back(ev.digest);
        if (tty_) {
          Redraw();
        } else if (is_new) {
          std::fprintf(stderr, "%s: downloading %s\n", ShortDigest(ev.digest).c_str(),
                       base::HumanBytes(ev.total_bytes).c_str());
        }
        break;
      }
      case PullEvent::Kind::kLayerDone:
        if (tty_) {
          auto& l = layers_[ev.digest];
          l.first = l.second;
          Redraw();
        } else {
          std::fprintf(stderr, "%s: done\n", ShortDigest(ev.digest).c_str());
        }
        break;
      case PullEvent::Kind::kLayerCached:
        std::fprintf(stderr, "%s: already present\n", ShortDigest(ev.digest).c_str());
        break;
      case PullEvent::Kind::kUnpacking:
        std::fprintf(stderr, "Building the root file system\n");
        break;
      case PullEvent::Kind::kDone:
        break;
    }
  }

 private:
  void Redraw() {
    if (drawn_ > 0) std::fprintf(stderr, "\033[%zuA", drawn_);
    for (const auto& digest : order_) {
      auto [done, total] = layers_[digest];
      int width = 30;
      int filled = total ? static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * width) : 0;
      if (filled > width) filled = width;
      std::fprintf(stderr, "\r\033[K%s [%s%s] %s / %s\n", ShortDigest(digest).c_str(),
                   std::string(static_cast<size_t>(filled), '=').c_str(),
                   std::string(static_cast<size_t>(width - filled), ' ').c_str(),
                   base::HumanBytes(done).c_str(), base::HumanBytes(total).c_str());
    }
    drawn_ = order_.size();
  }

  bool tty_;
  std::mutex mu_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> layers_;
  std::vector<std::string> order_;
  size_t drawn_ = 0;
};

std::string Age(int64_t created) {
  if (created <= 0) return "unknown";
  int64_t secs = static_cast<int64_t>(std::time(nullptr)) - created;
  if (secs < 3600) return base::StrFormat("%lld minutes ago", static_cast<long long>(secs / 60));
  if (secs < 86400 * 2) return base::StrFormat("%lld hours ago", static_cast<long long>(secs / 3600));
  return base::StrFormat("%lld days ago", static_cast<long long>(secs / 86400));
}

}  // namespace

Outcome PullCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) {
    return Usage("pull takes exactly one IMAGE");
  }
  auto rt = ctx.runtime();
  if (!rt.ok()) return Outcome{0, rt.error()};
  PullPrinter printer(::isatty(STDERR_FILENO) && !flags.Has("quiet"));
  bool quiet = flags.Has("quiet");
  auto info = (*rt)->PullImage(flags.positional[0], [&](const PullEvent& ev) {
    if (!quiet) printer.OnEvent(ev);
  });
  if (!info.ok()) return Outcome{0, info.error()};
  std::printf("%s\n", info->reference.c_str());
  if (!quiet) std::fprintf(stderr, "Digest: %s\n", info->manifest_digest.c_str());
  return Outcome{};
}

Outcome ImagesCommand(Context& ctx, const ParsedFlags& flags) {
  auto format = FormatFlag(flags, {"table", "json", "yaml"}, "table");
  if (!format.ok()) return Usage(format.error().message());
  auto rt = ctx.runtime();
  if (!rt.ok()) return Fail(rt.error());
  auto images = (*rt)->ListImages();
  if (!images.ok()) return Fail(images.error());
  if (flags.Has("quiet")) {
    for (const auto& img : *images) std::printf("%s\n", ShortDigest(img.id).c_str());
    return Outcome{};
  }
  if (*format != "table") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& img : *images) {
      out.push_back({{"reference", img.reference}, {"id", img.id}, {"digest", img.manifest_digest},
                     {"size", img.size_bytes}, {"created", img.created_unix}});
    }
    if (*format == "json") {
      PrintJson(out);
    } else {
      PrintFormatted(out, *format);
    }
    return Outcome{};
  }
  std::printf("%-50s %-14s %-16s %s\n", "REFERENCE", "IMAGE ID", "CREATED", "SIZE");
  for (const auto& img : *images) {
    std::printf("%-50s %-14s %-16s %s\n", img.reference.c_str(), ShortDigest(img.id).c_str(),
                Age(img.created_unix).c_str(), base::HumanBytes(img.size_bytes).c_str());
  }
  return Outcome{};
}

Outcome RmiCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.empty()) return Usage("rmi needs an IMAGE");
  auto rt = ctx.runtime();
  if (!rt.ok()) return Outcome{0, rt.error()};
  for (const auto& ref : flags.positional) {
    Status s = (*rt)->RemoveImage(ref);
    if (!s.ok()) return Outcome{0, s};
    std::printf("Untagged: %s\n", ref.c_str());
  }
  return Outcome{};
}

Outcome ImportCommand(Context& ctx, const ParsedFlags& flags) {
  if (flags.positional.size() != 1) {
    return Usage("import takes exactly one FILE or DIR");
  }
  auto rt = ctx.runtime();
  if (!rt.ok()) return Outcome{0, rt.error()};
  auto images = (*rt)->ImportImage(flags.positional[0], flags.Get("tag").value_or(""));
  if (!images.ok()) return Outcome{0, images.error()};
  for (const auto& img : *images) std::printf("Imported %s\n", img.reference.c_str());
  return Outcome{};
}

}  // namespace boxlite::cli
