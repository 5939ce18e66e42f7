#!/usr/bin/env bash
# Builds the package layer of the desktop image (boxlite/desktop): the Debian bookworm
# minbase + python3 root filesystem of debootstrap.sh (its layer.tar.gz, extracted) plus
# the desktop packages installed with apt in a chroot. Stores it as one gzip layer:
# OUT/layer.tar.gz and OUT/layer.json ({diff_id, digest, size, packages}). OUT must not
# exist; it appears atomically when everything succeeded. Needs root (chroot, mounts).
#
# The files BoxLite adds on top (boxlite-desktopd, the start scripts) are a second, small
# layer that build.py writes, so changing them never reruns apt.
#
# usage: desktop.sh OUT BASE_LAYER_TGZ DEBS_DIR PACKAGES_FILE SOURCES_FILE
#   DEBS_DIR       downloaded .debs are kept here between builds
#   PACKAGES_FILE  one package per line; "#" starts a comment
#   SOURCES_FILE   apt sources.list lines for the chroot (the machine's Debian mirrors)
set -euo pipefail

out=$1
base_tgz=$2
debs=$3
packages_file=$4
sources_file=$5
here=$(cd "$(dirname "$0")" && pwd)

if [[ $(id -u) != 0 ]]; then
  echo "desktop.sh: needs root (chroot)" >&2
  exit 1
fi

source "$(dirname "${BASH_SOURCE[0]}")/workdir.sh"
make_work_dir desktop.sh "$out"
root=$work/root

mkdir -p "$root" "$debs/partial"
tar --numeric-owner --xattrs --xattrs-include='*' -xzf "$base_tgz" -C "$root"

# A chroot that can run maintainer scripts: /proc, device nodes, a resolver for apt, no
# service starts, and no fsync per unpacked file (a throwaway tree).
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/99boxlite-unsafe-io"
# Xvfb depends on libgl1, which drags in Mesa's hardware drivers and LLVM (~160 MB) that a
# framebuffer in memory never loads (Xvfb runs with -extension GLX; browsers fall back
# to software rendering), and Chromium ships Vulkan's validation layer (22 MB), a
# debugging aid. Their files are not unpacked; the packages stay registered.
cat >"$root/etc/dpkg/dpkg.cfg.d/90boxlite-desktop-exclude" <<'EOF'
path-exclude=/usr/lib/*/dri/*
path-exclude=/usr/lib/*/libLLVM-*
path-exclude=/usr/lib/*/libz3.so*
path-exclude=/usr/lib/chromium/libVkLayer_khronos_validation.so*
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
EOF
cp "$sources_file" "$root/etc/apt/sources.list"
rm -f "$root"/etc/apt/sources.list.d/*
cat >"$root/etc/apt/apt.conf.d/99boxlite" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dpkg::Use-Pty "false";
EOF
mount --bind "$debs" "$root/var/cache/apt/archives"

mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$packages_file")
echo "desktop: apt-get install ${#packages[@]} packages (${packages[*]})" >&2
log=$work/apt.log
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }
{
  in_root apt-get update -q &&
    in_root apt-get install -y -q "${packages[@]}" &&
    # noVNC's web files without its package, which depends on nodejs (~50 MB) for a
    # command-line tool the viewer never uses.
    in_root sh -c 'cd /tmp && apt-get download -q novnc && dpkg -x novnc_*.deb /tmp/novnc &&
      mkdir -p /usr/share/novnc && cp -a /tmp/novnc/usr/share/novnc/. /usr/share/novnc/ &&
      rm -rf /tmp/novnc /tmp/novnc_*.deb'
} >"$log" 2>&1 || {
  tail -n 40 "$log" >&2
  exit 1
}
installed=$(in_root dpkg-query -W -f '${Package}=${Version}\n' "${packages[@]}" | tr '\n' ' ')

unmount_work_dir

# What a registry image of Debian leaves out (as debootstrap.sh), plus apt's lists and the
# build-time settings.
rm -rf "$root"/var/cache/apt/archives/* "$root"/var/cache/apt/*.bin \
  "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/dev/* "$root"/etc/resolv.conf "$root"/etc/hostname "$root"/var/cache/debconf/*-old \
  "$root/etc/dpkg/dpkg.cfg.d/99boxlite-unsafe-io" "$root/usr/sbin/policy-rc.d" \
  "$root/etc/apt/apt.conf.d/99boxlite" "$root"/tmp/* "$root"/root/.cache
mkdir -p "$root/var/cache/apt/archives/partial"
find "$root" -name __pycache__ -type d -prune -exec rm -rf {} +

tar --numeric-owner --xattrs --xattrs-include='*' --sort=name --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$root" -cf "$work/layer.tar" .

TEST_IMAGES_DIR=$here python3 - "$work" "$installed" <<'EOF'
import json, os, sys
sys.path.insert(0, os.environ["TEST_IMAGES_DIR"])
import oci
work, installed = sys.argv[1], sys.argv[2].split()
diff_id, digest, size = oci.gzip_file_streaming(os.path.join(work, "layer.tar"),
                                                os.path.join(work, "layer.tar.gz"), level=1)
with open(os.path.join(work, "layer.json"), "w") as f:
    json.dump({"diff_id": "sha256:" + diff_id, "digest": "sha256:" + digest, "size": size,
               "tar_size": os.path.getsize(os.path.join(work, "layer.tar")),
               "packages": installed}, f)
EOF

mkdir "$work/out"
mv "$work/layer.tar.gz" "$work/layer.json" "$log" "$work/out/"
mv "$work/out" "$out"
echo "desktop: done -> $out" >&2
