#!/usr/bin/env bash
# Builds (or reuses) every BoxLite test image as an OCI image layout under
# ${BOXLITE_CACHE:-$HOME/.cache/boxlite}/test-images/<name>-<key>/ and prints
# "NAME<TAB>PATH" lines (or JSON with --json). <key> hashes the inputs, so a rerun with
# unchanged inputs only prints. Concurrent runs wait for each other (flock).
#
# Images: busybox, layered, multiarch, multiarch-archfile, zstd, debian-python, hostile
# (one layout per case plus hostile.json), boxlite-base (docker-save/OCI tarball of
# busybox tagged boxlite/base:latest, with Debian's dynamic busybox, fetched with
# `apt-get download busybox`), desktop (boxlite/desktop, ComputerBox's image:
# Xvfb, JWM, xterm, Chromium, x11vnc/websockify/noVNC and boxlite-desktopd; see
# desktop/ and desktop.sh), python-sci (debian-python plus the PyPI wheels of
# python-sci-requirements.txt: numpy, matplotlib, pip). Only when named: desktop-tar (docker-save/OCI tarball of
# desktop, installed as <data dir>/images/desktop.tar).
#
# usage: build.sh [--json] [--only NAME,...] [--keys] [--prune] [--desktopd PATH]
#   --prune deletes cached artifacts of the same images built from other inputs.
# Needs: python3, busybox-static, zstd, and for debian-python, python-sci and desktop:
# root, debootstrap and the machine's apt mirror (python-sci also PyPI, through pip); for desktop also the tree built by CMake
# (boxlite-desktopd, from guest/desktopd/: $BOXLITE_BUILD_DIR, else build/, or --desktopd).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${BOXLITE_CACHE:-$HOME/.cache/boxlite}
mkdir -p "$cache/test-images"
exec 9>"$cache/test-images/.lock"
flock 9
exec python3 "$here/build.py" --cache "$cache" "$@"
