#!/usr/bin/env bash
# Boots a box from the built-in image, runs a command in it and prints its output and how
# long create, boot and the exec took.
set -euo pipefail
echo "+ boxlite run --rm --timings boxlite/base sh -c 'echo Hello from \$(uname -sr) on \$(hostname); cat /etc/os-release 2>/dev/null | head -1; nproc; free -m | head -2'" >&2
boxlite run --rm --timings boxlite/base sh -c \
  'echo "Hello from $(uname -sr) on $(hostname)"; echo "$(nproc) vCPU, $(free -m | awk "/Mem:/{print \$2}") MiB RAM"; busybox | head -1'
