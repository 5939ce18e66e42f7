# The CLI's remote mode (docs/remote.md) against a real `boxlite serve`: the global
# --url/--path-prefix/--profile flags and their variables, `boxlite auth`, and the box
# commands (run, exec, ls, rm, cp) going to the server. One server and one box are
# shared by the module; every CLI call gets a private HOME (its credentials file).
import os
import secrets
import stat
import subprocess
from pathlib import Path

import pytest

from harness.serve import REMOTE_VARS, Serve

pytestmark = pytest.mark.allow_background_vms  # The module's server keeps a box running.

IMAGE = "boxlite/base"
KEY = "cli-key-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def server(cli_binary, tmp_path_factory):
    """`boxlite serve` on 127.0.0.1 (port 0) with an API key: (url, home)."""
    srv = Serve(cli_binary, tmp_path_factory.mktemp("serve-home"), KEY)
    try:
        yield srv.url, srv.home
    finally:
        srv.stop()


@pytest.fixture
def client(cli_binary, tmp_path):
    """Runs the CLI with a private HOME and no remote variables but those given."""
    home = tmp_path / "user"
    home.mkdir()

    def run(*args, env=None, input=None, timeout=300):
        full = {k: v for k, v in os.environ.items() if k not in REMOTE_VARS}
        full["HOME"] = str(home)
        full["BOXLITE_HOME"] = str(tmp_path / "local-home")  # Must stay unused.
        full.update(env or {})
        return subprocess.run([cli_binary, *args], input=input, capture_output=True, env=full, timeout=timeout)

    run.home = home
    run.local_home = tmp_path / "local-home"
    return run


def text(proc):
    return proc.stdout.decode(errors="replace")


def err(proc):
    return proc.stderr.decode(errors="replace")


def test_box_commands_go_to_the_server(server, client, tmp_path):
    url, server_home = server
    key = {"BOXLITE_API_KEY": KEY}
    run = client("--url", url, "run", "--rm", IMAGE, "sh", "-c", "echo from-run; exit 4", env=key)
    assert run.returncode == 4, err(run)
    assert text(run) == "from-run\n"

    made = client("--url", url, "create", "--name", "rc", IMAGE, env=key)
    assert made.returncode == 0, err(made)
    box_id = text(made).strip()
    assert (server_home / "boxes" / box_id).is_dir()
    started = client("--url", url, "start", "rc", env=key)
    assert started.returncode == 0, err(started)
    # The variable instead of the flag; the global flag after the command works too.
    ex = client("exec", "rc", "--", "sh", "-c", "echo $((6*7))", env={**key, "BOXLITE_REST_URL": url})
    assert ex.returncode == 0, err(ex)
    assert text(ex) == "42\n"
    listed = client("ls", "-a", "--url", url, env=key)
    assert listed.returncode == 0, err(listed)
    assert "rc" in text(listed)

    payload = secrets.token_hex(32)
    src = tmp_path / "up.txt"
    src.write_text(payload)
    up = client("--url", url, "cp", str(src), "rc:/root/up.txt", env=key)
    assert up.returncode == 0, err(up)
    cat = client("--url", url, "exec", "rc", "--", "cat", "/root/up.txt", env=key)
    assert text(cat) == payload
    down = tmp_path / "down.txt"
    got = client("--url", url, "cp", "rc:/root/up.txt", str(down), env=key)
    assert got.returncode == 0, err(got)
    assert down.read_text() == payload

    # Local-only commands say so in one line.
    images = client("--url", url, "images", env=key)
    assert images.returncode == 1
    assert "unsupported: images over REST" in err(images)
    assert len(err(images).strip().splitlines()) == 1

    rm = client("--url", url, "rm", "-f", "rc", env=key)
    assert rm.returncode == 0, err(rm)
    assert not (server_home / "boxes" / box_id).exists()
    assert "rc" not in text(client("--url", url, "ls", "-a", env=key))
    assert not client.local_home.exists() or not any((client.local_home / "boxes").glob("*"))


def test_auth_login_status_whoami_logout(server, client):
    url, _ = server
    cred = client.home / ".boxlite" / "credentials.toml"
    wrong = client("auth", "login", "--url", url, "--api-key-stdin", input=b"not-the-key\n")
    assert wrong.returncode == 1
    assert "auth: " in err(wrong)
    assert not cred.exists()  # A refused key is not kept.

    login = client("auth", "login", "--url", url, "--api-key-stdin", input=KEY.encode() + b"\n")
    assert login.returncode == 0, err(login)
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600
    assert KEY in cred.read_text()

    status = client("auth", "status")
    assert status.returncode == 0, err(status)
    assert url in text(status)
    assert KEY not in text(status)  # Masked.
    who = client("auth", "whoami")
    assert who.returncode == 0, err(who)
    assert "sub:" in text(who)
    # With the profile alone the commands go to the server.
    ls = client("ls", "-a")
    assert ls.returncode == 0, err(ls)
    assert not client.local_home.exists()

    browser = client("auth", "login", "--method", "browser")
    assert browser.returncode == 1 and "unsupported" in err(browser)
    no_y = client("auth", "logout")
    assert no_y.returncode == 2  # Not a terminal: -y is required.
    out = client("auth", "logout", "-y")
    assert out.returncode == 0, err(out)
    assert "[default]" not in cred.read_text()
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600
    assert client("auth", "status").returncode == 1


def write_profiles(client, profiles):
    path = client.home / ".boxlite" / "credentials.toml"
    path.parent.mkdir(mode=0o700, exist_ok=True)
    body = ""
    for name, fields in profiles.items():
        body += f"[{name}]\n" + "".join(f'{k} = "{v}"\n' for k, v in fields.items()) + "\n"
    path.write_text(body)
    path.chmod(0o600)


def test_precedence_per_axis(server, client):
    url, _ = server
    dead = "http://127.0.0.1:9"
    write_profiles(client, {"default": {"url": dead, "api_key": "wrong"},
                            "good": {"url": url, "api_key": KEY},
                            "keyonly": {"url": dead, "api_key": KEY}})

    def ok(*args, env=None):
        proc = client(*args, "ls", "-a", env=env)
        return proc.returncode == 0, err(proc)

    # URL: the flag beats the variable, which beats the profile.
    assert not ok()[0]
    assert ok("--url", url, env={"BOXLITE_API_KEY": KEY})[0]
    assert ok("--url", url, env={"BOXLITE_REST_URL": dead, "BOXLITE_API_KEY": KEY})[0]
    assert ok(env={"BOXLITE_REST_URL": url, "BOXLITE_API_KEY": KEY})[0]
    # Key: the variable beats the profile; the profile's key serves a URL from elsewhere.
    good, message = ok("--url", url)
    assert not good and "auth: " in message  # The default profile's key is wrong.
    assert ok("--url", url, "--profile", "keyonly")[0]
    assert ok(env={"BOXLITE_PROFILE": "good"})[0]
    assert ok("--profile", "good", env={"BOXLITE_PROFILE": "default"})[0]
    # Prefix: `boxlite serve` has none, so a request under /v1/<prefix>/ fails; the flag
    # beats the variable, which beats the profile.
    write_profiles(client, {"default": {"url": url, "api_key": KEY, "path_prefix": "tenant"}})
    assert not ok()[0]
    assert ok(env={"BOXLITE_REST_PATH_PREFIX": "/"})[0]
    assert ok("--path-prefix", "", env={"BOXLITE_REST_PATH_PREFIX": "other"})[0]
    assert not ok("--path-prefix", "tenant", env={"BOXLITE_REST_PATH_PREFIX": "/"})[0]


def test_https_verifies_the_server_certificate(client, tmp_path):
    """https:// goes through OpenSSL: a certificate the system does not trust, or one for
    another name, fails the handshake in one line; a trusted one gets through (the test
    server answers HTML, which the client then refuses as not JSON)."""
    import shutil
    import socket
    import time

    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("no openssl program")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([openssl, "s_server", "-accept", str(port), "-cert", str(cert), "-key", str(key),
                               "-www"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        untrusted = client("--url", f"https://localhost:{port}", "ls", env={"BOXLITE_API_KEY": "k"})
        assert untrusted.returncode == 1
        assert "TLS handshake" in err(untrusted) and "certificate verify failed" in err(untrusted)
        assert len(err(untrusted).strip().splitlines()) == 1
        trusted = {"BOXLITE_API_KEY": "k", "SSL_CERT_FILE": str(cert)}
        wrong_name = client("--url", f"https://127.0.0.1:{port}", "ls", env=trusted)
        assert "certificate verify failed" in err(wrong_name)
        through = client("--url", f"https://localhost:{port}", "ls", env=trusted)
        assert through.returncode == 1
        assert "not JSON" in err(through)  # TLS done; the test server is not BoxLite.
    finally:
        server.kill()
        server.wait()
