# Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
"""Secrets (`boxlite.Secret`, docs/networking.md "Secrets") on a real box, in the closed
network of two namespaces of harness/netns_env.py: the Python SDK runs inside the client
namespace (the box's DNS upstream is the servers' DNS; SSL_CERT_FILE names the test CA, so
boxlite-net trusts the test HTTPS servers as it trusts the host's roots elsewhere).

One persistent box with one secret for api.secret.test runs one script; each check prints
a marker line, and the servers' log says what reached them. Everything that must not hold
the value is searched from the host, because a search inside the guest would have to bring
the value in: the guest's environment (printed), the memory of the whole guest (the QEMU
process's mappings, read through /proc/<pid>/mem while the box runs), and its disk (the
box's qcow2 overlay, after `sync` and a stop). Needs root (`ip netns`).
"""

import json
import os
import sys
import textwrap

import pytest

from conftest import SESSION_MARK, add_session_root
from harness.netns_env import netns_fixture

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("BOXLITE_BUILD_DIR", os.path.join(REPO, "build"))
HELPER = os.path.join(BUILD, "src", "net", "boxlite-net")
IMAGE = "boxlite/base"

NAMES = {"api.secret.test": "A", "other.secret.test": "A"}
VALUE = "sk-test-5ec2e7-value-never-in-the-box-9f81"

GUEST = textwrap.dedent(r'''
    P="$BOXLITE_SECRET_API_KEY"
    echo "PLACEHOLDER $P"
    w() { out=$(wget -T 20 -q -O - --no-check-certificate "$@" 2>&1); echo "rc=$? $(echo $out | tr '\n' ' ')"; }
    echo "HEADER $(w --header "X-Api-Key: $P" https://api.secret.test/hdr)"
    echo "QUERY $(w "https://api.secret.test/q?key=$P&n=1")"
    echo "BODY $(w --post-data "token=$P&n=2" https://api.secret.test/body)"
    echo "OTHER $(w --header "X-Api-Key: $P" "https://other.secret.test/other?key=$P")"
    echo "ENV_BEGIN"; env; cat /proc/[0-9]*/environ | tr '\0' '\n'; echo "ENV_END"
    echo "TRUST_BEGIN"; cat /etc/ssl/certs/ca-certificates.crt; echo "TRUST_END"
    echo "LOCAL $(ls /usr/local/share/ca-certificates/)"
    sync
''')

# Runs in the client namespace with this checkout's SDK (PYTHONPATH).
DRIVER = textwrap.dedent(r'''
    import asyncio, glob, json, os, sys
    import boxlite

    cfg = json.load(open(sys.argv[1]))
    value = cfg["value"].encode()

    def scan(chunks, needles):
        found = {n: False for n in needles}
        total, tail = 0, b""
        for chunk in chunks:
            data = tail + chunk
            for n in needles:
                found[n] = found[n] or n in data
            tail, total = data[-512:], total + len(chunk)
        return {"found": {n.decode(): f for n, f in found.items()}, "bytes": total}

    def process_memory(pid):
        with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
            for line in maps:
                addr, perms = line.split()[:2]
                if not perms.startswith("r"):
                    continue
                start, end = (int(x, 16) for x in addr.split("-"))
                pos = start
                while pos < end:
                    n = min(end - pos, 8 << 20)
                    try:
                        mem.seek(pos)
                        chunk = mem.read(n)
                    except (OSError, ValueError, OverflowError):
                        break
                    yield chunk
                    pos += n

    def file_chunks(path):
        with open(path, "rb") as f:
            while True:
                chunk = f.read(8 << 20)
                if not chunk:
                    return
                yield chunk

    async def main():
        secret = boxlite.Secret("API_KEY", cfg["value"], hosts=["api.secret.test"])
        out = {"repr": repr(secret)}
        box = boxlite.SimpleBox(cfg["image"], memory_mib=256, auto_remove=False,
                                secrets=[secret])
        async with box:
            r = await box.exec("sh", "-c", cfg["script"])
            out["stdout"], out["stderr"], out["exit_code"] = r.stdout, r.stderr, r.exit_code
            info = await box.info()
            box_dir = os.path.dirname(glob.glob(os.path.join(
                os.environ["BOXLITE_HOME"], "**", info.id, "ca.pem"), recursive=True)[0])
            ca_cert = open(os.path.join(box_dir, "ca.pem")).read()
            ca_key = open(os.path.join(box_dir, "ca-key.pem")).read()
            key_body = "".join(l for l in ca_key.splitlines() if l and not l.startswith("-----"))
            placeholder = [l.split(" ", 1)[1] for l in r.stdout.splitlines()
                           if l.startswith("PLACEHOLDER ")][0]
            needles = [value, placeholder.encode(), key_body[:40].encode()]
            out["memory"] = scan(process_memory(info.pid), needles)
        disk = os.path.join(box_dir, "disk.qcow2")
        out["disk"] = scan(file_chunks(disk), needles)
        out["record"] = open(os.path.join(box_dir, "box.json")).read() \
            if os.path.exists(os.path.join(box_dir, "box.json")) else ""
        out.update(ca_cert=ca_cert, key_body=key_body[:40], placeholder=placeholder,
                   modes={n: oct(os.stat(os.path.join(box_dir, n)).st_mode & 0o777)
                          for n in ("ca-key.pem", "secrets.json")})
        logs = [os.path.join(box_dir, n) for n in os.listdir(box_dir) if n.endswith(".log")]
        out["logs"] = "".join(open(p, errors="replace").read() for p in logs)
        await boxlite.Boxlite.default().remove(info.id, force=True)
        out["removed"] = not os.path.exists(box_dir)  # The CA key and values go with it.
        print(json.dumps(out))

    asyncio.run(main())
''')


# The closed test network (harness/netns_env.py): api.secret.test and other.secret.test on
# one address, with the test CA's certificates; skips without root.
secrets_netns = netns_fixture(NAMES)


@pytest.fixture(scope="module")
def run(secrets_netns, tmp_path_factory):
    """What the one box did, as the driver reported it."""
    env = secrets_netns
    if not os.access(HELPER, os.X_OK):
        pytest.fail("%s is not built (set BOXLITE_BUILD_DIR)" % HELPER)
    work = tmp_path_factory.mktemp("secrets-run")
    home = work / "home"
    add_session_root(home)
    (work / "driver.py").write_text(DRIVER)
    (work / "cfg.json").write_text(json.dumps({"value": VALUE, "image": IMAGE, "script": GUEST}))
    run_env = env.box_env(home)
    run_env.update({"BOXLITE_NET_HELPER": HELPER, "SSL_CERT_FILE": env.ca_cert,
                    "PYTHONPATH": os.pathsep.join(sys.path)})
    key, value = SESSION_MARK.split("=", 1)
    run_env[key] = value
    proc = env.run([sys.executable, str(work / "driver.py"), str(work / "cfg.json")], env=run_env)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out + proc.stderr.decode(errors="replace")
    result = json.loads(out.strip().splitlines()[-1])
    lines = {}
    for line in result["stdout"].splitlines():
        marker, _, rest = line.partition(" ")
        lines.setdefault(marker, rest)
    result["lines"] = lines
    return result


def test_the_secret_reaches_the_server_in_a_header_a_query_and_a_body(run, secrets_netns):
    lines = run["lines"]
    for marker in ("HEADER", "QUERY", "BODY"):
        assert lines[marker].startswith("rc=0 site=api.secret.test"), run["stdout"] + run["logs"][-3000:]
    assert [r["headers"].get("X-Api-Key") for r in secrets_netns.requests("/hdr")] == [VALUE]
    assert [r["path"] for r in secrets_netns.requests("/q?key=%s&n=1" % VALUE)] == \
        ["/q?key=%s&n=1" % VALUE]
    bodies = [r["body"] for r in secrets_netns.requests("/body")]
    assert bodies == ["token=%s&n=2" % VALUE]
    # The real server was reached by name (SNI) through boxlite-net's own TLS.
    assert {r["sni"] for r in secrets_netns.requests("/hdr")} == {"api.secret.test"}


def test_a_host_without_the_secret_receives_the_placeholder_unchanged(run, secrets_netns):
    placeholder = run["placeholder"]
    assert run["lines"]["OTHER"].startswith("rc=0 site=other.secret.test"), run["stdout"]
    seen = [r for r in secrets_netns.log() if r.get("kind") == "http"
            and r.get("path", "").startswith("/other")]
    assert len(seen) == 1
    assert seen[0]["path"] == "/other?key=%s" % placeholder
    assert seen[0]["headers"].get("X-Api-Key") == placeholder
    assert VALUE not in json.dumps(seen)


def test_the_guest_sees_a_placeholder_and_never_the_value(run):
    placeholder = run["placeholder"]
    assert placeholder == "<BOXLITE_SECRET:API_KEY>"  # BoxLite 0.9's default.
    env = run["stdout"].split("ENV_BEGIN", 1)[1].split("ENV_END", 1)[0]
    assert "BOXLITE_SECRET_API_KEY=%s" % placeholder in env
    assert VALUE not in run["stdout"] and VALUE not in run["stderr"]
    # The whole guest's memory: the placeholder is there (so the scan reads guest RAM),
    # the value is not.
    memory = run["memory"]
    assert memory["bytes"] > 128 << 20, memory
    assert memory["found"][placeholder], memory
    assert not memory["found"][VALUE], memory
    # Its disk: nothing written by the guest holds it.
    assert run["disk"]["bytes"] > 0
    assert not run["disk"]["found"][VALUE], run["disk"]
    # Nor the user-facing record, nor the box's logs (boxlite-net's included), nor the repr.
    assert VALUE not in run["record"]
    assert VALUE not in run["logs"]
    assert VALUE not in run["repr"] and "redacted" in run["repr"]


def test_the_guest_trusts_the_box_ca_and_never_holds_its_key(run):
    trust = run["stdout"].split("TRUST_BEGIN", 1)[1].split("TRUST_END", 1)[0]
    assert run["ca_cert"].strip() in trust
    assert "PRIVATE KEY" not in run["stdout"]
    assert "boxlite-box-ca.crt" in run["lines"]["LOCAL"]
    assert not run["memory"]["found"][run["key_body"]], run["memory"]
    assert not run["disk"]["found"][run["key_body"]], run["disk"]
    assert run["modes"] == {"ca-key.pem": "0o600", "secrets.json": "0o600"}
    assert run["removed"]
