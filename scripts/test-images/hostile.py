# Generator of hostile test images. Every case is one OCI image layout over the busybox
# base layer, usually with one extra crafted layer, plus an entry in hostile.json that
# says what the case tests and what a correct runtime must do with it:
#
#   "outcome": "contained"  pull and rootfs build succeed; "checks" hold on the box's
#                           rootfs, "host_checks" hold on the host after the pull
#                           (run "host_setup" before the pull so an escape would succeed).
#   "outcome": "error"      pulling (or building the rootfs of) the image fails with an
#                           image error; "error_stage" says where it can be detected first.
#
# The policy the expectations follow is written in POLICY below and in hostile.json.
# Not thread-safe.

import json
import os
import zlib

import images
import oci
from oci import check

HOST_CANARY = "/tmp/boxlite-hostile-canary"
DOTS = "../" * 32

POLICY = [
    "Entry names and hardlink targets are cleaned lexically first: empty and '.' "
    "components are dropped, 'x/..' pairs cancel, a leading '/' is ignored. A '..' that "
    "would climb above the root is an error (as Docker does; clamping would put files "
    "where their author did not mean them). A name that cleans to the root is ignored "
    "for a directory entry and an error for any other entry.",
    "The parent components of a cleaned name are then resolved inside the rootfs with "
    "chroot semantics: symlinks are followed, absolute targets start at the rootfs root, "
    "'..' never leaves it (needed anyway for merged-/usr images: bin -> usr/bin). Missing "
    "parents are created as directories (0755, root). A parent that resolves to a "
    "non-directory is an error. More than 40 symlinks in one resolution is an error.",
    "The last component is never followed: an existing entry of that name is replaced "
    "(removed, recursively for a directory) unless both old and new are directories, in "
    "which case the directory keeps its children and takes the new metadata.",
    "Hardlink targets are archive names: cleaned and resolved like entry names. A target "
    "that does not exist in the rootfs, or is a directory, is an error.",
    "Symlink targets are stored as given; when a later entry is written through a "
    "symlink, the target is resolved inside the rootfs, where '..' stops at the root. An "
    "empty symlink target is an error.",
    "Whiteouts ('.wh.NAME', opaque '.wh..wh..opq') apply to the lower layers only, never to "
    "entries of their own layer, wherever they appear in the tar. Their parent is resolved "
    "like any parent but is not created; whiting out something that does not exist is a "
    "no-op. '.wh.', '.wh..' and '.wh...' (empty, '.' or '..' as the name) are errors, and "
    "so is a '.wh.' prefix on a directory component (a/.wh.b/c).",
    "A path component longer than 255 bytes, a symlink target longer than 4095 bytes, and "
    "a NUL byte in a ustar name or link field are errors; a NUL inside a PAX path or "
    "linkpath record ends the name there (C readers such as libarchive see no more), so "
    "the entry lands at the part before it. Longer total paths are fine.",
    "A gzip layer may consist of several members and may be followed by zero bytes; any "
    "other trailing data is an error. "
    "A tar stream must be well formed: valid header checksums, complete data, PAX records "
    "well formed with numeric values that fit in 63 bits. An empty stream and a stream "
    "that ends at a header boundary without the two zero blocks are empty / complete "
    "archives. Anything after the two zero blocks is ignored.",
    "Blobs are verified: sha256 digest and size against the descriptor, uncompressed "
    "sha256 against the config's rootfs.diff_ids (same count as layers), config media type "
    "must be an image config (OCI or Docker), layer media types must be tar, tar+gzip or "
    "tar+zstd (OCI or Docker), a manifest list / index must have an entry for the "
    "requested linux platform.",
    "Special files (devices, fifos), setuid/setgid bits, xattrs, modes (0000 included), "
    "owners and mtimes are stored as given: the VM is the boundary.",
]


class Case:
    def __init__(self, name, tests, outcome, build, checks=(), host_setup=(), host_checks=(),
                 error_kind=None, error_stage=None, notes=None):
        self.name = name
        self.tests = tests
        self.outcome = outcome
        self.build = build
        self.checks = list(checks)
        self.host_setup = list(host_setup)
        self.host_checks = list(host_checks)
        self.error_kind = error_kind
        self.error_stage = error_stage
        self.notes = notes


def canary(name):
    return HOST_CANARY + "/" + name


# ---------------------------------------------------------------------------- writers

class Ctx:
    def __init__(self, base_layer, base_blob_path):
        self.base = base_layer
        self.base_blob_path = base_blob_path


def write_image(path, ctx, layers, *, config=None, config_bytes=None,
                config_media_type=oci.MT_OCI_CONFIG, omit_config=False, platforms=None,
                name="hostile"):
    """layers: list of dicts: blob, media_type, diff_id, and optional digest (stored under
    this digest whatever the content), size (descriptor size), omit (blob not written).
    The busybox base layer is always first."""
    lw = oci.LayoutWriter(path)
    descs = [lw.link_blob(ctx.base_blob_path, ctx.base.digest, len(ctx.base.blob),
                          ctx.base.media_type)]
    diff_ids = [ctx.base.diff_id]
    for l in layers:
        digest = l.get("digest") or "sha256:" + oci.sha256_hex(l["blob"])
        size = l.get("size", len(l["blob"]))
        if not l.get("omit"):
            lw.add_blob(l["blob"], l["media_type"], digest=digest)
        descs.append({"mediaType": l["media_type"], "digest": digest, "size": size})
        diff_ids.append(l["diff_id"])
    if config_bytes is None:
        cfg = oci.image_config(diff_ids, arch=images.host_arch(), env=images.BUSYBOX_ENV,
                               cmd=["sh"])
        if config:
            config(cfg)
        config_bytes = oci.canonical_json(cfg)
    cdigest = "sha256:" + oci.sha256_hex(config_bytes)
    if not omit_config:
        lw.add_blob(config_bytes, config_media_type)
    cdesc = {"mediaType": config_media_type, "digest": cdigest, "size": len(config_bytes)}
    mdesc = lw.add_json(oci.image_manifest(cdesc, descs), oci.MT_OCI_MANIFEST)
    if platforms:
        manifests = []
        for p in platforms:
            d = dict(mdesc)
            d["platform"] = p
            manifests.append(d)
        idesc = lw.add_json({"schemaVersion": 2, "mediaType": oci.MT_OCI_INDEX,
                             "manifests": manifests}, oci.MT_OCI_INDEX)
        top = idesc
    else:
        top = dict(mdesc)
        top["platform"] = {"architecture": images.host_arch(), "os": "linux"}
    top["annotations"] = oci.ref_annotations("hostile/" + name)
    lw.write_index([top])


def tar_layer(entries_fn, fmt="pax"):
    tar = oci.build_tar(entries_fn, fmt)
    return gz_layer(tar)


def gz_layer(tar):
    return {"blob": oci.gzip_bytes(tar), "media_type": oci.MT_OCI_LAYER_GZIP,
            "diff_id": "sha256:" + oci.sha256_hex(tar), "tar": tar}


def simple(entries_fn, fmt="pax"):
    def build(path, ctx, name):
        write_image(path, ctx, [tar_layer(entries_fn, fmt)], name=name)
    return build


def raw_tar(blocks_fn):
    """A layer whose tar is written by blocks_fn(TarWriter) with no automatic EOF."""
    import io
    buf = io.BytesIO()
    tw = oci.TarWriter(buf)
    blocks_fn(tw)
    return buf.getvalue()


def custom(layer_fn, **kw):
    def build(path, ctx, name):
        write_image(path, ctx, layer_fn(), name=name, **kw)
    return build


def unique_layer(tag):
    return tar_layer(lambda tw: tw.add("hostile-" + tag, data=tag + "\n"))


BB = [check("/bin/busybox", type="file"), check("/etc/passwd", type="file")]


# ---------------------------------------------------------------------------- cases

def cases():
    C = []

    def add(*a, **kw):
        C.append(Case(*a, **kw))

    # --- paths leaving the root ------------------------------------------------------
    n = "dotdot-traversal"
    add(n, "an entry named ../../... (32 levels) to a host directory", "error",
        simple(lambda tw, n=n: tw.add(DOTS + canary(n)[1:] + "/escaped", data="escaped\n")),
        host_setup=[{"path": canary(n), "type": "dir"}],
        host_checks=[check(canary(n) + "/escaped", exists=False)],
        error_kind="path", error_stage="rootfs")

    add("dotdot-nested-traversal", "an entry named a/b/../../../escape (climbs one level "
        "above the root after cancelling)", "error",
        simple(lambda tw: tw.add("a/b/../../../escape-dotdot", data="inner\n")),
        error_kind="path", error_stage="rootfs")

    add("dotdot-inside", "an entry named a/../b/./c: '..' that stays inside is cleaned "
        "away ('a' is not created)", "contained",
        simple(lambda tw: tw.add("a/../b/./c", data="c\n")),
        checks=BB + [check("/b/c", type="file", content="c\n"), check("/b", type="dir"),
                     check("/a", exists=False)])

    add("root-replaced-by-file", "a regular file entry named '.' (the root)", "error",
        simple(lambda tw: tw.add(".", data="x\n")),
        error_kind="path", error_stage="rootfs")

    n = "absolute-path"
    add(n, "entries with absolute names /abs-file and /tmp/.../escaped", "contained",
        simple(lambda tw, n=n: (tw.add("/abs-file", data="abs\n"),
                                tw.add(canary(n) + "/escaped", data="escaped\n"))),
        checks=BB + [check("/abs-file", type="file", content="abs\n"),
                     check(canary(n) + "/escaped", type="file", content="escaped\n")],
        host_setup=[{"path": canary(n), "type": "dir"}],
        host_checks=[check(canary(n) + "/escaped", exists=False)])

    n = "symlink-root-write-through"
    add(n, "symlink rootlink -> / then a file written through rootlink/tmp/...", "contained",
        simple(lambda tw, n=n: (tw.add("rootlink", "symlink", linkname="/"),
                                tw.add("rootlink" + canary(n) + "/escaped", data="escaped\n"))),
        checks=BB + [check("/rootlink", type="symlink", target="/"),
                     check(canary(n) + "/escaped", type="file", content="escaped\n")],
        host_setup=[{"path": canary(n), "type": "dir"}],
        host_checks=[check(canary(n) + "/escaped", exists=False)])

    n = "symlink-dotdot-write-through"
    up = "../" * 16
    add(n, "symlink uplink -> ../../.. (16 levels) then a file written through it",
        "contained",
        simple(lambda tw, n=n: (tw.add("uplink", "symlink", linkname=up.rstrip("/")),
                                tw.add("uplink" + canary(n) + "/escaped", data="escaped\n"))),
        checks=BB + [check("/uplink", type="symlink", target=up.rstrip("/")),
                     check(canary(n) + "/escaped", type="file", content="escaped\n")],
        host_setup=[{"path": canary(n), "type": "dir"}],
        host_checks=[check(canary(n) + "/escaped", exists=False)])

    n = "symlink-abs-host-write-through"
    add(n, "symlink hostdir -> an existing absolute host directory, then hostdir/escaped",
        "contained",
        simple(lambda tw, n=n: (tw.add("hostdir", "symlink", linkname=canary(n)),
                                tw.add("hostdir/escaped", data="escaped\n"))),
        checks=BB + [check("/hostdir", type="symlink", target=canary(n)),
                     check(canary(n) + "/escaped", type="file", content="escaped\n")],
        host_setup=[{"path": canary(n), "type": "dir"}],
        host_checks=[check(canary(n) + "/escaped", exists=False)])

    n = "symlink-replaced-by-file"
    add(n, "symlink victim -> host file, then a regular file named victim: the symlink is "
        "replaced, never written through", "contained",
        simple(lambda tw, n=n: (tw.add("victim", "symlink", linkname=canary(n) + "/target"),
                                tw.add("victim", data="replaced\n"))),
        checks=BB + [check("/victim", type="file", content="replaced\n"),
                     check(canary(n) + "/target", exists=False)],
        host_setup=[{"path": canary(n), "type": "dir"},
                    {"path": canary(n) + "/target", "type": "file", "content": "canary\n"}],
        host_checks=[check(canary(n) + "/target", type="file", content="canary\n")])

    n = "symlink-dir-swap"
    add(n, "directory swap/ with a file, then swap replaced by a symlink to a host dir, then "
        "swap/g written through the new symlink", "contained",
        simple(lambda tw, n=n: (tw.add("swap", "dir"), tw.add("swap/f", data="f\n"),
                                tw.add("swap", "symlink", linkname=canary(n)),
                                tw.add("swap/g", data="escaped\n"))),
        checks=BB + [check("/swap", type="symlink", target=canary(n)),
                     check(canary(n) + "/g", type="file", content="escaped\n"),
                     check(canary(n) + "/f", exists=False)],
        host_setup=[{"path": canary(n), "type": "dir"}],
        host_checks=[check(canary(n) + "/g", exists=False)])

    # --- hardlinks -------------------------------------------------------------------
    n = "hardlink-outside"
    add(n, "hardlink whose target is ../../../(32)/etc/hostname (the layer has its own "
        "/etc/hostname, so only the escape makes it fail)", "error",
        simple(lambda tw: (tw.add("etc/hostname", data="hostile-hostname\n"),
                           tw.add("hl-outside", "hardlink", linkname=DOTS + "etc/hostname"))),
        error_kind="path", error_stage="rootfs")

    add("hardlink-through-symlink", "symlink root -> /, then a hardlink to root/etc/passwd: "
        "resolves to the image's /etc/passwd", "contained",
        simple(lambda tw: (tw.add("etc/passwd", data="image-passwd\n"),
                           tw.add("rootlink", "symlink", linkname="/"),
                           tw.add("hl-passwd", "hardlink", linkname="rootlink/etc/passwd"))),
        checks=[check("/bin/busybox", type="file"),
                check("/hl-passwd", type="file", same_inode_as="/etc/passwd",
                      content="image-passwd\n"),
                check("/etc/passwd", nlink=2)])

    n = "hardlink-outside-host-only"
    add(n, "hardlink to ../(32)/tmp/.../secret, which exists only on the host", "error",
        simple(lambda tw, n=n: tw.add("hl-secret", "hardlink",
                                      linkname=DOTS + canary(n)[1:] + "/secret")),
        host_setup=[{"path": canary(n), "type": "dir"},
                    {"path": canary(n) + "/secret", "type": "file", "content": "host-secret\n"}],
        host_checks=[check(canary(n) + "/secret", type="file", content="host-secret\n",
                           nlink=1)],
        error_kind="path", error_stage="rootfs")

    add("hardlink-missing-target", "hardlink to a name that exists nowhere", "error",
        simple(lambda tw: tw.add("hl", "hardlink", linkname="does/not/exist")),
        error_kind="hardlink", error_stage="rootfs")

    add("hardlink-to-directory", "hardlink whose target is the directory /etc", "error",
        simple(lambda tw: tw.add("hl-dir", "hardlink", linkname="etc")),
        error_kind="hardlink", error_stage="rootfs")

    add("duplicate-replaces-hardlinked",
        "file orig, hardlink hl -> orig, then orig again: the new orig is a new inode, "
        "hl keeps the old content", "contained",
        simple(lambda tw: (tw.add("orig", data="orig\n"),
                           tw.add("hl", "hardlink", linkname="orig"),
                           tw.add("orig", data="new\n"))),
        checks=BB + [check("/orig", type="file", content="new\n", nlink=1),
                     check("/hl", type="file", content="orig\n", nlink=1)])

    # --- whiteouts -------------------------------------------------------------------
    add("whiteout-dotdot", "whiteout entry etc/.wh... (whiteout of '..')", "error",
        simple(lambda tw: tw.add("etc/.wh...", data=b"")),
        error_kind="whiteout", error_stage="rootfs")
    add("whiteout-dot", "whiteout entry etc/.wh.. (whiteout of '.')", "error",
        simple(lambda tw: tw.add("etc/.wh..", data=b"")),
        error_kind="whiteout", error_stage="rootfs")
    add("whiteout-empty-name", "whiteout entry etc/.wh. (empty name)", "error",
        simple(lambda tw: tw.add("etc/.wh.", data=b"")),
        error_kind="whiteout", error_stage="rootfs")

    n = "whiteout-traversal"
    add(n, "whiteout named ../(32)/tmp/.../.wh.victim aimed at a host file", "error",
        simple(lambda tw, n=n: tw.add(DOTS + canary(n)[1:] + "/.wh.victim", data=b"")),
        host_setup=[{"path": canary(n), "type": "dir"},
                    {"path": canary(n) + "/victim", "type": "file", "content": "victim\n"}],
        host_checks=[check(canary(n) + "/victim", type="file", content="victim\n")],
        error_kind="path", error_stage="rootfs")

    add("whiteout-absolute-path", "whiteout named /home/.wh.app (absolute): removes the "
        "image's /home/app", "contained",
        simple(lambda tw: tw.add("/home/.wh.app", data=b"")),
        checks=BB + [check("/home/app", exists=False), check("/home", type="dir")])

    add("whiteout-prefix-in-directory", "entry a/.wh.b/c: a whiteout name used as a "
        "directory", "error",
        simple(lambda tw: tw.add("a/.wh.b/c", data="x\n")),
        error_kind="whiteout", error_stage="rootfs")

    n = "whiteout-through-symlink"
    add(n, "symlink sl -> host dir, then sl/.wh.victim", "contained",
        simple(lambda tw, n=n: (tw.add("sl", "symlink", linkname=canary(n)),
                                tw.add("sl/.wh.victim", data=b""))),
        checks=BB + [check("/sl", type="symlink", target=canary(n))],
        host_setup=[{"path": canary(n), "type": "dir"},
                    {"path": canary(n) + "/victim", "type": "file", "content": "victim\n"}],
        host_checks=[check(canary(n) + "/victim", type="file", content="victim\n")])

    n = "opaque-through-symlink"
    add(n, "symlink sl -> host dir, then sl/.wh..wh..opq", "contained",
        simple(lambda tw, n=n: (tw.add("sl", "symlink", linkname=canary(n)),
                                tw.add("sl/.wh..wh..opq", data=b""))),
        checks=BB + [check("/sl", type="symlink", target=canary(n))],
        host_setup=[{"path": canary(n), "type": "dir"},
                    {"path": canary(n) + "/victim", "type": "file", "content": "victim\n"}],
        host_checks=[check(canary(n) + "/victim", type="file", content="victim\n")])

    add("opaque-root", "opaque marker at the root: hides the whole busybox layer, keeps the "
        "layer's own file", "contained",
        simple(lambda tw: (tw.add(".wh..wh..opq", data=b""),
                           tw.add("new-root-file", data="alone\n"))),
        checks=[check("/", type="dir", entries=["new-root-file"]),
                check("/new-root-file", type="file", content="alone\n"),
                check("/bin/busybox", exists=False), check("/etc", exists=False)])

    # --- names and paths -------------------------------------------------------------
    add("name-too-long", "a file whose name is 256 bytes (ext4 allows 255)", "error",
        simple(lambda tw: tw.add("n" * 256, data="long\n")),
        error_kind="path", error_stage="rootfs")

    long_path = "/".join(["p" * 200] * 25) + "/deep-file"
    add("path-over-4096", "a file at a %d-byte path (25 components of 200 bytes)"
        % len(long_path), "contained",
        simple(lambda tw: tw.add(long_path, data="deep\n")),
        checks=BB + [check("/" + long_path, type="file", content="deep\n"),
                     check("/" + "p" * 200, type="dir")],
        notes="Longer than PATH_MAX: check it component by component (cd), or offline.")

    nested = "d/" * 10000 + "deep-file"
    add("nesting-10000", "a file under 10,000 nested directories (one entry, parents "
        "implicit)", "contained",
        simple(lambda tw: tw.add(nested, data="nested\n")),
        checks=BB + [check("/" + nested, type="file", content="nested\n"),
                     check("/d/d/d", type="dir", mode=0o755, uid=0)])

    odd = [b"newline\nname", b"tab\tname", b"cr\rname", b"back\\slash", b"-rf", b"--help",
           b"invalid-utf8-\xff\xfe", b"ctrl-\x01-\x7f", "emoji-\U0001F642".encode(), b"   ",
           b"trailing-space ", b"...", b"..hidden", b".wh", b"a.wh.b", b"$(touch pwned)",
           b"*glob?[x]", b"quote'\"", b"colon:semi;"]
    add("odd-names", "names with newline, tab, CR, backslash, leading dashes, invalid UTF-8, "
        "control chars, emoji, only spaces, '...', shell metacharacters", "contained",
        simple(lambda tw: [tw.add(b"odd/" + o, data=o + b"\n") for o in odd]),
        checks=BB + [check(b"/odd/" + o, type="file", content=o + b"\n") for o in odd]
        + [check("/odd", type="dir", entry_count=len(odd))])

    add("pax-path-nul", "PAX path record containing a NUL byte: the name ends at the NUL",
        "contained",
        simple(lambda tw: tw.add("placeholder", data="x\n", pax=[("path", b"nul\0hidden")])),
        checks=BB + [check("/nul", type="file", content="x\n"),
                     check("/placeholder", exists=False)])

    # --- duplicates ------------------------------------------------------------------
    add("duplicate-file-then-dir", "file dup, then directory dup/ and dup/child", "contained",
        simple(lambda tw: (tw.add("dup", data="file\n"), tw.add("dup", "dir"),
                           tw.add("dup/child", data="child\n"))),
        checks=BB + [check("/dup", type="dir"),
                     check("/dup/child", type="file", content="child\n")])
    add("duplicate-dir-then-file", "directory dup2/ with a child, then a file dup2",
        "contained",
        simple(lambda tw: (tw.add("dup2", "dir"), tw.add("dup2/child", data="child\n"),
                           tw.add("dup2", data="file wins\n"))),
        checks=BB + [check("/dup2", type="file", content="file wins\n"),
                     check("/dup2/child", exists=False)])
    add("duplicate-file-twice", "the same file name twice: the last one wins", "contained",
        simple(lambda tw: (tw.add("twice", data="first\n", mode=0o600),
                           tw.add("twice", data="second\n", mode=0o644))),
        checks=BB + [check("/twice", type="file", content="second\n", mode=0o644)])
    add("duplicate-dir-twice", "the same directory twice with different modes: children "
        "stay, the last metadata wins", "contained",
        simple(lambda tw: (tw.add("dd", "dir", mode=0o700), tw.add("dd/kid", data="kid\n"),
                           tw.add("dd", "dir", mode=0o751))),
        checks=BB + [check("/dd", type="dir", mode=0o751, entries=["kid"])])

    # --- size --------------------------------------------------------------------------
    tib = 1 << 40
    add("sparse-1tib", "a 1 TiB sparse file (PAX 1.0) with one byte of data at its end",
        "contained",
        simple(lambda tw: tw.add_sparse("huge", tib, [(tib - 1, b"X")])),
        checks=BB + [check("/huge", type="file", size=tib, data_at=[(tib - 1, b"X")],
                           max_allocated=1 << 20)],
        notes="Must be written sparsely: the rootfs must not grow by the file's size.")

    add("many-files", "a tar bomb of 50,000 one-byte files in 100 directories", "contained",
        simple(lambda tw: [tw.add("bomb/d%03d/f%03d" % (d, f), data=b"x")
                           for d in range(100) for f in range(500)]),
        checks=BB + [check("/bomb", type="dir", entry_count=100),
                     check("/bomb/d042", type="dir", entry_count=500),
                     check("/bomb/d099/f499", type="file", content="x")])

    # --- compression and tar framing ------------------------------------------------------
    def gzip_corrupt():
        l = tar_layer(lambda tw: tw.add("payload", data=images._pseudo_random(256 << 10)))
        l["blob"] = corrupt_deflate(l["blob"])
        return [l]
    add("gzip-corrupt", "gzip layer with a damaged deflate stream (inflate fails, not only "
        "the CRC)", "error", custom(gzip_corrupt), error_kind="compression",
        error_stage="pull_or_rootfs")

    def gzip_truncated():
        l = tar_layer(lambda tw: tw.add("payload", data=images._pseudo_random(256 << 10)))
        l["blob"] = l["blob"][:len(l["blob"]) * 6 // 10]
        return [l]
    add("gzip-truncated", "gzip layer cut at 60% (digest matches the cut blob)", "error",
        custom(gzip_truncated), error_kind="compression", error_stage="pull_or_rootfs")

    def tar_truncated():
        tar = oci.build_tar(lambda tw: tw.add("payload", data=images._pseudo_random(64 << 10)))
        return [gz_layer(tar[:512 + 30000])]
    add("tar-truncated", "tar cut in the middle of a file's data (gzip itself valid)", "error",
        custom(tar_truncated), error_kind="tar", error_stage="pull_or_rootfs")

    def not_a_tar():
        return [gz_layer(b"this is not a tar archive\n" * 200)]
    add("not-a-tar", "valid gzip whose content is text, not tar", "error", custom(not_a_tar),
        error_kind="tar", error_stage="pull_or_rootfs")

    def bad_checksum():
        tar = bytearray(oci.build_tar(lambda tw: tw.add("file", data="x\n")))
        tar[148:156] = b"0000000\0"
        return [gz_layer(bytes(tar))]
    add("tar-bad-checksum", "tar header whose checksum field is wrong", "error",
        custom(bad_checksum), error_kind="tar", error_stage="pull_or_rootfs")

    def no_eof():
        tar = oci.build_tar(lambda tw: tw.add("no-eof", data="complete\n"))
        return [gz_layer(tar[:-1024])]
    add("tar-no-eof-marker", "tar ending right after its last entry, without the two zero "
        "blocks", "contained", custom(no_eof),
        checks=BB + [check("/no-eof", type="file", content="complete\n")])

    def huge_pax_header():
        def blocks(tw):
            hdr = tw.header("PaxHeaders/huge", b"x", size_field=b"77777777777\0",
                            gnu_magic=False)
            tw.raw(hdr + b"30 path=this-is-not-8-gib-long\n".ljust(512, b"\0"))
        return [gz_layer(raw_tar(blocks))]
    add("pax-huge-header-size", "PAX extended header whose ustar size field says 8 GiB "
        "(the stream has 512 bytes)", "error", custom(huge_pax_header), error_kind="tar",
        error_stage="pull_or_rootfs")

    add("pax-huge-size-record", "regular file whose PAX size record is 2^64", "error",
        simple(lambda tw: tw.add("big", data="small\n",
                                 pax=[("size", str(1 << 64))])),
        error_kind="tar", error_stage="pull_or_rootfs")

    def empty_gzip():
        return [gz_layer(b"\0" * 1024)]
    add("empty-layer-gzip", "gzip of an empty tar (two zero blocks)", "contained",
        custom(empty_gzip), checks=BB)

    def empty_raw():
        return [{"blob": b"", "media_type": oci.MT_OCI_LAYER_TAR,
                 "diff_id": "sha256:" + oci.sha256_hex(b"")}]
    add("empty-layer-zero-bytes", "uncompressed tar layer of zero bytes", "contained",
        custom(empty_raw), checks=BB)

    def multimember():
        tar = oci.build_tar(lambda tw: (tw.add("mm-1", data="one\n"),
                                        tw.add("mm-2", data=images._pseudo_random(8192))))
        half = 1024
        blob = oci.gzip_bytes(tar[:half]) + oci.gzip_bytes(tar[half:])
        return [{"blob": blob, "media_type": oci.MT_OCI_LAYER_GZIP,
                 "diff_id": "sha256:" + oci.sha256_hex(tar)}]
    add("gzip-multimember", "gzip layer made of two concatenated gzip members (as pigz or "
        "appending writers produce)", "contained", custom(multimember),
        checks=BB + [check("/mm-1", type="file", content="one\n"),
                     check("/mm-2", type="file", size=8192,
                           sha256=oci.sha256_hex(images._pseudo_random(8192)))])

    def gzip_zero_padded():
        tar = oci.build_tar(lambda tw: tw.add("padded", data="padded\n"))
        return [{"blob": oci.gzip_bytes(tar) + b"\0" * 4096,
                 "media_type": oci.MT_OCI_LAYER_GZIP, "diff_id": "sha256:" + oci.sha256_hex(tar)}]
    add("gzip-zero-padding", "gzip layer followed by 4096 zero bytes (tape-style padding)",
        "contained", custom(gzip_zero_padded),
        checks=BB + [check("/padded", type="file", content="padded\n")])

    def gzip_trailing_garbage():
        tar = oci.build_tar(lambda tw: tw.add("garbage", data="x\n"))
        return [{"blob": oci.gzip_bytes(tar) + b"this is not gzip",
                 "media_type": oci.MT_OCI_LAYER_GZIP, "diff_id": "sha256:" + oci.sha256_hex(tar)}]
    add("gzip-trailing-garbage", "gzip layer followed by bytes that are not a gzip member",
        "error", custom(gzip_trailing_garbage), error_kind="compression",
        error_stage="pull_or_rootfs")

    # --- blob and manifest integrity -----------------------------------------------------
    def digest_mismatch():
        l = unique_layer("digest-mismatch")
        good = l["blob"]
        l["digest"] = "sha256:" + oci.sha256_hex(good)
        bad = bytearray(good)
        bad[9] = 3 if bad[9] != 3 else 255  # gzip header OS byte: still inflates fine
        l["blob"] = bytes(bad)
        return [l]
    add("layer-digest-mismatch", "layer blob whose bytes do not hash to the manifest digest "
        "(same size, still valid gzip)", "error", custom(digest_mismatch),
        error_kind="digest", error_stage="pull")

    def size_mismatch():
        l = unique_layer("size-mismatch")
        l["size"] = len(l["blob"]) + 100
        return [l]
    add("layer-size-mismatch", "layer descriptor size 100 bytes larger than the blob",
        "error", custom(size_mismatch), error_kind="size", error_stage="pull")

    def diffid_mismatch_cfg(cfg):
        cfg["rootfs"]["diff_ids"][1] = "sha256:" + oci.sha256_hex(b"not this layer")
    add("diffid-mismatch", "config rootfs.diff_ids[1] is not the sha256 of layer 1's tar",
        "error", custom(lambda: [unique_layer("diffid-mismatch")], config=diffid_mismatch_cfg),
        error_kind="diff_id", error_stage="pull_or_rootfs")

    def diffid_count_cfg(cfg):
        del cfg["rootfs"]["diff_ids"][1]
    add("diffid-count-mismatch", "two layers but one diff_id in the config", "error",
        custom(lambda: [unique_layer("diffid-count")], config=diffid_count_cfg),
        error_kind="diff_id", error_stage="pull")

    def missing_blob():
        l = unique_layer("missing-blob")
        l["omit"] = True
        return [l]
    add("missing-layer-blob", "manifest references a layer blob the registry does not have",
        "error", custom(missing_blob), error_kind="missing_blob", error_stage="pull")
    add("missing-config-blob", "manifest references a config blob the registry does not "
        "have", "error", custom(lambda: [unique_layer("missing-config")], omit_config=True),
        error_kind="missing_blob", error_stage="pull")

    add("config-invalid-json", "config blob is truncated JSON", "error",
        custom(lambda: [], config_bytes=b'{"architecture":"amd64","os":"linux","rootfs":'),
        error_kind="config", error_stage="pull")
    add("config-wrong-mediatype", "config descriptor media type is an artifact type, not an "
        "image config", "error",
        custom(lambda: [], config_media_type="application/vnd.example.not-an-image.v1+json"),
        error_kind="config", error_stage="pull")

    def unknown_mt():
        l = unique_layer("unknown-mediatype")
        l["media_type"] = "application/vnd.example.unknown-layer"
        return [l]
    add("layer-unknown-mediatype", "layer with an unknown media type", "error",
        custom(unknown_mt), error_kind="media_type", error_stage="pull")

    add("index-no-matching-platform", "image index with only windows/amd64 and "
        "linux/mips64le entries", "error",
        custom(lambda: [], platforms=[{"os": "windows", "architecture": "amd64"},
                                      {"os": "linux", "architecture": "mips64le"}]),
        error_kind="platform", error_stage="pull")

    # --- special files -----------------------------------------------------------------
    add("device-nodes", "char devices 1:3 and 1:11, block device 8:0, a fifo", "contained",
        simple(lambda tw: (tw.add("dev-null", "chardev", mode=0o666, devmajor=1, devminor=3),
                           tw.add("dev-kmsg", "chardev", mode=0o644, devmajor=1, devminor=11),
                           tw.add("dev-sda", "blockdev", mode=0o660, devmajor=8, devminor=0),
                           tw.add("a-fifo", "fifo", mode=0o600))),
        checks=BB + [check("/dev-null", type="chardev", rdev=[1, 3], mode=0o666),
                     check("/dev-kmsg", type="chardev", rdev=[1, 11]),
                     check("/dev-sda", type="blockdev", rdev=[8, 0], mode=0o660),
                     check("/a-fifo", type="fifo", mode=0o600)])

    add("setuid-root", "setuid and setgid root files", "contained",
        simple(lambda tw: (tw.add("suid-sh", data="#!/bin/sh\nid\n", mode=0o4755),
                           tw.add("sgid-file", data="sgid\n", mode=0o2755),
                           tw.add("suid-sgid-sticky", data="all\n", mode=0o7777))),
        checks=BB + [check("/suid-sh", type="file", mode=0o4755, uid=0, gid=0),
                     check("/sgid-file", type="file", mode=0o2755),
                     check("/suid-sgid-sticky", type="file", mode=0o7777)])

    add("mode-0000", "directories with mode 0000 that contain files", "contained",
        simple(lambda tw: (tw.add("locked", "dir", mode=0),
                           tw.add("locked/inner", data="inner\n", mode=0),
                           tw.add("locked/sub", "dir", mode=0),
                           tw.add("locked/sub/deeper", data="deeper\n", mode=0o644))),
        checks=BB + [check("/locked", type="dir", mode=0),
                     check("/locked/inner", type="file", mode=0, content="inner\n"),
                     check("/locked/sub", type="dir", mode=0),
                     check("/locked/sub/deeper", type="file", content="deeper\n")])

    add("symlink-loop", "symlinks a->b, b->a, self->self, loop-abs->/loop-abs", "contained",
        simple(lambda tw: (tw.add("loop-a", "symlink", linkname="loop-b"),
                           tw.add("loop-b", "symlink", linkname="loop-a"),
                           tw.add("self", "symlink", linkname="self"),
                           tw.add("loop-abs", "symlink", linkname="/loop-abs"))),
        checks=BB + [check("/loop-a", type="symlink", target="loop-b"),
                     check("/loop-b", type="symlink", target="loop-a"),
                     check("/self", type="symlink", target="self"),
                     check("/loop-abs", type="symlink", target="/loop-abs")])

    add("symlink-loop-write-through", "a->b, b->a, then a file written through loop-a/",
        "error",
        simple(lambda tw: (tw.add("loop-a", "symlink", linkname="loop-b"),
                           tw.add("loop-b", "symlink", linkname="loop-a"),
                           tw.add("loop-a/file", data="x\n"))),
        error_kind="symlink", error_stage="rootfs")

    add("symlink-empty-target", "symlink with an empty target", "error",
        simple(lambda tw: tw.add("empty-link", "symlink", linkname="")),
        error_kind="symlink", error_stage="rootfs")

    long_target = "/" + "t" * 3999
    add("symlink-long-target", "symlink with a 4000-byte target", "contained",
        simple(lambda tw: tw.add("longlink", "symlink", linkname=long_target)),
        checks=BB + [check("/longlink", type="symlink", target=long_target)],
        notes="Needs 4 KiB filesystem blocks (ext4 keeps a symlink target in one block).")

    add("symlink-target-too-long", "symlink with a 5000-byte target", "error",
        simple(lambda tw: tw.add("toolong", "symlink", linkname="/" + "t" * 4999)),
        error_kind="symlink", error_stage="rootfs")

    return C


def corrupt_deflate(blob):
    """Damages the deflate stream of a gzip blob so that inflate itself fails (not just the
    CRC). Deterministic."""
    for off in range(len(blob) // 2, len(blob) - 8):
        bad = bytearray(blob)
        bad[off] ^= 0xFF
        d = zlib.decompressobj(31)
        try:
            d.decompress(bytes(bad))
            d.flush()
        except zlib.error as e:
            if "incorrect data check" not in str(e):
                return bytes(bad)
    raise RuntimeError("could not corrupt deflate stream")


def build_all(out_dir, base_layer):
    os.makedirs(os.path.join(out_dir, "cases"), exist_ok=True)
    base_blob = os.path.join(out_dir, "base-layer.tar.gz")
    with open(base_blob, "wb") as f:
        f.write(base_layer.blob)
    ctx = Ctx(base_layer, base_blob)
    doc_cases = []
    for c in cases():
        p = os.path.join(out_dir, "cases", c.name)
        os.makedirs(p)
        c.build(p, ctx, c.name)
        d = {"name": c.name, "tests": c.tests, "outcome": c.outcome,
             "layout": "cases/" + c.name, "ref": "hostile/%s:latest" % c.name}
        if c.outcome == "contained":
            d["checks"] = c.checks
        else:
            d["error_kind"] = c.error_kind
            d["error_stage"] = c.error_stage
        if c.host_setup:
            d["host_setup"] = c.host_setup
        if c.host_checks:
            d["host_checks"] = c.host_checks
        if c.notes:
            d["notes"] = c.notes
        doc_cases.append(d)
    doc = {
        "version": 1,
        "host_canary_dir": HOST_CANARY,
        "policy": POLICY,
        "check_format": CHECK_FORMAT,
        "error_stages": {
            "pull": "detectable from manifests, configs and blob digests/sizes alone",
            "rootfs": "detectable only while applying the layer tars",
            "pull_or_rootfs": "detectable while decompressing/reading a layer: at pull if "
                              "the runtime decompresses there, else at rootfs build"},
        "cases": doc_cases,
    }
    with open(os.path.join(out_dir, "hostile.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True, ensure_ascii=True)
    return doc


CHECK_FORMAT = {
    "path": "absolute path inside the rootfs (or path_b64: base64 of a non-UTF-8 path); "
            "for host_checks, a host path",
    "exists": "false: the path must not exist (lstat fails); default true",
    "type": "file | dir | symlink | fifo | chardev | blockdev (lstat, never followed)",
    "content": "exact file content as UTF-8 (content_b64 for other bytes)",
    "size": "st_size",
    "sha256": "hex sha256 of the file content",
    "mode": "octal string of st_mode & 07777",
    "uid": "st_uid", "gid": "st_gid",
    "mtime": "st_mtime in whole seconds (may be negative)",
    "mtime_ns": "st_mtime_ns, exact nanoseconds",
    "rdev": "[major, minor] of a device node",
    "target": "exact symlink target (readlink)",
    "nlink": "st_nlink",
    "same_inode_as": "another path with the same inode (hardlink)",
    "entries": "exact sorted list of names in a directory",
    "entry_count": "number of names in a directory",
    "xattrs": "{name: base64 value} that must be present (others may exist too)",
    "data_at": "[[offset, base64 bytes]] that must be read at these offsets",
    "max_allocated": "upper bound on the bytes allocated to the file (st_blocks*512)",
}
