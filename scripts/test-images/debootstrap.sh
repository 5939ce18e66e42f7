#!/usr/bin/env bash
# Builds the Debian bookworm minbase + python3 root filesystem and stores it as one gzip
# layer: OUT/layer.tar.gz and OUT/layer.json ({diff_id, digest, size, python_version}).
# OUT must not exist; it appears atomically when everything succeeded. Needs root
# (debootstrap creates device nodes and chroots).
#
# usage: debootstrap.sh OUT MIRROR [SUITE]
set -euo pipefail

out=$1
mirror=$2
suite=${3:-bookworm}
here=$(cd "$(dirname "$0")" && pwd)

if [[ $(id -u) != 0 ]]; then
  echo "debootstrap.sh: needs root (debootstrap)" >&2
  exit 1
fi

source "$(dirname "${BASH_SOURCE[0]}")/workdir.sh"
make_work_dir debootstrap.sh "$out"

root=$work/root
# dpkg fsyncs every unpacked file; that is most of the install time here and worthless
# for a throwaway tree (same trick as mmdebstrap). Removed again before packing.
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/99boxlite-unsafe-io"
echo "debootstrap: $suite minbase + python3 from $mirror" >&2
# Downloaded .debs are kept next to the cache so a rebuild after a script change does
# not download them again (a clean cache still downloads, ~40 MB).
debs=$(dirname "$out")/debootstrap-debs
mkdir -p "$debs"
debootstrap --variant=minbase --include=python3 --cache-dir="$debs" "$suite" "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

python_version=$(chroot "$root" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')

unmount_work_dir

# What a registry image of Debian leaves out: package caches and indexes, logs, docs,
# device nodes (the runtime provides /dev), the host's resolver and hostname.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
  "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/dev/* "$root"/etc/resolv.conf "$root"/etc/hostname "$root"/var/cache/debconf/*-old \
  "$root/etc/dpkg/dpkg.cfg.d/99boxlite-unsafe-io"
find "$root" -name __pycache__ -type d -prune -exec rm -rf {} +

tar --numeric-owner --xattrs --xattrs-include='*' --sort=name --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$root" -cf "$work/layer.tar" .

TEST_IMAGES_DIR=$here python3 - "$work" "$python_version" <<'EOF'
import json, os, sys
sys.path.insert(0, os.environ["TEST_IMAGES_DIR"])
import oci
work, pyver = sys.argv[1], sys.argv[2]
diff_id, digest, size = oci.gzip_file_streaming(os.path.join(work, "layer.tar"),
                                                os.path.join(work, "layer.tar.gz"), level=1)
with open(os.path.join(work, "layer.json"), "w") as f:
    json.dump({"diff_id": "sha256:" + diff_id, "digest": "sha256:" + digest, "size": size,
               "python_version": pyver}, f)
EOF

mkdir "$work/out"
mv "$work/layer.tar.gz" "$work/layer.json" "$work/debootstrap.log" "$work/out/"
mv "$work/out" "$out"
echo "debootstrap: done -> $out" >&2
