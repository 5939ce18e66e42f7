# Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
"""Egress of a default box (`--network nat`): public addresses only. A real guest probes
the cloud metadata address, the host's own address, a private address and a public one;
only the public one answers, the others are refused at once (a TCP reset from boxlite-net,
so the guest sees "Connection refused", never a hang). `--allow-host` opens the host, its
loopback at 10.0.2.2 and its own address, but not metadata or private networks. The
network helper of a running box is under its seccomp filter.

No traffic leaves the test's own namespaces: boxlite runs inside a "host" namespace
(`ip netns exec`), joined by a veth pair to a "remote" namespace that holds the
addresses the guest probes:

    host ns:   lo 127.0.0.1 (a server on LOOPBACK_PORT), veth 203.0.113.1/24 (a server)
    remote ns: veth 203.0.113.2/24 (server, DNS), lo also 169.254.169.254/32 and
               10.255.0.2/32 (servers); the host ns routes both through 203.0.113.2

203.0.113.0/24 (TEST-NET-3) is not in any refused range, so it plays the public internet.
The helper forwards guest DNS to 203.0.113.2, which answers meta.boxlite.test with
169.254.169.254: a name is no way around the policy. Needs root (ip netns).
"""

import contextlib
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import SESSION_MARK

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("BOXLITE_BUILD_DIR", os.path.join(REPO, "build"))
CLI = os.path.join(BUILD, "src", "cli", "boxlite")
HELPER = os.path.join(BUILD, "src", "net", "boxlite-net")
IMAGE = "boxlite/base"
BOX_TIMEOUT = 600  # Seconds for one box: boots are slow under TCG.

HOST_ADDR = "203.0.113.1"
PUBLIC = "203.0.113.2"
METADATA = "169.254.169.254"
PRIVATE = "10.255.0.2"
PORT = 8000
LOOPBACK_PORT = 8001
LATE_ADDR = "198.51.100.7"  # Public, until the host takes it.
LATE_PORT = 8002
META_NAME = "meta.boxlite.test"

# One process per namespace: a TCP server on each (address, port) that answers
# "HELLO <address>" and logs every peer; with --dns, a DNS server on the first address.
SERVERS = textwrap.dedent(r'''
    import socket, socketserver, sys, threading
    LOG = sys.argv[1]
    args = sys.argv[2:]
    dns_addr = None
    if args[0] == "--dns":
        dns_addr, args = args[1], args[2:]
    lock = threading.Lock()

    def log(line):
        with lock, open(LOG, "a") as f:
            f.write(line + "\n")

    class Hello(socketserver.BaseRequestHandler):
        def handle(self):
            here = self.request.getsockname()
            log("tcp %s:%d from %s" % (here[0], here[1], self.client_address[0]))
            self.request.sendall(b"HELLO %s\n" % here[0].encode())

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    # The question "meta.boxlite.test IN A", label-encoded; the answer points at it (0xc00c).
    WANT = b"".join(bytes([len(l)]) + l.encode() for l in "@META_NAME@".split(".")) + \
        b"\0\0\x01\0\x01"
    ANSWER = b"\xc0\x0c\0\x01\0\x01\0\0\0\x3c\0\x04" + socket.inet_aton("@METADATA@")

    class Dns(socketserver.BaseRequestHandler):
        def handle(self):
            q, sock = self.request
            hit = len(q) >= 12 and q[12:12 + len(WANT)].lower() == WANT
            log("dns %s" % ("hit" if hit else "other"))
            # Flags: a recursive answer, NOERROR; one question; one answer or none.
            head = q[:2] + b"\x81\x80\0\x01" + (b"\0\x01" if hit else b"\0\0") + b"\0\0\0\0"
            reply = head + q[12:12 + len(WANT)] + ANSWER if hit else head + q[12:]
            sock.sendto(reply, self.client_address)

    if dns_addr:
        dns = socketserver.ThreadingUDPServer((dns_addr, 53), Dns)
        threading.Thread(target=dns.serve_forever, daemon=True).start()
    for spec in args:
        addr, port = spec.rsplit(":", 1)
        server = Server((addr, int(port)), Hello)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    log("ready")
    threading.Event().wait()
''').replace("@META_NAME@", META_NAME).replace("@METADATA@", METADATA)


def _sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Topology:
    """The two namespaces, their veth pair, addresses, routes and servers."""

    def __init__(self, workdir):
        tag = "%d" % os.getpid()
        self.host = "bl-egress-host-" + tag
        self.remote = "bl-egress-remote-" + tag
        self.workdir = workdir
        self.procs = []

    def ns(self, name):
        return ("ip", "netns", "exec", name)

    def start(self):
        h, r = self.ns(self.host), self.ns(self.remote)
        _sh("ip", "netns", "add", self.host)
        _sh("ip", "netns", "add", self.remote)
        _sh(*h, "ip", "link", "add", "veth-h", "type", "veth", "peer", "name", "veth-r")
        _sh(*h, "ip", "link", "set", "veth-r", "netns", self.remote)
        _sh(*h, "ip", "link", "set", "lo", "up")
        _sh(*h, "ip", "addr", "add", HOST_ADDR + "/24", "dev", "veth-h")
        _sh(*h, "ip", "link", "set", "veth-h", "up")
        _sh(*r, "ip", "link", "set", "lo", "up")
        _sh(*r, "ip", "addr", "add", PUBLIC + "/24", "dev", "veth-r")
        _sh(*r, "ip", "link", "set", "veth-r", "up")
        _sh(*r, "ip", "addr", "add", METADATA + "/32", "dev", "lo")
        _sh(*r, "ip", "addr", "add", PRIVATE + "/32", "dev", "lo")
        _sh(*h, "ip", "route", "add", METADATA + "/32", "via", PUBLIC)
        _sh(*h, "ip", "route", "add", PRIVATE + "/32", "via", PUBLIC)
        _sh(*r, "ip", "addr", "add", LATE_ADDR + "/32", "dev", "lo")
        _sh(*h, "ip", "route", "add", LATE_ADDR + "/32", "via", PUBLIC)
        script = os.path.join(self.workdir, "servers.py")
        with open(script, "w") as f:
            f.write(SERVERS)
        self.remote_log = os.path.join(self.workdir, "remote.log")
        self.host_log = os.path.join(self.workdir, "host.log")
        self._serve(r, self.remote_log, script, "--dns", PUBLIC, "%s:%d" % (PUBLIC, PORT),
                    "%s:80" % METADATA, "%s:%d" % (PRIVATE, PORT), "%s:%d" % (LATE_ADDR, LATE_PORT))
        # The wildcard server answers on any address the host gains later.
        self._serve(h, self.host_log, script, "%s:%d" % (HOST_ADDR, PORT),
                    "127.0.0.1:%d" % LOOPBACK_PORT, "0.0.0.0:%d" % LATE_PORT)

    def _serve(self, prefix, log, script, *args):
        proc = subprocess.Popen([*prefix, sys.executable, script, log, *args])
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while "ready" not in _read(log):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the test servers did not start in their namespace")
            time.sleep(0.1)

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        _sh("ip", "netns", "del", self.host, check=False)
        _sh("ip", "netns", "del", self.remote, check=False)

    def netns_inode(self):
        return os.stat("/run/netns/" + self.host).st_ino


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    missing = ("root (ip netns)" if os.geteuid() != 0 else
               "iproute2" if shutil.which("ip") is None else None)
    if missing:
        pytest.skip("the test namespaces need " + missing)
    assert os.access(CLI, os.X_OK), "%s is not built (set BOXLITE_BUILD_DIR)" % CLI
    topo = Topology(str(tmp_path_factory.mktemp("egress")))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(topo.stop)
        topo.start()
        yield topo


@pytest.fixture
def box_env(tmp_path):
    """The CLI's environment: a private home, the session mark the suite's leak monitor
    looks for, guest DNS to the remote namespace only, and this build's network helper
    (the CLI would otherwise prefer an installed one)."""
    mark, value = SESSION_MARK.split("=", 1)
    env = dict(os.environ)
    env.update({"BOXLITE_HOME": str(tmp_path / "home"), mark: value,
                "BOXLITE_DNS_SERVERS": PUBLIC, "BOXLITE_NET_HELPER": HELPER})
    return env


def _probe(tag, addr, port):
    """One line "TAG <what nc printed>": HELLO from a server, or nc's error."""
    return "echo %s $(echo x | nc -w 5 %s %d 2>&1 | head -c 200 | tr '\\n' ' ')" % (tag, addr, port)


PROBES = [
    ("PUBLIC", PUBLIC, PORT),
    ("METADATA", METADATA, 80),
    ("HOSTADDR", HOST_ADDR, PORT),
    ("PRIVATE", PRIVATE, PORT),
    ("BYNAME", META_NAME, 80),
    ("LOOPBACK", "10.0.2.2", LOOPBACK_PORT),
]


def _script():
    lines = [_probe(tag, addr, port) for tag, addr, port in PROBES]
    lines.append("echo RESOLVED $(nslookup %s 2>&1 | tr '\\n' ' ')" % META_NAME)
    return "; ".join(lines)


def _results(stdout):
    out = {}
    for line in stdout.splitlines():
        tag, _, rest = line.partition(" ")
        out[tag] = rest
    return out


def _helpers_in(inode):
    """PIDs of boxlite-net processes in the network namespace `inode`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.path.basename(os.readlink("/proc/%s/exe" % entry)) != "boxlite-net":
                continue
            if os.stat("/proc/%s/ns/net" % entry).st_ino == inode:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def _status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_default_box_reaches_only_public_addresses(topology, box_env):
    """Metadata, the host's own address, a private address, a name resolving to the
    metadata address and the host's loopback are all refused; the public address answers.
    While the box runs, its boxlite-net is under seccomp (Seccomp 2, NoNewPrivs 1)."""
    proc = subprocess.Popen(
        [*topology.ns(topology.host), CLI, "run", "--rm", "-i", IMAGE, "sh", "-c",
         _script() + "; echo DONE; read line"],
        env=box_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        lines = []
        while True:
            line = proc.stdout.readline()
            if not line or line.startswith("DONE"):
                break
            lines.append(line)
        assert line.startswith("DONE"), (lines, proc.stderr.read())
        helpers = _helpers_in(topology.netns_inode())
        assert len(helpers) == 1, helpers
        status = _status(helpers[0])
        _, err = proc.communicate(input="\n", timeout=BOX_TIMEOUT)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out = _results("".join(lines))
    assert out.get("PUBLIC") == "HELLO %s" % PUBLIC, lines
    # The name resolves (answers are not filtered), the connection is not made.
    assert "Address: %s" % METADATA in out.get("RESOLVED", ""), lines
    for tag in ("METADATA", "HOSTADDR", "PRIVATE", "BYNAME", "LOOPBACK"):
        assert "HELLO" not in out.get(tag, "HELLO"), (tag, lines)
        # Refused by a reset, not left to time out.
        assert "refused" in out[tag].lower(), (tag, lines)
    remote, host = _read(topology.remote_log), _read(topology.host_log)
    assert "tcp %s:%d" % (PUBLIC, PORT) in remote
    assert "tcp %s:" % METADATA not in remote, remote
    assert "tcp %s:" % PRIVATE not in remote, remote
    assert "tcp %s:" % HOST_ADDR not in host, host
    assert "tcp 127.0.0.1:" not in host, host
    assert status["Seccomp"].strip() == "2", status
    assert status["NoNewPrivs"].strip() == "1", status


def _lines_until(proc, marker):
    lines = []
    for line in proc.stdout:
        if line.startswith(marker):
            return lines
        lines.append(line)
    pytest.fail("the box ended before %s: %s %s" % (marker, lines, proc.stderr.read()))


def test_an_address_the_host_gains_later_is_refused(topology, box_env):
    """boxlite-net re-reads the host's addresses when the kernel reports a change: an
    address that was public (a server in the remote namespace answers) becomes the host's
    own while the box runs, and the same probe from the same box is then refused."""
    h = topology.ns(topology.host)
    script = "; ".join([_probe("BEFORE", LATE_ADDR, LATE_PORT), "echo READY", "read line",
                        _probe("AFTER", LATE_ADDR, LATE_PORT), "echo DONE"])
    proc = subprocess.Popen([*h, CLI, "run", "--rm", "-i", IMAGE, "sh", "-c", script],
                            env=box_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        before = _results("".join(_lines_until(proc, "READY")))
        _sh(*h, "ip", "addr", "add", LATE_ADDR + "/32", "dev", "lo")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        after = _results("".join(_lines_until(proc, "DONE")))
        _, err = proc.communicate(timeout=BOX_TIMEOUT)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        _sh(*h, "ip", "addr", "del", LATE_ADDR + "/32", "dev", "lo", check=False)
    assert before.get("BEFORE") == "HELLO %s" % LATE_ADDR, before
    assert "refused" in after.get("AFTER", "").lower(), after
    assert "tcp %s:%d" % (LATE_ADDR, LATE_PORT) not in _read(topology.host_log)


def test_allow_host_opens_the_host_only(topology, box_env):
    """--allow-host: the host's own address and its loopback (at 10.0.2.2) answer; the
    metadata and private addresses stay refused."""
    r = subprocess.run(
        [*topology.ns(topology.host), CLI, "run", "--rm", "--allow-host", IMAGE, "sh", "-c",
         _script()],
        env=box_env, capture_output=True, text=True, timeout=BOX_TIMEOUT)
    assert r.returncode == 0, r.stderr
    out = _results(r.stdout)
    assert out.get("PUBLIC") == "HELLO %s" % PUBLIC, r.stdout
    assert out.get("HOSTADDR") == "HELLO %s" % HOST_ADDR, r.stdout
    assert out.get("LOOPBACK") == "HELLO 127.0.0.1", r.stdout
    for tag in ("METADATA", "PRIVATE", "BYNAME"):
        assert "HELLO" not in out.get(tag, "HELLO"), (tag, r.stdout)
        assert "refused" in out[tag].lower(), (tag, r.stdout)


def test_allow_host_needs_nat(box_env):
    r = subprocess.run([CLI, "run", "--rm", "--network", "none", "--allow-host", IMAGE, "true"],
                       env=box_env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert 'allow_host needs network "nat"' in r.stderr, r.stderr


SDK_PROBE = textwrap.dedent(r'''
    import sys
    import boxlite
    from boxlite import sync
    rt = sync.Boxlite(boxlite.Options(home_dir=sys.argv[1]))
    for allow_host in (False, True):
        spec = boxlite.NetworkSpec("nat", allow_host=allow_host)
        with sync.SimpleBox("@IMAGE@", network=spec, runtime=rt) as box:
            r = box.exec("sh", "-c", sys.argv[2])
            print("BOX allow_host=%s" % allow_host)
            sys.stdout.write(r.stdout if isinstance(r.stdout, str) else r.stdout.decode())
''').replace("@IMAGE@", IMAGE)


def test_python_sdk_network_spec_allow_host(topology, box_env, tmp_path):
    """The SDK's NetworkSpec(allow_host=...) reaches the helper: without it the host's
    address is refused, with it the host answers; metadata stays refused either way."""
    import boxlite  # noqa: F401  (the SDK under test must import)
    script = tmp_path / "sdk_probe.py"
    script.write_text(SDK_PROBE)
    probes = "; ".join(_probe(tag, addr, port) for tag, addr, port in PROBES[:3])
    r = subprocess.run([*topology.ns(topology.host), sys.executable, str(script),
                        str(tmp_path / "sdk-home"), probes],
                       env=box_env, capture_output=True, text=True, timeout=BOX_TIMEOUT)
    assert r.returncode == 0, r.stderr
    default, _, opened = r.stdout.partition("BOX allow_host=True")
    closed = _results(default.partition("BOX allow_host=False")[2])
    opened = _results(opened)
    assert closed.get("PUBLIC") == opened.get("PUBLIC") == "HELLO %s" % PUBLIC, r.stdout
    assert "refused" in closed.get("HOSTADDR", "").lower(), r.stdout
    assert opened.get("HOSTADDR") == "HELLO %s" % HOST_ADDR, r.stdout
    assert "refused" in closed.get("METADATA", "").lower(), r.stdout
    assert "refused" in opened.get("METADATA", "").lower(), r.stdout
