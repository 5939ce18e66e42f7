# Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
"""The egress allow-list (`--allow-net`, NetworkSpec(allow_net=...)) on a real box, in a
closed network of two namespaces this module makes (harness/netns_env.py): boxlite runs
in the client namespace, whose only route leads to the test servers; the box's DNS
upstream is the servers' DNS (BOXLITE_DNS_SERVERS), so nothing leaves the namespaces.

One box with a combined allow-list runs one script; each check prints a marker line that
the tests below read, and the servers' log says what reached them:
  a.egress.test         allowed by name (HTTP and HTTPS, address A)
  b.egress.test         not allowed, same address A (the Host / SNI check)
  c.egress.test         not allowed, address B (does not resolve)
  d.egress.test:8080    allowed on port 8080 only (address B)
  p.egress.test         allowed by name, but resolves to a private address (P)
  10.200.N.0/24:8080    a CIDR rule for the private address P, port 8080 only
  host.boxlite.internal:LO_OPEN   the host's loopback (of the client namespace), on one
                        of the two ports where an HTTP server listens there
Needs root (`ip netns`).
"""

import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import SESSION_MARK, add_session_root
from harness.netns_env import netns_fixture

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("BOXLITE_BUILD_DIR", os.path.join(REPO, "build"))
CLI = os.path.join(BUILD, "src", "cli", "boxlite")
HELPER = os.path.join(BUILD, "src", "net", "boxlite-net")
IMAGE = "boxlite/base"

NAMES = {"a.egress.test": "A", "b.egress.test": "A", "c.egress.test": "B",
         "d.egress.test": "B", "p.egress.test": "P"}

# wget's -T bounds a hang, so a check that would hang prints a timeout instead of
# blocking the script; the tests then assert the error is a refusal, not a timeout.
SCRIPT = textwrap.dedent(r'''
    w() { out=$(wget -T 20 -q -O - "$@" 2>&1); echo "rc=$? $(echo $out | tr '\n' ' ')"; }
    echo "A_HTTP $(w http://a.egress.test/a-http)"
    echo "A_HTTPS $(w --no-check-certificate https://a.egress.test/a-https)"
    echo "C_DNS $(nslookup c.egress.test 2>&1 | tr '\n' ' ')"
    echo "C_HTTP $(w http://c.egress.test/c-http)"
    echo "B_IP $(w http://@IP_B@:8080/b-ip)"
    echo "D_8080 $(w http://d.egress.test:8080/d-8080)"
    echo "D_80 $(w http://d.egress.test/d-80)"
    echo "P_NAME $(w http://p.egress.test/p-name)"
    echo "CIDR_8080 $(w http://@IP_P@:8080/cidr-8080)"
    echo "CIDR_80 $(w http://@IP_P@/cidr-80)"
    # b.egress.test does not resolve; name it at A's (pinned) address behind DNS's back.
    echo "@IP_A@ b.egress.test" >> /etc/hosts
    echo "B_HOST $(w http://b.egress.test/b-host)"
    # One kept-alive connection to A: a request for a.egress.test, answered, then one for
    # b.egress.test on the same connection.
    ka() { printf 'GET /ka-1 HTTP/1.1\r\nHost: a.egress.test\r\nConnection: keep-alive\r\n\r\n'; sleep 2
           printf 'GET /ka-2 HTTP/1.1\r\nHost: b.egress.test\r\n\r\n'; sleep 2; }
    echo "KEEPALIVE $(ka | nc -w 10 @IP_A@ 80 2>&1 | tr '\r\n' '  ' | head -c 400)"
    echo "B_SNI $(w --no-check-certificate https://b.egress.test/b-sni)"
    echo "A_AFTER $(w http://a.egress.test/a-after)"
    echo "HOST_LISTED $(w http://host.boxlite.internal:@LO_OPEN@/)"
    echo "HOST_OTHER $(w http://10.0.2.2:@LO_CLOSED@/)"
''')


egress_netns = netns_fixture(NAMES)


LO_OPEN, LO_CLOSED = 8765, 8766


def _run_box(env, home, allow, script, extra=()):
    add_session_root(home)
    run_env = env.box_env(home)
    run_env["BOXLITE_NET_HELPER"] = HELPER
    key, value = SESSION_MARK.split("=", 1)
    run_env[key] = value
    args = [CLI, "run", "--rm", *extra]
    for pattern in allow:
        args += ["--allow-net", pattern]
    return env.run([*args, IMAGE, "sh", "-c", script], env=run_env)


@pytest.fixture(scope="module")
def box_output(egress_netns, tmp_path_factory):
    """What the one box printed (marker -> rest of the line)."""
    env = egress_netns
    for path in (CLI, HELPER):
        if not os.access(path, os.X_OK):
            pytest.fail("%s is not built (set BOXLITE_BUILD_DIR)" % path)
    script = (SCRIPT.replace("@IP_A@", env.ip_a).replace("@IP_B@", env.ip_b)
              .replace("@IP_P@", env.ip_private).replace("@LO_OPEN@", str(LO_OPEN))
              .replace("@LO_CLOSED@", str(LO_CLOSED)))
    allow = ["a.egress.test", "d.egress.test:8080", "p.egress.test",
             env.private_cidr + ":8080", "host.boxlite.internal:%d" % LO_OPEN]
    # HTTP servers on the client namespace's loopback: the box's "host".
    served = tmp_path_factory.mktemp("loopback-root")
    (served / "index.html").write_text("loopback server\n")
    servers = [subprocess.Popen([*env.prefix(), sys.executable, "-m", "http.server", str(port),
                                 "--bind", "127.0.0.1", "--directory", str(served)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for port in (LO_OPEN, LO_CLOSED)]
    try:
        for port in (LO_OPEN, LO_CLOSED):
            _wait_listening(env, port)
        proc = _run_box(env, tmp_path_factory.mktemp("egress-home"), allow, script)
    finally:
        for server in servers:
            server.kill()
            server.wait()
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out + proc.stderr.decode(errors="replace")
    lines = {}
    for line in out.splitlines():
        marker, _, rest = line.partition(" ")
        lines[marker] = rest
    return lines


def _wait_listening(env, port):
    deadline = time.monotonic() + 30
    while env.run(["python3", "-c", "import socket; socket.create_connection(('127.0.0.1', %d), 1)"
                   % port]).returncode != 0:
        if time.monotonic() > deadline:
            pytest.fail("the loopback test server did not start")
        time.sleep(0.2)


def _refused(result):
    """A wget result that failed at once with a refusal (TCP reset to the SYN: "Connection
    refused") or a reset of an accepted connection (the Host/SNI check), not a timeout."""
    return (not result.startswith("rc=0") and "timed out" not in result and
            re.search(r"Connection refused|Connection reset by peer", result) is not None)


def test_allowed_name_works_by_name_over_http_and_https(box_output, egress_netns):
    assert box_output["A_HTTP"].startswith("rc=0 site=a.egress.test"), box_output
    assert box_output["A_HTTPS"].startswith("rc=0 site=a.egress.test"), box_output
    assert "sni=a.egress.test" in box_output["A_HTTPS"]
    # The servers saw them, with the name the guest used.
    assert [r["host"] for r in egress_netns.requests("/a-http")] == ["a.egress.test"]
    assert [r["sni"] for r in egress_netns.requests("/a-https")] == ["a.egress.test"]


def test_a_name_not_allowed_does_not_resolve(box_output, egress_netns):
    assert "NXDOMAIN" in box_output["C_DNS"] or "can't resolve" in box_output["C_DNS"], box_output
    assert "bad address" in box_output["C_HTTP"], box_output
    # The helper answered itself: the query never reached the upstream.
    asked = {e["name"] for e in egress_netns.log() if e.get("kind") == "dns"}
    assert "c.egress.test" not in asked and "a.egress.test" in asked


def test_an_address_not_allowed_is_refused_at_once(box_output, egress_netns):
    assert _refused(box_output["B_IP"]), box_output
    assert egress_netns.requests("/b-ip") == []


def test_a_port_rule_holds(box_output, egress_netns):
    assert box_output["D_8080"].startswith("rc=0 site=d.egress.test"), box_output
    assert _refused(box_output["D_80"]), box_output
    assert egress_netns.requests("/d-80") == []


def test_a_cidr_rule_opens_private_space_on_its_port_only(box_output, egress_netns):
    assert box_output["CIDR_8080"].startswith("rc=0 site=%s" % egress_netns.ip_private), box_output
    assert _refused(box_output["CIDR_80"]), box_output
    assert egress_netns.requests("/cidr-80") == []


def test_an_allowed_name_does_not_open_a_private_address(box_output, egress_netns):
    """DNS rebinding: p.egress.test is allowed but resolves into private space, which only
    an address rule opens (here the CIDR rule, on port 8080 only)."""
    assert _refused(box_output["P_NAME"]), box_output
    assert egress_netns.requests("/p-name") == []


def test_the_host_and_sni_checks_refuse_a_second_name_on_the_same_address(box_output,
                                                                          egress_netns):
    assert _refused(box_output["B_HOST"]), box_output
    assert _refused(box_output["B_SNI"]), box_output
    assert egress_netns.requests("/b-host") == [] and egress_netns.requests("/b-sni") == []
    # The allowed name still works on that address afterwards.
    assert box_output["A_AFTER"].startswith("rc=0 site=a.egress.test"), box_output


def test_every_request_of_a_kept_alive_connection_has_its_host_checked(box_output,
                                                                       egress_netns):
    """The first request (allowed) is answered; the second, for b.egress.test on the same
    connection to the same address, never reaches the server."""
    assert "site=a.egress.test" in box_output["KEEPALIVE"], box_output
    assert len(egress_netns.requests("/ka-1")) == 1
    assert egress_netns.requests("/ka-2") == []


def test_host_boxlite_internal_opens_the_hosts_loopback_on_its_listed_port_only(box_output):
    assert box_output["HOST_LISTED"].startswith("rc=0 loopback server"), box_output
    assert _refused(box_output["HOST_OTHER"]), box_output


def test_cli_keeps_the_allow_list_and_refuses_a_bad_pattern_in_one_line(cli):
    """`--allow-net` reaches the box record (inspect shows it, no boot needed); a bad
    pattern fails before anything is made, naming the pattern."""
    import json

    made = cli.run("create", "--allow-net", "a.egress.test", "--allow-net", "[2001:db8::1]:443",
                   IMAGE, "true", timeout=300)
    assert made.returncode == 0, made.stderr.decode()
    box = made.stdout.decode().strip().splitlines()[-1]
    try:
        shown = cli.run("inspect", box, check=True)
        info = json.loads(shown.stdout)
        info = info[0] if isinstance(info, list) else info
        assert info["allow_net"] == ["a.egress.test", "[2001:db8::1]:443"]
    finally:
        cli.run("rm", "-f", box)
    bad = cli.run("run", "--rm", "--allow-net", "exa mple.com", IMAGE, "true")
    err = bad.stderr.decode()
    assert bad.returncode != 0
    assert "allow_net pattern 'exa mple.com'" in err and len(err.strip().splitlines()) == 1, err


SDK_SCRIPT = textwrap.dedent(r"""
    import asyncio, sys
    import boxlite

    async def main():
        spec = boxlite.NetworkSpec(mode="enabled", allow_net=["a.egress.test:80"])
        async with boxlite.SimpleBox("boxlite/base", network=spec) as box:
            info = await box.info()
            print("INFO", info.network.mode, ",".join(info.network.allow_net))
            w = "out=$(wget -T 20 -q -O - %s 2>&1); echo \"rc=$? $out\""
            for marker, url in (("HTTP", "http://a.egress.test/sdk-http"),
                                ("HTTPS", "--no-check-certificate https://a.egress.test/sdk-https")):
                r = await box.exec("sh", "-c", w % url)
                print(marker, r.stdout.strip().replace("\n", " "))

    asyncio.run(main())
""")


def test_sdk_network_spec_allow_net_reaches_the_box(egress_netns, tmp_path):
    """NetworkSpec(allow_net=...) from Python: BoxInfo shows the list, the allowed name
    works on its port, and the same name on another port (443) is refused."""
    import boxlite  # noqa: F401 - the SDK under test must be importable here.

    env = egress_netns
    script = tmp_path / "sdk_egress.py"
    script.write_text(SDK_SCRIPT)
    home = tmp_path / "home"
    add_session_root(home)
    run_env = env.box_env(home)
    run_env["BOXLITE_NET_HELPER"] = HELPER
    key, value = SESSION_MARK.split("=", 1)
    run_env[key] = value
    proc = env.run([sys.executable, str(script)], env=run_env)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out + proc.stderr.decode(errors="replace")
    lines = {line.partition(" ")[0]: line.partition(" ")[2] for line in out.splitlines()}
    assert lines["INFO"] == "enabled a.egress.test:80", out
    assert lines["HTTP"].startswith("rc=0 site=a.egress.test"), out
    assert _refused(lines["HTTPS"]), out
    assert [r["path"] for r in env.requests() if r["path"].startswith("/sdk")] == ["/sdk-http"]
