"""Registries used for real (BoxLite 0.9's ``Options(image_registries=[ImageRegistry(...)])``
and the CLI's ``--registry`` / ``--config``): TLS with a self-signed certificate
(``skip_verify``, for that host only), plain HTTP (``transport="http"``), htpasswd basic
auth, bearer tokens, ``search`` for unqualified names, and the pull/list results checked
against the registry's own digests. All against Debian's docker-registry on 127.0.0.1
(tests/integration/harness/registry.py); one box boots from a searched name.
"""
import asyncio
import calendar
import http.client
import json
import os
import ssl
import subprocess
import time

import pytest

import boxlite
from conftest import Cli
from harness.registry import ACCEPT_ALL, Registry

ANY_ERROR = boxlite.BoxliteError


def run(coro):
    return asyncio.run(coro)


# --------------------------------------------------------------------------- registries


class TlsRegistry(Registry):
    """docker-registry serving HTTPS with a self-signed certificate made by openssl."""

    def __init__(self, workdir, name="tls-registry"):
        super().__init__(workdir, name)
        self.cert = os.path.join(self.workdir, "cert.pem")
        self.key = os.path.join(self.workdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True)

    def _write_config(self):
        super()._write_config()
        with open(self.config_path) as f:
            cfg = json.load(f)
        cfg["http"]["tls"] = {"certificate": self.cert, "key": self.key}
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)

    def http(self, method, path, body=None, headers=None, auth=True, timeout=60):
        ctx = ssl.create_default_context(cafile=self.cert)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


def _serve(reg, test_images, names):
    """Starts `reg`, pushes the test images `names` (as repositories of the same name)
    and stops it when the fixture ends."""
    reg.start()
    try:
        for name in names:
            reg.push(test_images.layout(name), "latest", name)
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def tls_registry(test_images, tmp_path_factory):
    yield from _serve(TlsRegistry(str(tmp_path_factory.mktemp("tls-registry"))), test_images, ["busybox"])


@pytest.fixture(scope="module")
def plain_registry(test_images, tmp_path_factory):
    """Plain HTTP, with busybox and an image the TLS registry lacks (layered)."""
    yield from _serve(Registry(str(tmp_path_factory.mktemp("plain-registry"))), test_images,
                      ["busybox", "layered"])


@pytest.fixture(autouse=True)
def no_docker_credentials(tmp_path, monkeypatch):
    """No docker config.json may supply credentials behind the tests' backs."""
    empty = tmp_path / "docker-config"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))
    monkeypatch.delenv("BOXLITE_REGISTRY_MIRRORS", raising=False)
    monkeypatch.delenv("BOXLITE_INSECURE_REGISTRIES", raising=False)


def image_manifest(reg, repo, tag="latest", headers=None):
    """The registry's own image manifest for repo:tag (the host platform's, from an index)."""
    st, _, body, _ = _get_manifest(reg, repo, tag, headers)
    assert st == 200, (st, body[:200])
    doc = json.loads(body)
    if "manifests" in doc:
        pick = [m for m in doc["manifests"] if m.get("platform", {}).get("architecture") == "amd64"]
        st, _, body, _ = _get_manifest(reg, repo, pick[0]["digest"], headers)
        doc = json.loads(body)
    return doc


def _get_manifest(reg, repo, ref, headers=None):
    h = {"Accept": ACCEPT_ALL}
    h.update(headers or {})
    st, hd, body = reg.http("GET", "/v2/%s/manifests/%s" % (repo, ref), headers=h)
    return st, hd.get("content-type"), body, hd.get("docker-content-digest")


def runtime(tmp_path, *registries, name="home"):
    return boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path / name), image_registries=list(registries)))


def pull(rt, ref):
    return run(rt.images.pull(ref))


# ---------------------------------------------------------------------------------- TLS


def test_skip_verify_accepts_a_self_signed_certificate_for_that_host_only(tmp_path, tls_registry):
    ref = tls_registry.host + "/busybox"
    # Unconfigured, or configured without skip_verify: the certificate is refused.
    for regs in ([], [boxlite.ImageRegistry(tls_registry.host)]):
        with pytest.raises(ANY_ERROR) as err:
            pull(runtime(tmp_path, *regs, name=f"refused{len(regs)}"), ref)
        assert "TLS" in str(err.value) and "skip_verify" in str(err.value)
    rt = runtime(tmp_path, boxlite.ImageRegistry(tls_registry.host, skip_verify=True))
    got = pull(rt, ref)
    manifest = image_manifest(tls_registry, "busybox")
    assert got.config_digest == manifest["config"]["digest"]
    assert got.layer_count == len(manifest["layers"])
    # The same server under another name is another host: still verified, still refused.
    other = "localhost:%d/busybox" % tls_registry.port
    with pytest.raises(ANY_ERROR) as err:
        pull(rt, other)
    assert "TLS" in str(err.value)


def test_transport_chooses_the_scheme(tmp_path, tls_registry, plain_registry):
    """transport="http" speaks plain HTTP: it pulls from the plain registry and fails
    against the TLS one (which answers plain HTTP with an error)."""
    rt = runtime(tmp_path, boxlite.ImageRegistry(plain_registry.host, transport="http"),
                 boxlite.ImageRegistry(tls_registry.host, transport="http"))
    got = pull(rt, plain_registry.host + "/busybox")
    assert got.reference == plain_registry.host + "/busybox:latest"
    with pytest.raises(ANY_ERROR):
        pull(rt, tls_registry.host + "/busybox")


# --------------------------------------------------------------------------------- auth


def test_basic_auth_refused_without_credentials_pulled_with_them(tmp_path, auth_registry):
    ref = auth_registry.refs["busybox"]
    host = auth_registry.host
    with pytest.raises(boxlite.AuthenticationError):
        pull(runtime(tmp_path, boxlite.ImageRegistry(host, transport="http"), name="anon"), ref)
    with pytest.raises(boxlite.AuthenticationError):
        pull(runtime(tmp_path, boxlite.ImageRegistry(host, transport="http", username=auth_registry.username,
                                                     password="wrong-password"), name="wrong"), ref)
    rt = runtime(tmp_path, boxlite.ImageRegistry(host, transport="http", username=auth_registry.username,
                                                 password=auth_registry.password))
    got = pull(rt, ref)
    manifest = image_manifest(auth_registry, "busybox")
    assert got.config_digest == manifest["config"]["digest"]


def test_bearer_token_wins_over_basic_and_a_bad_token_is_refused(tmp_path, token_registry):
    ref = token_registry.refs["busybox"]
    host = token_registry.host
    with pytest.raises(boxlite.AuthenticationError):
        pull(runtime(tmp_path, boxlite.ImageRegistry(host, transport="http"), name="anon"), ref)
    with pytest.raises(boxlite.AuthenticationError) as err:
        pull(runtime(tmp_path, boxlite.ImageRegistry(host, transport="http", bearer_token="not-a-token"),
                     name="bogus"), ref)
    assert "bearer token" in str(err.value)
    token = token_registry.issue("boxlite", [("repository", "busybox", ["pull"])])
    before = len(token_registry.token_requests)
    # Wrong basic credentials beside a valid token: the token is what is used.
    reg = boxlite.ImageRegistry(host, transport="http", username="nobody", password="wrong",
                                bearer_token=token)
    assert reg.auth == "bearer"
    got = pull(runtime(tmp_path, reg), ref)
    assert got.reference == ref
    assert len(token_registry.token_requests) == before, "the token service was asked anyway"


# ------------------------------------------------------------------------------- search


def test_search_resolves_unqualified_names_in_order(tmp_path, tls_registry, plain_registry):
    rt = runtime(tmp_path,
                 boxlite.ImageRegistry(tls_registry.host, skip_verify=True, search=True),
                 boxlite.ImageRegistry(plain_registry.host, transport="http", search=True))
    assert pull(rt, "busybox").reference == tls_registry.host + "/busybox:latest"
    # Not in the first registry: the second one has it.
    assert pull(rt, "layered").reference == plain_registry.host + "/layered:latest"
    # Removing by the unqualified name removes what it resolved to.
    run(rt.images.remove("layered"))
    assert plain_registry.host + "/layered:latest" not in [i.reference for i in run(rt.images.list())]
    # A registry without search=True is never asked for unqualified names.
    mark = plain_registry.log_mark()
    rt2 = runtime(tmp_path, boxlite.ImageRegistry(plain_registry.host, transport="http"), name="nosearch")
    with pytest.raises(ANY_ERROR):
        pull(rt2, "layered")
    plain_registry.sync_log()
    assert not [r for r in plain_registry.requests()[mark:] if "/layered/" in r.path_only]


def test_pull_result_and_list_match_the_registry(tmp_path, plain_registry):
    rt = runtime(tmp_path, boxlite.ImageRegistry(plain_registry.host, transport="http"))
    t0 = int(time.time())
    got = pull(rt, plain_registry.host + "/layered")
    manifest = image_manifest(plain_registry, "layered")
    assert isinstance(got, boxlite.ImagePullResult) and isinstance(got, boxlite.ImageInfo)
    assert got.reference == plain_registry.host + "/layered:latest"
    assert got.config_digest == manifest["config"]["digest"] == got.id
    assert got.layer_count == len(manifest["layers"]) >= 2
    images = run(rt.images.list())
    [info] = [i for i in images if i.reference == got.reference]
    assert info.repository == plain_registry.host + "/layered"
    assert info.tag == "latest"
    assert info.id == manifest["config"]["digest"]
    assert info.size_bytes == sum(layer["size"] for layer in manifest["layers"])
    cached = calendar.timegm(time.strptime(info.cached_at, "%Y-%m-%dT%H:%M:%SZ"))
    assert t0 - 1 <= cached <= int(time.time()) + 1


# ------------------------------------------------------------------------ Python values


def test_image_registry_checks_come_from_the_core_and_secrets_are_masked():
    for bad, says in ((dict(host=""), "empty"), (dict(host="https://r.example"), "URL"),
                      (dict(host="r.example/path"), "path"), (dict(host="r.example", transport="ftp"), "ftp"),
                      (dict(host="r.example", username="u"), "together"),
                      (dict(host="r.example", password="p"), "together"),
                      (dict(host="r.example", skip_verify="yes"), "True or False")):
        with pytest.raises(boxlite.ConfigError, match=says):
            boxlite.ImageRegistry(**bad)
    r = boxlite.ImageRegistry("r.example:5000", transport="", username="alice", password="hunter2",
                              bearer_token="tok-secret")
    assert r.transport == "https" and r.auth == "bearer"
    text = repr(r)
    assert "hunter2" not in text and "tok-secret" not in text and "alice" in text
    with pytest.raises(boxlite.ConfigError):
        r.host = "http://x"
    assert r.host == "r.example:5000"
    with pytest.raises(boxlite.ConfigError):
        boxlite.Boxlite(boxlite.Options(image_registries=[123]))


# ---------------------------------------------------------------------------------- CLI


def _config(tmp_path, doc, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


def test_cli_registry_flag_searches_and_boots(cli_binary, tmp_path, plain_registry):
    """`--registry HOST` (before or after the command) resolves `busybox` there; a box
    boots from it. --debug shows the search."""
    c = Cli(cli_binary, tmp_path / "home")
    p = c.run("pull", "--debug", "--registry", plain_registry.host, "busybox", timeout=300)
    assert p.returncode == 0, p.stderr
    assert ("trying %s/busybox:latest" % plain_registry.host).encode() in p.stderr
    listed = json.loads(c.run("images", "--format", "json", check=True).stdout)
    assert any(plain_registry.host + "/busybox" in json.dumps(i) for i in listed)
    r = c.run("--registry", plain_registry.host, "run", "--rm", "busybox", "echo", "searched", timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"searched\n"
    bad = c.run("--registry", "http://%s" % plain_registry.host, "pull", "busybox")
    assert bad.returncode != 0 and b"--registry" in bad.stderr and b"URL" in bad.stderr
    bad = c.run("pull", "busybox", "--registry")
    assert bad.returncode != 0 and b"needs a value" in bad.stderr


def test_cli_config_file(cli_binary, tmp_path, auth_registry, token_registry):
    """--config: home_dir, a basic-auth registry searched for `busybox`, a bearer one."""
    home = tmp_path / "config-home"
    token = token_registry.issue("boxlite", [("repository", "busybox", ["pull"])])
    cfg = _config(tmp_path, {
        "home_dir": str(home),
        "image_registries": [
            {"host": auth_registry.host, "transport": "http", "search": True,
             "auth": {"type": "basic", "username": auth_registry.username,
                      "password": auth_registry.password}},
            {"host": token_registry.host, "transport": "http",
             "auth": {"type": "bearer", "token": token}},
        ]})
    c = Cli(cli_binary, tmp_path / "unused-home")
    c.env.pop("BOXLITE_HOME")
    p = c.run("--config", cfg, "pull", "busybox", timeout=300)
    assert p.returncode == 0, p.stderr
    assert (home / "images" / "index.json").exists()
    index = json.loads((home / "images" / "index.json").read_text())["images"]
    assert auth_registry.host + "/busybox:latest" in index
    p = c.run("pull", token_registry.refs["busybox"], "--config", cfg, timeout=300)
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "unused-home").exists()
    # The same file through the SDK (one parser, in the core).
    opts = boxlite.Options.from_config(cfg)
    assert opts.home_dir == str(home)
    assert [r.host for r in opts.registries] == [auth_registry.host, token_registry.host]
    assert opts.registries[0].auth == "basic" and opts.registries[1].auth == "bearer"
    assert token not in repr(opts)


@pytest.mark.parametrize("doc, says", [
    ("{not json", "not valid JSON"),
    ({"home": "/x"}, "unknown key \"home\""),
    ({"image_registries": [{"host": "r.example", "protocol": "http"}]}, "unknown key \"protocol\""),
    ({"image_registries": [{"host": "https://r.example"}]}, "image_registries[0]"),
    ({"image_registries": [{"host": "r", "auth": {"type": "basic", "username": "u"}}]},
     "needs username and password"),
    ({"image_registries": [{"host": "r", "auth": {"type": "oauth"}}]}, "\"oauth\" is unknown"),
])
def test_cli_config_bad_input(cli_binary, tmp_path, doc, says):
    c = Cli(cli_binary, tmp_path / "home")
    cfg = _config(tmp_path, doc)
    p = c.run("--config", cfg, "images")
    assert p.returncode != 0
    assert says.encode() in p.stderr and cfg.encode() in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    with pytest.raises(boxlite.ConfigError, match=says.replace("[", r"\[")):
        boxlite.Options.from_config(cfg)


def test_cli_config_missing_file_and_help(cli_binary, tmp_path):
    c = Cli(cli_binary, tmp_path / "home")
    p = c.run("--config", str(tmp_path / "nope.json"), "images")
    assert p.returncode != 0 and b"nope.json" in p.stderr
    h = c.run("--help")
    assert h.returncode == 0
    for flag in (b"--home", b"--registry", b"--config", b"--debug"):
        assert flag in h.stdout
