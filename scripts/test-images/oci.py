# Small, dependency-free toolkit for crafting tar layers and OCI image layouts.
#
# TarWriter writes tar streams byte by byte (ustar headers, PAX extended headers,
# GNU long names, PAX 1.0 sparse files, raw bytes), so test images can contain
# exactly the entries a test needs, including malformed ones. LayoutWriter turns
# blobs into an OCI image layout (oci-layout, index.json, blobs/sha256/...).
# Everything is deterministic: fixed mtimes, gzip without timestamps.
#
# Not thread-safe; use one writer per thread.

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import zlib

BLOCK = 512
DEFAULT_MTIME = 1700000000  # 2023-11-14T22:13:20Z, fixed for reproducibility
CREATED = "2024-01-01T00:00:00Z"

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

TYPE_FLAGS = {
    "file": b"0",
    "hardlink": b"1",
    "symlink": b"2",
    "chardev": b"3",
    "blockdev": b"4",
    "dir": b"5",
    "fifo": b"6",
}


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def _b(s):
    if isinstance(s, bytes):
        return s
    return s.encode("utf-8", "surrogateescape")


def _octal_field(value, size):
    # An octal field of `size` bytes (size-1 digits + NUL); None if it does not fit.
    if value < 0:
        return None
    digits = "%o" % value
    if len(digits) > size - 1:
        return None
    return digits.rjust(size - 1, "0").encode() + b"\0"


def _pax_record(key, value):
    key = _b(key)
    value = _b(value)
    payload = b" " + key + b"=" + value + b"\n"
    n = len(payload) + 1
    while len(str(n).encode()) + len(payload) != n:
        n = len(str(n).encode()) + len(payload)
    return str(n).encode() + payload


def pax_payload(records):
    # records: list of (key, value) pairs, kept in order.
    return b"".join(_pax_record(k, v) for k, v in records)


def _pad(n):
    return (BLOCK - n % BLOCK) % BLOCK


class TarWriter:
    """Writes a tar stream into a binary file object.

    fmt: "pax" (ustar headers + PAX extended headers when needed) or "gnu"
    (GNU magic, 'L'/'K' long name records instead of PAX for long names).
    """

    def __init__(self, fileobj, fmt="pax"):
        assert fmt in ("pax", "gnu")
        self.f = fileobj
        self.fmt = fmt
        self._pax_seq = 0

    # -- low level -------------------------------------------------------
    def raw(self, data):
        self.f.write(data)

    def header(self, name, typeflag, size=0, mode=0o644, uid=0, gid=0, mtime=DEFAULT_MTIME,
               linkname=b"", uname=b"", gname=b"", devmajor=0, devminor=0, gnu_magic=None,
               size_field=None):
        """Returns one 512-byte header block. Fields that do not fit are left 0."""
        name = _b(name)
        linkname = _b(linkname)
        gnu = self.fmt == "gnu" if gnu_magic is None else gnu_magic
        h = bytearray(BLOCK)
        h[0:100] = name[:100].ljust(100, b"\0")
        h[100:108] = _octal_field(mode & 0o7777, 8)
        h[108:116] = _octal_field(uid, 8) or _octal_field(0, 8)
        h[116:124] = _octal_field(gid, 8) or _octal_field(0, 8)
        if size_field is not None:
            h[124:136] = size_field
        else:
            h[124:136] = _octal_field(size, 12) or _octal_field(0, 12)
        mt = int(mtime)
        h[136:148] = _octal_field(mt, 12) or _octal_field(0, 12)
        h[148:156] = b" " * 8
        h[156:157] = typeflag
        h[157:257] = linkname[:100].ljust(100, b"\0")
        if gnu:
            h[257:265] = b"ustar  \0"
        else:
            h[257:265] = b"ustar\x0000"
        h[265:297] = _b(uname)[:32].ljust(32, b"\0")
        h[297:329] = _b(gname)[:32].ljust(32, b"\0")
        h[329:337] = _octal_field(devmajor, 8) or _octal_field(0, 8)
        h[337:345] = _octal_field(devminor, 8) or _octal_field(0, 8)
        chk = sum(h)
        h[148:156] = ("%06o" % chk).encode() + b"\0 "
        return bytes(h)

    def member(self, header_block, data=b"", pad=True):
        self.f.write(header_block)
        self.f.write(data)
        if pad:
            self.f.write(b"\0" * _pad(len(data)))

    def pax_header(self, records, global_=False, name=None):
        payload = pax_payload(records)
        self._pax_seq += 1
        hname = name or ("PaxHeaders.0/entry%d" % self._pax_seq)
        hdr = self.header(hname, b"g" if global_ else b"x", size=len(payload), mode=0o644,
                          gnu_magic=False)
        self.member(hdr, payload)

    def gnu_long(self, typeflag, value):
        value = _b(value) + b"\0"
        hdr = self.header("././@LongLink", typeflag, size=len(value), mode=0o644, gnu_magic=True)
        self.member(hdr, value)

    # -- high level ------------------------------------------------------
    def add(self, name, type="file", data=b"", mode=None, uid=0, gid=0, mtime=DEFAULT_MTIME,
            linkname="", devmajor=0, devminor=0, xattrs=None, pax=None, uname="", gname=""):
        """Adds one entry. name/linkname: str or raw bytes. pax: extra (key, value) records."""
        name = _b(name)
        linkname = _b(linkname)
        data = _b(data) if type == "file" else b""
        if mode is None:
            mode = {"dir": 0o755, "symlink": 0o777}.get(type, 0o644)
        if type == "dir" and not name.endswith(b"/"):
            name += b"/"
        records = []
        long_name = len(name) > 100
        long_link = len(linkname) > 100
        if self.fmt == "gnu":
            if long_name:
                self.gnu_long(b"L", name)
            if long_link:
                self.gnu_long(b"K", linkname)
        else:
            if long_name:
                records.append(("path", name))
            if long_link:
                records.append(("linkpath", linkname))
        int_mtime = isinstance(mtime, int) and 0 <= mtime < 8 ** 11
        if not int_mtime:
            # str: written verbatim (exact fractions, e.g. "1700000000.123456789").
            records.append(("mtime", mtime if isinstance(mtime, str) else _fmt_time(mtime)))
        if uid >= 8 ** 7:
            records.append(("uid", str(uid)))
        if gid >= 8 ** 7:
            records.append(("gid", str(gid)))
        if len(data) >= 8 ** 11:
            records.append(("size", str(len(data))))
        for k, v in (xattrs or {}).items():
            records.append(("SCHILY.xattr." + k, v))
        records.extend(pax or [])
        if records:
            self.pax_header(records)
        hdr = self.header(name, TYPE_FLAGS[type], size=len(data), mode=mode, uid=uid, gid=gid,
                          mtime=mtime if int_mtime else 0,
                          linkname=linkname, uname=uname, gname=gname, devmajor=devmajor,
                          devminor=devminor)
        self.member(hdr, data)

    def add_sparse(self, name, realsize, segments, mode=0o644, uid=0, gid=0, mtime=DEFAULT_MTIME):
        """Adds a PAX 1.0 (GNU) sparse file: segments = [(offset, bytes)], sorted."""
        name = _b(name)
        d, _, base = name.rpartition(b"/")
        fake = (d + b"/" if d else b"") + b"GNUSparseFile.0/" + base
        mp = [str(len(segments)).encode()]
        for off, chunk in segments:
            mp += [str(off).encode(), str(len(chunk)).encode()]
        mapdata = b"\n".join(mp) + b"\n"
        mapdata += b"\0" * _pad(len(mapdata))
        payload = mapdata + b"".join(c for _, c in segments)
        self.pax_header([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"),
                         ("GNU.sparse.name", name), ("GNU.sparse.realsize", str(realsize))])
        hdr = self.header(fake, b"0", size=len(payload), mode=mode, uid=uid, gid=gid,
                          mtime=mtime)
        self.member(hdr, payload)

    def close(self, eof=True):
        if eof:
            self.f.write(b"\0" * (2 * BLOCK))


def _fmt_time(t):
    if isinstance(t, int):
        return str(t)
    s = "%.9f" % t
    return s.rstrip("0").rstrip(".")


def build_tar(entries_fn, fmt="pax"):
    """Calls entries_fn(TarWriter) and returns the finished tar bytes."""
    buf = io.BytesIO()
    tw = TarWriter(buf, fmt)
    entries_fn(tw)
    tw.close()
    return buf.getvalue()


def gzip_bytes(data, level=6):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=level, mtime=0, filename="") as g:
        g.write(data)
    return buf.getvalue()


def zstd_bytes(data, level=3):
    zstd = shutil.which("zstd")
    if not zstd:
        raise RuntimeError("zstd not found: apt-get install -y zstd")
    return subprocess.run([zstd, "-q", "-%d" % level, "-c", "--no-check"], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def gzip_file_streaming(src_path, dst_path, level=1, chunk=1 << 20):
    """gzip src -> dst. Returns (diff_id_hex, digest_hex, compressed_size)."""
    raw_h = hashlib.sha256()
    out_h = hashlib.sha256()
    size = 0
    co = zlib.compressobj(level, zlib.DEFLATED, 31)  # gzip wrapper; header mtime 0
    with open(src_path, "rb") as src, open(dst_path, "wb") as dst:
        while True:
            b = src.read(chunk)
            if not b:
                break
            raw_h.update(b)
            c = co.compress(b)
            if c:
                out_h.update(c)
                dst.write(c)
                size += len(c)
        c = co.flush()
        out_h.update(c)
        dst.write(c)
        size += len(c)
    return raw_h.hexdigest(), out_h.hexdigest(), size


class LayoutWriter:
    """Builds an OCI image layout directory."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')

    def blob_path(self, digest):
        algo, hexd = digest.split(":", 1)
        return os.path.join(self.path, "blobs", algo, hexd)

    def add_blob(self, data, media_type, digest=None, size=None, **extra):
        """Stores data; digest/size override the true values (for broken images)."""
        true_digest = "sha256:" + sha256_hex(data)
        digest = digest or true_digest
        p = self.blob_path(digest)
        with open(p, "wb") as f:
            f.write(data)
        desc = {"mediaType": media_type, "digest": digest,
                "size": len(data) if size is None else size}
        desc.update(extra)
        return desc

    def link_blob(self, src_path, digest, size, media_type, **extra):
        """Adds an existing blob file (hardlink when possible)."""
        p = self.blob_path(digest)
        if not os.path.exists(p):
            try:
                os.link(src_path, p)
            except OSError:
                shutil.copyfile(src_path, p)
        desc = {"mediaType": media_type, "digest": digest, "size": size}
        desc.update(extra)
        return desc

    def add_json(self, obj, media_type, **extra):
        return self.add_blob(canonical_json(obj), media_type, **extra)

    def write_index(self, manifests):
        idx = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": manifests}
        with open(os.path.join(self.path, "index.json"), "wb") as f:
            f.write(canonical_json(idx))


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def image_config(diff_ids, arch="amd64", env=None, cmd=None, history=None, extra=None):
    cfg = {
        "architecture": arch,
        "os": "linux",
        "created": CREATED,
        "config": {"Env": env or ["PATH=" + DEFAULT_PATH], "Cmd": cmd or ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": history or [{"created": CREATED, "created_by": "boxlite test-images"}
                               for _ in diff_ids],
    }
    if extra:
        cfg.update(extra)
    return cfg


def image_manifest(config_desc, layer_descs, annotations=None):
    m = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST, "config": config_desc,
         "layers": layer_descs}
    if annotations:
        m["annotations"] = annotations
    return m


def ref_annotations(name, tag="latest"):
    # Same convention as `docker save` (25+) and containerd: tag in ref.name, full name in
    # io.containerd.image.name.
    return {"org.opencontainers.image.ref.name": tag,
            "io.containerd.image.name": "%s:%s" % (name, tag)}


class Layer:
    """A layer: its tar (diff) and one encoded blob."""

    def __init__(self, tar_bytes, compression="gzip", level=6):
        self.tar = tar_bytes
        self.diff_id = "sha256:" + sha256_hex(tar_bytes)
        self.compression = compression
        if compression == "gzip":
            self.blob = gzip_bytes(tar_bytes, level)
            self.media_type = MT_OCI_LAYER_GZIP
        elif compression == "zstd":
            self.blob = zstd_bytes(tar_bytes)
            self.media_type = MT_OCI_LAYER_ZSTD
        elif compression == "none":
            self.blob = tar_bytes
            self.media_type = MT_OCI_LAYER_TAR
        else:
            raise ValueError(compression)
        self.digest = "sha256:" + sha256_hex(self.blob)


def write_simple_image(path, name, layers, arch="amd64", env=None, cmd=None, tag="latest",
                       config_extra=None):
    """Writes a one-platform image layout; layers: list of Layer. Returns manifest desc."""
    lw = LayoutWriter(path)
    descs = [lw.add_blob(l.blob, l.media_type) for l in layers]
    cfg = image_config([l.diff_id for l in layers], arch=arch, env=env, cmd=cmd,
                       extra=config_extra)
    cdesc = lw.add_json(cfg, MT_OCI_CONFIG)
    mdesc = lw.add_json(image_manifest(cdesc, descs), MT_OCI_MANIFEST)
    top = dict(mdesc)
    top["annotations"] = ref_annotations(name, tag)
    top["platform"] = {"architecture": arch, "os": "linux"}
    lw.write_index([top])
    return mdesc


def write_docker_save_tar(out_path, repo_tag, layer_tar_path, diff_id, config_obj):
    """Writes a tarball that is both a `docker save` archive (manifest.json, repositories)
    and an OCI image layout (oci-layout, index.json, blobs/), like Docker 25+ produces.
    The layer is stored uncompressed, as docker save does."""
    layer = {"path": layer_tar_path, "media_type": MT_OCI_LAYER_TAR, "digest": diff_id,
             "size": os.path.getsize(layer_tar_path)}
    return write_docker_save_archive(out_path, repo_tag, [layer], config_obj)


def write_docker_save_archive(out_path, repo_tag, layers, config_obj):
    """write_docker_save_tar for any number of layers, each stored as given.

    layers: [{"path", "media_type", "digest", "size"}] bottom first; a compressed layer
    keeps its compression (docker load and BoxLite's importer detect it), and
    config_obj's rootfs.diff_ids must list the uncompressed digests."""
    cfg = canonical_json(config_obj)
    cfg_hex = sha256_hex(cfg)
    manifest = canonical_json(image_manifest(
        {"mediaType": MT_OCI_CONFIG, "digest": "sha256:" + cfg_hex, "size": len(cfg)},
        [{"mediaType": l["media_type"], "digest": l["digest"], "size": l["size"]}
         for l in layers]))
    man_hex = sha256_hex(manifest)
    repo, _, tag = repo_tag.rpartition(":")
    index = canonical_json({
        "schemaVersion": 2, "mediaType": MT_OCI_INDEX,
        "manifests": [{"mediaType": MT_OCI_MANIFEST, "digest": "sha256:" + man_hex,
                       "size": len(manifest),
                       "annotations": {"io.containerd.image.name": "docker.io/" + repo_tag,
                                       "org.opencontainers.image.ref.name": tag}}]})
    layer_names = ["blobs/sha256/" + l["digest"].split(":", 1)[1] for l in layers]
    docker_manifest = json.dumps([{"Config": "blobs/sha256/" + cfg_hex,
                                   "RepoTags": [repo_tag],
                                   "Layers": layer_names}]).encode()
    top_layer_hex = layers[-1]["digest"].split(":", 1)[1]
    repositories = json.dumps({repo: {tag: top_layer_hex}}).encode()
    tmp = out_path + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
        def add_bytes(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = DEFAULT_MTIME
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))

        for d in ("blobs/", "blobs/sha256/"):
            ti = tarfile.TarInfo(d.rstrip("/"))
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            ti.mtime = DEFAULT_MTIME
            tf.addfile(ti)
        add_bytes("blobs/sha256/" + cfg_hex, cfg)
        for name, l in zip(layer_names, layers):
            with open(l["path"], "rb") as lf:
                ti = tarfile.TarInfo(name)
                ti.size = l["size"]
                ti.mtime = DEFAULT_MTIME
                ti.mode = 0o644
                tf.addfile(ti, lf)
        add_bytes("blobs/sha256/" + man_hex, manifest)
        add_bytes("index.json", index)
        add_bytes("manifest.json", docker_manifest)
        add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes("repositories", repositories)
    os.replace(tmp, out_path)
    return "sha256:" + man_hex


def check(path, **kw):
    """One expectation on the final root filesystem of an image (format: "check_format" in
    hostile.json).

    path: absolute path in the rootfs; str, or bytes for names that are not UTF-8.
    Byte values (content, xattr values) are given as bytes here and written as base64.
    """
    import base64
    out = {}
    if isinstance(path, bytes):
        try:
            out["path"] = path.decode("utf-8")
        except UnicodeDecodeError:
            out["path_b64"] = base64.b64encode(path).decode()
    else:
        out["path"] = path
    for k, v in kw.items():
        if k == "content" and isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                out["content_b64"] = base64.b64encode(v).decode()
                continue
        if k == "mode" and isinstance(v, int):
            v = "%04o" % v
        if k == "xattrs":
            v = {n: base64.b64encode(x).decode() for n, x in v.items()}
        if k == "data_at":
            v = [[off, base64.b64encode(d).decode()] for off, d in v]
        out[k] = v
    return out
