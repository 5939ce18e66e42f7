#!/usr/bin/env bash
# Usage: mkinitramfs.sh AGENT OUTPUT
# Packs the static guest agent as /init of an uncompressed newc initramfs (the kernel
# copies it; decompressing under TCG would cost more than reading a few more bytes).
set -euo pipefail
agent=$1
out=$2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{dev,proc,sys,run,tmp}
# Debug info stays in the build tree; the guest only needs the code.
strip -o "$stage/init" "$agent"
chmod 0755 "$stage/init"
# Fixed owners and times keep the archive reproducible.
(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | \
  xargs -0 touch -h -d @0 && \
  find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | \
  cpio --quiet -o -H newc -R 0:0 --reproducible) > "$out.tmp"
mv "$out.tmp" "$out"
