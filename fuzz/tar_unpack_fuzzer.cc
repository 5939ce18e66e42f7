// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// libFuzzer target for the tar -> ext4 writer: the input is one layer blob (gzip, zstd or
// plain tar, detected like a real pull) applied to a fresh 16 MiB image, followed by
// Finish(). Errors are expected; crashes, sanitizer reports and hangs are the bugs. Seeds:
// any small .tar, .tar.gz or .tar.zst files.
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "src/image/ext4_builder.h"

namespace {

const std::string& ImagePath() {
  static const std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string p = std::string(tmp != nullptr ? tmp : "/tmp") + "/tar_unpack_fuzzer." +
                    std::to_string(::getpid()) + ".img";
    std::atexit([] { ::unlink(ImagePath().c_str()); });
    return p;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  boxlite::image::Ext4BuildOptions options;
  options.size_bytes = 16u << 20;
  options.max_layer_stream_bytes = 64u << 20;  // Keep each run short.
  options.sync_on_finish = false;
  auto builder = boxlite::image::Ext4Builder::Create(ImagePath(), options);
  if (!builder.ok()) return 0;
  int fd = memfd_create("layer", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::lseek(fd, 0, SEEK_SET);
  auto result = (*builder)->ApplyLayer(fd);
  ::close(fd);
  if (result.ok()) {
    boxlite::Status finished = (*builder)->Finish();
    (void)finished;
  }
  return 0;
}
