# Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
"""Networking of real boxes through the `boxlite` CLI: `--network none|nat`, outbound TCP,
UDP and DNS, the host's loopback out of reach, published ports, and the network helper
(boxlite-net) running unprivileged and ending with its box.

Traffic goes only to 127.0.0.0/8 and to a network namespace this module creates itself:
a veth pair (host side NS_NET.1, namespace side NS_NET.2) with an HTTP server, a UDP echo
server and a DNS server answering `db.boxlite.test` inside the namespace. The helper's DNS
upstream is always set through BOXLITE_DNS_SERVERS (the namespace's server, or the discard
port on 127.0.0.1), so no test ever asks the host's resolvers. Needs root (for `ip netns`).

Environment: BOXLITE_BUILD_DIR (default <repo>/build) for the CLI and boxlite-net;
BOXLITE_DATA_DIR, when set, for the guest kernel, initramfs and built-in images.
"""

import inspect
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import SESSION_MARK, add_session_root
from harness import dns_answer as dns_answer_module

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("BOXLITE_BUILD_DIR", os.path.join(REPO, "build"))
CLI = os.path.join(BUILD, "src", "cli", "boxlite")
HELPER = os.path.join(BUILD, "src", "net", "boxlite-net")
IMAGE = "boxlite/base"
BOX_TIMEOUT = 600  # Seconds for one `boxlite run`: boots are slow under TCG.
TEST_NAME = "db.boxlite.test"
# Pseudo-devices the guest kernel creates by itself (IPv6-in-IPv4 tunnel); they carry
# nothing without configuration.
PSEUDO_DEVICES = {"sit0", "tunl0", "ip6tnl0"}

# The servers' script: the shared DNS answer (harness/dns_answer.py), then the servers.
NETNS_SERVERS = inspect.getsource(dns_answer_module) + textwrap.dedent(r'''
    import http.server, socket, socketserver, struct, sys, threading
    ADDR, LOG = sys.argv[1], sys.argv[2]
    lock = threading.Lock()

    def log(line):
        with lock, open(LOG, "a") as f:
            f.write(line + "\n")

    class Http(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            log("http %s %s" % (self.client_address[0], self.path))
            body = b"hello from the namespace\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    def dns():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ADDR, 53))
        while True:
            q, peer = s.recvfrom(4096)
            answered = dns_answer(q, "@TEST_NAME@", ADDR)
            if answered is None:
                continue
            name, qtype, reply = answered
            log("dns %s %s %d" % (peer[0], name, qtype))
            s.sendto(reply, peer)

    def udp_echo():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ADDR, 7))
        while True:
            data, peer = s.recvfrom(4096)
            log("udp %s %d" % (peer[0], len(data)))
            s.sendto(data, peer)

    threading.Thread(target=dns, daemon=True).start()
    threading.Thread(target=udp_echo, daemon=True).start()
    server = Server((ADDR, 8000), Http)
    log("ready")
    server.serve_forever()
''').replace("@TEST_NAME@", TEST_NAME)


def _sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def _host_ipv4_addresses():
    """The host's own non-loopback IPv4 addresses."""
    out = _sh("ip", "-4", "-o", "addr", "show").stdout
    addrs = []
    for line in out.splitlines():
        fields = line.split()
        addr = fields[fields.index("inet") + 1].split("/")[0]
        if not addr.startswith("127."):
            addrs.append(addr)
    return addrs


def _free_subnet():
    # 198.18.0.0/15 (benchmarking) is public to a box's egress policy, unlike private
    # space, which a default box cannot reach (tests/integration/security/test_egress.py).
    used = _sh("ip", "-4", "route", "show", "table", "all").stdout + _sh(
        "ip", "-4", "addr").stdout
    for n in range(0, 250):
        prefix = "198.18.%d" % n
        if prefix + "." not in used:
            return prefix
    pytest.fail("no free 198.18.N.0/24 subnet for the test namespace")


class Namespace:
    """A network namespace with test servers at `ip`; the host reaches it at `host_ip`."""

    def __init__(self, workdir):
        suffix = "%d" % os.getpid()
        self.name = "bl-nettest-" + suffix
        self.veth_host = "blnh" + suffix[-8:]
        self.veth_ns = "blnn" + suffix[-8:]
        prefix = _free_subnet()
        self.host_ip = prefix + ".1"
        self.ip = prefix + ".2"
        self.log_path = os.path.join(workdir, "netns-servers.log")
        self.script = os.path.join(workdir, "netns_servers.py")
        self.proc = None

    def start(self):
        with open(self.script, "w") as f:
            f.write(NETNS_SERVERS)
        _sh("ip", "netns", "add", self.name)
        _sh("ip", "link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
        _sh("ip", "link", "set", self.veth_ns, "netns", self.name)
        _sh("ip", "addr", "add", self.host_ip + "/24", "dev", self.veth_host)
        _sh("ip", "link", "set", self.veth_host, "up")
        ns = ("ip", "netns", "exec", self.name)
        _sh(*ns, "ip", "addr", "add", self.ip + "/24", "dev", self.veth_ns)
        _sh(*ns, "ip", "link", "set", self.veth_ns, "up")
        _sh(*ns, "ip", "link", "set", "lo", "up")
        self.proc = subprocess.Popen([*ns, sys.executable, self.script, self.ip, self.log_path])
        deadline = time.monotonic() + 60
        while "ready" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the namespace's test servers did not start")
            time.sleep(0.1)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _sh("ip", "netns", "del", self.name, check=False)
        _sh("ip", "link", "del", self.veth_host, check=False)

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except FileNotFoundError:
            return ""


class Canary:
    """TCP and UDP servers on 127.0.0.1 that must never hear from a guest."""

    def __init__(self):
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.hits = []
        self._stop = False
        self._threads = [threading.Thread(target=self._accept, daemon=True),
                         threading.Thread(target=self._recv, daemon=True)]
        for t in self._threads:
            t.start()

    def _accept(self):
        self.tcp.settimeout(0.2)
        while not self._stop:
            try:
                conn, peer = self.tcp.accept()
            except (socket.timeout, OSError):
                continue
            self.hits.append(("tcp", peer))
            try:
                conn.sendall(b"CANARY-REACHED\n")
            finally:
                conn.close()

    def _recv(self):
        self.udp.settimeout(0.2)
        while not self._stop:
            try:
                _, peer = self.udp.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            self.hits.append(("udp", peer))

    def close(self):
        self._stop = True
        for t in self._threads:
            t.join()
        self.tcp.close()
        self.udp.close()


def _stop_box(port, timeout=120):
    """Ends a box waiting in `echo ack | nc -l -p GUEST` behind 127.0.0.1:`port`. A published
    port accepts on the host before the guest listens, so retry until the guest answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.settimeout(30)
                if s.recv(16).startswith(b"ack"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail("the box never answered on published port %d" % port)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def binaries():
    for path in (CLI, HELPER):
        if not os.access(path, os.X_OK):
            pytest.fail("%s is not built (set BOXLITE_BUILD_DIR)" % path)
    return CLI


@pytest.fixture(scope="module")
def netns(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the test namespace needs root (ip netns)")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is not installed")
    ns = Namespace(str(tmp_path_factory.mktemp("netns")))
    try:
        ns.start()
        yield ns
    finally:
        ns.stop()


@pytest.fixture
def box_env(tmp_path):
    env = dict(os.environ)
    env["BOXLITE_HOME"] = str(tmp_path / "home")
    key, value = SESSION_MARK.split("=", 1)
    env[key] = value
    add_session_root(tmp_path)  # Lets the suite's leak monitor see these boxes' VMs.
    # The discard port on loopback: guest lookups fail fast and never leave the host.
    env["BOXLITE_DNS_SERVERS"] = "127.0.0.1:9"
    env.pop("BOXLITE_NET_HELPER", None)
    return env


def run_box(env, script, *flags, timeout=BOX_TIMEOUT):
    return subprocess.run([CLI, "run", "--rm", *flags, IMAGE, "sh", "-c", script], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _interfaces(stdout):
    """Interface names from `cat /proc/net/dev` output."""
    names = set()
    for line in stdout.splitlines():
        if ":" in line and "|" not in line:
            names.add(line.split(":")[0].strip())
    return names


def test_network_none_has_only_loopback(binaries, box_env, netns):
    """--network none: no NIC (only lo, plus the kernel's idle tunnel pseudo-devices) and
    no route anywhere; the namespace's server never hears from the box."""
    r = run_box(box_env, "cat /proc/net/dev; echo ===; for d in /sys/class/net/*; do "
                "echo ${d##*/} $(cat $d/type); done; echo ===; "
                "wget -q -O - http://%s:8000/none 2>&1; echo rc=$?" % netns.ip,
                "--network", "none")
    assert r.returncode == 0, r.stderr
    dev, types, fetch = r.stdout.split("===")
    names = _interfaces(dev)
    assert "lo" in names
    assert names - {"lo"} - PSEUDO_DEVICES == set(), r.stdout
    # No Ethernet device at all (ARPHRD_ETHER is 1; loopback is 772).
    for line in types.strip().splitlines():
        name, kind = line.split()
        assert kind != "1", "ethernet device %s in a box without network" % name
    assert "hello" not in fetch and "rc=0" not in fetch, fetch
    assert "/none" not in netns.log()


def test_nat_outbound_tcp_udp_and_dns(binaries, box_env, netns):
    """--network nat (the default): the guest reaches a server by IP over TCP, resolves
    names through 10.0.2.3 to the DNS server given in BOXLITE_DNS_SERVERS, reaches the
    server by name, and talks UDP to the namespace directly; the servers see the host's
    side of the veth as the peer (the guest is NATed by the helper)."""
    box_env["BOXLITE_DNS_SERVERS"] = netns.ip
    script = "; ".join([
        "echo T1 $(wget -q -O - http://%s:8000/by-ip)" % netns.ip,
        "echo T2 $(nslookup %s 2>&1 | tr '\\n' ' ')" % TEST_NAME,
        "echo T3 $(wget -q -O - http://%s:8000/by-name)" % TEST_NAME,
        "echo T4 $(nslookup %s %s 2>&1 | tr '\\n' ' ')" % (TEST_NAME, netns.ip),
        "echo T5 $(nslookup nosuch.boxlite.test 2>&1 | tr '\\n' ' ')",
        "echo T6 $(cat /etc/resolv.conf | tr '\\n' ' ')",
        "echo T7 $(ip -4 addr show eth0 | grep inet) $(ip route | grep default)",
    ])
    r = run_box(box_env, script)
    assert r.returncode == 0, r.stderr
    out = {line[:2]: line[3:] for line in r.stdout.splitlines() if line[:1] == "T"}
    # `echo $(...)` folds nslookup's lines and tabs into single spaces.
    answer = "Name: %s Address: %s" % (TEST_NAME, netns.ip)
    assert out.get("T1") == "hello from the namespace", r.stdout
    assert "Server: 10.0.2.3" in out.get("T2", "") and answer in out["T2"], r.stdout
    assert out.get("T3") == "hello from the namespace", r.stdout
    assert "Server: %s" % netns.ip in out.get("T4", "") and answer in out["T4"], r.stdout
    assert "NXDOMAIN" in out.get("T5", ""), r.stdout
    assert "nameserver 10.0.2.3" in out.get("T6", ""), r.stdout
    assert "10.0.2.15/24" in out.get("T7", "") and "via 10.0.2.2" in out["T7"], r.stdout
    log = netns.log()
    assert "http %s /by-ip" % netns.host_ip in log, log
    assert "http %s /by-name" % netns.host_ip in log, log
    # Through 10.0.2.3 (the helper's forwarder) and directly over UDP: both via the host.
    assert log.count("dns %s %s 1" % (netns.host_ip, TEST_NAME)) >= 2, log
    assert "nosuch.boxlite.test" in log


def test_host_loopback_is_unreachable(binaries, box_env, netns):
    """A service on the host's 127.0.0.1 is out of reach through every address the guest
    can name: the gateway 10.0.2.2, the DNS address 10.0.2.3, its own 127.0.0.1, the
    host's other addresses and the namespace's host side, over TCP and UDP. The same
    commands reach the namespace's server, so they would have worked."""
    canary = Canary()
    try:
        targets = ["10.0.2.2", "10.0.2.3", "127.0.0.1", netns.host_ip] + \
            [a for a in _host_ipv4_addresses() if a != netns.host_ip]
        lines = ["echo C $(printf 'GET /control HTTP/1.0\\r\\n\\r\\n' | nc -w 5 %s 8000 2>&1 "
                 "| head -c 300 | tr '\\n' ' ')" % netns.ip]
        # The probes run at once (each one's 5 s wait on a dropped packet overlaps the
        # others'); END comes after all of them.
        for t in targets:
            lines.append("(echo L %s $(echo probe | nc -w 5 %s %d 2>&1 | tr '\\n' ' ')) &"
                         % (t, t, canary.port))
            lines.append("(nslookup probe.test %s:%d >/dev/null 2>&1) &" % (t, canary.port))
        lines.append("wait; echo END")
        r = run_box(box_env, "\n".join(lines))
        assert r.returncode == 0 and "END" in r.stdout, r.stderr
        assert "C HTTP/1.0 200" in r.stdout, "control connection failed:\n" + r.stdout
        assert "/control" in netns.log()
        assert "CANARY-REACHED" not in r.stdout, r.stdout
        for t in targets:
            assert "L %s " % t in r.stdout, r.stdout
        assert canary.hits == [], "the guest reached the host's loopback: %r" % canary.hits
    finally:
        canary.close()


def test_published_ports_answer_on_host_loopback(binaries, box_env):
    """-p HOST:GUEST publishes a guest TCP server on 127.0.0.1:HOST only: busybox httpd in
    the guest answers curl on the host; a second published port ends the box."""
    http_port = _free_port()
    stop_port = _free_port()
    script = ("mkdir -p /tmp/www && echo hello-from-guest > /tmp/www/index.html && "
              "{ httpd -f -p 8080 -h /tmp/www </dev/null >/dev/null 2>&1 & } ; "
              "echo serving; echo ack | nc -l -p 8081 >/dev/null; "
              "echo stopping")
    proc = subprocess.Popen([CLI, "run", "--rm", "-p", "%d:8080" % http_port, "-p",
                             "%d:8081" % stop_port, IMAGE, "sh", "-c", script],
                            env=box_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "serving", proc.stderr.read()
        body = None
        deadline = time.monotonic() + 120
        while body is None and time.monotonic() < deadline:
            r = _sh("curl", "-s", "--max-time", "10", "http://127.0.0.1:%d/" % http_port,
                    check=False)
            if r.returncode == 0 and r.stdout:
                body = r.stdout
            else:
                time.sleep(0.5)
        assert body == "hello-from-guest\n"
        # Bound to loopback only.
        listening = _sh("ss", "-Hltn", "sport = :%d" % http_port).stdout
        assert "127.0.0.1:%d" % http_port in listening, listening
        for addr in _host_ipv4_addresses():
            with socket.socket() as s:
                s.settimeout(5)
                assert s.connect_ex((addr, http_port)) != 0, "published on %s" % addr
        _stop_box(stop_port)
        out, err = proc.communicate(timeout=BOX_TIMEOUT)
        assert proc.returncode == 0, err
        assert "stopping" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_published_port_in_use_fails_before_boot(binaries, box_env):
    """A published host port that is taken is a clear error naming it, and the command
    never runs."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = run_box(box_env, "echo RAN", "-p", "%d:80" % port)
    assert r.returncode != 0
    assert "RAN" not in r.stdout
    assert "127.0.0.1:%d is in use" % port in r.stderr, r.stderr


def _alive(pid):
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _helper_of(cli_pid):
    """The pid of the boxlite-net child of `cli_pid`, or None."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except (OSError, IndexError, ValueError):
            continue
        if ppid == cli_pid and os.path.basename(argv0) == b"boxlite-net":
            return int(entry)
    return None


def _uids(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return line.split()[1:]
    return []


def test_helper_runs_unprivileged_and_ends_with_its_box(binaries, box_env, netns):
    """The network helper needs no root: started by root, the jail runs it as an
    unprivileged user (docs/security.md), and it still carries outbound TCP, DNS and a
    published port; it exits with its box."""
    box_env["BOXLITE_DNS_SERVERS"] = netns.ip
    port = _free_port()
    proc = subprocess.Popen(
        [CLI, "run", "--rm", "-p", "%d:8081" % port, IMAGE, "sh", "-c",
         "echo T1 $(wget -q -O - http://%s:8000/unprivileged); echo ack | nc -l -p 8081 "
         ">/dev/null" % TEST_NAME],
        env=box_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == "T1 hello from the namespace", (line, proc.stderr.read())
        pid = _helper_of(proc.pid)
        assert pid and _alive(pid)
        uids = _uids(pid)
        assert len(uids) == 4 and "0" not in uids, uids
        _stop_box(port)
        _, err = proc.communicate(timeout=BOX_TIMEOUT)
        assert proc.returncode == 0, err
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), "boxlite-net outlived its box"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
