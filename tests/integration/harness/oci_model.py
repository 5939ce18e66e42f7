# Reference model of image unpacking for the test images: a strict tar reader, an OCI
# layout loader that verifies everything a runtime must verify, and an in-memory root
# filesystem that applies layers with the policy written in hostile.json ("policy").
# It runs no privileged operation and never touches the host filesystem except to read
# layouts, so it can unpack hostile images safely.
#
# Used by test_harness.py to prove that the expectations shipped with the test images
# (expect.json, hostile.json) are consistent, and usable by product tests to evaluate the
# same checks against a real box through their own Accessor.
#
# Not thread-safe: one Tree per thread.

import base64
import hashlib
import json
import os
import platform as _platform
import shutil
import stat as _stat
import subprocess
import zlib

BLOCK = 512
MAX_SYMLINKS = 40
MAX_NAME = 255
MAX_TARGET = 4095

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPES = {"application/vnd.oci.image.config.v1+json",
                "application/vnd.docker.container.image.v1+json"}
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "none",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
}


class ImageError(Exception):
    """kind: path, tar, compression, digest, size, diff_id, missing_blob, config,
    media_type, platform, hardlink, whiteout, symlink, manifest."""

    def __init__(self, kind, msg):
        super().__init__("%s: %s" % (kind, msg))
        self.kind = kind


def host_arch():
    m = _platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64", "i686": "386"}.get(m, m)


# ---------------------------------------------------------------------------- tar

class Entry:
    __slots__ = ("name", "type", "mode", "uid", "gid", "mtime_ns", "linkname", "devmajor",
                 "devminor", "xattrs", "data", "realsize", "segments")

    def __repr__(self):
        return "Entry(%r, %s)" % (self.name, self.type)


_TYPES = {b"0": "file", b"\0": "file", b"7": "file", b"1": "hardlink", b"2": "symlink",
          b"3": "chardev", b"4": "blockdev", b"5": "dir", b"6": "fifo"}


def _num(field, what):
    if field and field[0] & 0x80:  # base-256
        v = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        if field[0] & 0x40:
            v -= 1 << (8 * len(field) - 1)
        return v
    s = field.replace(b"\0", b" ").strip()
    if not s:
        return 0
    try:
        if any(c not in b"01234567" for c in s):
            raise ValueError
        return int(s, 8)
    except ValueError:
        raise ImageError("tar", "bad numeric field %s: %r" % (what, field))


def _parse_pax(payload):
    recs = {}
    pos = 0
    while pos < len(payload):
        if payload[pos:] .strip(b"\0") == b"":
            break
        sp = payload.find(b" ", pos)
        if sp < 0:
            raise ImageError("tar", "bad PAX record")
        try:
            n = int(payload[pos:sp])
        except ValueError:
            raise ImageError("tar", "bad PAX record length")
        if n <= sp - pos + 1 or pos + n > len(payload) or payload[pos + n - 1:pos + n] != b"\n":
            raise ImageError("tar", "bad PAX record length %d" % n)
        rec = payload[sp + 1:pos + n - 1]
        k, eq, v = rec.partition(b"=")
        if not eq or not k:
            raise ImageError("tar", "bad PAX record %r" % rec[:40])
        recs[k.decode("utf-8", "surrogateescape")] = v
        pos += n
    return recs


def _pax_int(v, what, lo=0, hi=(1 << 63) - 1):
    try:
        if not v or any(c not in b"0123456789" for c in v.lstrip(b"-")):
            raise ValueError
        n = int(v)
    except ValueError:
        raise ImageError("tar", "bad PAX %s %r" % (what, v[:30]))
    if n < lo or n > hi:
        raise ImageError("tar", "PAX %s out of range: %s" % (what, v[:30]))
    return n


def _pax_time_ns(v):
    s = v.decode("ascii", "replace")
    neg = s.startswith("-")
    whole, _, frac = s.lstrip("-").partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ImageError("tar", "bad PAX mtime %r" % s)
    ns = int(whole) * 10 ** 9 + int((frac + "000000000")[:9] or 0)
    return -ns if neg else ns


def read_tar(data):
    """Parses a whole tar stream strictly. Returns a list of Entry."""
    out = []
    pos = 0
    n = len(data)
    pax = {}
    longname = longlink = None
    while True:
        if pos == n:
            if pax or longname is not None or longlink is not None:
                raise ImageError("tar", "archive ends after an extended header")
            return out  # no end marker: complete archive
        if pos + BLOCK > n:
            raise ImageError("tar", "truncated header at %d" % pos)
        blk = data[pos:pos + BLOCK]
        if blk == b"\0" * BLOCK:
            return out
        stored = _num(blk[148:156], "chksum")
        u = sum(blk[:148]) + 8 * 32 + sum(blk[156:])
        s = sum(b - 256 if b > 127 else b for b in blk[:148] + b" " * 8 + blk[156:])
        if stored not in (u, s):
            raise ImageError("tar", "bad header checksum at %d" % pos)
        typeflag = blk[156:157]
        size = _num(blk[124:136], "size")
        if typeflag not in (b"x", b"g", b"L", b"K") and "size" in pax:
            size = _pax_int(pax["size"], "size")
        pos += BLOCK
        if size < 0 or pos + size > n:
            raise ImageError("tar", "truncated data (%d bytes at %d, stream %d)" % (size, pos, n))
        payload = data[pos:pos + size] if typeflag not in (b"1", b"2", b"3", b"4", b"5",
                                                         b"6") else b""
        pos += size + (-size % BLOCK)
        if typeflag == b"x":
            pax = _parse_pax(payload)
            continue
        if typeflag == b"g":
            _parse_pax(payload)
            continue
        if typeflag == b"L":
            longname = payload.split(b"\0", 1)[0]
            continue
        if typeflag == b"K":
            longlink = payload.split(b"\0", 1)[0]
            continue
        if typeflag not in _TYPES:
            raise ImageError("tar", "unsupported entry type %r" % typeflag)
        e = Entry()
        name = blk[0:100].split(b"\0", 1)[0]
        if blk[257:263] == b"ustar\0":
            prefix = blk[345:500].split(b"\0", 1)[0]
            if prefix:
                name = prefix + b"/" + name
        if longname is not None:
            name = longname
        if "path" in pax:
            # A NUL ends a PAX name, as in every C reader (libarchive keeps the part before).
            name = pax["path"].split(b"\0", 1)[0]
        link = blk[157:257].split(b"\0", 1)[0]
        if longlink is not None:
            link = longlink
        if "linkpath" in pax:
            link = pax["linkpath"].split(b"\0", 1)[0]
        if b"\0" in name or b"\0" in link:
            raise ImageError("path", "NUL byte in name %r" % name[:60])
        e.type = _TYPES[typeflag]
        if e.type == "file" and name.endswith(b"/"):
            e.type = "dir"
        e.mode = _num(blk[100:108], "mode") & 0o7777
        e.uid = _pax_int(pax["uid"], "uid") if "uid" in pax else _num(blk[108:116], "uid")
        e.gid = _pax_int(pax["gid"], "gid") if "gid" in pax else _num(blk[116:124], "gid")
        e.mtime_ns = (_pax_time_ns(pax["mtime"]) if "mtime" in pax
                      else _num(blk[136:148], "mtime") * 10 ** 9)
        e.linkname = link
        e.devmajor = _num(blk[329:337], "devmajor")
        e.devminor = _num(blk[337:345], "devminor")
        e.xattrs = {k[len("SCHILY.xattr."):]: v for k, v in pax.items()
                    if k.startswith("SCHILY.xattr.")}
        e.data = payload if e.type == "file" else b""
        e.realsize = None
        e.segments = None
        if "GNU.sparse.major" in pax or "GNU.sparse.map" in pax:
            if pax.get("GNU.sparse.major") != b"1" or pax.get("GNU.sparse.minor") != b"0":
                raise ImageError("tar", "unsupported GNU sparse format")
            name = pax.get("GNU.sparse.name", name)
            e.realsize = _pax_int(pax.get("GNU.sparse.realsize", b""), "sparse realsize")
            e.segments = _sparse_10(payload, e.realsize)
            e.data = None
        e.name = name
        out.append(e)
        pax = {}
        longname = longlink = None


def _sparse_10(payload, realsize):
    lines = []
    p = 0
    while True:
        nl = payload.find(b"\n", p)
        if nl < 0:
            raise ImageError("tar", "bad sparse map")
        lines.append(payload[p:nl])
        p = nl + 1
        if len(lines) >= 1 and len(lines) == 1 + 2 * _pax_int(lines[0], "sparse count"):
            break
    data_start = p + (-p % BLOCK)
    count = _pax_int(lines[0], "sparse count")
    segs = []
    dp = data_start
    last_end = 0
    for i in range(count):
        off = _pax_int(lines[1 + 2 * i], "sparse offset")
        ln = _pax_int(lines[2 + 2 * i], "sparse length")
        if off < last_end or off + ln > realsize:
            raise ImageError("tar", "bad sparse map entry")
        if dp + ln > len(payload):
            raise ImageError("tar", "sparse data truncated")
        segs.append((off, payload[dp:dp + ln]))
        dp += ln
        last_end = off + ln
    return segs


# ---------------------------------------------------------------------------- decompress

def decompress(blob, compression):
    if compression == "none":
        return blob
    if compression == "gzip":
        out = []
        data = blob
        if not data:
            raise ImageError("compression", "empty gzip stream")
        while data:
            d = zlib.decompressobj(31)
            try:
                out.append(d.decompress(data))
                out.append(d.flush())
            except zlib.error as e:
                raise ImageError("compression", "gzip: %s" % e)
            if not d.eof:
                raise ImageError("compression", "gzip stream truncated")
            data = d.unused_data
            if data and not data.strip(b"\0"):
                break  # zero padding after the last member
        return b"".join(out)
    if compression == "zstd":
        zstd = shutil.which("zstd")
        if not zstd:
            raise RuntimeError("zstd CLI needed")
        p = subprocess.run([zstd, "-q", "-d", "-c"], input=blob, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise ImageError("compression", "zstd: " + p.stderr.decode(errors="replace"))
        return p.stdout
    raise ValueError(compression)


# ---------------------------------------------------------------------------- layout

class Image:
    def __init__(self, manifest_digest, manifest, config, layers):
        self.manifest_digest = manifest_digest
        self.manifest = manifest
        self.config = config
        self.layers = layers  # list of (descriptor, tar bytes)


class LayoutSource:
    """Reads blobs of an OCI image layout directory."""

    def __init__(self, path):
        self.path = path

    def index(self):
        with open(os.path.join(self.path, "index.json"), "rb") as f:
            return f.read()

    def blob(self, digest):
        algo, _, hexd = digest.partition(":")
        p = os.path.join(self.path, "blobs", algo, hexd)
        if algo != "sha256" or not hexd or "/" in hexd or not os.path.exists(p):
            raise ImageError("missing_blob", "blob %s not found" % digest)
        with open(p, "rb") as f:
            return f.read()


def fetch_verified(src, desc):
    data = src.blob(desc["digest"])
    if "sha256:" + hashlib.sha256(data).hexdigest() != desc["digest"]:
        raise ImageError("digest", "blob %s: content digest differs" % desc["digest"])
    if len(data) != desc.get("size"):
        raise ImageError("size", "blob %s: %d bytes, descriptor says %s"
                         % (desc["digest"], len(data), desc.get("size")))
    return data


def _json(data, kind, what):
    try:
        v = json.loads(data)
    except ValueError as e:
        raise ImageError(kind, "%s is not valid JSON: %s" % (what, e))
    if not isinstance(v, dict):
        raise ImageError(kind, "%s is not a JSON object" % what)
    return v


def load_image(src, arch=None, os_name="linux", top_desc=None):
    """Resolves, verifies and decompresses an image from `src` (LayoutSource or anything
    with blob(digest)). Raises ImageError."""
    arch = arch or host_arch()
    if top_desc is None:
        idx = _json(src.index(), "manifest", "index.json")
        mans = idx.get("manifests") or []
        if not mans:
            raise ImageError("manifest", "index.json has no manifests")
        top_desc = mans[0]
    desc = top_desc
    for _ in range(4):
        mt = desc.get("mediaType")
        data = fetch_verified(src, desc)
        doc = _json(data, "manifest", "manifest " + desc["digest"])
        mt = doc.get("mediaType") or mt
        if mt in (MT_OCI_INDEX, MT_DOCKER_LIST):
            match = [m for m in doc.get("manifests", [])
                     if (m.get("platform") or {}).get("os") == os_name
                     and (m.get("platform") or {}).get("architecture") == arch]
            if not match:
                raise ImageError("platform", "no manifest for %s/%s" % (os_name, arch))
            desc = match[0]
            continue
        if mt not in (MT_OCI_MANIFEST, MT_DOCKER_MANIFEST):
            raise ImageError("manifest", "unsupported manifest type %r" % mt)
        cdesc = doc.get("config") or {}
        if cdesc.get("mediaType") not in CONFIG_TYPES:
            raise ImageError("config", "config media type %r is not an image config"
                             % cdesc.get("mediaType"))
        lds = doc.get("layers") or []
        for l in lds:
            if l.get("mediaType") not in LAYER_TYPES:
                raise ImageError("media_type", "unsupported layer type %r" % l.get("mediaType"))
        config = _json(fetch_verified(src, cdesc), "config", "config")
        diff_ids = (config.get("rootfs") or {}).get("diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(lds):
            raise ImageError("diff_id", "config has %s diff_ids for %d layers"
                             % (len(diff_ids) if isinstance(diff_ids, list) else "no",
                                len(lds)))
        layers = []
        for l, did in zip(lds, diff_ids):
            blob = fetch_verified(src, l)
            tar = decompress(blob, LAYER_TYPES[l["mediaType"]])
            if "sha256:" + hashlib.sha256(tar).hexdigest() != did:
                raise ImageError("diff_id", "layer %s: uncompressed digest is not %s"
                                 % (l["digest"], did))
            layers.append((l, tar))
        return Image(desc["digest"], doc, config, layers)
    raise ImageError("manifest", "index nesting too deep")


# ---------------------------------------------------------------------------- tree

class Node:
    __slots__ = ("kind", "mode", "uid", "gid", "mtime_ns", "xattrs", "rdev", "target",
                 "data", "realsize", "segments", "children", "nlink")

    def __init__(self, kind, mode=0o755, uid=0, gid=0, mtime_ns=0):
        self.kind = kind
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.mtime_ns = mtime_ns
        self.xattrs = {}
        self.rdev = (0, 0)
        self.target = b""
        self.data = b""
        self.realsize = None
        self.segments = None
        self.children = {} if kind == "dir" else None
        self.nlink = 0

    def size(self):
        if self.kind == "symlink":
            return len(self.target)
        if self.kind != "file":
            return 0
        return self.realsize if self.segments is not None else len(self.data)

    def read(self, off, n):
        if self.segments is None:
            return self.data[off:off + n]
        end = min(off + n, self.realsize)
        if off >= end:
            return b""
        buf = bytearray(end - off)
        for so, sd in self.segments:
            lo, hi = max(so, off), min(so + len(sd), end)
            if lo < hi:
                buf[lo - off:hi - off] = sd[lo - so:hi - so]
        return bytes(buf)

    def allocated(self):
        if self.kind != "file":
            return 0
        segs = self.segments if self.segments is not None else [(0, self.data)]
        return sum(-(-len(d) // 4096) * 4096 for _, d in segs)


def clean(name, strict=True):
    """Lexical cleaning of an archive name into components. strict: a '..' that climbs
    above the root is an error (entry names, hardlink targets); otherwise it stays at the
    root (paths given to checks)."""
    out = []
    for c in name.split(b"/"):
        if c in (b"", b"."):
            continue
        if c == b"..":
            if out:
                out.pop()
            elif strict:
                raise ImageError("path", "%r escapes the image root" % name[:80])
            continue
        out.append(c)
    return out


class Tree:
    """An in-memory root filesystem that layers are applied to."""

    def __init__(self):
        self.root = Node("dir", 0o755)
        self.root.nlink = 1

    def resolve_dir(self, comps, create):
        """Resolves comps as a directory with chroot semantics. Returns the Node, or None
        when it does not exist (create=False) or is not a directory (create=False)."""
        stack = list(reversed(comps))
        chain = [self.root]
        links = 0
        while stack:
            c = stack.pop()
            if c in (b"", b"."):
                continue
            if c == b"..":
                if len(chain) > 1:
                    chain.pop()
                continue
            cur = chain[-1]
            child = cur.children.get(c)
            if child is None:
                if not create:
                    return None
                if len(c) > MAX_NAME:
                    raise ImageError("path", "name longer than %d bytes" % MAX_NAME)
                child = Node("dir", 0o755)
                self._attach(cur, c, child)
            if child.kind == "symlink":
                links += 1
                if links > MAX_SYMLINKS:
                    raise ImageError("symlink", "too many levels of symbolic links")
                if child.target.startswith(b"/"):
                    chain = [self.root]
                stack.extend(reversed(child.target.split(b"/")))
                continue
            if child.kind != "dir":
                if not create:
                    return None
                raise ImageError("path", "parent %r is not a directory" % c)
            chain.append(child)
        return chain[-1]

    def lookup(self, path):
        """lstat semantics: parents followed, last component not. None if missing."""
        comps = clean(path, strict=False)
        if not comps:
            return self.root
        try:
            parent = self.resolve_dir(comps[:-1], create=False)
        except ImageError:
            return None
        if parent is None:
            return None
        return parent.children.get(comps[-1])

    def _attach(self, parent, name, node):
        parent.children[name] = node
        node.nlink += 1

    def _detach(self, parent, name):
        node = parent.children.pop(name)
        stack = [node]
        first = True
        while stack:
            n = stack.pop()
            if first or n.kind != "dir":
                n.nlink -= 1
            first = False
            if n.kind == "dir":
                for ch in n.children.values():
                    if ch.kind != "dir":
                        ch.nlink -= 1
                    else:
                        stack.append(ch)
        return node

    def apply(self, entries):
        """Applies one layer's entries (from read_tar)."""
        # Phase 1: whiteouts, against the lower layers only.
        opaque = []
        for e in entries:
            comps = clean(e.name)
            for c in comps[:-1]:
                if c.startswith(b".wh."):
                    raise ImageError("whiteout", "whiteout prefix in a directory component "
                                     "of %r" % e.name[:80])
            if not comps or not comps[-1].startswith(b".wh."):
                continue
            base = comps[-1]
            if base == b".wh..wh..opq":
                d = self.resolve_dir(comps[:-1], create=False)
                if d is not None:
                    opaque.append(d)
                continue
            if base.startswith(b".wh..wh."):
                continue  # aufs metadata, no meaning here
            target = base[4:]
            if target in (b"", b".", b".."):
                raise ImageError("whiteout", "invalid whiteout %r" % e.name)
            d = self.resolve_dir(comps[:-1], create=False)
            if d is not None and target in d.children:
                self._detach(d, target)
        for d in opaque:
            for name in list(d.children):
                self._detach(d, name)
        # Phase 2: everything else, in order.
        for e in entries:
            comps = clean(e.name)
            if not comps:
                if e.type != "dir":
                    raise ImageError("path", "a %s cannot replace the image root" % e.type)
                continue  # a directory entry for the root itself: ignored
            if comps[-1].startswith(b".wh."):
                continue
            for c in comps:
                if len(c) > MAX_NAME:
                    raise ImageError("path", "name component of %d bytes" % len(c))
            parent = self.resolve_dir(comps[:-1], create=True)
            name = comps[-1]
            existing = parent.children.get(name)
            if e.type == "dir" and existing is not None and existing.kind == "dir":
                self._set_meta(existing, e)
                continue
            if e.type == "hardlink":
                tc = clean(e.linkname)
                tp = self.resolve_dir(tc[:-1], create=False) if tc else None
                target = tp.children.get(tc[-1]) if tp is not None else None
                if target is None:
                    raise ImageError("hardlink", "target %r does not exist" % e.linkname[:80])
                if target.kind == "dir":
                    raise ImageError("hardlink", "target %r is a directory" % e.linkname[:80])
                if existing is target:
                    continue
                if existing is not None:
                    self._detach(parent, name)
                self._attach(parent, name, target)
                continue
            if existing is not None:
                self._detach(parent, name)
            node = Node(e.type)
            self._set_meta(node, e)
            if e.type == "file":
                node.data = e.data if e.data is not None else b""
                node.realsize = e.realsize
                node.segments = e.segments
            elif e.type == "symlink":
                if not e.linkname:
                    raise ImageError("symlink", "empty target for %r" % e.name[:80])
                if len(e.linkname) > MAX_TARGET:
                    raise ImageError("symlink", "target of %d bytes" % len(e.linkname))
                node.target = e.linkname
            elif e.type in ("chardev", "blockdev"):
                node.rdev = (e.devmajor, e.devminor)
            self._attach(parent, name, node)

    @staticmethod
    def _set_meta(node, e):
        node.mode = e.mode
        node.uid = e.uid
        node.gid = e.gid
        node.mtime_ns = e.mtime_ns
        node.xattrs = dict(e.xattrs)


def build_rootfs(image):
    t = Tree()
    for _, tar in image.layers:
        t.apply(read_tar(tar))
    return t


def unpack_layout(path, arch=None):
    """load_image + build_rootfs for an OCI layout directory. Raises ImageError."""
    return build_rootfs(load_image(LayoutSource(path), arch=arch))


# ---------------------------------------------------------------------------- checks

class Stat:
    __slots__ = ("type", "mode", "uid", "gid", "size", "mtime_ns", "rdev", "nlink",
                 "identity", "allocated")


class ModelAccessor:
    def __init__(self, tree):
        self.tree = tree

    def lstat(self, path):
        n = self.tree.lookup(path)
        if n is None:
            return None
        s = Stat()
        s.type = n.kind
        s.mode, s.uid, s.gid, s.mtime_ns = n.mode, n.uid, n.gid, n.mtime_ns
        s.size, s.rdev, s.nlink, s.identity = n.size(), n.rdev, n.nlink, id(n)
        s.allocated = n.allocated()
        return s

    def readlink(self, path):
        return self.tree.lookup(path).target

    def read(self, path, off=0, n=None):
        node = self.tree.lookup(path)
        return node.read(off, node.size() if n is None else n)

    def sha256(self, path):
        node = self.tree.lookup(path)
        h = hashlib.sha256()
        size = node.size()
        pos = 0
        while pos < size:
            chunk = node.read(pos, 1 << 22)
            h.update(chunk)
            pos += len(chunk)
        return h.hexdigest()

    def listdir(self, path):
        return list(self.tree.lookup(path).children)

    def xattrs(self, path):
        return self.tree.lookup(path).xattrs


class HostAccessor:
    """The same checks against the real filesystem (for host_checks), relative to `root`
    ("/" for host paths). Paths are joined lexically: use it only where no symlink can
    point outside root."""

    def __init__(self, root="/"):
        self.root = os.fsencode(root)

    def _p(self, path):
        return os.path.join(self.root, path.lstrip(b"/"))

    def lstat(self, path):
        try:
            st = os.lstat(self._p(path))
        except OSError:
            return None
        s = Stat()
        m = st.st_mode
        s.type = ("dir" if _stat.S_ISDIR(m) else "symlink" if _stat.S_ISLNK(m) else
                  "file" if _stat.S_ISREG(m) else "fifo" if _stat.S_ISFIFO(m) else
                  "chardev" if _stat.S_ISCHR(m) else "blockdev" if _stat.S_ISBLK(m) else "?")
        s.mode, s.uid, s.gid = m & 0o7777, st.st_uid, st.st_gid
        s.size, s.mtime_ns, s.nlink = st.st_size, st.st_mtime_ns, st.st_nlink
        s.rdev = (os.major(st.st_rdev), os.minor(st.st_rdev))
        s.identity = (st.st_dev, st.st_ino)
        s.allocated = st.st_blocks * 512
        return s

    def readlink(self, path):
        return os.readlink(self._p(path))

    def read(self, path, off=0, n=None):
        with open(self._p(path), "rb") as f:
            f.seek(off)
            return f.read() if n is None else f.read(n)

    def sha256(self, path):
        h = hashlib.sha256()
        with open(self._p(path), "rb") as f:
            for b in iter(lambda: f.read(1 << 20), b""):
                h.update(b)
        return h.hexdigest()

    def listdir(self, path):
        return os.listdir(self._p(path))

    def xattrs(self, path):
        p = self._p(path)
        return {n: os.getxattr(p, n, follow_symlinks=False)
                for n in os.listxattr(p, follow_symlinks=False)}


def check_path(c):
    if "path_b64" in c:
        return base64.b64decode(c["path_b64"])
    return c["path"].encode("utf-8", "surrogateescape")


def evaluate(checks, acc):
    """Returns a list of failure messages (empty when every check holds)."""
    fails = []
    for c in checks:
        p = check_path(c)
        label = p.decode("utf-8", "backslashreplace")[:120]

        def fail(msg):
            fails.append("%s: %s" % (label, msg))

        st = acc.lstat(p)
        if not c.get("exists", True):
            if st is not None:
                fail("exists (%s), must not" % st.type)
            continue
        if st is None:
            fail("missing")
            continue
        if "type" in c and st.type != c["type"]:
            fail("type %s, want %s" % (st.type, c["type"]))
            continue
        if "mode" in c and st.mode != int(c["mode"], 8):
            fail("mode %04o, want %s" % (st.mode, c["mode"]))
        for k in ("uid", "gid", "size", "nlink"):
            if k in c and getattr(st, k) != c[k]:
                fail("%s %s, want %s" % (k, getattr(st, k), c[k]))
        if "mtime" in c and st.mtime_ns // 10 ** 9 != c["mtime"]:
            fail("mtime %s, want %s" % (st.mtime_ns / 1e9, c["mtime"]))
        if "mtime_ns" in c and st.mtime_ns != c["mtime_ns"]:
            fail("mtime_ns %s, want %s" % (st.mtime_ns, c["mtime_ns"]))
        if "rdev" in c and list(st.rdev) != list(c["rdev"]):
            fail("rdev %s, want %s" % (st.rdev, c["rdev"]))
        if "target" in c and acc.readlink(p) != c["target"].encode("utf-8", "surrogateescape"):
            fail("target %r, want %r" % (acc.readlink(p)[:60], c["target"][:60]))
        if "content" in c or "content_b64" in c:
            want = (base64.b64decode(c["content_b64"]) if "content_b64" in c
                    else c["content"].encode("utf-8"))
            got = acc.read(p)
            if got != want:
                fail("content %r, want %r" % (got[:60], want[:60]))
        if "sha256" in c and acc.sha256(p) != c["sha256"]:
            fail("sha256 differs")
        if "data_at" in c:
            for off, b64 in c["data_at"]:
                want = base64.b64decode(b64)
                got = acc.read(p, off, len(want))
                if got != want:
                    fail("at %d: %r, want %r" % (off, got, want))
        if "max_allocated" in c and st.allocated > c["max_allocated"]:
            fail("allocated %d > %d" % (st.allocated, c["max_allocated"]))
        if "same_inode_as" in c:
            other = acc.lstat(c["same_inode_as"].encode())
            if other is None or other.identity != st.identity:
                fail("not the same inode as %s" % c["same_inode_as"])
        if "entries" in c:
            got = sorted(acc.listdir(p))
            want = sorted(x.encode("utf-8", "surrogateescape") for x in c["entries"])
            if got != want:
                fail("entries %r, want %r" % (got[:20], want[:20]))
        if "entry_count" in c and len(acc.listdir(p)) != c["entry_count"]:
            fail("%d entries, want %d" % (len(acc.listdir(p)), c["entry_count"]))
        if "xattrs" in c:
            have = acc.xattrs(p)
            for k, v in c["xattrs"].items():
                if have.get(k) != base64.b64decode(v):
                    fail("xattr %s = %r" % (k, have.get(k)))
    return fails


def host_setup(case):
    """Creates a hostile case's host canaries (so an escape would succeed and show)."""
    for s in case.get("host_setup", []):
        if s["type"] == "dir":
            os.makedirs(s["path"], exist_ok=True)
        else:
            os.makedirs(os.path.dirname(s["path"]), exist_ok=True)
            with open(s["path"], "w") as f:
                f.write(s["content"])


def host_cleanup(case, canary_dir):
    """Removes what host_setup made for `case` (and anything an escape left there)."""
    d = os.path.join(canary_dir, case["name"])
    if os.path.isdir(d) and not os.path.islink(d):
        shutil.rmtree(d)
    try:
        os.rmdir(canary_dir)
    except OSError:
        pass
