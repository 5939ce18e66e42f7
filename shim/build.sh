#!/usr/bin/env bash
# Builds containerd-shim-boxlite-v2 offline: Go in GOPATH mode against Debian's Go sources
# (golang-github-containerd-containerd-dev and its dependencies under /usr/share/gocode).
# Usage: shim/build.sh OUTPUT [WORKDIR]  (WORKDIR keeps Go's build cache; default: OUTPUT's dir)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
work=${2:-$(dirname "$out")}
mkdir -p "$work"
export GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0
export GOPATH=${BOXLITE_GOPATH:-/usr/share/gocode}
export GOCACHE=$work/go-cache
cd "$here"
"${GO:-go}" build -trimpath -o "$out" .
