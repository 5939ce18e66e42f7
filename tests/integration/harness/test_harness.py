# Tests of the test infrastructure itself: the image builder, the expectation files, the
# registries (plain, basic auth, token auth) and every FaultProxy mode, using only skopeo,
# curl, umoci, GNU tar and the reference model in oci_model.py. No BoxLite code runs here.

import base64
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time

import pytest

from harness import oci_model as M
from harness.catalog import BUILD_SH, IMAGES_DIR, hostile_case_names, hostile_case_outcomes
from harness.registry import (ACCEPT_ALL, HarnessError, Registry,
                              TokenAuthRegistry, TokenSigner)

pytest_plugins = ["harness.fixtures"]

SKOPEO = shutil.which("skopeo")


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=kw.pop("timeout", 300), **kw)


def curl(*args, binary=False):
    p = subprocess.run(["curl", "-sS", "--noproxy", "*", *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout if binary else p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def layout_top(path):
    with open(os.path.join(path, "index.json")) as f:
        return json.load(f)["manifests"][0]


def layout_manifest(path, arch=None):
    """The platform manifest of a layout (descends into an index)."""
    desc = layout_top(path)
    while True:
        with open(os.path.join(path, "blobs", *desc["digest"].split(":"))) as f:
            doc = json.load(f)
        if "manifests" not in doc:
            return desc, doc
        desc = [m for m in doc["manifests"]
                if m["platform"]["architecture"] == (arch or M.host_arch())][0]


def skopeo_copy(src, dst, *extra):
    p = run([SKOPEO, "copy", "--quiet", "--src-tls-verify=false", *extra, src, dst])
    assert p.returncode == 0, p.stderr
    return p


# ---------------------------------------------------------------------------- build

def test_build_rerun_is_cached_and_prints_same_paths(test_images):
    p = run([str(BUILD_SH), "--json"])
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert {n: v["layout"] for n, v in info["images"].items()} == test_images.layouts
    assert info["boxlite_base_tar"] == test_images.base_tarball
    m = re.search(r"(\d+) built, (\d+) cached", p.stderr)
    # Every layout, plus the hostile set and the boxlite/base tarball.
    assert m and m.group(1) == "0" and int(m.group(2)) == len(test_images.layouts) + 2, p.stderr
    plain = run([str(BUILD_SH)])
    lines = dict(l.split("\t") for l in plain.stdout.splitlines())
    assert lines["busybox"] == test_images.layout("busybox")
    assert lines["boxlite-base-tar"] == test_images.base_tarball
    for n, path in test_images.layouts.items():
        assert os.path.basename(path).startswith(n + "-")
        assert os.path.exists(os.path.join(path, "index.json"))


def test_keys_follow_inputs(tmp_path):
    """Changing a script changes the image keys; the debootstrap key depends only on
    debootstrap.sh and package versions."""
    # The desktop image's key follows the boxlite-desktopd binary it is given (any ELF
    # file stands in for it here).
    daemon = tmp_path / "boxlite-desktopd"
    shutil.copy("/bin/true", daemon)

    def keys(d):
        p = run([sys.executable, os.path.join(d, "build.py"), "--cache", str(tmp_path / "c"),
                 "--keys", "--desktopd", str(daemon)])
        assert p.returncode == 0, p.stderr
        return dict(l.split("\t") for l in p.stdout.splitlines())

    copy = tmp_path / "scripts"
    shutil.copytree(IMAGES_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = keys(str(copy))
    assert before == keys(str(IMAGES_DIR))
    with open(copy / "hostile.py", "a") as f:
        f.write("\n# changed\n")
    after = keys(str(copy))
    assert after["debootstrap"] == before["debootstrap"]
    for n in ("busybox", "layered", "hostile", "debian-python", "boxlite-base"):
        assert after[n] != before[n], n
    with open(copy / "debootstrap.sh", "a") as f:
        f.write("\n# changed\n")
    assert keys(str(copy))["debootstrap"] != before["debootstrap"]
    changed = keys(str(copy))
    shutil.copy("/bin/false", daemon)
    rebuilt = keys(str(copy))
    assert rebuilt["desktop"] != changed["desktop"]
    assert rebuilt["busybox"] == changed["busybox"]


@pytest.mark.parametrize("name", ["busybox", "layered", "zstd", "debian-python",
                                  "multiarch-archfile"])
def test_layout_readable_by_skopeo(test_images, name):
    p = run([SKOPEO, "inspect", test_images.oci_ref(name)])
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["Architecture"] == M.host_arch()
    assert info["Os"] == "linux"
    assert any(e.startswith("PATH=") for e in info["Env"])
    top = layout_top(test_images.layout(name))
    assert top["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    assert top["annotations"]["io.containerd.image.name"] == name + ":latest"


def test_image_configs(test_images):
    for name, cmd in (("busybox", ["sh"]), ("debian-python", ["python3"]), ("zstd", ["sh"])):
        desc, man = layout_manifest(test_images.layout(name))
        with open(os.path.join(test_images.layout(name), "blobs",
                               *man["config"]["digest"].split(":"))) as f:
            cfg = json.load(f)
        assert cfg["config"]["Cmd"] == cmd
        assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in \
            cfg["config"]["Env"]
        assert len(cfg["rootfs"]["diff_ids"]) == len(man["layers"])
    _, man = layout_manifest(test_images.layout("zstd"))
    assert [l["mediaType"] for l in man["layers"]] == \
        ["application/vnd.oci.image.layer.v1.tar+zstd"]
    _, man = layout_manifest(test_images.layout("layered"))
    assert len(man["layers"]) >= 3
    assert man["layers"][-1]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"


@pytest.mark.parametrize("name", ["busybox", "layered", "zstd", "multiarch",
                                  "multiarch-archfile", "debian-python"])
def test_expectations_hold_in_reference_model(test_images, name):
    exp = test_images.expect(name)
    tree = M.unpack_layout(test_images.layout(name))
    assert M.evaluate(exp["checks"], M.ModelAccessor(tree)) == []
    if "foreign_checks" in exp:
        tree = M.unpack_layout(test_images.layout(name), arch=exp["foreign_arch"])
        assert M.evaluate(exp["foreign_checks"], M.ModelAccessor(tree)) == []


def test_expectations_detect_a_wrong_rootfs(test_images):
    """The layered checks fail on a rootfs missing the last layer, and name why."""
    img = M.load_image(M.LayoutSource(test_images.layout("layered")))
    tree = M.Tree()
    for _, tar in img.layers[:-1]:
        tree.apply(M.read_tar(tar))
    fails = M.evaluate(test_images.expect("layered")["checks"], M.ModelAccessor(tree))
    assert any(f.startswith("/data/uncompressed.txt: missing") for f in fails), fails
    assert any(f.startswith("/data/new-in-l3: exists") for f in fails), fails
    assert len(fails) == 2, fails
    # And the busybox checks fail on an empty tree.
    assert len(M.evaluate(test_images.expect("busybox")["checks"],
                          M.ModelAccessor(M.Tree()))) == len(
        test_images.expect("busybox")["checks"])


def test_layered_expectations_match_umoci(test_images, tmp_path):
    """An independent unpacker (umoci) produces a rootfs that meets the layered checks,
    except sparse allocation (umoci writes holes as zeros)."""
    if not shutil.which("umoci") or os.geteuid() != 0:
        pytest.skip("needs umoci and root")
    img = tmp_path / "img"
    shutil.copytree(test_images.layout("layered"), img)
    p = run(["umoci", "unpack", "--image", "%s:latest" % img, str(tmp_path / "bundle")])
    assert p.returncode == 0, p.stderr
    checks = [{k: v for k, v in c.items() if k != "max_allocated"}
              for c in test_images.expect("layered")["checks"]]
    assert M.evaluate(checks, M.HostAccessor(str(tmp_path / "bundle" / "rootfs"))) == []


def test_layer_tars_parse_with_gnu_tar_and_tarfile(test_images):
    """The crafted tars are standard: GNU tar and Python's tarfile list the same names as
    the model's reader."""
    img = M.load_image(M.LayoutSource(test_images.layout("layered")))
    for desc, tar in img.layers:
        ours = [e.name for e in M.read_tar(tar)]
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            theirs = [m.name.encode("utf-8", "surrogateescape") for m in tf.getmembers()]
        assert [n.rstrip(b"/") for n in ours] == theirs
        p = subprocess.run(["tar", "-t"], input=tar, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        assert p.returncode == 0, p.stderr
        assert [l.rstrip(b"/") for l in p.stdout.splitlines()] == \
            [n.rstrip(b"/") for n in ours]


def test_busybox_rootfs(test_images):
    tree = M.unpack_layout(test_images.layout("busybox"))
    applets = subprocess.run(["/bin/busybox", "--list-full"], stdout=subprocess.PIPE,
                             text=True).stdout.split()
    for a in applets:
        if "/" in a and a != "bin/busybox":
            assert tree.lookup(b"/" + a.encode()).target == b"/bin/busybox", a
    passwd = tree.lookup(b"/etc/passwd").data.decode()
    assert "app:x:1000:1000:" in passwd and "nobody:x:65534:65534:" in passwd
    assert tree.lookup(b"/tmp").mode == 0o1777


def test_base_tarball_is_docker_save_and_oci_archive(test_images, tmp_path):
    tb = test_images.base_tarball
    with tarfile.open(tb) as tf:
        names = set(tf.getnames())
        man = json.load(tf.extractfile("manifest.json"))
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= names
    assert man[0]["RepoTags"] == ["boxlite/base:latest"]
    p = run([SKOPEO, "inspect", "docker-archive:%s:boxlite/base:latest" % tb])
    assert p.returncode == 0, p.stderr
    assert run([SKOPEO, "inspect", "docker-archive:%s:boxlite/other:latest" % tb]
               ).returncode != 0
    p = run([SKOPEO, "inspect", "oci-archive:%s:latest" % tb])
    assert p.returncode == 0, p.stderr
    # The busybox layout's filesystem, but with Debian's dynamic busybox (another binary)
    # and the libraries it loads, and /usr/bin/wget a script (scripts/test-images/images.py).
    skopeo_copy("docker-archive:" + tb, "oci:%s:latest" % (tmp_path / "base"))
    tree = M.unpack_layout(str(tmp_path / "base"))
    checks = [{k: v for k, v in c.items() if not (c["path"] == "/bin/busybox" and k == "sha256")}
              for c in test_images.expect("busybox")["checks"]]
    assert M.evaluate(checks, M.ModelAccessor(tree)) == []
    assert tree.lookup(b"/usr/bin/wget").data.startswith(b"#!/bin/sh\n")
    assert tree.lookup(b"/usr/bin/nc").target == b"/bin/busybox"


# ---------------------------------------------------------------------------- hostile

def test_hostile_manifest_shape(test_images):
    doc = test_images.hostile
    cases = doc["cases"]
    names = [c["name"] for c in cases]
    assert len(cases) >= 30 and len(set(names)) == len(names)
    assert names == hostile_case_names()
    assert {c["name"]: c["outcome"] for c in cases} == hostile_case_outcomes()
    for c in cases:
        assert c["outcome"] in ("contained", "error"), c["name"]
        assert c["tests"]
        assert os.path.exists(os.path.join(test_images.hostile_dir, c["layout"],
                                           "index.json"))
        if c["outcome"] == "contained":
            assert c["checks"], c["name"]
        else:
            assert c["error_kind"] and c["error_stage"] in doc["error_stages"], c["name"]
        for s in c.get("host_setup", []) + c.get("host_checks", []):
            assert s["path"].startswith(doc["host_canary_dir"] + "/"), c["name"]
        for chk in c.get("checks", []) + c.get("host_checks", []):
            assert set(chk) <= set(doc["check_format"]) | {"path_b64", "content_b64"}, chk


@pytest.mark.parametrize("name", hostile_case_names())
def test_hostile_case_outcome_in_reference_model(test_images, name):
    case = test_images.hostile_case(name)
    try:
        tree = M.unpack_layout(case["layout_path"])
    except M.ImageError as e:
        assert case["outcome"] == "error", "model failed: %s" % e
        assert e.kind == case["error_kind"], str(e)
        return
    assert case["outcome"] == "contained", "model unpacked an image expected to fail"
    assert M.evaluate(case["checks"], M.ModelAccessor(tree)) == []


# Cases umoci cannot represent on a host filesystem (PATH_MAX) or would write fully.
UMOCI_SKIP = {"path-over-4096", "nesting-10000", "sparse-1tib", "many-files"}
# Where the policy is stricter than umoci, which clamps '..' at the root and accepts these
# names: only host safety is compared.
UMOCI_LENIENT = {"dotdot-traversal", "dotdot-nested-traversal", "hardlink-outside",
                 "whiteout-traversal", "whiteout-prefix-in-directory", "root-replaced-by-file",
                 "gzip-trailing-garbage", "gzip-zero-padding",
                 # Go's tar reader rejects a NUL in a PAX path; our policy ends the name there.
                 "pax-path-nul"}


@pytest.mark.parametrize("name", [n for n in hostile_case_names() if n not in UMOCI_SKIP])
def test_hostile_case_outcome_matches_umoci(test_images, tmp_path, name):
    """umoci, a hardened OCI unpacker, agrees with every expectation it can express, and
    never lets a hostile image touch the host."""
    if not shutil.which("umoci") or os.geteuid() != 0:
        pytest.skip("needs umoci and root")
    case = test_images.hostile_case(name)
    M.host_setup(case)
    try:
        shutil.copytree(case["layout_path"], tmp_path / "img")
        p = run(["umoci", "unpack", "--image", "%s:latest" % (tmp_path / "img"),
                 str(tmp_path / "bundle")])
        assert M.evaluate(case.get("host_checks", []), M.HostAccessor("/")) == []
    finally:
        M.host_cleanup(case, test_images.hostile["host_canary_dir"])
    if name in UMOCI_LENIENT:
        return
    if case["outcome"] == "error":
        assert p.returncode != 0
        return
    assert p.returncode == 0, p.stderr
    checks = [{k: v for k, v in c.items() if k != "max_allocated"} for c in case["checks"]]
    assert M.evaluate(checks, M.HostAccessor(str(tmp_path / "bundle" / "rootfs"))) == []


def test_hostile_images_served_as_built(registry, test_images):
    for c in test_images.hostile_cases():
        layout = os.path.join(test_images.hostile_dir, c["layout"])
        top = layout_top(layout)
        repo = "hostile/" + c["name"]
        assert registry.refs[repo] == "%s/%s:latest" % (registry.host, repo)
        st, ctype, body, _ = registry.get_manifest(repo, "latest")
        assert st == 200, (c["name"], st)
        assert sha256(body) == top["digest"], c["name"]
    # Tampered blob: served with content that does not match its digest.
    layout = test_images.hostile_case("layer-digest-mismatch")["layout_path"]
    _, man = layout_manifest(layout)
    d = man["layers"][-1]["digest"]
    st, body = registry.get_blob("hostile/layer-digest-mismatch", d)
    assert st == 200 and sha256(body) != d and len(body) == man["layers"][-1]["size"]
    # Missing blob: the manifest is served, the blob is not.
    layout = test_images.hostile_case("missing-layer-blob")["layout_path"]
    _, man = layout_manifest(layout)
    st, _ = registry.get_blob("hostile/missing-layer-blob", man["layers"][-1]["digest"])
    assert st == 404


# ---------------------------------------------------------------------------- registry

def test_registry_serves_every_ref(registry, test_images):
    expected = {"busybox", "busybox-v2s2", "boxlite/base", "library/busybox", "debian-python",
                "debian-python-v2s2", "python:slim", "layered", "layered-v2s2", "multiarch",
                "multiarch-v2s2", "multiarch-archfile", "zstd"}
    assert expected <= set(registry.refs)
    for key, ref in registry.refs.items():
        if key.startswith("hostile/"):
            continue
        repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
        st, ctype, body, digest = registry.get_manifest(repo, tag)
        assert st == 200, ref
        assert digest == sha256(body)
        if key.endswith("-v2s2") or key in ("python:slim", "library/busybox"):
            assert ctype in ("application/vnd.docker.distribution.manifest.v2+json",
                             "application/vnd.docker.distribution.manifest.list.v2+json"), ref
        else:
            assert ctype.startswith("application/vnd.oci.image."), ref
            image = key if key != "boxlite/base" else "busybox"
            assert digest == layout_top(test_images.layout(image))["digest"], ref


def test_python_slim_resolves_through_mirror(registry):
    assert registry.refs["python:slim"] == registry.host + "/library/python:slim"
    assert registry.env()["BOXLITE_REGISTRY_MIRRORS"] == "http://" + registry.host
    p = registry.skopeo_inspect("%s/library/python:slim" % registry.host, raw=False,
                                extra=["--config"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["config"]["Cmd"] == ["python3"]


@pytest.mark.parametrize("key", ["layered", "layered-v2s2", "zstd", "busybox-v2s2"])
def test_pull_back_and_unpack(registry, test_images, tmp_path, key):
    skopeo_copy("docker://" + registry.refs[key], "oci:%s:latest" % (tmp_path / "out"))
    tree = M.unpack_layout(str(tmp_path / "out"))
    image = key.replace("-v2s2", "")
    checks = test_images.expect("layered" if image == "layered" else "busybox")["checks"]
    assert M.evaluate(checks, M.ModelAccessor(tree)) == []


def test_multiarch_platforms(registry, tmp_path):
    for key in ("multiarch", "multiarch-v2s2", "multiarch-archfile"):
        p = registry.skopeo_inspect(registry.refs[key])
        doc = json.loads(p.stdout)
        archs = sorted(m["platform"]["architecture"] for m in doc["manifests"])
        assert archs == sorted([M.host_arch(), "arm64" if M.host_arch() != "arm64"
                                else "amd64"]), key
    foreign = "arm64" if M.host_arch() != "arm64" else "amd64"
    skopeo_copy("--override-arch", foreign, "docker://" + registry.refs["multiarch-archfile"],
                "oci:%s:latest" % (tmp_path / "f"))
    tree = M.unpack_layout(str(tmp_path / "f"), arch=foreign)
    assert tree.lookup(b"/arch").data == (foreign + "\n").encode()
    skopeo_copy("docker://" + registry.refs["multiarch-archfile"],
                "oci:%s:latest" % (tmp_path / "n"))
    tree = M.unpack_layout(str(tmp_path / "n"))
    assert tree.lookup(b"/arch").data == (M.host_arch() + "\n").encode()


def test_zstd_blob_served_and_decodes(registry, test_images):
    st, _, body, _ = registry.get_manifest("zstd", "latest")
    man = json.loads(body)
    layer = man["layers"][0]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    st, blob = registry.get_blob("zstd", layer["digest"])
    assert st == 200 and blob[:4] == b"\x28\xb5\x2f\xfd"
    _, cfg = registry.get_blob("zstd", man["config"]["digest"])
    assert sha256(M.decompress(blob, "zstd")) == json.loads(cfg)["rootfs"]["diff_ids"][0]


def test_request_log_counts_blob_gets(registry, tmp_path):
    st, _, body, _ = registry.get_manifest("layered", "latest")
    man = json.loads(body)
    mark = registry.log_mark()
    skopeo_copy("docker://" + registry.refs["layered"], "oci:%s:latest" % (tmp_path / "o"))
    gets = registry.blob_gets("layered", since=mark)
    digests = sorted(r.path_only.rsplit("/", 1)[1] for r in gets)
    assert digests == sorted([l["digest"] for l in man["layers"]] + [man["config"]["digest"]])
    assert registry.blob_gets("busybox", since=mark) == []
    assert all(r.user_agent.startswith("skopeo/") for r in gets)


def test_registry_stop_ends_process(tmp_path):
    reg = Registry(workdir=str(tmp_path / "r")).start()
    pid, port = reg.proc.pid, reg.port
    assert reg.http("GET", "/v2/")[0] == 200
    reg.stop()
    assert not os.path.exists("/proc/%d" % pid) or \
        open("/proc/%d/stat" % pid).read().split()[2] == "Z"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert os.path.getsize(tmp_path / "r" / "access.log") > 0


def test_registry_dies_with_its_parent(tmp_path):
    """A registry outlives no one: kill -9 the Python process that started it."""
    code = ("import sys, time; sys.path.insert(0, %r)\n"
            "from harness.registry import Registry\n"
            "r = Registry(workdir=%r).start()\n"
            "print(r.proc.pid, flush=True)\n"
            "time.sleep(600)\n") % (os.path.dirname(os.path.dirname(__file__)),
                                    str(tmp_path / "r"))
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert os.path.exists("/proc/%d" % child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and os.path.exists("/proc/%d" % child):
            with open("/proc/%d/stat" % child) as f:
                if f.read().split()[2] == "Z":
                    break
            time.sleep(0.05)
        gone = not os.path.exists("/proc/%d" % child)
        if not gone:
            with open("/proc/%d/stat" % child) as f:
                gone = f.read().split()[2] == "Z"
        assert gone, "docker-registry %d survived its parent" % child
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


# ---------------------------------------------------------------------------- auth

def test_basic_auth(auth_registry):
    ref = auth_registry.refs["busybox"]
    assert auth_registry.skopeo_inspect(ref).returncode == 0
    bad = auth_registry.skopeo_inspect(ref, creds="%s:wrong" % auth_registry.username)
    assert bad.returncode != 0 and "unauthorized" in bad.stderr.lower()
    rc, out, _ = curl("-i", auth_registry.url + "/v2/busybox/manifests/latest")
    assert rc == 0 and " 401 " in out.splitlines()[0]
    assert 'www-authenticate: basic realm="boxlite-test-basic"' in out.lower()
    rc, out, _ = curl("-i", "-H", "Accept: " + ACCEPT_ALL, "-u",
                      auth_registry.skopeo_creds(), auth_registry.url +
                      "/v2/busybox/manifests/latest")
    assert " 200 " in out.splitlines()[0]


def test_token_auth(token_registry):
    reg = token_registry
    ref = reg.refs["busybox"]
    rc, out, _ = curl("-i", reg.url + "/v2/")
    assert " 401 " in out.splitlines()[0]
    assert ('www-authenticate: bearer realm="%s",service="%s"' % (reg.realm, reg.service)) \
        in out.lower()
    n = len(reg.token_requests)
    assert reg.skopeo_inspect(ref).returncode == 0
    assert any(r["account"] == reg.username and r["result"] == 200
               for r in reg.token_requests[n:])
    bad = reg.skopeo_inspect(ref, creds="%s:wrong" % reg.username)
    assert bad.returncode != 0
    assert reg.token_requests[-1]["result"] == 401
    anon = reg.skopeo_inspect(ref, creds="")
    assert anon.returncode != 0  # anonymous_pull is off


def test_token_validation(token_registry, tmp_path):
    reg = token_registry
    path = "/v2/busybox/manifests/latest"
    h = {"Accept": ACCEPT_ALL}
    for mode in ("x5c", "kid"):
        tok = reg.issue(reg.username, [("repository", "busybox", ["pull"])], signer_mode=mode)
        assert reg.http("GET", path, headers=dict(h, Authorization="Bearer " + tok))[0] == 200
    # Wrong repository in the grant.
    tok = reg.issue(reg.username, [("repository", "other", ["pull"])])
    assert reg.http("GET", path, headers=dict(h, Authorization="Bearer " + tok))[0] == 401
    # Signed by a key the registry does not trust.
    other = TokenSigner(str(tmp_path))
    claims = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "==="))
    claims["access"] = [{"type": "repository", "name": "busybox", "actions": ["pull"]}]
    forged = other.sign(claims)
    assert reg.http("GET", path, headers=dict(h, Authorization="Bearer " + forged))[0] == 401
    # The token server itself: bad password is refused.
    with pytest.raises(HarnessError):
        reg.token_for("repository:busybox:pull", password="wrong")
    good = reg.token_for("repository:busybox:pull,push")
    assert reg.token_requests[-1]["granted"] == [("repository", "busybox", ["pull", "push"])]
    assert reg.http("GET", path, headers=dict(h, Authorization="Bearer " + good))[0] == 200


def test_token_anonymous_pull(test_images, tmp_path):
    reg = TokenAuthRegistry(workdir=str(tmp_path / "t"), anonymous_pull=True)
    with reg:
        ref = reg.push(test_images.layout("busybox"), "latest", "busybox")
        assert reg.skopeo_inspect(ref, creds="").returncode == 0
        # Anonymous clients get pull only.
        assert reg.token_requests[-1]["account"] is None
        assert all(a == ["pull"] for _, _, a in reg.token_requests[-1]["granted"])


# ---------------------------------------------------------------------------- faults

def _busybox_digests(registry):
    _, _, body, _ = registry.get_manifest("busybox", "latest")
    man = json.loads(body)
    return man["layers"][0]["digest"], man["config"]["digest"]


def test_proxy_passthrough_with_skopeo(registry, fault_proxy, tmp_path):
    proxy = fault_proxy()
    layer, config = _busybox_digests(registry)
    skopeo_copy("docker://%s/busybox:latest" % proxy.host, "oci:%s:latest" % (tmp_path / "o"))
    gets = [r for r in proxy.records if r.method == "GET" and "/blobs/" in r.path]
    assert sorted(r.path.rsplit("/", 1)[1] for r in gets) == sorted([layer, config])
    assert all(r.status == 200 and r.fault is None for r in proxy.records)
    assert [r.bytes_sent for r in gets if r.path.endswith(layer)] == \
        [os.path.getsize(tmp_path / "o" / "blobs" / "sha256" / layer.split(":")[1])]


def test_proxy_unauthorized(fault_proxy):
    proxy = fault_proxy()
    proxy.unauthorized()
    rc, out, _ = curl("-i", proxy.url + "/v2/")
    assert " 401 " in out.splitlines()[0]
    assert 'www-authenticate: basic realm="boxlite-fault-proxy"' in out.lower()
    assert "UNAUTHORIZED" in out
    p = run([SKOPEO, "inspect", "--tls-verify=false", "docker://%s/busybox:latest" % proxy.host])
    assert p.returncode != 0 and "unauthorized" in p.stderr.lower()
    assert proxy.records and all(r.status == 401 for r in proxy.records)


def test_proxy_tag_not_found(registry, fault_proxy):
    proxy = fault_proxy()
    rule = proxy.tag_not_found("busybox", "latest")
    h = ["-o", "/dev/null", "-w", "%{http_code}", "-H", "Accept: " + ACCEPT_ALL]
    assert curl(*h, proxy.url + "/v2/busybox/manifests/latest")[1] == "404"
    assert curl(*h, proxy.url + "/v2/busybox-v2s2/manifests/latest")[1] == "200"
    assert rule.hits == 1
    rc, out, _ = curl("-H", "Accept: " + ACCEPT_ALL, proxy.url + "/v2/busybox/manifests/latest")
    assert json.loads(out)["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_proxy_blob_not_found(registry, fault_proxy):
    proxy = fault_proxy()
    layer, config = _busybox_digests(registry)
    proxy.blob_not_found(layer)
    h = ["-o", "/dev/null", "-w", "%{http_code}"]
    assert curl(*h, proxy.url + "/v2/busybox/blobs/" + layer)[1] == "404"
    assert curl(*h, "-I", proxy.url + "/v2/busybox/blobs/" + layer)[1] == "404"
    assert curl(*h, proxy.url + "/v2/busybox/blobs/" + config)[1] == "200"


def test_proxy_fails_n_times_then_passes(registry, fault_proxy, tmp_path):
    proxy = fault_proxy()
    rule = proxy.fail(status=500, times=2)
    h = ["-o", "/dev/null", "-w", "%{http_code}", "-H", "Accept: " + ACCEPT_ALL]
    url = proxy.url + "/v2/busybox/manifests/latest"
    codes = [curl(*h, url)[1] for _ in range(4)]
    assert codes == ["500", "500", "200", "200"]
    assert rule.hits == 2
    proxy.fail(status=503, times=1)
    assert curl(*h, url)[1] == "503"
    # A retrying client gets through a transient failure.
    n = len(proxy.records)
    proxy.fail(status=500, times=2)
    assert curl("-o", str(tmp_path / "m"), "-w", "%{http_code}", "-H", "Accept: " + ACCEPT_ALL,
                "--retry", "3", "--retry-delay", "1", url)[1] == "200"
    assert [r.status for r in proxy.records[n:]] == [500, 500, 200]


def test_proxy_cuts_blob_once(registry, fault_proxy, tmp_path):
    proxy = fault_proxy()
    layer, _ = _busybox_digests(registry)
    rule = proxy.cut_blob(layer)
    out = tmp_path / "blob"
    rc, _, err = curl("-o", str(out), proxy.url + "/v2/busybox/blobs/" + layer)
    assert rc == 18, err  # CURLE_PARTIAL_FILE
    full = registry.get_blob("busybox", layer)[1]
    assert 0 < out.stat().st_size < len(full)
    assert proxy.records[-1].fault.startswith("cut after")
    rc, _, err = curl("-o", str(out), proxy.url + "/v2/busybox/blobs/" + layer)
    assert rc == 0, err
    assert sha256(out.read_bytes()) == layer
    assert rule.hits == 1
    # Range requests pass through (what a resuming client sends).
    rc, part, _ = curl("-r", "100-199", proxy.url + "/v2/busybox/blobs/" + layer, binary=True)
    assert part == full[100:200]


def test_proxy_redirects_blobs(registry, fault_proxy, tmp_path):
    proxy = fault_proxy()
    proxy.redirect_blobs()
    layer, _ = _busybox_digests(registry)
    assert proxy.blob_host.split(":")[0] != "127.0.0.1" or \
        proxy.blob_host != proxy.host
    url = proxy.url + "/v2/busybox/blobs/" + layer
    rc, out, _ = curl("-i", url)
    assert " 307 " in out.splitlines()[0]
    loc = [l for l in out.splitlines() if l.lower().startswith("location:")][0]
    assert proxy.blob_host in loc
    # curl drops Authorization on a redirect to another host, unless told to trust it.
    auth = ["-H", "Authorization: Basic Ym94bGl0ZTpzZWNyZXQ="]
    rc, body, _ = curl("-L", *auth, url, binary=True)
    assert rc == 0 and sha256(body) == layer
    assert proxy.redirect_records[-1].authorization is None
    assert proxy.records[-1].authorization == "Basic Ym94bGl0ZTpzZWNyZXQ="
    rc, body, _ = curl("-L", "--location-trusted", *auth, url, binary=True)
    assert sha256(body) == layer
    assert proxy.redirect_records[-1].authorization == "Basic Ym94bGl0ZTpzZWNyZXQ="
    # A real client pulls through the redirect.
    n = len(proxy.redirect_records)
    skopeo_copy("docker://%s/busybox:latest" % proxy.host, "oci:%s:latest" % (tmp_path / "o"))
    assert len(proxy.redirect_records) - n == 2  # config + layer
    # Unknown signature: refused.
    rc, out, _ = curl("-o", "/dev/null", "-w", "%{http_code}",
                      "http://%s/blobs/%s?sig=forged" % (proxy.blob_host, layer))
    assert out == "403"


def test_proxy_redirect_in_front_of_auth_registry(auth_registry, fault_proxy, tmp_path):
    proxy = fault_proxy(auth_registry)
    proxy.redirect_blobs()
    p = run([SKOPEO, "copy", "--quiet", "--src-tls-verify=false", "--src-creds",
             auth_registry.skopeo_creds(), "docker://%s/busybox:latest" % proxy.host,
             "oci:%s:latest" % (tmp_path / "o")])
    assert p.returncode == 0, p.stderr
    assert proxy.redirect_records
    # skopeo must not leak the registry credentials to the other host.
    assert all(r.authorization is None for r in proxy.redirect_records)
    assert all(r.authorization for r in proxy.records if r.fault == "redirect")
