#!/usr/bin/env bash
# Boots a box from the built-in image, runs a command in it and prints its output and how
# long create, boot and the exec took.
set -euo pipefail
cmd='echo "Hello from $(uname -sr) on $(hostname)"; echo "$(nproc) vCPU, $(free -m | awk "/Mem:/{print \$2}") MiB RAM"; busybox | head -1'
echo "+ boxlite run --rm --timings boxlite/base sh -c '$cmd'" >&2
boxlite run --rm --timings boxlite/base sh -c "$cmd"
