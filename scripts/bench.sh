#!/usr/bin/env bash
# Every benchmark, as JSON lines on stdout (the convention of docs/benchmarks.md); progress on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BOXLITE_BUILD_DIR:-$here/build}
py=${PYTHON:-python3}
export BOXLITE_BUILD_DIR=$build
"$build/bench/boxlite_bench" --runs "${BENCH_RUNS:-10}" --rtt-runs "${BENCH_RTT_RUNS:-300}"
"$py" "$here/bench/pull_bench.py"
# The egress allow-list's figure needs root (network namespaces).
if [ "$(id -u)" = 0 ]; then
  "$py" "$here/bench/egress_bench.py"
  # Secrets: through the Python SDK (python3 -m pip install ./python, or PYTHONPATH).
  "$py" "$here/bench/secret_bench.py"
fi
if [ -f "$here/bench/computer_bench.py" ]; then
  "$py" "$here/bench/computer_bench.py"
fi
# The containerd shim (docs/kubernetes.md): shim_run_s; needs root and containerd.
if [ "$(id -u)" = 0 ] && command -v containerd >/dev/null && [ -x "$build/shim/containerd-shim-boxlite-v2" ]; then
  "$py" "$here/bench/shim_bench.py"
fi
# CodeBox (docs/codebox.md): code_run_rtt_ms.
"$py" "$here/bench/codebox_bench.py"
# BrowserBox (docs/browserbox.md): browser_ready_s.
"$py" "$here/bench/browser_bench.py"
# The remote runtime (docs/remote.md): remote_exec_rtt_ms, remote_create_s.
"$py" "$here/bench/remote_bench.py"
