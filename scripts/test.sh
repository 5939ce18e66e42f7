#!/usr/bin/env bash
# The whole test suite: C++ unit tests (ctest), a short run of every libFuzzer target
# (ASan + UBSan, from its seed corpus), then the integration tests that boot real VMs
# from images served by a loopback registry, then the Python SDK's tests.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BOXLITE_BUILD_DIR:-$here/build}
py=${PYTHON:-python3}
start=$(date +%s)
echo "== unit tests" >&2
ctest --test-dir "$build" -L unit --output-on-failure -j2 >&2
echo "== fuzz smoke (libFuzzer targets, ${BOXLITE_FUZZ_SECONDS:-10}s each)" >&2
"$here/scripts/fuzz-smoke.sh" "${BOXLITE_FUZZ_SECONDS:-10}"
echo "== C++ integration tests (registries, network helper)" >&2
ctest --test-dir "$build" -L integration --output-on-failure >&2
echo "== integration tests" >&2
export BOXLITE_BUILD_DIR=$build
"$py" -m pytest -q -p no:cacheprovider --timeout=900 "$here/tests/integration" "$@"
if [ -d "$here/python/tests" ]; then
  echo "== Python SDK tests" >&2
  "$py" -m pytest -q -p no:cacheprovider --timeout=900 "$here/python/tests"
fi
echo "== all tests passed in $(( $(date +%s) - start ))s" >&2
