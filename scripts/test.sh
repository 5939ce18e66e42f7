#!/usr/bin/env bash
# The whole test suite: the docs check (citations and the one-hop index), C++ unit tests
# (ctest), a short run of every libFuzzer target (ASan + UBSan, from its seed corpus), then
# the integration tests that boot real VMs from images served by a loopback registry with
# the harness's self-tests (our test tools, reported apart), then the Python SDK's tests.
# docs/contributing.md §5 shows how to run one test of each kind.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BOXLITE_BUILD_DIR:-$here/build}
py=${PYTHON:-python3}
start=$(date +%s)
echo "== docs: citations and the one-hop index" >&2
"$here/scripts/check-doc-refs.sh" >&2
echo "== unit tests" >&2
ctest --test-dir "$build" -L unit --output-on-failure -j2 >&2
echo "== fuzz smoke (libFuzzer targets, ${BOXLITE_FUZZ_SECONDS:-6}s each)" >&2
"$here/scripts/fuzz-smoke.sh" "${BOXLITE_FUZZ_SECONDS:-6}"
echo "== C++ integration tests (registries, network helper)" >&2
ctest --test-dir "$build" -L integration --output-on-failure -j2 >&2
echo "== integration tests (BoxLite)" >&2
export BOXLITE_BUILD_DIR=$build
# The test images are built (or found in the cache) once here; the pytest sessions
# below read the result instead of each recomputing the images' keys (tests/integration/
# harness/catalog.py).
images_json=$(mktemp)
"$here/scripts/test-images/build.sh" --json > "$images_json"
export BOXLITE_TEST_IMAGES_JSON=$images_json
# The Python SDK's session runs beside the integration session: a VM under TCG keeps one
# core busy, and each session mostly boots one box at a time, so two sessions use both
# cores. The suites count only their own homes' processes and files as leaks
# (tests/integration/harness/leaks.py), so they do not see each other. Its output is
# printed after the integration session's.
sdk_log=$(mktemp)
trap 'rm -f "$images_json" "$sdk_log"' EXIT
sdk_pid=
if [ -d "$here/python/tests" ]; then
  "$py" -m pytest -q -p no:cacheprovider --timeout=900 --durations=10 "$here/python/tests" \
    > "$sdk_log" 2>&1 &
  sdk_pid=$!
fi
# One session for BoxLite's tests and the harness's self-tests (the test tools:
# registries, image builders), which share its registries; the self-tests' results are
# reported on a line of their own (tests/integration/conftest.py).
integration_rc=0
"$py" -m pytest -q -p no:cacheprovider --timeout=900 --durations=25 \
  "$here/tests/integration" "$@" || integration_rc=$?
sdk_rc=0
if [ -n "$sdk_pid" ]; then
  wait "$sdk_pid" || sdk_rc=$?
  echo "== Python SDK tests" >&2
  cat "$sdk_log"
fi
if [ "$integration_rc" -ne 0 ] || [ "$sdk_rc" -ne 0 ]; then
  echo "== tests failed: integration exit $integration_rc, Python SDK exit $sdk_rc" >&2
  exit 1
fi
echo "== all tests passed in $(( $(date +%s) - start ))s" >&2
