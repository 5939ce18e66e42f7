#!/usr/bin/env bash
# Sets up everything BoxLite needs on a Debian 12 machine, idempotently and quickly when
# nothing changed:
#   1. OS packages (apt) and Python packages (pip) that are missing;
#   2. the guest kernel, built once per kernel config (cached under $BOXLITE_CACHE);
#   3. the C++ tree (CMake + Ninja, incremental) and its installation: `boxlite` on PATH,
#      the initramfs, the kernel and the built-in image under $PREFIX/share/boxlite;
#   4. the Python SDK for the machine's python3.
# Progress goes to stderr. Needs root for apt and the install into $PREFIX.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export BOXLITE_CACHE=${BOXLITE_CACHE:-$HOME/.cache/boxlite}
prefix=${PREFIX:-/usr/local}
build=${BOXLITE_BUILD_DIR:-$here/build}
log() { echo "setup: $*" >&2; }
start=$(date +%s)

# --- 1. OS packages ---------------------------------------------------------------------
packages=(
  build-essential cmake ninja-build pkg-config git
  ccache  # scripts/compiler-cache.sh: compiles keyed by their inputs, under $BOXLITE_CACHE
  libcurl4-openssl-dev libarchive-dev libssl-dev nlohmann-json3-dev libext2fs-dev
  libzstd-dev zlib1g-dev libslirp-dev libseccomp-dev libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev
  libhttp-parser-dev  # boxlite-net: HTTP/1.1 requests for secret substitution
  libnghttp2-dev      # boxlite-net: HTTP/2 for secret substitution
  libboost-dev        # boxlite serve: Boost.Beast + Asio (header-only)
  clang-14 libclang-rt-14-dev
  qemu-system-x86 qemu-utils e2fsprogs
  linux-source-6.1 bc bison flex libelf-dev cpio xz-utils
  busybox-static docker-registry skopeo umoci debootstrap zstd apache2-utils openssl
  util-linux tmux iproute2 curl python3 python3-pip python3-venv patch
  libx11-dev libxext-dev libxtst-dev chromium
  libboost-dev libcpptoml-dev  # the remote runtime: Beast HTTP/WebSocket, credentials.toml
  golang-go golang-github-containerd-containerd-dev containerd runc  # the containerd shim (shim/)
  containernetworking-plugins  # the pods' network in tests/integration/shim/test_cri.py
  iptables  # containerd-shim-boxlite-v2: kubectl port-forward into a pod box (shim/portforward.go)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${#missing[@]} OS packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The unprivileged system user that QEMU and boxlite-net run as when root starts a box
# (src/vmm/vm_jail.h); the runtime makes it on demand too.
if [ "$(id -u)" = 0 ] && ! getent passwd boxlite >/dev/null; then
  log "creating the system user boxlite"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin boxlite
fi

# --- 2. Python packages -----------------------------------------------------------------
py=${PYTHON:-python3}
if ! "$py" -c 'import pytest, pytest_asyncio, pytest_timeout, nanobind, scikit_build_core, mcp.server.mcpserver, agents.sandbox' 2>/dev/null; then
  log "installing Python packages"
  "$py" -m pip install -q -r "$here/python/requirements-dev.txt" >&2
fi

# --- 3. Guest kernel --------------------------------------------------------------------
vmlinux=$("$here/scripts/build-kernel.sh")

# --- 4. C++ build and install -----------------------------------------------------------
# Every compile goes through scripts/compiler-cache.sh (ccache under $BOXLITE_CACHE), so a
# fresh clone of sources built before compiles nothing again. A build directory configured
# without it is configured again once.
launcher=$here/scripts/compiler-cache.sh
if [ ! -f "$build/build.ninja" ] ||
   ! grep -qxF "CMAKE_CXX_COMPILER_LAUNCHER:STRING=$launcher" "$build/CMakeCache.txt"; then
  log "configuring $build"
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DBOXLITE_WERROR=ON \
    -DCMAKE_C_COMPILER_LAUNCHER="$launcher" -DCMAKE_CXX_COMPILER_LAUNCHER="$launcher" >&2
fi
log "building"
ninja -C "$build" >&2
cmake --install "$build" >/dev/null
datadir=$prefix/share/boxlite
install -d "$datadir/images"
cmp -s "$vmlinux" "$datadir/vmlinux" 2>/dev/null || install -m 0644 "$vmlinux" "$datadir/vmlinux"

# --- 5. Built-in images: boxlite/base (busybox) and boxlite/desktop (ComputerBox's) ------
# desktop-tar takes boxlite-desktopd from this build (guest/desktopd/).
images=$(BOXLITE_BUILD_DIR=$build "$here/scripts/test-images/build.sh" --only boxlite-base,desktop-tar)
base_tar=$(echo "$images" | awk -F'\t' '$1 == "boxlite-base-tar" {print $2}')
desktop_tar=$(echo "$images" | awk -F'\t' '$1 == "desktop-tar" {print $2}')
cmp -s "$base_tar" "$datadir/images/base.tar" 2>/dev/null || install -m 0644 "$base_tar" "$datadir/images/base.tar"
cmp -s "$desktop_tar" "$datadir/images/desktop.tar" 2>/dev/null || install -m 0644 "$desktop_tar" "$datadir/images/desktop.tar"
# boxlite/browser (BrowserBox's headless Chromium; scripts/test-images/browser/).
browser_tar=$(BOXLITE_BUILD_DIR=$build "$here/scripts/test-images/build.sh" --only browser-tar |
  awk -F'\t' '$1 == "browser-tar" {print $2}')
cmp -s "$browser_tar" "$datadir/images/browser.tar" 2>/dev/null || install -m 0644 "$browser_tar" "$datadir/images/browser.tar"

# --- 6. Python SDK ----------------------------------------------------------------------
"$here/scripts/install-python.sh" "$py" "$build"

log "ready in $(( $(date +%s) - start ))s: $(command -v boxlite), data in $datadir"
