#!/usr/bin/env bash
# Builds containerd-shim-boxlite-v2 offline: Go in GOPATH mode against Debian's Go sources
# (golang-github-containerd-containerd-dev and its dependencies under /usr/share/gocode).
# Usage: shim/build.sh OUTPUT [WORKDIR]  (WORKDIR keeps Go's build cache; default: OUTPUT's dir)
#        shim/build.sh --test WORKDIR    (runs the unit tests, *_test.go)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "$1" = --test ]; then
  out=
  work=$2
else
  out=$1
  work=${2:-$(dirname "$out")}
fi
mkdir -p "$work"
export GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0
export GOPATH=${BOXLITE_GOPATH:-/usr/share/gocode}
export GOCACHE=$work/go-cache
cd "$here"
if [ -z "$out" ]; then
  exec "${GO:-go}" test -count=1 .
fi
"${GO:-go}" build -trimpath -o "$out" .
