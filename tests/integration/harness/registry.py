# Loopback OCI registries for tests: Debian's docker-registry (distribution 2.8) on a free
# 127.0.0.1 port with storage in a temp dir, with optional basic (htpasswd/bcrypt) or
# token (JWT) authentication, plus FaultProxy, an HTTP proxy that injects registry
# failures. No pytest dependency; fixtures.py wraps these classes.
#
# Processes: every docker-registry gets PR_SET_PDEATHSIG(SIGKILL), so it dies with the
# Python process that started it even when that process is killed; stop() and an atexit
# hook end them normally. Servers written in Python (token server, FaultProxy) run in
# daemon threads of this process. Logs stay in each registry's work dir.
#
# Thread-safety: a Registry/FaultProxy is configured and started from one thread; its
# request records may be read from any thread (they are guarded by a lock).

import atexit
import base64
import ctypes
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"

# bcrypt hash of DEFAULT_PASSWORD, used when no bcrypt tool is available.
DEFAULT_USER = "boxlite"
DEFAULT_PASSWORD = "boxlite-test-password"
_DEFAULT_BCRYPT = "$2y$05$UiPIdNO771MZyLKdvI5nAO1vcgpgjh0qYlIR2WSv3.Qew7Sj/oY0S"

ACCEPT_ALL = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])

_live = set()
_live_lock = threading.Lock()


def _kill_all():
    with _live_lock:
        procs = list(_live)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_all)


def _die_with_parent():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _spawn_dying_with_parent(argv, **kw):
    """Popen with PR_SET_PDEATHSIG(SIGKILL): through setpriv(1) when present (no
    preexec_fn, which is unsafe once threads run), else through preexec_fn."""
    setpriv = shutil.which("setpriv")
    if setpriv:
        return subprocess.Popen([setpriv, "--pdeathsig", "KILL", "--"] + list(argv), **kw)
    return subprocess.Popen(argv, preexec_fn=_die_with_parent, **kw)


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class HarnessError(Exception):
    pass


# ---------------------------------------------------------------------------- access log

_ACCESS_RE = re.compile(
    r'^(\S+) \S+ (\S+) \[([^\]]+)\] "(\S+) (\S+) ([^"]+)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"')


class AccessRecord:
    __slots__ = ("method", "path", "status", "size", "user", "user_agent")

    def __init__(self, method, path, status, size, user, user_agent):
        self.method, self.path, self.status = method, path, status
        self.size, self.user, self.user_agent = size, user, user_agent

    @property
    def path_only(self):
        return self.path.split("?", 1)[0]

    def __repr__(self):
        return "%s %s %d" % (self.method, self.path_only, self.status)


def parse_access_log(text):
    out = []
    for line in text.splitlines():
        m = _ACCESS_RE.match(line)
        if m:
            out.append(AccessRecord(m.group(4), m.group(5), int(m.group(7)),
                                    0 if m.group(8) == "-" else int(m.group(8)),
                                    m.group(2), m.group(10)))
    return out


# ---------------------------------------------------------------------------- registry

class Registry:
    """docker-registry on 127.0.0.1:<free port>, plain HTTP, storage in a temp dir."""

    realm = None

    def __init__(self, workdir=None, name="registry"):
        self.name = name
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="boxlite-%s-" % name)
        os.makedirs(self.workdir, exist_ok=True)
        self.storage = os.path.join(self.workdir, "storage")
        self.access_log = os.path.join(self.workdir, "access.log")
        self.error_log = os.path.join(self.workdir, "registry.log")
        self.config_path = os.path.join(self.workdir, "config.yml")
        self.port = None
        self.proc = None
        self._mounted = {}  # digest -> repo known to hold it (push_raw)

    # -- configuration hooks for subclasses --
    def _auth_config(self):
        return None

    def auth_header(self):
        """Authorization header value for raw HTTP requests, or None."""
        return None

    def skopeo_creds(self):
        """user:password for skopeo, or None."""
        return None

    # -- lifecycle --
    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    def env(self):
        """Environment for the runtime under test: this registry as docker.io mirror,
        reachable over plain HTTP."""
        return {"BOXLITE_REGISTRY_MIRRORS": self.url, "BOXLITE_INSECURE_REGISTRIES": self.host}

    def _write_config(self):
        cfg = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": self.storage},
                        "delete": {"enabled": True},
                        "cache": {"blobdescriptor": "inmemory"},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": self.host, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        auth = self._auth_config()
        if auth:
            cfg["auth"] = auth
        # JSON is valid YAML.
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=1)

    def start(self, timeout=30):
        if self.proc is not None:
            return self
        last = ""
        for _ in range(5):
            self.port = free_port()
            self._write_config()
            out = open(self.access_log, "ab")
            err = open(self.error_log, "ab")
            self.proc = _spawn_dying_with_parent([REGISTRY_BIN, "serve", self.config_path],
                                                 stdout=out, stderr=err,
                                                 stdin=subprocess.DEVNULL, cwd=self.workdir)
            out.close()
            err.close()
            with _live_lock:
                _live.add(self.proc)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    status, _, _ = self.http("GET", "/v2/", auth=False, timeout=2)
                    if status in (200, 401):
                        return self
                except OSError:
                    pass
                time.sleep(0.05)
            with open(self.error_log, errors="replace") as f:
                last = f.read()[-2000:]
            self.stop()
            if "address already in use" not in last:
                break
        raise HarnessError("docker-registry did not start: " + last)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            with _live_lock:
                _live.discard(self.proc)
            self.proc = None

    def cleanup(self):
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- raw HTTP --
    def http(self, method, path, body=None, headers=None, auth=True, timeout=60):
        """One request to the registry. Returns (status, headers dict lower-case, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = dict(headers or {})
            if auth and self.auth_header() and "Authorization" not in h:
                h["Authorization"] = self.auth_header()
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def get_manifest(self, repo, ref):
        """Returns (status, content_type, body, digest header)."""
        st, h, body = self.http("GET", "/v2/%s/manifests/%s" % (repo, ref),
                                headers={"Accept": ACCEPT_ALL})
        return st, h.get("content-type"), body, h.get("docker-content-digest")

    def get_blob(self, repo, digest):
        st, _, body = self.http("GET", "/v2/%s/blobs/%s" % (repo, digest))
        return st, body

    # -- pushing --
    def push(self, layout_dir, tag="latest", name=None, format="oci", src_ref="latest"):
        """skopeo copy oci:LAYOUT:SRC_REF -> docker://HOST/NAME:TAG (name: the repository,
        e.g. "busybox" or "library/python"). format "oci" keeps the manifests byte for byte
        (same digests); "v2s2" converts to Docker schema 2. Image indexes are copied whole.
        Returns the reference pushed ("127.0.0.1:PORT/NAME:TAG")."""
        if not name:
            raise ValueError("push: name (repository) is required")
        ref = "%s/%s:%s" % (self.host, name, tag)
        cmd = [SKOPEO, "copy", "--quiet", "--all", "--dest-tls-verify=false"]
        if format == "oci":
            cmd += ["--format", "oci", "--preserve-digests"]
        elif format == "v2s2":
            cmd += ["--format", "v2s2"]
        else:
            raise ValueError(format)
        if self.skopeo_creds():
            cmd += ["--dest-creds", self.skopeo_creds()]
        cmd += ["oci:%s:%s" % (layout_dir, src_ref), "docker://" + ref]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=600)
        if p.returncode != 0:
            raise HarnessError("skopeo copy to %s failed: %s" % (ref, p.stderr.strip()))
        return ref

    def skopeo_inspect(self, ref, raw=True, creds=None, extra=()):
        cmd = [SKOPEO, "inspect", "--tls-verify=false"]
        if raw:
            cmd.append("--raw")
        creds = creds if creds is not None else self.skopeo_creds()
        if creds:
            cmd += ["--creds", creds]
        cmd += list(extra) + ["docker://" + ref]
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=120)

    def push_raw(self, layout_dir, tag="latest", name=None):
        """Pushes an OCI layout byte for byte through the registry API, including broken
        images: blobs whose content does not match their digest and manifests that name
        missing blobs are written straight into the registry's storage (the registry
        refuses them over the API). Returns the reference pushed."""
        if not name:
            raise ValueError("push_raw: name (repository) is required")
        with open(os.path.join(layout_dir, "index.json"), "rb") as f:
            top = json.loads(f.read())["manifests"][0]
        self._push_raw_desc(layout_dir, name, top, tag)
        return "%s/%s:%s" % (self.host, name, tag)

    def _blob_file(self, layout_dir, digest):
        return os.path.join(layout_dir, "blobs", *digest.split(":", 1))

    def _push_raw_desc(self, layout_dir, repo, desc, tag):
        path = self._blob_file(layout_dir, desc["digest"])
        with open(path, "rb") as f:
            body = f.read()
        doc = json.loads(body)
        mt = doc.get("mediaType") or desc["mediaType"]
        if "manifests" in doc:
            for child in doc["manifests"]:
                if os.path.exists(self._blob_file(layout_dir, child["digest"])):
                    self._push_raw_desc(layout_dir, repo, child, None)
        else:
            for b in [doc.get("config")] + list(doc.get("layers", [])):
                if b and os.path.exists(self._blob_file(layout_dir, b["digest"])):
                    self._push_raw_blob(layout_dir, repo, b["digest"])
        ref = tag or desc["digest"]
        st, h, resp = self.http("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=body,
                                headers={"Content-Type": mt})
        if st != 201:
            self._store_manifest(repo, body, tag)

    def _push_raw_blob(self, layout_dir, repo, digest):
        with open(self._blob_file(layout_dir, digest), "rb") as f:
            data = f.read()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            self._store_blob(repo, digest, data)  # tampered: the API would refuse it
            return
        st, _, _ = self.http("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
        if st == 200:
            return
        src = self._mounted.get(digest)
        if src:
            st, _, _ = self.http("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s"
                                 % (repo, digest, src))
            if st == 201:
                return
        st, h, body = self.http("POST", "/v2/%s/blobs/uploads/" % repo)
        if st != 202:
            raise HarnessError("upload start %s: %d %s" % (repo, st, body[:200]))
        loc = h["location"]
        u = urllib.parse.urlsplit(loc)
        q = u.query + ("&" if u.query else "") + "digest=" + urllib.parse.quote(digest)
        st, _, body = self.http("PUT", u.path + "?" + q, body=data,
                                headers={"Content-Type": "application/octet-stream"})
        if st != 201:
            raise HarnessError("upload %s %s: %d %s" % (repo, digest, st, body[:200]))
        self._mounted.setdefault(digest, repo)

    def _v2(self, *parts):
        return os.path.join(self.storage, "docker", "registry", "v2", *parts)

    def _store_blob(self, repo, digest, data):
        algo, hexd = digest.split(":", 1)
        d = self._v2("blobs", algo, hexd[:2], hexd)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "data"), "wb") as f:
            f.write(data)
        self._link(("repositories", repo, "_layers", algo, hexd, "link"), digest)

    def _store_manifest(self, repo, body, tag):
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        hexd = digest.split(":", 1)[1]
        d = self._v2("blobs", "sha256", hexd[:2], hexd)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "data"), "wb") as f:
            f.write(body)
        base = ("repositories", repo, "_manifests")
        self._link(base + ("revisions", "sha256", hexd, "link"), digest)
        if tag:
            self._link(base + ("tags", tag, "current", "link"), digest)
            self._link(base + ("tags", tag, "index", "sha256", hexd, "link"), digest)

    def _link(self, parts, digest):
        p = self._v2(*parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(digest)

    # -- request log --
    def requests(self):
        """Every request the registry logged so far (Apache combined access log)."""
        try:
            with open(self.access_log, errors="replace") as f:
                return parse_access_log(f.read())
        except FileNotFoundError:
            return []

    def sync_log(self, timeout=10):
        """Waits until every request answered before this call is in the access log: sends
        a marker request and waits for its line (lines are written as responses finish)."""
        marker = "/v2/boxlite-log-barrier/%s/tags/list" % uuid.uuid4().hex
        self.http("GET", marker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(r.path_only == marker for r in self.requests()):
                return
            time.sleep(0.02)
        raise HarnessError("registry access log did not show the marker request")

    def log_mark(self):
        """Position in the request log; pass to blob_gets(since=...)."""
        self.sync_log()
        return len(self.requests())

    def blob_gets(self, repo=None, digest=None, since=0, statuses=(200, 206)):
        """Blob GETs (downloads) logged since log_mark(), optionally for one repo/digest."""
        self.sync_log()
        out = []
        for r in self.requests()[since:]:
            m = re.match(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$", r.path_only)
            if r.method != "GET" or not m or r.status not in statuses:
                continue
            if repo is not None and m.group(1) != repo:
                continue
            if digest is not None and m.group(2) != digest:
                continue
            out.append(r)
        return out


# ---------------------------------------------------------------------------- basic auth

def bcrypt_hash(user, password):
    """A bcrypt htpasswd hash, from htpasswd (apache2-utils), Python's crypt module, or the
    bcrypt package, whichever exists; the built-in constant for the default password."""
    htpasswd = shutil.which("htpasswd")
    if htpasswd:
        p = subprocess.run([htpasswd, "-nbB", "-C", "5", user, password],
                           stdout=subprocess.PIPE, text=True)
        if p.returncode == 0 and ":" in p.stdout:
            return p.stdout.strip().split(":", 1)[1]
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt  # removed in Python 3.13
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))
        if h and h.startswith("$2"):
            return h
    except (ImportError, AttributeError, OSError):
        pass
    try:
        import bcrypt
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()
    except ImportError:
        pass
    if password == DEFAULT_PASSWORD:
        return _DEFAULT_BCRYPT
    raise HarnessError("no bcrypt tool: apt-get install apache2-utils")


class BasicAuthRegistry(Registry):
    """Registry behind htpasswd (bcrypt) basic auth. users: {name: password}."""

    realm = "boxlite-test-basic"

    def __init__(self, users=None, workdir=None, name="basic-registry"):
        super().__init__(workdir, name)
        self.users = dict(users or {DEFAULT_USER: DEFAULT_PASSWORD})
        self.username, self.password = next(iter(self.users.items()))

    def _auth_config(self):
        path = os.path.join(self.workdir, "htpasswd")
        with open(path, "w") as f:
            for u, p in self.users.items():
                f.write("%s:%s\n" % (u, bcrypt_hash(u, p)))
        return {"htpasswd": {"realm": self.realm, "path": path}}

    def auth_header(self):
        return "Basic " + base64.b64encode(
            ("%s:%s" % (self.username, self.password)).encode()).decode()

    def skopeo_creds(self):
        return "%s:%s" % (self.username, self.password)


# ---------------------------------------------------------------------------- token auth

def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def libtrust_key_id(spki_der):
    """Key id as docker/libtrust computes it: base32 of the first 240 bits of sha256(SPKI
    DER), in 12 groups of 4 joined by ':'."""
    s = base64.b32encode(hashlib.sha256(spki_der).digest()[:30]).decode()
    return ":".join(s[i:i + 4] for i in range(0, 48, 4))


class TokenSigner:
    """RS256 JWT signing with the openssl CLI (no Python crypto dependency)."""

    def __init__(self, workdir, cn="boxlite-test-token-issuer"):
        self.key = os.path.join(workdir, "token-key.pem")
        self.cert = os.path.join(workdir, "token-cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", self.key, "-out", self.cert, "-days", "3650",
                        "-subj", "/CN=" + cn], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        self.cert_der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"],
                                       stdout=subprocess.PIPE, check=True).stdout
        spki = subprocess.run(["openssl", "pkey", "-in", self.key, "-pubout", "-outform", "DER"],
                              stdout=subprocess.PIPE, check=True).stdout
        self.kid = libtrust_key_id(spki)

    def sign(self, claims, mode="x5c"):
        header = {"typ": "JWT", "alg": "RS256"}
        if mode == "x5c":
            header["x5c"] = [base64.b64encode(self.cert_der).decode()]
        else:
            header["kid"] = self.kid
        si = _b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            _b64url(json.dumps(claims, separators=(",", ":")).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=si.encode(),
                             stdout=subprocess.PIPE, check=True).stdout
        return si + "." + _b64url(sig)


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TokenAuthRegistry(Registry):
    """Registry with token auth (Docker registry v2 token protocol) and a token server
    written here. users: {name: password}; anonymous_pull lets clients without credentials
    pull; jwt_mode "x5c" (certificate chain in the JWT header) or "kid" (libtrust key id).
    token_requests records every request to the token server."""

    service = "boxlite-test-registry"
    issuer = "boxlite-test-token-issuer"

    def __init__(self, users=None, anonymous_pull=False, jwt_mode="x5c", workdir=None,
                 name="token-registry", token_ttl=300):
        super().__init__(workdir, name)
        self.users = dict(users or {DEFAULT_USER: DEFAULT_PASSWORD})
        self.username, self.password = next(iter(self.users.items()))
        self.anonymous_pull = anonymous_pull
        self.jwt_mode = jwt_mode
        self.token_ttl = token_ttl
        self.token_requests = []
        self._lock = threading.Lock()
        self._refresh = {}
        self.signer = None
        self.token_server = None
        self.token_port = None

    @property
    def realm(self):
        return "http://127.0.0.1:%d/token" % self.token_port

    def _auth_config(self):
        return {"token": {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                          "rootcertbundle": self.signer.cert}}

    def start(self, timeout=30):
        if self.signer is None:
            self.signer = TokenSigner(self.workdir, self.issuer)
        if self.token_server is None:
            self.token_server = _ThreadingServer(("127.0.0.1", 0), self._handler_class())
            self.token_port = self.token_server.server_address[1]
            threading.Thread(target=self.token_server.serve_forever, daemon=True,
                             name="token-server").start()
        return super().start(timeout)

    def stop(self):
        super().stop()
        if self.token_server is not None:
            self.token_server.shutdown()
            self.token_server.server_close()
            self.token_server = None

    def skopeo_creds(self):
        return "%s:%s" % (self.username, self.password)

    def auth_header(self):
        return None  # raw requests use token_for()

    def issue(self, account, scopes, signer_mode=None):
        """A signed registry token granting `scopes` [(type, name, [actions])]."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": account or "", "aud": self.service,
                  "exp": now + self.token_ttl, "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex,
                  "access": [{"type": t, "name": n, "actions": a} for t, n, a in scopes]}
        return self.signer.sign(claims, signer_mode or self.jwt_mode)

    def token_for(self, scope, user=None, password=None):
        """Fetches a token from the token server like a client would."""
        user = user or self.username
        password = password if password is not None else self.password
        conn = http.client.HTTPConnection("127.0.0.1", self.token_port, timeout=30)
        q = urllib.parse.urlencode({"service": self.service, "scope": scope})
        auth = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        conn.request("GET", "/token?" + q, headers={"Authorization": "Basic " + auth})
        r = conn.getresponse()
        body = r.read()
        conn.close()
        if r.status != 200:
            raise HarnessError("token server: %d %s" % (r.status, body[:200]))
        return json.loads(body)["token"]

    def _grant(self, account, authenticated, scope_params):
        scopes = []
        for sp in scope_params:
            for s in sp.split(" "):
                parts = s.split(":")
                if len(parts) < 3:
                    continue
                t, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
                if authenticated:
                    granted = [a for a in actions if a in ("pull", "push", "delete", "*")]
                elif self.anonymous_pull:
                    granted = [a for a in actions if a == "pull"]
                else:
                    granted = []
                if granted:
                    scopes.append((t, name, granted))
        return scopes

    def _handler_class(self):
        reg = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="boxlite-token"')
                self.end_headers()
                self.wfile.write(body)

            def _creds(self):
                h = self.headers.get("Authorization", "")
                if not h.startswith("Basic "):
                    return None, None
                try:
                    u, _, p = base64.b64decode(h[6:]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    return "", ""
                return u, p

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                if u.path != "/token":
                    return self._reply(404, {"error": "not found"})
                q = urllib.parse.parse_qs(u.query)
                user, pw = self._creds()
                rec = {"method": "GET", "account": user, "scope": q.get("scope", []),
                       "service": (q.get("service") or [None])[0]}
                if user is not None and reg.users.get(user) != pw:
                    rec["result"] = 401
                    with reg._lock:
                        reg.token_requests.append(rec)
                    return self._reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                         "message": "bad credentials"}]})
                scopes = reg._grant(user, user is not None, q.get("scope", []))
                tok = reg.issue(user, scopes)
                rec["result"] = 200
                rec["granted"] = scopes
                with reg._lock:
                    reg.token_requests.append(rec)
                self._reply(200, {"token": tok, "access_token": tok,
                                  "expires_in": reg.token_ttl,
                                  "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                             time.gmtime())})

            def do_POST(self):
                # OAuth2 flavour (docker login with identity tokens, some clients).
                if urllib.parse.urlsplit(self.path).path != "/token":
                    return self._reply(404, {"error": "not found"})
                n = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                g = (form.get("grant_type") or [""])[0]
                rec = {"method": "POST", "grant_type": g, "scope": form.get("scope", [])}
                user = None
                if g == "password":
                    user = (form.get("username") or [""])[0]
                    if reg.users.get(user) != (form.get("password") or [""])[0]:
                        user = None
                elif g == "refresh_token":
                    user = reg._refresh.get((form.get("refresh_token") or [""])[0])
                rec["account"] = user
                if user is None:
                    rec["result"] = 401
                    with reg._lock:
                        reg.token_requests.append(rec)
                    return self._reply(401, {"error": "invalid_grant"})
                scopes = reg._grant(user, True, form.get("scope", []))
                refresh = uuid.uuid4().hex
                with reg._lock:
                    reg._refresh[refresh] = user
                    rec["result"] = 200
                    reg.token_requests.append(rec)
                self._reply(200, {"access_token": reg.issue(user, scopes),
                                  "refresh_token": refresh, "expires_in": reg.token_ttl})

        return Handler


# ---------------------------------------------------------------------------- fault proxy

_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailers", "transfer-encoding", "upgrade"}

_BLOB_RE = re.compile(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")
_MANIFEST_RE = re.compile(r"^/v2/(.+)/manifests/([^/]+)$")


class Rule:
    """One fault. match(method, path) decides; times limits how often it fires (None:
    always). hits counts firings."""

    def __init__(self, kind, match, times=None, **params):
        self.kind = kind
        self.match = match
        self.times = times
        self.params = params
        self.hits = 0

    def active(self):
        return self.times is None or self.hits < self.times


class ProxyRecord:
    __slots__ = ("method", "path", "status", "fault", "authorization", "bytes_sent", "range")

    def __init__(self, method, path, status, fault, authorization, bytes_sent, rng):
        self.method, self.path, self.status, self.fault = method, path, status, fault
        self.authorization, self.bytes_sent, self.range = authorization, bytes_sent, rng

    def __repr__(self):
        return "%s %s -> %s%s" % (self.method, self.path, self.status,
                                  " [%s]" % self.fault if self.fault else "")


class FaultProxy:
    """HTTP reverse proxy in front of a registry that injects faults. Requests that no
    active rule matches pass through unchanged (Host header kept, so the registry's
    Location headers point back at the proxy). Every request is recorded in `records`
    before its response is finished, so counts are exact once a client is done.

    Faults (each returns the Rule; `times` = how many requests it hits, None = all):
      unauthorized()                       401 + WWW-Authenticate on every /v2/ request
      tag_not_found(repo, tag)             404 MANIFEST_UNKNOWN for that tag
      blob_not_found(digest)               404 BLOB_UNKNOWN for that blob (GET and HEAD)
      fail(status=500, times=N, match=f)   N failures, then pass
      cut_blob(digest=None, after=None)    blob GET: headers + part of the body, then the
                                           connection is closed (once by default)
      redirect_blobs()                     blob GETs answered 307 to a second server on
                                           127.0.0.2 (or another 127.0.0.1 port) that serves
                                           the blob and records the Authorization header it
                                           received (redirect_records)
    """

    def __init__(self, upstream):
        if isinstance(upstream, Registry):
            upstream = upstream.host
        upstream = upstream.replace("http://", "").rstrip("/")
        self.upstream_host, _, port = upstream.partition(":")
        self.upstream_port = int(port or 80)
        self.rules = []
        self.records = []
        self.redirect_records = []
        self._lock = threading.Lock()
        self._server = None
        self._blob_server = None
        self._redirects = {}
        self.port = None

    # -- faults --
    def add(self, rule):
        with self._lock:
            self.rules.append(rule)
        return rule

    def unauthorized(self, times=None, challenge='Basic realm="boxlite-fault-proxy"'):
        return self.add(Rule("status", lambda m, p: p.startswith("/v2/"), times, status=401,
                             code="UNAUTHORIZED", headers={"WWW-Authenticate": challenge}))

    def tag_not_found(self, repo, tag, times=None):
        path = "/v2/%s/manifests/%s" % (repo, tag)
        return self.add(Rule("status", lambda m, p: p == path, times, status=404,
                             code="MANIFEST_UNKNOWN"))

    def blob_not_found(self, digest, times=None):
        return self.add(Rule("status", lambda m, p: bool(_BLOB_RE.match(p))
                             and p.endswith("/" + digest), times, status=404,
                             code="BLOB_UNKNOWN"))

    def fail(self, status=500, times=1, match=None):
        match = match or (lambda m, p: p.startswith("/v2/") and p != "/v2/")
        return self.add(Rule("status", match, times, status=status, code="UNKNOWN"))

    def cut_blob(self, digest=None, after=None, times=1):
        """after: bytes of body to send before closing (default: half the blob)."""
        def match(m, p):
            mm = _BLOB_RE.match(p)
            return m == "GET" and bool(mm) and (digest is None or mm.group(2) == digest)
        return self.add(Rule("cut", match, times, after=after))

    def redirect_blobs(self, times=None, status=307):
        self._ensure_blob_server()
        return self.add(Rule("redirect", lambda m, p: m == "GET" and bool(_BLOB_RE.match(p)),
                             times, status=status))

    # -- lifecycle --
    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    @property
    def blob_host(self):
        return "%s:%d" % self._blob_server.server_address[:2] if self._blob_server else None

    def start(self):
        if self._server is None:
            self._server = _ThreadingServer(("127.0.0.1", 0), self._proxy_handler())
            self.port = self._server.server_address[1]
            threading.Thread(target=self._server.serve_forever, daemon=True,
                             name="fault-proxy").start()
        return self

    def _ensure_blob_server(self):
        if self._blob_server is not None:
            return
        try:
            srv = _ThreadingServer(("127.0.0.2", 0), self._blob_handler())
        except OSError:
            srv = _ThreadingServer(("127.0.0.1", 0), self._blob_handler())
        self._blob_server = srv
        threading.Thread(target=srv.serve_forever, daemon=True, name="blob-cdn").start()

    def stop(self):
        for s in (self._server, self._blob_server):
            if s is not None:
                s.shutdown()
                s.server_close()
        self._server = self._blob_server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def env(self):
        return {"BOXLITE_REGISTRY_MIRRORS": self.url, "BOXLITE_INSECURE_REGISTRIES": self.host}

    def _record(self, rec, into=None):
        with self._lock:
            (self.records if into is None else into).append(rec)

    def _pick(self, method, path):
        with self._lock:
            for r in self.rules:
                if r.active() and r.match(method, path):
                    r.hits += 1
                    return r
        return None

    def _upstream(self, method, path, headers, body):
        """headers: list of (name, value); repeated names (several Accept) are kept."""
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        if isinstance(headers, dict):
            headers = list(headers.items())
        names = {k.lower() for k, _ in headers}
        conn.putrequest(method, path, skip_host="host" in names,
                        skip_accept_encoding="accept-encoding" in names)
        for k, v in headers:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        elif method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", "0")
        conn.endheaders(body)
        return conn, conn.getresponse()

    # -- handlers --
    def _proxy_handler(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = []
                    while True:
                        n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if n == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(out)
                        out.append(self.rfile.read(n))
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else None

            def _error(self, status, code, extra_headers=None, fault=None):
                body = json.dumps({"errors": [{"code": code, "message": "injected by "
                                               "FaultProxy", "detail": None}]}).encode()
                proxy._record(ProxyRecord(self.command, self.path, status, fault,
                                          self.headers.get("Authorization"), 0,
                                          self.headers.get("Range")))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
                for k, v in (extra_headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0" if self.command == "HEAD"
                                 else str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self):
                body = self._body()
                path = self.path.split("?", 1)[0]
                rule = proxy._pick(self.command, path)
                if rule is not None and rule.kind == "status":
                    return self._error(rule.params["status"], rule.params["code"],
                                       rule.params.get("headers"), "status %d"
                                       % rule.params["status"])
                if rule is not None and rule.kind == "redirect":
                    m = _BLOB_RE.match(path)
                    nonce = uuid.uuid4().hex
                    with proxy._lock:
                        proxy._redirects[nonce] = (m.group(1), m.group(2),
                                                   self.headers.get("Authorization"))
                    loc = "http://%s/blobs/%s?sig=%s" % (proxy.blob_host, m.group(2), nonce)
                    proxy._record(ProxyRecord(self.command, self.path, rule.params["status"],
                                              "redirect", self.headers.get("Authorization"), 0,
                                              self.headers.get("Range")))
                    self.send_response(rule.params["status"])
                    self.send_header("Location", loc)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = [(k, v) for k, v in self.headers.items()
                           if k.lower() not in _HOP and k.lower() != "content-length"]
                try:
                    conn, r = proxy._upstream(self.command, self.path, headers, body)
                except OSError as e:
                    return self._error(502, "UNAVAILABLE", fault="upstream: %s" % e)
                try:
                    self._relay(r, rule)
                finally:
                    conn.close()

            def _relay(self, r, rule):
                length = r.getheader("Content-Length")
                data = None
                if self.command != "HEAD" and length is None:
                    data = r.read()
                    length = str(len(data))
                cut = None
                if rule is not None and rule.kind == "cut" and r.status in (200, 206):
                    total = int(length or 0)
                    cut = rule.params["after"]
                    cut = total // 2 if cut is None else min(cut, max(total - 1, 0))
                rec = ProxyRecord(self.command, self.path, r.status,
                                  "cut after %d" % cut if cut is not None else None,
                                  self.headers.get("Authorization"), 0,
                                  self.headers.get("Range"))
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in _HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                if self.command == "HEAD":
                    proxy._record(rec)
                    return
                remaining = int(length)
                limit = cut if cut is not None else remaining
                sent = 0
                src = (lambda n: data[sent:sent + n]) if data is not None else r.read
                pending = None
                while sent < limit:
                    chunk = src(min(1 << 16, limit - sent))
                    if not chunk:
                        break
                    if sent + len(chunk) >= limit and cut is None:
                        pending = chunk  # record before the client can see the end
                        break
                    self.wfile.write(chunk)
                    sent += len(chunk)
                rec.bytes_sent = sent + (len(pending) if pending else 0)
                proxy._record(rec)
                if pending:
                    self.wfile.write(pending)
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        return Handler

    def _blob_handler(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                nonce = (urllib.parse.parse_qs(u.query).get("sig") or [""])[0]
                with proxy._lock:
                    target = proxy._redirects.get(nonce)
                rec = ProxyRecord("GET", self.path, 403 if target is None else 200, None,
                                  self.headers.get("Authorization"), 0,
                                  self.headers.get("Range"))
                if target is None:
                    proxy._record(rec, proxy.redirect_records)
                    self.send_response(403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                repo, digest, auth = target
                h = {"Authorization": auth} if auth else {}
                if self.headers.get("Range"):
                    h["Range"] = self.headers["Range"]
                conn, r = proxy._upstream("GET", "/v2/%s/blobs/%s" % (repo, digest), h, None)
                try:
                    data = r.read()
                finally:
                    conn.close()
                rec.status = r.status
                rec.bytes_sent = len(data)
                proxy._record(rec, proxy.redirect_records)
                self.send_response(r.status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                if r.getheader("Content-Range"):
                    self.send_header("Content-Range", r.getheader("Content-Range"))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_HEAD = do_GET

        return Handler
