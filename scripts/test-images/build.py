#!/usr/bin/env python3
# Builds every test image as an OCI image layout under CACHE/test-images/<name>-<key>/,
# where <key> hashes the inputs (these scripts, package versions, the busybox binary, the
# apt mirror). A layout that exists is reused as is, so a rerun with the same inputs does
# nothing but print the paths. Called by build.sh, which holds the cache lock.
#
# Output (stdout): one "NAME<TAB>PATH" line per artifact, or one JSON object with --json.
# Progress goes to stderr.
#
# The desktop image (boxlite/desktop) has two cached stages: desktop-rootfs-<key>/ (the
# package layer of desktop.sh: apt in a chroot, minutes) and the image itself (that layer
# plus boxlite-desktopd and the files of desktop/: seconds). boxlite-desktopd is product
# code (guest/desktopd/) built by CMake with the rest of the tree; this script copies the
# binary of the build directory ($BOXLITE_BUILD_DIR, else build/, or --desktopd), stripped,
# and the image's key hashes that stripped binary, so the image is rebuilt whenever the
# daemon changes.
# desktop-tar is its install form (<data dir>/images/desktop.tar); it is built only when
# asked for (--only desktop-tar), as it is a second copy of ~250 MB.
#
# The browser image (boxlite/browser, BrowserBox's) is built the same way: a package layer
# browser-rootfs-<key>/ (desktop.sh's apt chroot with browser/packages.txt: headless
# Chromium and fonts, no X) and a files layer (browser/chromium-flags). It and its install
# form browser-tar (<data dir>/images/browser.tar) are built only when named.

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import hostile  # noqa: E402
import images  # noqa: E402
import oci  # noqa: E402

# boxlite/base's busybox: Debian's dynamically linked build (see images.WGET_WRAPPER).
BASE_BUSYBOX_PACKAGE = "busybox"
IMAGES = ["busybox", "layered", "multiarch", "multiarch-archfile", "zstd", "debian-python",
          "hostile", "boxlite-base", "desktop", "python-sci"]
# Built only when named with --only.
EXTRA_IMAGES = ["desktop-tar", "browser", "browser-tar"]
DESKTOP_DIR = os.path.join(HERE, "desktop")
DESKTOP_PACKAGES = os.path.join(DESKTOP_DIR, "packages.txt")
# python-sci (CodeBox's tests): debian-python plus the wheels of this list.
PYTHON_SCI_REQUIREMENTS = os.path.join(HERE, "python-sci-requirements.txt")
REPO = os.path.dirname(os.path.dirname(HERE))
# Where CMake puts boxlite-desktopd inside a build directory (guest/desktopd/CMakeLists.txt).
DESKTOPD_IN_BUILD = os.path.join("guest", "desktopd", "boxlite-desktopd")
BROWSER_DIR = os.path.join(HERE, "browser")
BROWSER_PACKAGES = os.path.join(BROWSER_DIR, "packages.txt")
# (path in the image, file in browser/, mode)
BROWSER_FILES = [("etc/chromium.d/boxlite-browser", "chromium-flags", 0o644)]
# (path in the image, file in desktop/, mode); boxlite-desktopd comes from the build.
DESKTOP_FILES = [
    ("usr/local/bin/boxlite-desktop-start", "boxlite-desktop-start", 0o755),
    ("usr/local/bin/boxlite-desktop-viewer", "boxlite-desktop-viewer", 0o755),
    ("etc/jwm/system.jwmrc", "jwmrc", 0o644),
    ("etc/chromium.d/boxlite-desktop", "chromium-flags", 0o644),
]


def default_desktopd():
    build = os.environ.get("BOXLITE_BUILD_DIR") or os.path.join(REPO, "build")
    return os.path.join(build, DESKTOPD_IN_BUILD)


def strip_binary(src, dst):
    """Copies `src` to `dst` without symbols, debug information or build id: what goes
    into the image, the same bytes from any build directory of the same sources."""
    subprocess.run(["objcopy", "--strip-all", "--remove-section=.note.gnu.build-id", src, dst],
                   check=True, stdout=subprocess.DEVNULL)
    os.chmod(dst, 0o755)


def log(msg):
    print("test-images: " + msg, file=sys.stderr, flush=True)


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
                          ).stdout.strip()


def dpkg_version(pkg):
    return run(["dpkg-query", "-W", "-f", "${Version}", pkg]) or "absent"


def apt_candidate(pkg):
    m = re.search(r"Candidate:\s*(\S+)", run(["apt-cache", "policy", pkg]))
    return m.group(1) if m else "unknown"


def apt_candidates(pkgs):
    """{package: candidate version} in one apt-cache call."""
    out = {p: "unknown" for p in pkgs}
    current = None
    for line in run(["apt-cache", "policy"] + list(pkgs)).splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1].split(":")[0]
        m = re.match(r"\s+Candidate:\s*(\S+)", line)
        if m and current in out:
            out[current] = m.group(1)
    return out


def read_package_list(path):
    with open(path) as f:
        return [l.split("#", 1)[0].strip() for l in f if l.split("#", 1)[0].strip()]


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def scripts_hash():
    h = hashlib.sha256()
    for p in sorted(glob.glob(os.path.join(HERE, "*.py")) + glob.glob(os.path.join(HERE, "*.sh"))):
        h.update(os.path.basename(p).encode() + b"\0")
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def os_codename():
    try:
        with open("/etc/os-release") as f:
            m = re.search(r"^VERSION_CODENAME=(\S+)", f.read(), re.M)
            if m:
                return m.group(1)
    except OSError:
        pass
    return "bookworm"


def debian_mirror(suite):
    """The machine's configured Debian mirror (what apt uses) for `suite`."""
    env = os.environ.get("BOXLITE_DEBIAN_MIRROR")
    if env:
        return env
    for uri in _apt_uris(suite):
        if "security" not in uri:
            return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def debian_sources(suite, mirror):
    """sources.list lines for the desktop chroot: the mirror's suite and suite-updates,
    plus the machine's security mirror when it has one (and no mirror is forced)."""
    lines = ["deb %s %s main" % (mirror, suite), "deb %s %s-updates main" % (mirror, suite)]
    if not os.environ.get("BOXLITE_DEBIAN_MIRROR"):
        for uri in _apt_uris(suite + "-security"):
            lines.append("deb %s %s-security main" % (uri.rstrip("/"), suite))
            break
    return lines


def _apt_uris(suite):
    """URIs of the machine's apt sources that serve `suite` with the main component."""
    found = []
    for p in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(p) as f:
            for stanza in f.read().split("\n\n"):
                fields = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    k, _, v = line.partition(":")
                    fields[k.strip().lower()] = v.split()
                if ("deb" in fields.get("types", []) and suite in fields.get("suites", [])
                        and "main" in fields.get("components", [])):
                    if fields.get("enabled", ["yes"])[0] != "no":
                        found += fields.get("uris", [])
    for p in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for line in f:
                parts = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(parts) >= 4 and parts[0] == "deb" and parts[2] == suite and \
                        "main" in parts[3:]:
                    found.append(parts[1])
    return found


def key_of(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(str(p).encode() + b"\0")
    return h.hexdigest()[:16]


class Builder:
    def __init__(self, cache, desktopd=None):
        self.cache = cache
        self.root = os.path.join(cache, "test-images")
        os.makedirs(self.root, exist_ok=True)
        self.scripts = scripts_hash()
        self.busybox_in = (dpkg_version("busybox-static"), file_sha256(images.BUSYBOX),
                           images.host_arch())
        self.suite = os_codename()
        self.mirror = debian_mirror(self.suite)
        with open(os.path.join(HERE, "debootstrap.sh"), "rb") as f:
            dbs_script = hashlib.sha256(f.read()).hexdigest()
        self.debootstrap_key = key_of("debootstrap", dbs_script, dpkg_version("debootstrap"),
                                      apt_candidate("python3"), self.mirror, self.suite,
                                      images.host_arch())
        self.desktop_packages = read_package_list(DESKTOP_PACKAGES)
        self.desktop_sources = debian_sources(self.suite, self.mirror)
        with open(os.path.join(HERE, "desktop.sh"), "rb") as f:
            desktop_script = hashlib.sha256(f.read()).hexdigest()
        self.browser_packages = read_package_list(BROWSER_PACKAGES)
        versions = apt_candidates(self.desktop_packages + self.browser_packages)
        self.desktop_rootfs_key = key_of("desktop-rootfs", desktop_script,
                                         file_sha256(DESKTOP_PACKAGES),
                                         sorted((p, versions[p]) for p in self.desktop_packages),
                                         self.desktop_sources, self.debootstrap_key)
        self.browser_rootfs_key = key_of("browser-rootfs", desktop_script,
                                         file_sha256(BROWSER_PACKAGES),
                                         sorted((p, versions[p]) for p in self.browser_packages),
                                         self.desktop_sources, self.debootstrap_key)
        browser_in = [self.browser_rootfs_key]
        for _, src, mode in BROWSER_FILES:
            browser_in += [src, mode, file_sha256(os.path.join(BROWSER_DIR, src))]
        self.desktopd = desktopd or default_desktopd()
        desktop_in = [self.desktop_rootfs_key, self.desktopd_sha256()]
        for _, src, mode in DESKTOP_FILES:
            desktop_in += [src, mode, file_sha256(os.path.join(DESKTOP_DIR, src))]
        self.keys = {}
        for name in IMAGES + EXTRA_IMAGES:
            extra = ()
            if name == "debian-python":
                extra = (self.debootstrap_key,)
            elif name in ("desktop", "desktop-tar"):
                extra = tuple(desktop_in)
            elif name in ("browser", "browser-tar"):
                extra = tuple(browser_in)
            elif name == "python-sci":
                extra = (self.debootstrap_key, file_sha256(PYTHON_SCI_REQUIREMENTS))
            elif name == "zstd":
                extra = self.busybox_in + (dpkg_version("zstd"),)
            elif name == "boxlite-base":
                extra = (apt_candidate(BASE_BUSYBOX_PACKAGE), dpkg_version("libc6"),
                         images.host_arch())
            else:
                extra = self.busybox_in
            self.keys[name] = key_of(name, self.scripts, *extra)
        self._base_tar = None
        self._base_layer = None

    def path(self, name):
        if name in ("boxlite-base", "desktop-tar", "browser-tar"):
            return os.path.join(self.root, "%s-%s.tar" % (name, self.keys[name]))
        return os.path.join(self.root, "%s-%s" % (name, self.keys[name]))

    def desktop_rootfs_dir(self):
        return os.path.join(self.root, "desktop-rootfs-%s" % self.desktop_rootfs_key)

    def browser_rootfs_dir(self):
        return os.path.join(self.root, "browser-rootfs-%s" % self.browser_rootfs_key)

    def debootstrap_dir(self):
        return os.path.join(self.root, "debootstrap-%s" % self.debootstrap_key)

    def base(self):
        if self._base_layer is None:
            self._base_tar = images.busybox_tar()
            self._base_layer = oci.Layer(self._base_tar)
        return self._base_tar, self._base_layer

    def build_one(self, name, dbs_proc=None):
        final = self.path(name)
        if os.path.exists(final):
            return False
        t0 = time.monotonic()
        tmp = final + ".tmp-%d" % os.getpid()
        if name == "boxlite-base":
            with tempfile.TemporaryDirectory(dir=self.root) as work:
                busybox = self.fetch_base_busybox(work)
                images.build_base_tar(tmp, images.busybox_tar(busybox, wget_wrapper=True))
        elif name == "desktop-tar":
            self.build_one("desktop", dbs_proc)
            images.build_image_tar(tmp, self.path("desktop"), images.DESKTOP_NAME)
        elif name == "browser-tar":
            self.build_one("browser", dbs_proc)
            images.build_image_tar(tmp, self.path("browser"), images.BROWSER_NAME)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            try:
                self._build_layout(name, tmp, dbs_proc)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        os.rename(tmp, final)
        log("built %s in %.1fs" % (name, time.monotonic() - t0))
        return True

    def fetch_base_busybox(self, work):
        """Downloads and unpacks Debian's dynamically linked busybox (it conflicts with the
        busybox-static the other images use, so it is not installed); returns its path."""
        subprocess.run(["apt-get", "download", "-q", BASE_BUSYBOX_PACKAGE], cwd=work,
                       check=True, stdout=subprocess.DEVNULL)
        debs = glob.glob(os.path.join(work, "*.deb"))
        if len(debs) != 1:
            raise RuntimeError("apt-get download %s gave %d packages" %
                               (BASE_BUSYBOX_PACKAGE, len(debs)))
        subprocess.run(["dpkg-deb", "-x", debs[0], os.path.join(work, "root")], check=True)
        return os.path.join(work, "root", "bin", "busybox")

    def _build_layout(self, name, tmp, dbs_proc):
        if name == "busybox":
            images.build_busybox(tmp, self.base()[1])
        elif name == "layered":
            images.build_layered(tmp, self.base()[1])
        elif name == "multiarch":
            images.build_multiarch(tmp, self.base()[1], archfile=False)
        elif name == "multiarch-archfile":
            images.build_multiarch(tmp, self.base()[1], archfile=True)
        elif name == "zstd":
            images.build_zstd(tmp, self.base()[0])
        elif name == "hostile":
            hostile.build_all(tmp, self.base()[1])
        elif name == "debian-python":
            self.wait_debootstrap(dbs_proc)
            images.build_debian_python(tmp, self.debootstrap_dir())
        elif name == "desktop":
            self.build_desktop_rootfs(dbs_proc)
            daemon = os.path.join(tmp, ".boxlite-desktopd")
            self.require_desktopd()
            strip_binary(self.desktopd, daemon)
            files = [("usr/local/bin/boxlite-desktopd", daemon, 0o755)]
            files += [(dest, os.path.join(DESKTOP_DIR, src), mode)
                      for dest, src, mode in DESKTOP_FILES]
            images.build_desktop(tmp, self.desktop_rootfs_dir(), files)
            os.unlink(daemon)
        elif name == "browser":
            self.build_package_rootfs("browser", self.browser_rootfs_dir(), BROWSER_PACKAGES,
                                      dbs_proc)
            files = [(dest, os.path.join(BROWSER_DIR, src), mode)
                     for dest, src, mode in BROWSER_FILES]
            images.build_browser(tmp, self.browser_rootfs_dir(), files)
        elif name == "python-sci":
            self.wait_debootstrap(dbs_proc)
            images.build_python_sci(tmp, self.debootstrap_dir(), PYTHON_SCI_REQUIREMENTS)
        else:
            raise ValueError(name)

    def wait_debootstrap(self, dbs_proc):
        if dbs_proc is not None and dbs_proc.wait() != 0:
            raise RuntimeError("debootstrap failed (see messages above)")
        if not os.path.exists(self.debootstrap_dir()):
            raise RuntimeError("debootstrap output missing: " + self.debootstrap_dir())

    def build_desktop_rootfs(self, dbs_proc):
        self.build_package_rootfs("desktop", self.desktop_rootfs_dir(), DESKTOP_PACKAGES,
                                  dbs_proc)

    def build_package_rootfs(self, what, d, packages_file, dbs_proc):
        """The package layer `d` of the desktop or browser image: desktop.sh's apt chroot
        with `packages_file` (the .debs are shared in desktop-debs/)."""
        if os.path.exists(d):
            return
        self.wait_debootstrap(dbs_proc)
        t0 = time.monotonic()
        log("building the %s package layer (apt in a chroot, a few minutes)" % what)
        sources = d + ".sources.list"
        with open(sources, "w") as f:
            f.write("\n".join(self.desktop_sources) + "\n")
        try:
            subprocess.run(["bash", os.path.join(HERE, "desktop.sh"), d,
                            os.path.join(self.debootstrap_dir(), "layer.tar.gz"),
                            os.path.join(self.root, "desktop-debs"), packages_file, sources],
                           stdout=sys.stderr, check=True)
        finally:
            os.unlink(sources)
        log("built the %s package layer in %.1fs" % (what, time.monotonic() - t0))

    def require_desktopd(self):
        if not os.path.isfile(self.desktopd):
            raise RuntimeError("boxlite-desktopd is not built (%s): build the tree first "
                               "(ninja -C build; it needs libx11-dev libxtst-dev libxext-dev), "
                               "or name the build with BOXLITE_BUILD_DIR or --desktopd"
                               % self.desktopd)
        # The image has the X libraries the daemon links, not a sanitizer's runtime.
        needed = run(["readelf", "-d", self.desktopd])
        if re.search(r"\[lib(asan|ubsan|tsan)\.so", needed):
            raise RuntimeError("%s is built with sanitizers (BOXLITE_SANITIZE), which the desktop "
                               "image cannot run; use a build without them (--desktopd PATH)"
                               % self.desktopd)

    def desktopd_sha256(self):
        """The hash of the stripped daemon (its image key), or "missing"."""
        if not os.path.isfile(self.desktopd):
            return "missing"
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "boxlite-desktopd")
            strip_binary(self.desktopd, out)
            return file_sha256(out)

    def start_debootstrap(self):
        d = self.debootstrap_dir()
        if os.path.exists(d):
            return None
        log("starting debootstrap (%s, %s) in the background" % (self.suite, self.mirror))
        return subprocess.Popen(["bash", os.path.join(HERE, "debootstrap.sh"), d, self.mirror,
                                 self.suite], stdout=sys.stderr, start_new_session=True)

    def prune(self, names):
        """Removes artifacts of `names` built from other inputs (older keys)."""
        keep = {os.path.basename(self.path(n)) for n in names}
        pats = [re.compile(r"^%s-[0-9a-f]{16}(\.tar)?$" % re.escape(n)) for n in names]
        if "debian-python" in names or "desktop" in names or "python-sci" in names:
            keep.add(os.path.basename(self.debootstrap_dir()))
            pats.append(re.compile(r"^debootstrap-[0-9a-f]{16}$"))
        if "desktop" in names:
            keep.add(os.path.basename(self.desktop_rootfs_dir()))
            pats.append(re.compile(r"^desktop-rootfs-[0-9a-f]{16}$"))
        if "browser" in names:
            keep.add(os.path.basename(self.browser_rootfs_dir()))
            pats.append(re.compile(r"^browser-rootfs-[0-9a-f]{16}$"))
        for e in sorted(os.listdir(self.root)):
            if e not in keep and any(p.match(e) for p in pats):
                p = os.path.join(self.root, e)
                log("pruning " + e)
                if os.path.isdir(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)

    def info(self, names):
        out = {"cache_dir": self.root, "images": {}}
        for n in names:
            if n == "boxlite-base":
                out["boxlite_base_tar"] = self.path(n)
            elif n == "desktop-tar":
                out["desktop_tar"] = self.path(n)
            elif n == "browser-tar":
                out["browser_tar"] = self.path(n)
            elif n == "hostile":
                out["hostile"] = {"dir": self.path(n),
                                  "manifest": os.path.join(self.path(n), "hostile.json")}
            else:
                out["images"][n] = {"layout": self.path(n), "name": n, "tag": "latest",
                                    "oci_ref": "oci:%s:latest" % self.path(n)}
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=os.environ.get("BOXLITE_CACHE") or
                    os.path.join(os.path.expanduser("~"), ".cache", "boxlite"))
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--only", default="",
                    help="comma-separated subset of " + ",".join(IMAGES + EXTRA_IMAGES))
    ap.add_argument("--keys", action="store_true", help="print the keys and exit")
    ap.add_argument("--desktopd", default=None,
                    help="the boxlite-desktopd binary to put in the desktop image (default: "
                         "$BOXLITE_BUILD_DIR/%s, else build/%s)" % (DESKTOPD_IN_BUILD,
                                                                    DESKTOPD_IN_BUILD))
    ap.add_argument("--prune", action="store_true",
                    help="delete cached artifacts of these images built from other inputs")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or IMAGES
    for n in names:
        if n not in IMAGES + EXTRA_IMAGES:
            ap.error("unknown image %r" % n)
    t0 = time.monotonic()
    b = Builder(args.cache, args.desktopd)
    if args.keys:
        for n in names:
            print("%s\t%s" % (n, b.keys[n]))
        print("debootstrap\t%s" % b.debootstrap_key)
        return 0
    dbs = None
    need_dbs = any(n in names and not os.path.exists(b.path(n))
                   for n in ("debian-python", "python-sci"))
    for n in ("desktop", "desktop-tar"):
        need_dbs |= (n in names and not os.path.exists(b.path(n)) and
                     not os.path.exists(b.desktop_rootfs_dir()))
    for n in ("browser", "browser-tar"):
        need_dbs |= (n in names and not os.path.exists(b.path(n)) and
                     not os.path.exists(b.browser_rootfs_dir()))
    if need_dbs:
        dbs = b.start_debootstrap()
    # Images that wait for debootstrap come last, so the others build meanwhile.
    late = ["debian-python", "desktop", "desktop-tar", "browser", "browser-tar", "python-sci"]
    ordered = [n for n in names if n not in late] + [n for n in late if n in names]
    built = 0
    try:
        for n in ordered:
            built += b.build_one(n, dbs)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        log("FAILED: %s" % e)
        return 1
    finally:
        if dbs is not None and dbs.poll() is None:
            os.killpg(dbs.pid, 15)
            dbs.wait()
    if args.prune:
        b.prune(names)
    log("%d built, %d cached, %.1fs" % (built, len(names) - built, time.monotonic() - t0))
    info = b.info(names)
    if args.json:
        print(json.dumps(info, indent=1, sort_keys=True))
    else:
        for n, v in sorted(info["images"].items()):
            print("%s\t%s" % (n, v["layout"]))
        if "boxlite_base_tar" in info:
            print("boxlite-base-tar\t%s" % info["boxlite_base_tar"])
        if "desktop_tar" in info:
            print("desktop-tar\t%s" % info["desktop_tar"])
        if "browser_tar" in info:
            print("browser-tar\t%s" % info["browser_tar"])
        if "hostile" in info:
            print("hostile\t%s" % info["hostile"]["dir"])
            print("hostile-manifest\t%s" % info["hostile"]["manifest"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
