#!/usr/bin/env bash
# Builds the BoxLite guest kernel (uncompressed vmlinux with a PVH entry) from Debian's
# linux-source-6.1 and the fragment guest/kernel/boxlite.config.
#
# The result is cached under $BOXLITE_CACHE/kernel/<key>/vmlinux where <key> hashes the
# fragment, this script and the kernel source package version, so a rerun with the same
# inputs does nothing. Prints the path of the vmlinux on stdout; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${BOXLITE_CACHE:-$HOME/.cache/boxlite}
src_tar=/usr/src/linux-source-6.1.tar.xz
fragment=$here/guest/kernel/boxlite.config

[ -f "$src_tar" ] || { echo "build-kernel: $src_tar missing; install linux-source-6.1" >&2; exit 1; }
src_ver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || stat -c %s "$src_tar")
patches=$(ls "$here"/guest/kernel/patches/*.patch 2>/dev/null | LC_ALL=C sort || true)
key=$(cat "$fragment" "$0" $patches | sha256sum | cut -c1-16)-$(echo "$src_ver" | sha256sum | cut -c1-8)
out=$cache/kernel/$key
if [ -f "$out/vmlinux" ]; then
  echo "$out/vmlinux"
  exit 0
fi

work=$cache/kernel/build
mkdir -p "$work"
# The tree is reused between builds (incremental compiles); it is unpacked afresh when
# the source package or the set of patches changes.
patch_key=$(cat $patches /dev/null | sha256sum | cut -c1-16)
if [ ! -f "$work/.src-$src_ver-$patch_key" ]; then
  echo "build-kernel: unpacking $src_tar" >&2
  rm -rf "$work/linux-source-6.1" "$work"/.src-*
  tar -C "$work" -xf "$src_tar"
  for p in $patches; do
    echo "build-kernel: applying $(basename "$p")" >&2
    patch -d "$work/linux-source-6.1" -p1 --quiet < "$p"
  done
  touch "$work/.src-$src_ver-$patch_key"
fi
cd "$work/linux-source-6.1"
start=$(date +%s)
echo "build-kernel: configuring (tinyconfig + boxlite.config)" >&2
make -s ARCH=x86_64 tinyconfig >&2
scripts/kconfig/merge_config.sh -m -O . .config "$fragment" >/dev/null
make -s ARCH=x86_64 olddefconfig >&2
# Every line of the fragment must have survived olddefconfig; a silently dropped option is
# a kernel that boots but lacks a feature.
missing=0
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  opt=${line%%=*}; val=${line#*=}
  if [ "$val" = n ]; then
    grep -q "^$opt=" .config && { echo "build-kernel: $opt should be off" >&2; missing=1; }
  else
    grep -qx "$line" .config || { echo "build-kernel: $line did not survive olddefconfig" >&2; missing=1; }
  fi
done < "$fragment"
[ "$missing" = 0 ] || exit 1
echo "build-kernel: compiling vmlinux with $(nproc) jobs" >&2
make -s ARCH=x86_64 -j"$(nproc)" vmlinux >&2
mkdir -p "$out.tmp"
cp vmlinux "$out.tmp/vmlinux"
cp .config "$out.tmp/config"
echo "$(( $(date +%s) - start ))" > "$out.tmp/build-seconds"
rm -rf "$out"
mv "$out.tmp" "$out"
# Kernels built from older inputs are not needed any more.
for old in "$cache"/kernel/*/; do
  old=${old%/}
  [ "$old" = "$out" ] || [ "$old" = "$work" ] || rm -rf "$old"
done
echo "build-kernel: built in $(cat "$out/build-seconds")s" >&2
echo "$out/vmlinux"
