# Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
"""A closed test network for egress tests (allow_net, secrets, tunnels): two network
namespaces made by the test and nothing else.

- `client` is where boxlite runs (`EgressNetns.run` prefixes `ip netns exec`): its only
  interface besides lo is a veth to `servers`, so a box's traffic cannot go anywhere else.
- `servers` holds, on the veth's addresses:
    ip_a    198.18.N.2 (public to a box's policy: 198.18.0.0/15 is not private space)
    ip_b    198.18.N.3
    ip_private  10.200.N.2 (private space: a box reaches it only through an explicit rule)
  a DNS server on ip_a:53 answering `names` (name -> address; every other name NXDOMAIN,
  AAAA empty), HTTP on ports 80 and 8080 and HTTPS on 443 of every address. HTTPS uses a
  certificate for every name of `names` signed by a test CA (`ca_cert`, a PEM file; its key
  stays in the work directory). Every request is logged; the response body is
  "site=<Host> addr=<local address> port=<port> sni=<SNI or ->\n".

Use (root only: `ip netns`):

    env = EgressNetns(tmp_path, {"a.egress.test": "A", "b.egress.test": "A"})  # "A"/"B"/"P"
    env.start()
    try:
        env.run([cli, "run", ...], env={"BOXLITE_DNS_SERVERS": env.ip_a})
    finally:
        env.stop()

or, in a test module, a module-scoped fixture made here:

    egress_netns = netns_fixture({"a.egress.test": "A"})

and `env.box_env(home)` for the environment a `boxlite` command or an SDK script run
with `env.run` needs (its home, and the servers' DNS as the box's only upstream).
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

SERVERS = textwrap.dedent(r'''
    import http.server, json, socket, socketserver, ssl, struct, sys, threading
    cfg = json.load(open(sys.argv[1]))
    lock = threading.Lock()

    def log(entry):
        with lock, open(cfg["log"], "a") as f:
            f.write(json.dumps(entry) + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, body_in=b""):
            addr, port = self.connection.getsockname()[:2]
            sni = getattr(self.connection, "boxlite_sni", None)
            entry = {"kind": "http", "addr": addr, "port": port, "host": self.headers.get("Host"),
                     "sni": sni, "path": self.path, "method": self.command,
                     "headers": dict(self.headers.items()),
                     "body": body_in.decode("latin-1")}
            log(entry)
            body = ("site=%s addr=%s port=%d sni=%s\n" % (
                (self.headers.get("Host") or "-").split(":")[0], addr, port, sni or "-")).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            # Close after each answer, unless the client asks to keep the connection
            # (test_allow_net.py's kept-alive connection does).
            if (self.headers.get("Connection") or "").lower() != "keep-alive":
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._answer()

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            self._answer(self.rfile.read(n) if n else b"")

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    class TlsServer(Server):
        def __init__(self, addr, handler, ctx):
            super().__init__(addr, handler)
            self.ctx = ctx

        def get_request(self):
            sock, peer = self.socket.accept()
            sock.settimeout(30)
            try:
                conn = self.ctx.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as e:
                log({"kind": "tls-error", "error": str(e)})
                sock.close()
                raise
            return conn, peer

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    # busybox wget's own TLS (the base image's client) offers only older signature
    # schemes, which OpenSSL's default security level refuses.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")

    def on_sni(sock, name, context):
        sock.boxlite_sni = name  # The SSLSocket being accepted: the handler reads it.

    ctx.sni_callback = on_sni

    def dns():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((cfg["dns"], 53))
        while True:
            q, peer = s.recvfrom(4096)
            if len(q) < 12:
                continue
            i, labels = 12, []
            while i < len(q) and q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
                i += 1 + q[i]
            if i + 5 > len(q):
                continue
            qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
            name = ".".join(labels).lower()
            question = q[12:i + 5]
            addr = cfg["names"].get(name)
            log({"kind": "dns", "name": name, "qtype": qtype})
            if addr and qtype == 1:
                ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton(addr)
                reply = q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + question + ans
            elif addr:
                reply = q[:2] + b"\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00" + question
            else:
                reply = q[:2] + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + question
            s.sendto(reply, peer)

    threading.Thread(target=dns, daemon=True).start()
    for addr in cfg["addresses"]:
        for port in (80, 8080):
            srv = Server((addr, port), Handler)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
        tls = TlsServer((addr, 443), Handler, ctx)
        threading.Thread(target=tls.serve_forever, daemon=True).start()
    log({"kind": "ready"})
    threading.Event().wait()
''')


def _sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def _free_index():
    used = _sh("ip", "-4", "route", "show", "table", "all").stdout + _sh("ip", "-4", "addr").stdout
    for n in range(100, 250):
        if "198.18.%d." % n not in used and "10.200.%d." % n not in used:
            # Another test session may hold it in a namespace of its own.
            if not any(ns.startswith("bl-eg%d-" % n) for ns in _sh("ip", "netns", "list").stdout.split()):
                return n
    pytest.fail("no free 198.18.N.0/24 subnet for the test namespaces")


def make_test_ca(workdir, names):
    """(ca_cert, cert, key) PEM paths: a test CA and a server certificate for `names`
    (and the servers' addresses are not in it: clients use names)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BoxLite egress test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    # RSA for the server: small TLS clients (busybox wget in the base image) lack some
    # ECDSA signature schemes.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = [os.path.join(workdir, n) for n in ("ca.pem", "server.pem", "server.key")]
    with open(paths[0], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


class EgressNetns:
    """See the module's text. `names` maps a DNS name to "A", "B" or "P" (ip_a, ip_b,
    ip_private)."""

    def __init__(self, workdir, names):
        self.workdir = str(workdir)
        n = _free_index()
        tag = "%d-%d" % (n, os.getpid())
        self.client = "bl-eg%s-c" % tag
        self.servers = "bl-eg%s-s" % tag
        self.veth_c = "blegc%d" % n
        self.veth_s = "blegs%d" % n
        self.client_ip = "198.18.%d.1" % n
        self.ip_a = "198.18.%d.2" % n
        self.ip_b = "198.18.%d.3" % n
        self.ip_private = "10.200.%d.2" % n
        self.private_cidr = "10.200.%d.0/24" % n
        letters = {"A": self.ip_a, "B": self.ip_b, "P": self.ip_private}
        self.names = {k.lower(): letters[v] for k, v in names.items()}
        self.log_path = os.path.join(self.workdir, "egress-servers.log")
        self.proc = None
        self.ca_cert = None

    def start(self):
        self.ca_cert, cert, key = make_test_ca(self.workdir, list(self.names) or ["x.test"])
        cfg = os.path.join(self.workdir, "egress-servers.json")
        with open(cfg, "w") as f:
            json.dump({"log": self.log_path, "cert": cert, "key": key, "dns": self.ip_a,
                       "names": self.names,
                       "addresses": [self.ip_a, self.ip_b, self.ip_private]}, f)
        script = os.path.join(self.workdir, "egress_servers.py")
        with open(script, "w") as f:
            f.write(SERVERS)
        _sh("ip", "netns", "add", self.client)
        _sh("ip", "netns", "add", self.servers)
        _sh("ip", "link", "add", self.veth_c, "netns", self.client, "type", "veth",
            "peer", "name", self.veth_s, "netns", self.servers)
        c = ("ip", "netns", "exec", self.client)
        s = ("ip", "netns", "exec", self.servers)
        _sh(*c, "ip", "link", "set", "lo", "up")
        _sh(*s, "ip", "link", "set", "lo", "up")
        _sh(*c, "ip", "addr", "add", self.client_ip + "/24", "dev", self.veth_c)
        for addr in (self.ip_a, self.ip_b):
            _sh(*s, "ip", "addr", "add", addr + "/24", "dev", self.veth_s)
        _sh(*s, "ip", "addr", "add", self.ip_private + "/24", "dev", self.veth_s)
        _sh(*c, "ip", "link", "set", self.veth_c, "up")
        _sh(*s, "ip", "link", "set", self.veth_s, "up")
        _sh(*c, "ip", "route", "add", self.private_cidr, "dev", self.veth_c)
        _sh(*s, "ip", "route", "add", self.client_ip, "dev", self.veth_s, check=False)
        self.proc = subprocess.Popen([*s, sys.executable, script, cfg])
        deadline = time.monotonic() + 60
        while not any(e.get("kind") == "ready" for e in self.log()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("the egress test servers did not start")
            time.sleep(0.1)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _sh("ip", "netns", "del", self.client, check=False)
        _sh("ip", "netns", "del", self.servers, check=False)

    def prefix(self):
        """The command prefix that runs a program in the client namespace."""
        return ["ip", "netns", "exec", self.client]

    def run(self, argv, env=None, timeout=600, input=None):
        """Runs `argv` in the client namespace (captured, not checked)."""
        return subprocess.run([*self.prefix(), *argv], env=env, capture_output=True,
                              timeout=timeout, input=input)

    def box_env(self, home, base=None):
        """The environment for boxlite (CLI or SDK) in the client namespace: BOXLITE_HOME
        `home`, and the servers' DNS as the boxes' only upstream."""
        env = dict(os.environ if base is None else base)
        env.update({"BOXLITE_HOME": str(home), "BOXLITE_DNS_SERVERS": self.ip_a})
        return env

    def log(self):
        """The servers' log entries (dicts), oldest first."""
        try:
            with open(self.log_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def requests(self, path=None):
        """The HTTP(S) requests the servers got, optionally only those for `path`."""
        return [e for e in self.log() if e.get("kind") == "http" and
                (path is None or e.get("path") == path)]


def netns_fixture(names, scope="module"):
    """A pytest fixture yielding a started EgressNetns for `names` (skips without root)."""

    @pytest.fixture(scope=scope)
    def _egress_netns(tmp_path_factory):
        if os.geteuid() != 0:
            pytest.skip("needs root for ip netns")
        env = EgressNetns(tmp_path_factory.mktemp("egress-net"), names)
        env.start()
        yield env
        env.stop()

    return _egress_netns
