# Builders for the regular test images: busybox, layered, multiarch, zstd, debian-python,
# python-sci and the boxlite/base tarball. Each builder writes one OCI image layout into a
# fresh directory; build.py decides where and whether to call it.
#
# Not thread-safe (builders write files); build.py calls them one at a time.

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile

import oci
from oci import check

BUSYBOX = "/bin/busybox"


def host_arch():
    deb = subprocess.run(["dpkg", "--print-architecture"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout.strip()
    return {"amd64": "amd64", "arm64": "arm64", "i386": "386", "armhf": "arm",
            "ppc64el": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(deb, deb)


PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
          b"app:x:1000:1000:app:/home/app:/bin/sh\n")
GROUP = b"root:x:0:\nnobody:x:65534:\napp:x:1000:\n"


def busybox_applets(busybox=BUSYBOX):
    out = subprocess.run([busybox, "--list-full"], stdout=subprocess.PIPE, text=True,
                         check=True).stdout.split()
    # "linuxrc" is the initrd entry point, not an applet a container needs.
    return sorted(p for p in out if "/" in p)


# /usr/bin/wget of boxlite/base. Debian builds busybox without wget's timeout support,
# and busybox 1.35's wget then stores the value of -T through a null pointer: every
# `wget -T N ...` (the usual health-check spelling) dies of SIGSEGV. This wrapper takes
# -T SEC, -TSEC, --timeout SEC and --timeout=SEC off the command line and bounds the
# whole transfer by SEC seconds with busybox's timeout (0 means no limit, as in wget).
# boxlite/base uses Debian's dynamic `busybox` (build.py): the static one's shell runs
# its own applets before looking at PATH, so no wrapper could stand in for one there.
WGET_WRAPPER = b"""#!/bin/sh
# boxlite/base: wget with -T/--timeout (see scripts/test-images/images.py).
secs=
n=$#
while [ "$n" -gt 0 ]; do
	a=$1
	shift
	n=$((n - 1))
	case $a in
	--)
		set -- "$@" "$a"
		while [ "$n" -gt 0 ]; do set -- "$@" "$1"; shift; n=$((n - 1)); done ;;
	-T | --timeout)
		if [ "$n" -eq 0 ]; then
			echo "wget: $a needs a number of seconds" >&2
			exit 1
		fi
		secs=$1
		shift
		n=$((n - 1)) ;;
	-T*) secs=${a#-T} ;;
	--timeout=*) secs=${a#--timeout=} ;;
	*) set -- "$@" "$a" ;;
	esac
done
case $secs in
'') exec /bin/busybox wget "$@" ;;
*[!0-9]*)
	echo "wget: bad timeout '$secs': give whole seconds" >&2
	exit 1 ;;
esac
[ "$secs" -eq 0 ] && exec /bin/busybox wget "$@"
exec /bin/busybox timeout "$secs" /bin/busybox wget "$@"
"""


def shared_libraries(binary):
    """The host's shared libraries `binary` loads, the dynamic loader included, as the
    absolute paths it asks for (ldd)."""
    out = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    libs = []
    for line in out.splitlines():
        words = line.split()
        if "=>" in words and len(words) > words.index("=>") + 1:
            path = words[words.index("=>") + 1]
        elif words and words[0].startswith("/"):
            path = words[0]
        else:
            continue  # linux-vdso.so.1 lives in the kernel
        if not path.startswith("/"):
            raise RuntimeError("ldd %s: %s not found" % (binary, words[0]))
        libs.append(path)
    return libs


def busybox_tar(busybox=BUSYBOX, wget_wrapper=False):
    """The busybox rootfs layer (uncompressed tar bytes). A dynamically linked `busybox`
    comes with the host's copies of the libraries it loads. With `wget_wrapper`,
    /usr/bin/wget is WGET_WRAPPER (boxlite/base) instead of the applet's symlink."""
    with open(busybox, "rb") as f:
        bb = f.read()
    applets = busybox_applets(busybox)
    libs = []
    for path in shared_libraries(busybox) if busybox != BUSYBOX else []:
        with open(path, "rb") as f:
            libs.append((path.lstrip("/"), f.read()))

    def entries(tw):
        dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys",
                "run", "mnt", "var", "home"}
        for a in applets + [name for name, _ in libs]:
            d = a.rsplit("/", 1)[0]
            while d:
                dirs.add(d)
                d = d.rpartition("/")[0]
        for d in sorted(dirs):
            tw.add(d, "dir", mode=0o755)
        tw.add("tmp", "dir", mode=0o1777)
        tw.add("var/tmp", "dir", mode=0o1777)
        tw.add("root", "dir", mode=0o700)
        tw.add("home/app", "dir", mode=0o755, uid=1000, gid=1000)
        tw.add("bin/busybox", "file", data=bb, mode=0o755)
        for name, data in libs:
            tw.add(name, "file", data=data, mode=0o755)
        for a in applets:
            if wget_wrapper and a == "usr/bin/wget":
                tw.add(a, "file", data=WGET_WRAPPER, mode=0o755)
            elif a != "bin/busybox":
                tw.add(a, "symlink", linkname="/bin/busybox")
        tw.add("etc/passwd", "file", data=PASSWD, mode=0o644)
        tw.add("etc/group", "file", data=GROUP, mode=0o644)
    return oci.build_tar(entries)


def busybox_checks():
    with open(BUSYBOX, "rb") as f:
        bb_sha = hashlib.sha256(f.read()).hexdigest()
    return [
        check("/bin/busybox", type="file", mode=0o755, uid=0, gid=0, sha256=bb_sha),
        check("/bin/sh", type="symlink", target="/bin/busybox"),
        check("/etc/passwd", type="file", content=PASSWD, mode=0o644),
        check("/etc/group", type="file", content=GROUP),
        check("/tmp", type="dir", mode=0o1777),
        check("/root", type="dir", mode=0o700, uid=0, gid=0),
        check("/home/app", type="dir", uid=1000, gid=1000),
    ]


BUSYBOX_ENV = ["PATH=" + oci.DEFAULT_PATH]


def build_busybox(path, base_layer):
    oci.write_simple_image(path, "busybox", [base_layer], arch=host_arch(), env=BUSYBOX_ENV,
                           cmd=["sh"])
    write_expect(path, busybox_checks())


def build_zstd(path, base_tar):
    layer = oci.Layer(base_tar, "zstd")
    oci.write_simple_image(path, "zstd", [layer], arch=host_arch(), env=BUSYBOX_ENV,
                           cmd=["sh"])
    write_expect(path, busybox_checks())


def build_base_tar(out_path, base_tar):
    """boxlite/base:latest as a docker-save + OCI-layout tarball (uncompressed layer)."""
    tmp_layer = out_path + ".layer"
    with open(tmp_layer, "wb") as f:
        f.write(base_tar)
    diff_id = "sha256:" + oci.sha256_hex(base_tar)
    cfg = oci.image_config([diff_id], arch=host_arch(), env=BUSYBOX_ENV, cmd=["sh"])
    try:
        return oci.write_docker_save_tar(out_path, "boxlite/base:latest", tmp_layer, diff_id, cfg)
    finally:
        os.unlink(tmp_layer)


def write_expect(path, checks, extra=None):
    doc = {"checks": checks}
    if extra:
        doc.update(extra)
    with open(os.path.join(path, "expect.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)


# ---------------------------------------------------------------------------- multiarch

def _foreign_arch(native):
    return "arm64" if native != "arm64" else "amd64"


def build_multiarch(path, base_layer, archfile):
    """An index: native arch = busybox (plus /arch=<native> when archfile), foreign arch =
    one tiny layer with /arch=<foreign>."""
    native = host_arch()
    foreign = _foreign_arch(native)
    lw = oci.LayoutWriter(path)

    def arch_layer(a):
        return oci.Layer(oci.build_tar(lambda tw: tw.add("arch", data=a + "\n")))

    manifests = []
    for arch, layers in ((native, [base_layer] + ([arch_layer(native)] if archfile else [])),
                         (foreign, [arch_layer(foreign)])):
        descs = [lw.add_blob(l.blob, l.media_type) for l in layers]
        cfg = oci.image_config([l.diff_id for l in layers], arch=arch, env=BUSYBOX_ENV,
                               cmd=["sh"] if arch == native else ["/arch"])
        if arch == "arm64":
            cfg["variant"] = "v8"
        cdesc = lw.add_json(cfg, oci.MT_OCI_CONFIG)
        mdesc = lw.add_json(oci.image_manifest(cdesc, descs), oci.MT_OCI_MANIFEST)
        plat = {"architecture": arch, "os": "linux"}
        if arch == "arm64":
            plat["variant"] = "v8"
        mdesc["platform"] = plat
        manifests.append(mdesc)
    idx = {"schemaVersion": 2, "mediaType": oci.MT_OCI_INDEX, "manifests": manifests}
    idesc = lw.add_json(idx, oci.MT_OCI_INDEX)
    name = "multiarch-archfile" if archfile else "multiarch"
    idesc["annotations"] = oci.ref_annotations(name)
    lw.write_index([idesc])
    checks = busybox_checks()
    if archfile:
        checks.append(check("/arch", type="file", content=native + "\n"))
    else:
        checks.append(check("/arch", exists=False))
    write_expect(path, checks, {"native_arch": native, "foreign_arch": foreign,
                                "foreign_checks": [check("/arch", type="file",
                                                         content=foreign + "\n"),
                                                   check("/bin/busybox", exists=False)]})


# ---------------------------------------------------------------------------- layered

def _cap_net_bind_service():
    # struct vfs_cap_data, revision 2, effective flag set; CAP_NET_BIND_SERVICE = 10.
    return struct.pack("<IIIII", 0x02000000 | 0x000001, 1 << 10, 0, 0, 0)


def _pseudo_random(n, seed=b"boxlite"):
    out = bytearray()
    h = seed
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


def build_layered(path, base_layer):
    C = []  # expectations
    cap = _cap_net_bind_service()
    big = _pseudo_random(1 << 20)
    long255 = "L" * 251 + ".txt"
    gnu_long = "gnu-long-" + "n" * 150
    gnu_target = "/data/" + "t" * 150
    sparse_size = 8 << 20
    sparse_segments = [(0, b"BEGIN"), (4 << 20, b"MIDDLE"), (sparse_size - 3, b"END")]

    def l2(tw):
        tw.add("data", "dir")
        tw.add("data/keep.txt", data="keep\n")
        tw.add("data/remove-me.txt", data="remove\n")
        tw.add("data/dir-to-remove", "dir")
        tw.add("data/dir-to-remove/a", data="a\n")
        tw.add("data/dir-to-remove/sub", "dir")
        tw.add("data/dir-to-remove/sub/b", data="b\n")
        for d in ("opaque-a", "opaque-b"):
            tw.add("data/" + d, "dir")
            tw.add("data/%s/old1" % d, data="old1\n")
            tw.add("data/%s/oldsub" % d, "dir")
            tw.add("data/%s/oldsub/old2" % d, data="old2\n")
        tw.add("data/readd-a.txt", data="old-a\n")
        tw.add("data/readd-b.txt", data="old-b\n")
        tw.add("data/modify.txt", data="v1\n")
        tw.add("data/file-to-dir", data="was a file\n")
        tw.add("data/dir-to-file", "dir")
        tw.add("data/dir-to-file/child", data="child\n")
        tw.add("data/realdir", "dir")
        tw.add("data/linkdir", "symlink", linkname="realdir")
        tw.add("data/hardlink-src", data="shared inode\n", mode=0o640)
        tw.add("data/hardlink-dst", "hardlink", linkname="data/hardlink-src")
        tw.add("data/hardlink-dst2", "hardlink", linkname="data/hardlink-src")
        tw.add("data/symlink-rel", "symlink", linkname="keep.txt")
        tw.add("data/symlink-abs", "symlink", linkname="/data/keep.txt")
        tw.add("data/symlink-dangling", "symlink", linkname="/nonexistent/target")
        tw.add("data/symlink-dir", "symlink", linkname="/etc")
        tw.add("data/fifo", "fifo", mode=0o644)
        tw.add("data/null", "chardev", mode=0o666, devmajor=1, devminor=3)
        tw.add("data/setuid", data="#!/bin/sh\necho setuid\n", mode=0o4755)
        tw.add("data/setgid", data="#!/bin/sh\necho setgid\n", mode=0o2755)
        tw.add("data/sticky", "dir", mode=0o1777)
        tw.add("data/cap", data="#!/bin/sh\necho cap\n", mode=0o755,
               xattrs={"security.capability": cap})
        tw.add("data/user-xattr", data="xattr\n", xattrs={"user.boxlite": b"hello"})
        tw.add_sparse("data/sparse", sparse_size, sparse_segments)
        tw.add("data/owned-1000", data="owned\n", uid=1000, gid=1000)
        tw.add("data/owned-dir", "dir", mode=0o750, uid=1000, gid=1000)
        tw.add("data/owned-dir/inner", data="inner\n", uid=1000, gid=1000, mode=0o600)
        tw.add("data/mtime-epoch", data="epoch\n", mtime=0)
        tw.add("data/mtime-2038", data="2038\n", mtime=2 ** 31 + 100)
        tw.add("data/mtime-2100", data="2100\n", mtime=4102444800)
        tw.add("data/mtime-frac", data="frac\n", mtime="1700000000.123456789")
        tw.add("data/mtime-negative", data="1969\n", mtime=-86400)
        tw.add("data/dir-mtime", "dir", mtime=1000000000)
        tw.add("data/dir-mtime/child", data="child\n")
        tw.add("data/unicode-ü-名前.txt", data="unicode\n")
        tw.add("data/with space.txt", data="space\n")
        tw.add("data/" + long255, data="255\n")
        tw.add("data/big.bin", data=big)
        tw.add("data/empty-file", data=b"")
        tw.add("data/empty-dir", "dir", mode=0o711)
        tw.add("data/mode-0600", data="0600\n", mode=0o600)
        tw.add("data/mode-0000", data="0000\n", mode=0o000)
        tw.add("data/new-in-l3-victim", data="removed by layer 4\n")

    def l3(tw):  # GNU format: long names via 'L'/'K' records
        tw.add("data/.wh.remove-me.txt", data=b"")
        tw.add("data/.wh.dir-to-remove", data=b"")
        tw.add("data/opaque-a/.wh..wh..opq", data=b"")
        tw.add("data/opaque-a/new1", data="new1\n")
        tw.add("data/opaque-a/newsub", "dir")
        tw.add("data/opaque-a/newsub/new2", data="new2\n")
        # New entries before the opaque marker, as a sorted writer emits them
        # ('-' < '.'): the marker hides lower layers only, never this layer.
        tw.add("data/opaque-b/-early-new", data="early\n")
        tw.add("data/opaque-b/.wh..wh..opq", data=b"")
        tw.add("data/opaque-b/late-new", data="late\n")
        tw.add("data/.wh.readd-a.txt", data=b"")
        tw.add("data/readd-a.txt", data="new-a\n")
        tw.add("data/readd-b.txt", data="new-b\n")
        tw.add("data/.wh.readd-b.txt", data=b"")  # whiteouts never hide their own layer
        tw.add("data/modify.txt", data="v2\n")
        tw.add("data/file-to-dir", "dir")
        tw.add("data/file-to-dir/child", data="now a dir\n")
        tw.add("data/dir-to-file", data="now a file\n")
        tw.add("data/linkdir/through-link.txt", data="via symlinked parent\n")
        tw.add("data/" + gnu_long, data="gnu long\n")
        tw.add("data/gnu-long-link", "symlink", linkname=gnu_target)
        tw.add("data/l3-owned", data="l3\n", uid=1000, gid=1000)
        tw.add("data/.wh.new-in-l3-victim", data=b"")
        tw.add("data/new-in-l3", data="l3 file\n")

    def l4(tw):
        tw.add("data/.wh.new-in-l3", data=b"")
        tw.add("data/uncompressed.txt", data="from an uncompressed layer\n")

    layers = [base_layer,
              oci.Layer(oci.build_tar(l2)),
              oci.Layer(oci.build_tar(l3, fmt="gnu")),
              oci.Layer(oci.build_tar(l4), compression="none")]
    oci.write_simple_image(path, "layered", layers, arch=host_arch(), env=BUSYBOX_ENV,
                           cmd=["sh"])

    C += busybox_checks()
    C += [
        check("/data", type="dir", mode=0o755),
        check("/data/keep.txt", type="file", content="keep\n", mode=0o644, uid=0, gid=0),
        check("/data/remove-me.txt", exists=False),
        check("/data/dir-to-remove", exists=False),
        check("/data/dir-to-remove/a", exists=False),
        check("/data/opaque-a", type="dir", entries=["new1", "newsub"]),
        check("/data/opaque-a/newsub/new2", type="file", content="new2\n"),
        check("/data/opaque-a/old1", exists=False),
        check("/data/opaque-a/oldsub", exists=False),
        check("/data/opaque-b", type="dir", entries=["-early-new", "late-new"]),
        check("/data/opaque-b/-early-new", type="file", content="early\n"),
        check("/data/readd-a.txt", type="file", content="new-a\n"),
        check("/data/readd-b.txt", type="file", content="new-b\n"),
        check("/data/modify.txt", type="file", content="v2\n"),
        check("/data/file-to-dir", type="dir"),
        check("/data/file-to-dir/child", type="file", content="now a dir\n"),
        check("/data/dir-to-file", type="file", content="now a file\n"),
        check("/data/realdir/through-link.txt", type="file", content="via symlinked parent\n"),
        check("/data/linkdir", type="symlink", target="realdir"),
        check("/data/hardlink-src", type="file", content="shared inode\n", mode=0o640,
              nlink=3),
        check("/data/hardlink-dst", type="file", same_inode_as="/data/hardlink-src"),
        check("/data/hardlink-dst2", type="file", same_inode_as="/data/hardlink-src"),
        check("/data/symlink-rel", type="symlink", target="keep.txt"),
        check("/data/symlink-abs", type="symlink", target="/data/keep.txt"),
        check("/data/symlink-dangling", type="symlink", target="/nonexistent/target"),
        check("/data/symlink-dir", type="symlink", target="/etc"),
        check("/data/fifo", type="fifo", mode=0o644),
        check("/data/null", type="chardev", rdev=[1, 3], mode=0o666),
        check("/data/setuid", type="file", mode=0o4755, uid=0),
        check("/data/setgid", type="file", mode=0o2755),
        check("/data/sticky", type="dir", mode=0o1777),
        check("/data/cap", type="file", mode=0o755, xattrs={"security.capability": cap}),
        check("/data/user-xattr", type="file", xattrs={"user.boxlite": b"hello"}),
        check("/data/sparse", type="file", size=sparse_size, data_at=sparse_segments,
              sha256=_sparse_sha256(sparse_size, sparse_segments),
              max_allocated=1 << 20),
        check("/data/owned-1000", type="file", uid=1000, gid=1000, content="owned\n"),
        check("/data/owned-dir", type="dir", uid=1000, gid=1000, mode=0o750),
        check("/data/owned-dir/inner", type="file", uid=1000, gid=1000, mode=0o600),
        check("/data/mtime-epoch", mtime=0),
        check("/data/mtime-2038", mtime=2 ** 31 + 100),
        check("/data/mtime-2100", mtime=4102444800),
        check("/data/mtime-frac", mtime_ns=1700000000123456789),
        check("/data/mtime-negative", mtime=-86400),
        check("/data/dir-mtime", type="dir", mtime=1000000000),
        check("/data/keep.txt", mtime=oci.DEFAULT_MTIME),
        check("/data/unicode-ü-名前.txt", type="file", content="unicode\n"),
        check("/data/with space.txt", type="file", content="space\n"),
        check("/data/" + long255, type="file", content="255\n"),
        check("/data/big.bin", type="file", size=len(big), sha256=hashlib.sha256(big).hexdigest()),
        check("/data/empty-file", type="file", size=0),
        check("/data/empty-dir", type="dir", mode=0o711, entries=[]),
        check("/data/mode-0600", type="file", mode=0o600),
        check("/data/mode-0000", type="file", mode=0o000, content="0000\n"),
        check("/data/" + gnu_long, type="file", content="gnu long\n"),
        check("/data/gnu-long-link", type="symlink", target=gnu_target),
        check("/data/l3-owned", uid=1000, gid=1000),
        check("/data/new-in-l3-victim", exists=False),
        check("/data/new-in-l3", exists=False),
        check("/data/uncompressed.txt", type="file", content="from an uncompressed layer\n"),
    ]
    write_expect(path, C)


def _sparse_sha256(size, segments):
    h = hashlib.sha256()
    pos = 0
    zero = b"\0" * (1 << 20)
    for off, data in segments + [(size, b"")]:
        gap = off - pos
        while gap > 0:
            n = min(gap, len(zero))
            h.update(zero[:n])
            gap -= n
        h.update(data)
        pos = off + len(data)
    return h.hexdigest()


# ---------------------------------------------------------------------------- debian-python

def build_debian_python(path, deb_cache_dir):
    with open(os.path.join(deb_cache_dir, "layer.json")) as f:
        meta = json.load(f)
    lw = oci.LayoutWriter(path)
    ldesc = lw.link_blob(os.path.join(deb_cache_dir, "layer.tar.gz"), meta["digest"],
                         meta["size"], oci.MT_OCI_LAYER_GZIP)
    cfg = oci.image_config([meta["diff_id"]], arch=host_arch(),
                           env=["PATH=" + oci.DEFAULT_PATH, "LANG=C.UTF-8"], cmd=["python3"])
    cdesc = lw.add_json(cfg, oci.MT_OCI_CONFIG)
    mdesc = lw.add_json(oci.image_manifest(cdesc, [ldesc]), oci.MT_OCI_MANIFEST)
    top = dict(mdesc)
    top["annotations"] = oci.ref_annotations("debian-python")
    top["platform"] = {"architecture": host_arch(), "os": "linux"}
    lw.write_index([top])
    write_expect(path, [check("/usr/bin/python3", type="symlink"),
                        check("/bin", type="symlink", target="usr/bin"),
                        check("/etc/debian_version", type="file"),
                        check("/var/lib/apt/lists", type="dir", entries=[])],
                 {"python_version": meta.get("python_version")})


# ---------------------------------------------------------------------------- python-sci

PIP_PLATFORMS = {"amd64": "x86_64", "arm64": "aarch64"}


def build_python_sci(path, deb_cache_dir, requirements):
    """debian-python plus a second layer with the wheels of `requirements` (numpy,
    matplotlib, pip...) in /usr/local/lib/python3.X/dist-packages, fetched from PyPI
    for the image's CPython. pip installs into the system as in the python:slim images
    (PEP 668's marker is overridden by PIP_BREAK_SYSTEM_PACKAGES)."""
    with open(os.path.join(deb_cache_dir, "layer.json")) as f:
        base = json.load(f)
    pyver = ".".join(base["python_version"].split(".")[:2])
    machine = PIP_PLATFORMS.get(host_arch())
    if machine is None:
        raise RuntimeError("python-sci: no wheels for %s" % host_arch())
    site = "usr/local/lib/python%s/dist-packages" % pyver
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as work:
        stage = os.path.join(work, "stage")
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
               "--target", stage, "--no-deps", "--only-binary=:all:", "--implementation", "cp",
               "--python-version", pyver, "-r", requirements]
        for tag in ("manylinux_2_28", "manylinux_2_17", "manylinux2014"):
            cmd += ["--platform", "%s_%s" % (tag, machine)]
        subprocess.run(cmd + ["--no-compile"], check=True, stdout=sys.stderr)
        # Console scripts name the host's interpreter: `python3 -m pip` is the way in.
        shutil.rmtree(os.path.join(stage, "bin"), ignore_errors=True)
        extra = [("root/.cache/matplotlib", _matplotlib_font_cache(stage, work))]
        if sys.version_info[:2] == tuple(int(x) for x in pyver.split(".")):
            # Byte code the guest's CPython takes whatever the files' times (the layer
            # fixes them): importing numpy and matplotlib under TCG is slow enough.
            subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                            "--invalidation-mode", "unchecked-hash", stage],
                           check=True, stdout=sys.stderr)

        def owned_by_root(info):
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = oci.DEFAULT_MTIME
            return info

        tar_path = os.path.join(work, "layer.tar")
        with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
            parts = site.split("/")
            for i in range(1, len(parts)):
                parent = tarfile.TarInfo("/".join(parts[:i]))
                parent.type, parent.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(owned_by_root(parent))
            tar.add(stage, site, filter=owned_by_root)
            for dest, src in extra:
                tar.add(src, dest, filter=owned_by_root)
        gz_path = os.path.join(work, "layer.tar.gz")
        diff_id, digest, size = oci.gzip_file_streaming(tar_path, gz_path, level=1)
        lw = oci.LayoutWriter(path)
        layers = [lw.link_blob(os.path.join(deb_cache_dir, "layer.tar.gz"), base["digest"],
                               base["size"], oci.MT_OCI_LAYER_GZIP),
                  lw.link_blob(gz_path, "sha256:" + digest, size, oci.MT_OCI_LAYER_GZIP)]
    env = ["PATH=" + oci.DEFAULT_PATH, "LANG=C.UTF-8", "PIP_BREAK_SYSTEM_PACKAGES=1"]
    cfg = oci.image_config([base["diff_id"], "sha256:" + diff_id], arch=host_arch(), env=env,
                           cmd=["python3"])
    cdesc = lw.add_json(cfg, oci.MT_OCI_CONFIG)
    mdesc = lw.add_json(oci.image_manifest(cdesc, layers), oci.MT_OCI_MANIFEST)
    top = dict(mdesc)
    top["annotations"] = oci.ref_annotations("python-sci")
    top["platform"] = {"architecture": host_arch(), "os": "linux"}
    lw.write_index([top])
    write_expect(path, [check("/usr/bin/python3", type="symlink"),
                        check("/" + site + "/matplotlib", type="dir"),
                        check("/" + site + "/numpy", type="dir"),
                        check("/" + site + "/pip", type="dir")],
                 {"python_version": base["python_version"]})


def _matplotlib_font_cache(stage, work):
    """A directory with matplotlib's font list for the guest (its own fonts only), made
    by the host's Python from the staged wheels: without it the first
    `import matplotlib.pyplot` in a box scans the fonts, some 15 s under TCG."""
    cache = os.path.join(work, "mplcache")
    os.makedirs(cache)
    env = dict(os.environ, PYTHONPATH=stage, MPLCONFIGDIR=cache, MPLBACKEND="Agg")
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], check=True,
                   env=env, cwd=work, stdout=sys.stderr)
    for name in os.listdir(cache):
        p = os.path.join(cache, name)
        if not name.startswith("fontlist-"):
            os.unlink(p) if os.path.isfile(p) else shutil.rmtree(p)
            continue
        with open(p) as f:
            doc = json.load(f)
        # matplotlib's own fonts are named relative to its data; the host's are dropped.
        for key in ("ttflist", "afmlist"):
            doc[key] = [font for font in doc[key] if not os.path.isabs(font["fname"])]
        with open(p, "w") as f:
            json.dump(doc, f)
    return cache


# ---------------------------------------------------------------------------- desktop

DESKTOP_NAME = "boxlite/desktop"
DESKTOP_ENV = ["PATH=" + oci.DEFAULT_PATH, "LANG=C.UTF-8", "DISPLAY=:0"]


def desktop_files_layer(files):
    """The small top layer of the desktop image: files = [(path_in_image, host_path,
    mode)] (boxlite-desktopd, the start scripts, the JWM configuration)."""
    def entries(tw):
        dirs = set()
        for dest, _, _ in files:
            d = dest.rsplit("/", 1)[0]
            while d:
                dirs.add(d)
                d = d.rpartition("/")[0]
        for d in sorted(dirs):
            tw.add(d, "dir", mode=0o755)
        for dest, src, mode in sorted(files):
            with open(src, "rb") as f:
                tw.add(dest, "file", data=f.read(), mode=mode)
    return oci.Layer(oci.build_tar(entries))


def _package_image_config(diff_ids, env, label):
    return oci.image_config(diff_ids, arch=host_arch(), env=env, cmd=["bash"],
                            extra={"config": {"Env": env, "Cmd": ["bash"],
                                              "Labels": {label: "1"}}})


def _build_package_image(path, rootfs_dir, files, short_name, env, label, checks):
    """An image of two layers as an OCI layout: a package layer made by desktop.sh
    (rootfs_dir) and the small files layer. Returns the manifest descriptor."""
    with open(os.path.join(rootfs_dir, "layer.json")) as f:
        meta = json.load(f)
    top = desktop_files_layer(files)
    lw = oci.LayoutWriter(path)
    descs = [lw.link_blob(os.path.join(rootfs_dir, "layer.tar.gz"), meta["digest"],
                          meta["size"], oci.MT_OCI_LAYER_GZIP),
             lw.add_blob(top.blob, top.media_type)]
    cdesc = lw.add_json(_package_image_config([meta["diff_id"], top.diff_id], env, label),
                        oci.MT_OCI_CONFIG)
    mdesc = lw.add_json(oci.image_manifest(cdesc, descs), oci.MT_OCI_MANIFEST)
    index_entry = dict(mdesc)
    index_entry["annotations"] = oci.ref_annotations(short_name)
    index_entry["platform"] = {"architecture": host_arch(), "os": "linux"}
    lw.write_index([index_entry])
    checks = list(checks)
    for dest, _, mode in files:
        checks.append(check("/" + dest, type="file", mode=mode))
    write_expect(path, checks, {"packages": meta.get("packages", []),
                                "size": meta["size"] + len(top.blob),
                                "uncompressed_size": meta.get("tar_size", 0) + len(top.tar)})
    return mdesc


def build_desktop(path, rootfs_dir, files):
    """The desktop image as an OCI layout: the package layer of desktop.sh (rootfs_dir)
    and the files layer. Returns the manifest descriptor."""
    checks = [check("/usr/bin/Xvfb", type="file"), check("/usr/bin/jwm", type="file"),
              check("/usr/bin/xterm", type="file"), check("/usr/bin/x11vnc", type="file"),
              check("/usr/bin/chromium", type="file"),
              check("/usr/share/novnc/vnc.html", type="file"),
              check("/etc/jwm/system.jwmrc", type="file")]
    return _build_package_image(path, rootfs_dir, files, "desktop", DESKTOP_ENV,
                                "org.boxlite.desktop", checks)


def build_image_tar(out_path, layout_path, name=DESKTOP_NAME):
    """NAME:latest (boxlite/desktop, boxlite/browser) as a docker-save + OCI-layout tarball
    (the install form: <data dir>/images/<short name>.tar), made from its layout; layers
    stay gzip'd."""
    with open(os.path.join(layout_path, "index.json")) as f:
        top = json.load(f)["manifests"][0]

    def blob(desc):
        return os.path.join(layout_path, "blobs", "sha256", desc["digest"].split(":", 1)[1])

    with open(blob(top)) as f:
        man = json.load(f)
    with open(blob(man["config"])) as f:
        cfg = json.load(f)
    layers = [{"path": blob(l), "media_type": l["mediaType"], "digest": l["digest"],
               "size": l["size"]} for l in man["layers"]]
    return oci.write_docker_save_archive(out_path, name + ":latest", layers, cfg)


# ---------------------------------------------------------------------------- browser

BROWSER_NAME = "boxlite/browser"
BROWSER_ENV = ["PATH=" + oci.DEFAULT_PATH, "LANG=C.UTF-8"]


def build_browser(path, rootfs_dir, files):
    """The browser image (BrowserBox's) as an OCI layout: its package layer (desktop.sh
    with browser/packages.txt) and the files layer. Returns the manifest descriptor."""
    checks = [check("/usr/bin/chromium", type="file"),
              check("/usr/lib/chromium/chromium", type="file"),
              check("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", type="file")]
    return _build_package_image(path, rootfs_dir, files, "browser", BROWSER_ENV,
                                "org.boxlite.browser", checks)
