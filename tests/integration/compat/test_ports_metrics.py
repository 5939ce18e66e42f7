"""BoxLite 0.9's published ports on a real box: ``host_ip``, an automatic host port (0 or
none: picked and reported), and each binding listed in ``BoxInfo.network.published_ports``;
and the metric of flows the host's network helper refused (``network_refused_flows``).

What is listed is checked against the host's real state: the listening sockets in
/proc/net/tcp (address and port) and a page fetched through each port from a web server
in the box. One box serves the module.
"""
import asyncio
import socket

import pytest

from conftest import add_session_root

import boxlite  # noqa: E402  (the SDK under test; main's install or PYTHONPATH)

BASE = "boxlite/base"


def run(coro):
    return asyncio.run(coro)


def listening(port):
    """The local addresses (dotted) listening on TCP `port` on this host (IPv4)."""
    found = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(socket.inet_ntoa(bytes.fromhex(addr_hex)[::-1]))
    return found


def fetch(port):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        with s.makefile("rb") as reply:
            return reply.read()


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    home = tmp_path_factory.mktemp("compat-ports-home")
    add_session_root(home)
    runtime = boxlite.Boxlite(boxlite.Options(home_dir=str(home)))
    b = boxlite.SimpleBox(BASE, memory_mib=512, runtime=runtime, ports=[
        {"guest_port": 8080},                                     # automatic, loopback
        {"guest_port": 8081, "host_port": 0, "host_ip": "0.0.0.0"},  # automatic, all addresses
    ])
    run(b.start())
    try:
        r = run(b.exec("sh", "-c", "mkdir -p /www && echo page-$((6*7)) > /www/index.html && "
                       "httpd -p 8080 -h /www && httpd -p 8081 -h /www"))
        assert r.exit_code == 0, r.stderr
        yield b
    finally:
        run(b.stop())


def test_published_ports_are_listed_with_the_picked_port_and_address(box):
    info = run(box.info())
    ports = sorted(info.network.published_ports, key=lambda p: p.guest_port)
    assert [(p.guest_port, p.host_ip, p.protocol) for p in ports] == [
        (8080, "127.0.0.1", "tcp"), (8081, "0.0.0.0", "tcp")]
    for p in ports:
        assert 0 < p.host_port < 65536
        # The host really listens there, on that address only.
        assert listening(p.host_port) == {p.host_ip}
        assert b"page-42" in fetch(p.host_port)


def test_a_port_on_an_address_the_host_lacks_fails_to_start(tmp_path):
    """A host_ip that is an address but not one of this host's: the box does not start,
    and the error names the address."""
    runtime = boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path / "home")))
    add_session_root(tmp_path / "home")
    b = boxlite.SimpleBox(BASE, memory_mib=256, runtime=runtime,
                          ports=[{"guest_port": 80, "host_ip": "192.0.2.77"}])
    with pytest.raises(boxlite.BoxliteError, match="192.0.2.77"):
        run(b.start())


def test_host_ip_must_be_an_ipv4_address():
    with pytest.raises(boxlite.ConfigError, match="not an IPv4 address"):
        boxlite.SimpleBox(BASE, ports=[{"guest_port": 80, "host_ip": "example.com"}])


def test_refused_flows_are_counted_on_the_host(box):
    """BoxMetrics.network_refused_flows: connections to a private address and to the
    cloud metadata address are refused at once by boxlite-net, and each is counted."""
    before = run(box.metrics()).network_refused_flows
    assert before is not None
    r = run(box.exec("sh", "-c", "nc -w 5 10.9.8.7 80 </dev/null; echo rc=$?; "
                     "nc -w 5 169.254.169.254 80 </dev/null; echo rc=$?"))
    assert r.stdout.count("rc=1") == 2, r.stdout + r.stderr  # Both refused, not connected.
    after = run(box.metrics()).network_refused_flows
    assert after - before >= 2
