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
# Two lines of sessions share the two cores: a VM under TCG keeps one core busy, and each
# session mostly boots one box at a time. Beside the main integration session run the
# Python SDK's session and then a second integration session over the CLI, security,
# server and containerd tests, so that both lines take about as long. The suites count only their
# own homes' processes and files as leaks (tests/integration/harness/leaks.py), so they
# do not see each other. The second line's output is printed after the first's.
side_dirs=(cli security serve shim)
side_log=$(mktemp)
trap 'rm -f "$images_json" "$side_log"' EXIT
(
  rc=0
  if [ -d "$here/python/tests" ]; then
    echo "== Python SDK tests"
    "$py" -m pytest -q -p no:cacheprovider --timeout=900 --durations=10 "$here/python/tests" \
      || rc=1
  fi
  echo "== integration tests: ${side_dirs[*]}"
  "$py" -m pytest -q -p no:cacheprovider --timeout=900 --durations=10 \
    "${side_dirs[@]/#/$here/tests/integration/}" || rc=1
  exit $rc
) > "$side_log" 2>&1 &
side_pid=$!
# One session for the rest of BoxLite's tests and the harness's self-tests (the test
# tools: registries, image builders), which share its registries; the self-tests' results
# are reported on a line of their own (tests/integration/conftest.py).
integration_rc=0
"$py" -m pytest -q -p no:cacheprovider --timeout=900 --durations=25 \
  "${side_dirs[@]/#/--ignore=$here/tests/integration/}" "$here/tests/integration" "$@" \
  || integration_rc=$?
side_rc=0
wait "$side_pid" || side_rc=$?
cat "$side_log"
if [ "$integration_rc" -ne 0 ] || [ "$side_rc" -ne 0 ]; then
  echo "== tests failed: integration exit $integration_rc, SDK/CLI/server/shim exit $side_rc" >&2
  exit 1
fi
echo "== all tests passed in $(( $(date +%s) - start ))s" >&2
