#!/bin/sh
# Compiler launcher for the C++ tree and the Python SDK's build (scripts/setup.sh sets it):
# ccache keyed by the compiler's inputs, kept under $BOXLITE_CACHE/ccache beside the
# kernel and image caches. Paths under the checkout are hashed relative to it, and the
# build directory's path is left out, so a fresh clone in another folder reuses what an
# earlier build of the same sources compiled. Without ccache the compiler runs as is.
here=$(cd "$(dirname "$0")/.." && pwd)
command -v ccache >/dev/null 2>&1 || exec "$@"
CCACHE_DIR=${CCACHE_DIR:-${BOXLITE_CACHE:-$HOME/.cache/boxlite}/ccache}
CCACHE_BASEDIR=$here
CCACHE_NOHASHDIR=1
CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-6G}
export CCACHE_DIR CCACHE_BASEDIR CCACHE_NOHASHDIR CCACHE_MAXSIZE
exec ccache "$@"
