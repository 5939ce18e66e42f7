"""Real OCI images: pulled from loopback registries, verified, turned into an ext4 root
file system without unpacking on the host, and booted (issue: real OCI images)."""
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import Cli, UnprivilegedCli
from guest_check import (TOOL_DIR, GuestAccessor, busybox_binary, guest_checks,
                         shell_command)
from harness import oci_model
from harness.catalog import hostile_case_names, hostile_case_outcomes


@pytest.fixture(scope="module")
def icli(cli_binary, tmp_path_factory, registry):
    """A CLI with a home of its own, the loopback registry as mirror and plain-HTTP host."""
    return Cli(cli_binary, tmp_path_factory.mktemp("images-home"), registry.env())


def store_state(home):
    """What the image store holds: index entries, blob names, rootfs files, temp files."""
    images = Path(home) / "images"
    index = {}
    if (images / "index.json").exists():
        index = json.loads((images / "index.json").read_text()).get("images", {})
    blobs = sorted(p.name for p in (images / "blobs" / "sha256").glob("*")) \
        if (images / "blobs" / "sha256").exists() else []
    rootfs = sorted(p.name for p in (images / "rootfs").glob("*.ext4")) \
        if (images / "rootfs").exists() else []
    tmp = sorted(p.name for p in (images / "tmp").glob("*")) if (images / "tmp").exists() else []
    return index, blobs, rootfs, tmp


def test_debian_python_image_runs_python(icli, registry):
    """boxlite run --rm <registry>/debian-python python3 -c 'print(6*7)' prints 42."""
    p = icli.run("run", "--rm", registry.refs["debian-python"], "python3", "-c", "print(6*7)",
                 timeout=600)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"42\n"


def test_short_name_resolves_through_the_mirror(icli, registry):
    """With BOXLITE_REGISTRY_MIRRORS set, `python:slim` comes from the mirror."""
    mark = registry.log_mark()
    p = icli.run("run", "--rm", "python:slim", "python3", "-c", "import sys; print(sys.version_info[0])",
                 timeout=600)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"3\n"
    assert any("/v2/library/python/manifests/slim" in r.path_only
               for r in registry.requests()[mark:])


def test_second_box_makes_no_registry_request_and_builds_nothing(icli, registry):
    """A second box from a pulled image neither contacts the registry nor rebuilds."""
    ref = registry.refs["busybox"]
    assert icli.run("pull", ref, timeout=300).returncode == 0
    _, _, rootfs_before, _ = store_state(icli.home)
    mtimes = {p: p.stat().st_mtime_ns for p in (icli.home / "images" / "rootfs").glob("*.ext4")}
    mark = registry.log_mark()
    p = icli.run("run", "--rm", ref, "echo", "again")
    assert p.returncode == 0, p.stderr
    registry.sync_log()
    assert [r.path_only for r in registry.requests()[mark:]
            if "boxlite-log-barrier" not in r.path_only] == []
    assert store_state(icli.home)[2] == rootfs_before
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


@pytest.mark.parametrize("name", ["layered", "layered-v2s2", "zstd", "busybox-v2s2"])
def test_files_owners_modes_links_and_whiteouts_match_the_reference(icli, registry,
                                                                    test_images, name):
    """Inside the guest, the image's files match what an unpacker (umoci, and the
    harness's reference model) produces: types, modes, owners, sizes, links, contents,
    device numbers, whiteouts and opaque directories."""
    image = {"layered-v2s2": "layered", "busybox-v2s2": "busybox"}.get(name, name)
    checks = test_images.expect(image)["checks"]
    box = "check-" + name
    assert icli.run("run", "-d", "--name", box, registry.refs[name], "sleep", "600",
                    timeout=300).returncode == 0
    try:
        def run_script(script):
            p = icli.run("exec", "-i", box, "sh", input=script.encode(), timeout=300)
            assert p.returncode == 0, p.stderr
            return p.stdout
        acc = GuestAccessor(run_script, guest_checks(checks))
        failures = oci_model.evaluate(guest_checks(checks), acc)
        assert failures == []
    finally:
        icli.run("rm", "-f", box)


def test_xattrs_reach_the_disk_image(icli, registry, test_images):
    """File capabilities (security.capability) and other xattrs are in the box's disk."""
    checks = [c for c in test_images.expect("layered")["checks"] if "xattrs" in c]
    assert checks, "the layered image should carry xattrs"
    assert icli.run("pull", registry.refs["layered"], timeout=300).returncode == 0
    index, _, _, _ = store_state(icli.home)
    disks = list((icli.home / "images" / "rootfs").glob("*.ext4"))
    assert disks
    found_all = False
    for disk in disks:
        ok = True
        for c in checks:
            for name, b64 in c["xattrs"].items():
                p = subprocess.run(["debugfs", "-R", f"ea_get -x {c['path']} {name}", str(disk)],
                                   capture_output=True, text=True)
                want = __import__("base64").b64decode(b64)
                got_hex = "".join(p.stdout.split())
                if want.hex() not in got_hex.replace(" ", "").lower():
                    ok = False
        found_all = found_all or ok
    assert found_all, "no rootfs carries the layered image's xattrs"


def test_multiarch_index_picks_the_host_platform(icli, registry):
    """From an index, the linux/amd64 manifest is picked."""
    p = icli.run("run", "--rm", registry.refs["multiarch-archfile"], "cat", "/arch", timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == b"amd64"


def test_image_config_env_workdir_user_and_cmd_are_honoured(icli, registry):
    """run without a command uses the image's Cmd; Env and WorkingDir apply."""
    p = icli.run("run", "--rm", registry.refs["debian-python"], "sh", "-c",
                 "echo $PATH; pwd; id -u", timeout=300)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().split("\n")
    assert "/usr/bin" in lines[0]


def test_images_rmi_and_gc(icli, registry):
    """`images` lists pulled images; `rmi` removes one and its unreferenced blobs."""
    ref = registry.refs["zstd"]
    assert icli.run("pull", ref, timeout=300).returncode == 0
    listing = icli.run("images", "--format", "json").stdout
    refs = [i["reference"] for i in json.loads(listing)]
    assert ref in refs
    before = store_state(icli.home)[1]
    assert icli.run("rmi", ref).returncode == 0
    after = json.loads(icli.run("images", "--format", "json").stdout)
    assert ref not in [i["reference"] for i in after]
    assert len(store_state(icli.home)[1]) < len(before)
    assert icli.run("rmi", ref).returncode != 0


def test_import_docker_save_tarball_and_oci_layout(fresh_cli, test_images):
    """import takes a docker-save tarball and an OCI layout directory."""
    p = fresh_cli.run("import", test_images.base_tarball, "--tag", "imported/base:1")
    assert p.returncode == 0, p.stderr
    p = fresh_cli.run("import", test_images.layout("zstd"), "--tag", "imported/zstd:1")
    assert p.returncode == 0, p.stderr
    r = fresh_cli.run("run", "--rm", "imported/zstd:1", "echo", "ok")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"ok\n"


def test_pipeline_works_unprivileged(cli_binary, registry, tmp_path):
    """Pull, rootfs build and boot as uid 65534."""
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="boxlite-nobody-img-"))
    os.chmod(base, 0o755)
    try:
        nob = UnprivilegedCli(cli_binary, base / "home")
        nob.env.update(registry.env())
        p = nob.run("run", "--rm", registry.refs["layered"], "cat", "/data/keep.txt", timeout=300)
        assert p.returncode == 0, p.stderr
        assert p.stdout == b"keep\n"
        owners = {os.stat(f).st_uid for f in (base / "home").rglob("*")}
        assert owners == {65534}
    finally:
        subprocess.run(["rm", "-rf", str(base)])


def test_two_processes_pulling_at_once_download_each_blob_once(cli_binary, registry, tmp_path):
    """Two processes pulling the same image into one home: one download per blob."""
    home = tmp_path / "shared"
    a = Cli(cli_binary, home, registry.env())
    mark = registry.log_mark()
    ref = registry.refs["debian-python-v2s2"]
    procs = [a.popen("pull", "-q", ref, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    gets = registry.blob_gets(repo="debian-python-v2s2", since=mark)
    digests = [g.path_only.rsplit("/", 1)[1] for g in gets]
    assert len(digests) == len(set(digests)), f"a blob was downloaded twice: {digests}"
    assert store_state(home)[3] == []


# ----------------------------------------------------------------------- hostile images

OUTCOMES = hostile_case_outcomes()


@pytest.fixture(scope="module")
def hostile_cli(cli_binary, tmp_path_factory, registry):
    return Cli(cli_binary, tmp_path_factory.mktemp("hostile-home"), registry.env())


def _host_setup(case):
    for c in case.get("host_setup", []):
        path = Path(c["path"])
        if c.get("type") == "dir":
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(c.get("content", ""))


@pytest.mark.parametrize("name", hostile_case_names())
def test_hostile_layer_is_contained_or_rejected(hostile_cli, registry, test_images, name):
    """Each hostile image either builds a contained rootfs (checked inside the guest) or
    fails with a clear image error; nothing is written outside the store, and a failure
    leaves nothing half-written."""
    case = test_images.hostile_case(name)
    _host_setup(case)
    ref = registry.refs["hostile/" + name]
    index_before, blobs_before, rootfs_before, _ = store_state(hostile_cli.home)
    p = hostile_cli.run("pull", "-q", ref, timeout=600)
    if case["outcome"] == "error":
        assert p.returncode != 0, f"{name}: pull succeeded, want an image error"
        msg = p.stderr.decode()
        assert msg.count("\n") - msg.count("boxlite: warning") == 1, msg
        assert "boxlite: " in msg
        index, _, rootfs, tmp = store_state(hostile_cli.home)
        assert ref not in index and not any(name in k for k in index), "failed pull recorded"
        assert rootfs == rootfs_before, "failed build left a rootfs"
        assert tmp == [], f"temp files left behind: {tmp}"
    else:
        assert p.returncode == 0, f"{name}: {p.stderr.decode()}"
        checks = case.get("checks", [])
        box = "hostile-" + name
        r = hostile_cli.run("create", "--name", box, ref)
        assert r.returncode == 0, r.stderr
        try:
            r = hostile_cli.run("start", box, timeout=300)
            assert r.returncode == 0, r.stderr
            # Some results have no busybox (an opaque root hides it): bring one along.
            has_shell = hostile_cli.run("exec", box, "/bin/busybox", "true").returncode == 0
            if not has_shell:
                r = hostile_cli.run("cp", busybox_binary(), f"{box}:{TOOL_DIR}/busybox")
                assert r.returncode == 0, r.stderr

            def run_script(script):
                q = hostile_cli.run("exec", "-i", box, *shell_command(not has_shell),
                                    input=script.encode(), timeout=600)
                assert q.returncode == 0, q.stderr
                return q.stdout
            gc = guest_checks(checks)
            failures = oci_model.evaluate(gc, GuestAccessor(run_script, gc))
            assert failures == [], failures
        finally:
            hostile_cli.run("rm", "-f", box)
    host_failures = oci_model.evaluate(case.get("host_checks", []), oci_model.HostAccessor("/"))
    assert host_failures == [], f"{name} touched the host: {host_failures}"


# --------------------------------------------------------------------- registry faults

def _proxied_cli(cli_binary, tmp_path, proxy):
    return Cli(cli_binary, tmp_path / "home", {"BOXLITE_INSECURE_REGISTRIES": proxy.host})


def test_unauthorized_is_an_authentication_error(cli_binary, tmp_path, fault_proxy):
    proxy = fault_proxy()
    proxy.unauthorized()
    c = _proxied_cli(cli_binary, tmp_path, proxy)
    p = c.run("pull", f"{proxy.host}/busybox:latest", timeout=120)
    assert p.returncode == 1, p.stderr
    assert b"docker login" in p.stderr or b"credentials" in p.stderr


def test_missing_tag_is_not_found(cli_binary, tmp_path, fault_proxy):
    proxy = fault_proxy()
    c = _proxied_cli(cli_binary, tmp_path, proxy)
    p = c.run("pull", f"{proxy.host}/busybox:no-such-tag", timeout=120)
    assert p.returncode == 1, p.stderr
    assert b"not found" in p.stderr and b"no-such-tag" in p.stderr


def test_missing_blob_is_not_found_and_nothing_is_recorded(cli_binary, tmp_path, fault_proxy,
                                                           test_images):
    proxy = fault_proxy()
    layout = Path(test_images.layout("busybox"))
    manifest_digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest[7:]).read_text())
    layer = manifest["layers"][0]["digest"]
    proxy.blob_not_found(layer)
    c = _proxied_cli(cli_binary, tmp_path, proxy)
    p = c.run("pull", f"{proxy.host}/busybox:latest", timeout=120)
    assert p.returncode == 1, p.stderr
    assert layer.encode() in p.stderr
    index, _, rootfs, tmp = store_state(c.home)
    assert index == {} and rootfs == [] and tmp == []


def test_server_errors_are_retried(cli_binary, tmp_path, fault_proxy):
    proxy = fault_proxy()
    proxy.fail(500, times=2)
    c = _proxied_cli(cli_binary, tmp_path, proxy)
    p = c.run("pull", f"{proxy.host}/busybox:latest", timeout=300)
    assert p.returncode == 0, p.stderr
    assert sum(1 for r in proxy.records if r.status == 500) == 2


def test_connection_cut_mid_blob_is_resumed(cli_binary, tmp_path, fault_proxy):
    proxy = fault_proxy()
    proxy.cut_blob()
    c = _proxied_cli(cli_binary, tmp_path, proxy)
    p = c.run("run", "--rm", f"{proxy.host}/busybox:latest", "echo", "whole", timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"whole\n"


def _docker_config(tmp_path, host, user, password):
    import base64
    docker = tmp_path / "docker"
    docker.mkdir(exist_ok=True)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return str(docker)


def test_basic_auth_from_docker_config(cli_binary, tmp_path, auth_registry):
    """Basic auth with credentials from config.json; without them, an auth error."""
    docker = _docker_config(tmp_path, auth_registry.host, auth_registry.username,
                            auth_registry.password)
    c = Cli(cli_binary, tmp_path / "home", {"BOXLITE_INSECURE_REGISTRIES": auth_registry.host,
                                            "DOCKER_CONFIG": docker})
    p = c.run("run", "--rm", auth_registry.refs["busybox"], "echo", "authed", timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"authed\n"
    bad = Cli(cli_binary, tmp_path / "home2", {"BOXLITE_INSECURE_REGISTRIES": auth_registry.host})
    q = bad.run("pull", auth_registry.refs["busybox"], timeout=120)
    assert q.returncode == 1, q.stderr


def test_blob_redirect_to_another_host_drops_authorization(cli_binary, tmp_path, fault_proxy,
                                                          auth_registry):
    """Blobs redirected to another host are fetched without our Authorization header."""
    proxy = fault_proxy(upstream=auth_registry)
    proxy.redirect_blobs()
    docker = _docker_config(tmp_path, proxy.host, auth_registry.username, auth_registry.password)
    c = Cli(cli_binary, tmp_path / "home", {"BOXLITE_INSECURE_REGISTRIES": proxy.host,
                                            "DOCKER_CONFIG": docker})
    p = c.run("pull", f"{proxy.host}/busybox:latest", timeout=300)
    assert p.returncode == 0, p.stderr
    assert proxy.redirect_records, "no blob was redirected"
    assert all(r.authorization is None for r in proxy.redirect_records)
    assert any(r.authorization for r in proxy.records), "the registry itself got no credentials"


def test_token_auth_registry(cli_binary, tmp_path, token_registry):
    """The Bearer token flow from WWW-Authenticate works with config.json credentials."""
    docker = _docker_config(tmp_path, token_registry.host, token_registry.username,
                            token_registry.password)
    c = Cli(cli_binary, tmp_path / "home", {"BOXLITE_INSECURE_REGISTRIES": token_registry.host,
                                            "DOCKER_CONFIG": docker})
    p = c.run("run", "--rm", token_registry.refs["busybox"], "echo", "tokened", timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"tokened\n"
