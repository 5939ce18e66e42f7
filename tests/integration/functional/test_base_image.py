"""The built-in image boxlite/base: its common tools work in a real box (wget, nc,
nslookup, tar). Debian's static busybox crashes on `wget -T` (scripts/test-images/images.py
says why); the image carries Debian's dynamic busybox and a wget that takes -T.

Everything stays inside the box or on the host's loopback: web and nc servers run in the
box itself, and the box's DNS goes through boxlite-net's forwarder to a DNS server this
module runs on 127.0.0.1 (BOXLITE_DNS_SERVERS).
"""
import socket
import threading

import pytest

from harness.dns_answer import dns_answer

IMAGE = "boxlite/base"
TEST_NAME = "base.boxlite.test"
TEST_ADDR = "198.18.7.9"


def run_box(cli, script, env=None):
    r = cli.run("run", "--rm", IMAGE, "sh", "-c", script, timeout=600, env=env)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode(errors="replace")


# httpd serves /www in the box; each wget form must fetch the page (no SIGSEGV: rc 139).
HTTPD = "mkdir /www && echo hello-$((6*7)) > /www/index.html && httpd -p 8080 -h /www && "


def test_wget_fetches_a_page(cli):
    """wget plain, with -T N / -TN / --timeout=N, and run directly (not through sh)."""
    # fetch KEY ARGS...: prints "KEY <output> rc=<wget's status>".
    out = run_box(cli, HTTPD + "fetch() { k=$1; shift; o=$(wget \"$@\" 2>&1); "
                  "echo \"$k $o rc=$?\"; }; " + "; ".join([
                      "fetch A -q -O - http://127.0.0.1:8080/",
                      "fetch B -q -T 5 -O - http://127.0.0.1:8080/index.html",
                      "fetch C -q -T5 -O - http://localhost:8080/",
                      "fetch D -q --timeout=5 -O - http://127.0.0.1:8080/",
                      "wget -q -T 5 -O /tmp/page http://127.0.0.1:8080/ && echo E $(cat /tmp/page)",
                      "fetch F -q -T 5 -O - http://127.0.0.1:8081/",
                  ]))
    lines = {line[:1]: line[2:] for line in out.splitlines()}
    for key in "ABCD":
        assert lines.get(key) == "hello-42 rc=0", out
    assert lines.get("E") == "hello-42", out
    # Nothing listens on 8081: an error, not a crash.
    assert lines.get("F", "").endswith("rc=1") and "refused" in lines["F"], out


def test_wget_timeout_ends_a_stalled_fetch(cli):
    """-T bounds a fetch from a server that accepts and never answers."""
    out = run_box(cli, "sleep 30 | nc -l -p 8082 >/dev/null & sleep 1; "
                       "wget -q -T 2 -O - http://127.0.0.1:8082/; echo rc=$?; kill %1")
    assert "rc=143" in out, out  # Ended by the timeout (SIGTERM), not by a crash.


def test_nc_moves_bytes(cli):
    """nc listens and connects: bytes go both ways inside the box."""
    out = run_box(cli, "echo reply-from-server | nc -l -p 9000 > /tmp/got & sleep 1; "
                       "echo T1 $(echo request-$((2*21)) | nc -w 3 127.0.0.1 9000); "
                       "wait; echo T2 $(cat /tmp/got)")
    assert "T1 reply-from-server" in out, out
    assert "T2 request-42" in out, out


class DnsServer:
    """A UDP DNS server on 127.0.0.1 answering TEST_NAME (A) and NXDOMAIN otherwise."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.names = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                q, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            answered = dns_answer(q, TEST_NAME, TEST_ADDR)
            if answered is None:
                continue
            name, _, reply = answered
            self.names.append(name)
            self.sock.sendto(reply, peer)

    def close(self):
        self.sock.close()


@pytest.fixture
def dns_server():
    server = DnsServer()
    yield server
    server.close()


def test_nslookup_resolves_a_name(cli, dns_server):
    """nslookup asks the box's resolver (10.0.2.3, boxlite-net's forwarder), which asks
    the test's DNS server: the name resolves, an unknown one is NXDOMAIN."""
    out = run_box(cli, "echo T1 $(nslookup %s 2>&1 | tr '\\n' ' '); "
                       "echo T2 $(nslookup nosuch.boxlite.test 2>&1 | tr '\\n' ' ')" % TEST_NAME,
                  env={"BOXLITE_DNS_SERVERS": "127.0.0.1:%d" % dns_server.port})
    lines = {line[:2]: line[3:] for line in out.splitlines() if line[:1] == "T"}
    assert "Server: 10.0.2.3" in lines.get("T1", ""), out
    assert "Name: %s Address: %s" % (TEST_NAME, TEST_ADDR) in lines["T1"], out
    assert "NXDOMAIN" in lines.get("T2", ""), out
    assert TEST_NAME in dns_server.names, dns_server.names


def test_tar_creates_and_extracts(cli):
    """tar packs a tree (plain and gzip), lists it and unpacks it elsewhere unchanged."""
    out = run_box(cli, " && ".join([
        "mkdir -p /tmp/src/sub && echo one > /tmp/src/a && echo two > /tmp/src/sub/b",
        "ln -s a /tmp/src/link && chmod 640 /tmp/src/sub/b",
        "cd /tmp && tar cf plain.tar src && tar czf packed.tgz src",
        "echo LIST $(tar tzf packed.tgz | sort | tr '\\n' ' ')",
        "mkdir x y && tar xf plain.tar -C x && tar xzf packed.tgz -C y",
        "echo SAME $(diff -r src x/src && diff -r src y/src && echo yes)",
        "echo MODE $(stat -c %a y/src/sub/b) LINK $(readlink y/src/link)",
    ]))
    assert "LIST src/ src/a src/link src/sub/ src/sub/b" in out, out
    assert "SAME yes" in out, out
    assert "MODE 640 LINK a" in out, out
