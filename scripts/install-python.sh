#!/usr/bin/env bash
# Usage: install-python.sh PYTHON BUILD_DIR
# Installs the BoxLite Python SDK for PYTHON when its sources changed since the last
# install (the stamp holds a hash of python/ and the C++ sources it compiles).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
py=$1
build=$2
[ -f "$here/python/pyproject.toml" ] || exit 0
stamp=$build/python-install.stamp
key=$( (cd "$here" && find python src include CMakeLists.txt -type f \
          -not -path 'python/build/*' -not -name '*.pyc' -print0 | LC_ALL=C sort -z | \
          xargs -0 sha256sum; "$py" --version) | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && "$py" -c 'import boxlite' 2>/dev/null; then
  exit 0
fi
echo "setup: installing the Python SDK for $py" >&2
# The extension's build compiles the C++ core again (Release); through the same compiler
# cache as the tree's build (scripts/compiler-cache.sh).
launcher=$here/scripts/compiler-cache.sh
SKBUILD_CMAKE_ARGS="-DCMAKE_C_COMPILER_LAUNCHER=$launcher;-DCMAKE_CXX_COMPILER_LAUNCHER=$launcher" \
  "$py" -m pip install -q --no-build-isolation "$here/python" >&2
echo "$key" > "$stamp"
