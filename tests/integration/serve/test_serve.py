"""`boxlite serve`: BoxLite 0.9's REST + WebSocket API, driven with raw HTTP (http.client)
and raw WebSockets (websocket-client), as a client of another language would.

One server (with an API key) and one running box serve most tests; a second server without
a key checks the permissive mode. Everything is observed from the wire, from inside the
guest (exec output, files) or from the host (the server's RSS in /proc, files on disk).
"""
import http.client
import io
import json
import re
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
import websocket

from conftest import Cli, add_session_root

BASE = "boxlite/base"
KEY = "serve-test-key-0123456789"
LISTEN_RE = re.compile(rb"^listening on http://127\.0\.0\.1:(\d+)$")


class Server:
    def __init__(self, cli, *args, env=None):
        self.proc = cli.popen("serve", "--port", "0", *args, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env={**cli.env, **(env or {})})
        line = self.proc.stdout.readline().strip()
        m = LISTEN_RE.match(line)
        assert m, (line, self.proc.stderr.read() if self.proc.poll() is not None else b"")
        self.port = int(m.group(1))
        self.key = None

    def request(self, method, path, body=None, raw=None, headers=None, key=True, timeout=300):
        """(status, headers dict (lower-case), body bytes)."""
        h = dict(headers or {})
        if key and self.key:
            h.setdefault("Authorization", f"Bearer {self.key}")
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, expect=200, **kw):
        status, _, data = self.request(method, path, body, **kw)
        assert status == expect, (status, data)
        return json.loads(data) if data else None

    def ws(self, path, **kw):
        return websocket.create_connection(f"ws://127.0.0.1:{self.port}{path}", timeout=120,
                                           header=[f"Authorization: Bearer {self.key}"], **kw)

    def rss_kib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self):
        """SIGTERM: the server stops and exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=120)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()
        assert self.proc.returncode == 0, err
        return err


def error_of(data):
    err = json.loads(data)["error"]
    assert set(err) >= {"message", "type", "code"}
    return err


@pytest.fixture(scope="module")
def home_cli(cli_binary, tmp_path_factory):
    home = tmp_path_factory.mktemp("serve-home")
    add_session_root(home)
    return Cli(cli_binary, home)


@pytest.fixture(scope="module")
def server(home_cli):
    # Short reaper times (test_reaper_signals_an_unattended_exec); every other exec here has
    # a client within moments of its start.
    srv = Server(home_cli, "--api-key", KEY,
                 env={"BOXLITE_REAPER_TICK": "1", "BOXLITE_RECONNECT_GRACE": "6",
                      "BOXLITE_SHUTDOWN_GRACE": "2", "BOXLITE_COMPLETED_EXEC_TTL": "600"})
    srv.key = KEY
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


@pytest.fixture(scope="module")
def box(server):
    made = server.json("POST", "/v1/boxes", {"image": BASE, "memory_mib": 256,
                                             "name": "serve-box"}, expect=201)
    try:
        started = server.json("POST", f"/v1/boxes/{made['box_id']}/start")
        assert started["status"] == "running" and started["pid"] > 0
        yield made["box_id"]
    finally:
        status, _, data = server.request("DELETE", f"/v1/boxes/{made['box_id']}")
        assert status in (204, 404), data


def start_exec(server, box, command, args=(), **extra):
    body = {"command": command, "args": list(args), **extra}
    return server.json("POST", f"/v1/boxes/{box}/exec", body, expect=201)["execution_id"]


def collect(ws):
    """Reads frames to the exit frame: (stdout bytes, stderr bytes, exit code, close code)."""
    out, err, code = b"", b"", None
    while True:
        op, data = ws.recv_data()
        if op == websocket.ABNF.OPCODE_BINARY:
            assert data[:1] in (b"\x01", b"\x02"), data[:16]
            if data[:1] == b"\x01":
                out += data[1:]
            else:
                err += data[1:]
        elif op == websocket.ABNF.OPCODE_TEXT:
            msg = json.loads(data)
            if msg["type"] == "exit":
                code = msg["exit_code"]
        elif op == websocket.ABNF.OPCODE_CLOSE:
            close = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            return out, err, code, close


def run_exec(server, box, command, args=(), ws_stdin=None, **extra):
    """Starts an exec, attaches, sends `ws_stdin` then stdin_eof, and collects the output."""
    eid = start_exec(server, box, command, args, **extra)
    ws = server.ws(f"/v1/boxes/{box}/executions/{eid}/attach")
    try:
        if ws_stdin is not None:
            ws.send_binary(ws_stdin)
            ws.send(json.dumps({"type": "stdin_eof"}))
        return collect(ws)
    finally:
        ws.close()


# --- No VM -------------------------------------------------------------------------------


def test_non_loopback_bind_without_key_is_refused(home_cli):
    p = home_cli.run("serve", "--host", "0.0.0.0", "--port", "0", timeout=30)
    assert p.returncode == 1 and p.stdout == b""
    lines = p.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "API key" in lines[0] and "127.0.0.1" in lines[0]
    env = {"BOXLITE_SERVE_API_KEY": ""}
    assert home_cli.run("serve", "--host", "10.1.2.3", "--port", "0", env=env).returncode == 1


def test_without_a_key_every_route_is_open_and_connections_are_bounded(home_cli):
    srv = Server(home_cli, "--max-connections", "3",
                 env={"BOXLITE_SERVE_API_KEY": "", "BOXLITE_SERVE_HEADER_TIMEOUT": "2"})
    try:
        assert srv.request("GET", "/v1/boxes")[0] == 200
        # A client that never finishes its header (slow loris) pins nothing: others are
        # served meanwhile, and it is cut off at the header timeout.
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as slow:
            slow.sendall(b"GET /v1/config HTTP/1.1\r\nHost: x\r\n")
            assert srv.request("GET", "/v1/config")[0] == 200
            assert slow.recv(4096) == b""  # Closed by the server, no reply.
        # Three kept-alive connections (each answered once, so surely accepted) hold every
        # slot: a fourth gets 503 and is closed.
        held = []
        try:
            deadline = time.monotonic() + 10
            while len(held) < 3:  # Closed connections may not be freed yet.
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
                conn.request("GET", "/v1/config")
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    held.append(conn)
                else:
                    assert r.status == 503 and time.monotonic() < deadline
                    conn.close()
                    time.sleep(0.1)
            with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as third:
                reply = third.recv(4096)
            assert reply.startswith(b"HTTP/1.1 503 ")
            assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "engine_unavailable"
        finally:
            for conn in held:
                conn.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                if srv.request("GET", "/v1/config")[0] == 200:
                    break
            except (ConnectionError, http.client.HTTPException):
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        me = srv.json("GET", "/v1/me")
        assert me["sub"] == "local-anonymous" and me["principal_type"] == "service_account"
        caps = srv.json("GET", "/v1/config")["capabilities"]
        assert all(caps[k] for k in ("linux_capabilities_enabled", "snapshots_enabled",
                                     "clone_enabled", "export_enabled", "import_enabled"))
    finally:
        err = srv.stop()
    assert b"stopping" in err


def test_auth_envelope_and_bearer_spellings(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY},
                    {"Authorization": f"Basic {KEY}"}):
        status, h, data = server.request("GET", "/v1/boxes", headers=headers, key=False)
        assert status == 401, (headers, data)
        assert json.loads(data) == {"error": {"message": "invalid or missing API key",
                                              "type": "AuthError", "code": "unauthenticated",
                                              "request_id": h["x-request-id"]}}
    status, _, _ = server.request("GET", "/v1/boxes", headers={"Authorization": f"bearer {KEY}"},
                                  key=False)
    assert status == 200
    # /v1/config is public; /v1/me is not.
    assert server.request("GET", "/v1/config", key=False)[0] == 200
    assert server.request("GET", "/v1/me", key=False)[0] == 401
    # A WebSocket attach without the key is refused before the upgrade.
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection(f"ws://127.0.0.1:{server.port}/v1/boxes/x/attach", timeout=30)
    assert e.value.status_code == 401


def test_bad_requests_get_the_error_envelope(server):
    status, h, data = server.request("POST", "/v1/boxes", raw=b"{not json",
                                     headers={"X-Request-Id": "req-bad-json-1"})
    assert status == 400 and h["x-request-id"] == "req-bad-json-1"
    err = error_of(data)
    assert err["code"] == "invalid_argument" and err["type"] == "InvalidArgumentError"
    assert err["request_id"] == "req-bad-json-1"

    status, _, data = server.request("POST", "/v1/boxes", {"image": BASE, "bogus_field": 1})
    assert status == 400 and "bogus_field" in error_of(data)["message"]
    status, _, data = server.request("POST", "/v1/boxes",
                                     {"image": BASE, "secrets": [{"name": "a", "value": "b"}]})
    assert status == 400 and "secrets" in error_of(data)["message"]
    status, _, data = server.request("POST", "/v1/boxes", {"cpus": "two"})
    assert status == 400 and "cpus" in error_of(data)["message"]

    status, h, data = server.request("GET", "/v1/boxes/no-such-box")
    err = error_of(data)
    assert status == 404 and err["code"] == "not_found" and err["type"] == "NotFoundError"
    assert re.fullmatch(r"[0-9a-f]{32}", h["x-request-id"]) and err["request_id"] == h["x-request-id"]
    status, _, data = server.request("HEAD", "/v1/boxes/no-such-box")
    assert status == 404 and data == b""
    status, _, data = server.request("GET", "/v1/nothing-here")
    assert status == 404 and error_of(data)["code"] == "not_found"
    status, _, data = server.request("PATCH", "/v1/boxes")
    assert status == 405
    # A JSON body over 1 MiB is refused from its Content-Length, before it is read.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"POST /v1/boxes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")


def test_idempotency_key_replays_create(server, home_cli):
    body = {"image": BASE, "name": "idem-box", "memory_mib": 256}
    key = {"Idempotency-Key": "create-idem-box-1"}
    s1, _, d1 = server.request("POST", "/v1/boxes", body, headers=key)
    assert s1 == 201, d1
    first = json.loads(d1)
    try:
        s2, h2, d2 = server.request("POST", "/v1/boxes", body, headers=key)
        assert s2 == 201 and json.loads(d2)["box_id"] == first["box_id"]
        # Another body under the same key: refused, nothing created.
        s3, _, d3 = server.request("POST", "/v1/boxes", {**body, "name": "idem-other"},
                                   headers=key)
        assert s3 == 422 and "Idempotency-Key" in error_of(d3)["message"]
        names = [b["name"] for b in server.json("GET", "/v1/boxes")["boxes"]]
        assert names.count("idem-box") == 1 and "idem-other" not in names
        # Without the key, the same body is a second create (the name is taken: 409).
        s4, _, d4 = server.request("POST", "/v1/boxes", body)
        assert s4 == 409 and error_of(d4)["code"] == "already_exists"
        # The box exists on the host, seen by the CLI.
        ls = json.loads(home_cli.run("ls", "-a", "--format", "json", check=True).stdout)
        assert [b["ID"] for b in ls if b["Names"] == "idem-box"] == [first["box_id"]]
    finally:
        assert server.request("DELETE", f"/v1/boxes/{first['box_id']}")[0] == 204
    assert server.request("GET", f"/v1/boxes/{first['box_id']}")[0] == 404


# --- One running box ---------------------------------------------------------------------


def test_exec_streams_stdin_stdout_stderr_and_exit_code(server, box):
    out, err, code, close = run_exec(
        server, box, "sh", ["-c", "tr a-z A-Z; echo to-stderr >&2; exit 7"], ws_stdin=b"hello\n")
    assert (out, err, code, close) == (b"HELLO\n", b"to-stderr\n", 7, 1000)
    # Inline stdin (0.9's server-side "stdin" field), env and working_dir.
    out, _, code, _ = run_exec(server, box, "sh", ["-c", "cat; echo $GREETING; pwd"],
                               env={"GREETING": "hi there"}, working_dir="/tmp",
                               stdin="inline\n")
    assert (out, code) == (b"inline\nhi there\n/tmp\n", 0)
    box_json = server.json("GET", f"/v1/boxes/{box}")
    assert box_json["box_id"] == box and box_json["status"] == "running"
    assert server.request("HEAD", f"/v1/boxes/{box}")[0] == 200


def test_exec_timeout_kills_a_chatty_process(server, box):
    out, _, code, close = run_exec(server, box, "sh", ["-c", "echo start; while :; do echo tick; "
                                                             "sleep 0.1; done"],
                                   timeout_seconds=2)
    assert out.startswith(b"start\ntick\n") and code == 137 and close == 1000


def test_tty_exec_resize_and_signal(server, box):
    eid = start_exec(server, box, "sh", ["-c", "stty size; read line; stty size"], tty=True)
    ws = server.ws(f"/v1/boxes/{box}/executions/{eid}/attach")
    try:
        first = b""
        while b"\n" not in first:
            op, data = ws.recv_data()
            assert op == websocket.ABNF.OPCODE_BINARY and data[:1] == b"\x01"
            first += data[1:]
        assert first.split() == [b"24", b"80"]
        ws.send(json.dumps({"type": "resize", "rows": 33, "cols": 111}))
        ws.send_binary(b"go\n")
        out, err, code, _ = collect(ws)
    finally:
        ws.close()
    assert b"33 111" in out and err == b"" and code == 0

    # A signal over the WebSocket reaches the process; one off the whitelist is refused.
    eid = start_exec(server, box, "sh", ["-c", "trap 'echo got-usr1; exit 5' USR1; "
                                               "echo ready; while :; do sleep 0.1; done"])
    ws = server.ws(f"/v1/boxes/{box}/executions/{eid}/attach")
    try:
        op, data = ws.recv_data()
        assert data == b"\x01ready\n"
        ws.send(json.dumps({"type": "signal", "sig": 9}))
        op, data = ws.recv_data()
        assert op == websocket.ABNF.OPCODE_TEXT and json.loads(data)["type"] == "error"
        ws.send(json.dumps({"type": "signal", "sig": 10}))
        out, _, code, _ = collect(ws)
    finally:
        ws.close()
    assert out == b"got-usr1\n" and code == 5
    status, _, data = server.request("POST", f"/v1/boxes/{box}/executions/{eid}/signal",
                                     {"signal": 9})
    assert status == 400


ATTACHER = r"""
import sys, websocket
ws = websocket.create_connection(sys.argv[1], header=["Authorization: Bearer " + sys.argv[2]])
op, data = ws.recv_data()
sys.stdout.write(data[1:].decode()); sys.stdout.flush()
import time; time.sleep(600)
"""


def test_killed_client_reattaches_to_the_backlog_and_one_client_at_a_time(server, box):
    eid = start_exec(server, box, "sh", ["-c", "echo first; read go; for i in 1 2 3; do "
                                               "echo line$i; echo err$i >&2; done; exit 4"])
    url = f"ws://127.0.0.1:{server.port}/v1/boxes/{box}/executions/{eid}/attach"
    client = subprocess.Popen([sys.executable, "-c", ATTACHER, url, KEY],
                              stdout=subprocess.PIPE)
    try:
        assert client.stdout.readline() == b"first\n"
        # A second client while the first is attached: 409.
        with pytest.raises(websocket.WebSocketBadStatusException) as e:
            server.ws(f"/v1/boxes/{box}/executions/{eid}/attach")
        assert e.value.status_code == 409
    finally:
        client.kill()
        client.wait()
        client.stdout.close()
    # The exec survived the dropped client; a new client gets the backlog, then live output.
    deadline = time.monotonic() + 30
    while True:
        try:
            ws = server.ws(f"/v1/boxes/{box}/executions/{eid}/attach")
            break
        except websocket.WebSocketBadStatusException as e:  # The drop not yet noticed.
            assert e.status_code == 409 and time.monotonic() < deadline
            time.sleep(0.2)
    try:
        op, data = ws.recv_data()
        assert data == b"\x01first\n"
        assert server.json("GET", f"/v1/boxes/{box}/executions/{eid}") == {
            "execution_id": eid, "status": "running"}
        ws.send_binary(b"go\n")
        out, err, code, close = collect(ws)
    finally:
        ws.close()
    assert (out, err, code, close) == (b"line1\nline2\nline3\n", b"err1\nerr2\nerr3\n", 4, 1000)
    # A late attach after the exit: the whole backlog, then the exit frame.
    ws = server.ws(f"/v1/boxes/{box}/executions/{eid}/attach")
    try:
        assert collect(ws) == (b"first\nline1\nline2\nline3\n", b"err1\nerr2\nerr3\n", 4, 1000)
    finally:
        ws.close()
    assert server.json("GET", f"/v1/boxes/{box}/executions/{eid}") == {
        "execution_id": eid, "status": "completed", "exit_code": 4}
    assert server.request("DELETE", f"/v1/boxes/{box}/executions/{eid}")[0] == 204
    assert server.request("GET", f"/v1/boxes/{box}/executions/{eid}")[0] == 404


def test_twenty_clients_five_execs_each_and_flat_rss(server, box):
    def client(n, results):
        for i in range(5):
            word = f"c{n}e{i}"
            results.append(run_exec(server, box, "echo", [word])[:3] == (word.encode() + b"\n", b"", 0))

    def round_of_clients():
        results = []
        threads = [threading.Thread(target=client, args=(n, results)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    assert all(round_of_clients()[:20])  # Warms the server's pools.
    before = server.rss_kib()
    results = round_of_clients()
    after = server.rss_kib()
    assert len(results) == 100 and all(results)
    print(f"serve RSS around 100 execs from 20 clients: {before} KiB -> {after} KiB")
    # Generous: completed execs are kept (with their backlogs) for 5 minutes.
    assert after - before < 64 * 1024, (before, after)


def test_a_client_that_does_not_read_keeps_server_memory_bounded(server, box):
    eid = start_exec(server, box, "head", ["-c", str(200 << 20), "/dev/zero"])
    # Handshake by hand, then never read: the socket buffers fill and the server stops
    # reading the exec's output (the guest process blocks on flow control).
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall((f"GET /v1/boxes/{box}/executions/{eid}/attach HTTP/1.1\r\n"
                  f"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                  f"Authorization: Bearer {KEY}\r\n\r\n").encode())
    try:
        before = server.rss_kib()
        peak = before
        for _ in range(8):
            time.sleep(1)
            peak = max(peak, server.rss_kib())
        assert peak - before < 48 * 1024, (before, peak)
        print(f"serve RSS with a client not reading 200 MiB: {before} KiB -> peak {peak} KiB")
        assert server.json("GET", f"/v1/boxes/{box}/executions/{eid}")["status"] == "running"
    finally:
        sock.close()
    assert server.request("DELETE", f"/v1/boxes/{box}/executions/{eid}")[0] == 204


def tar_of(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_entry(name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def test_files_round_trip_as_tar(server, box):
    payload = tar_of([file_entry("up/a.txt", b"alpha\n"), file_entry("up/sub/b.sh", b"echo b\n", 0o755)])
    status, _, data = server.request("PUT", f"/v1/boxes/{box}/files?path=/root/files-in",
                                     raw=payload, headers={"Content-Type": "application/x-tar"})
    assert status == 204, data
    out, _, code, _ = run_exec(server, box, "sh", ["-c", "cat /root/files-in/up/a.txt; "
                                                         "/root/files-in/up/sub/b.sh; "
                                                         "stat -c %a /root/files-in/up/sub/b.sh"])
    assert (out, code) == (b"alpha\nb\n755\n", 0)
    status, h, data = server.request("GET", f"/v1/boxes/{box}/files?path=/root/files-in/up")
    assert status == 200 and h["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        files = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
    assert files == {"up/a.txt": b"alpha\n", "up/sub/b.sh": b"echo b\n"}
    status, _, data = server.request("GET", f"/v1/boxes/{box}/files?path=/root/no-such")
    assert status >= 400 and error_of(data)


def test_hostile_tars_are_refused_and_write_nothing_outside(server, box, home_cli, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    link = tarfile.TarInfo("esc")
    link.type = tarfile.SYMTYPE
    link.linkname = str(outside)
    hard = tarfile.TarInfo("hard")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "/etc/passwd"
    cases = {
        "dotdot": [file_entry("../dotdot-x", b"x")],
        "absolute": [file_entry(str(outside / "abs-x"), b"x")],
        "symlink": [(link, None), file_entry("esc/pwned", b"x")],
        "hardlink": [(hard, None)],
    }
    for name, entries in cases.items():
        status, _, data = server.request("PUT", f"/v1/boxes/{box}/files?path=/root/hostile",
                                         raw=tar_of(entries))
        assert status == 400, (name, data)
        assert error_of(data)["code"] == "invalid_argument"
    assert list(outside.iterdir()) == []
    home = home_cli.home
    assert not list(home.rglob("dotdot-x")) and not list(home.rglob("pwned"))
    out, _, _, _ = run_exec(server, box, "sh", ["-c", "ls /root/hostile 2>&1 || true"])
    assert b"No such file" in out
    status, _, data = server.request("PUT", f"/v1/boxes/{box}/files?path=/root/x", raw=b"garbage" * 100)
    assert status == 400


def test_metrics_count_what_ran(server, box):
    m = server.json("GET", "/v1/metrics")
    assert set(m) == {"boxes_created_total", "boxes_failed_total", "boxes_stopped_total",
                      "num_running_boxes", "total_commands_executed", "total_exec_errors"}
    assert m["num_running_boxes"] >= 1 and m["boxes_created_total"] >= 1
    before = m["total_commands_executed"]
    run_exec(server, box, "true")
    assert server.json("GET", "/v1/metrics")["total_commands_executed"] == before + 1
    bm = server.json("GET", f"/v1/boxes/{box}/metrics")
    assert bm["commands_executed_total"] >= 1 and bm["memory_bytes"] > 0


def test_reaper_signals_an_unattended_exec(server, box):
    eid = start_exec(server, box, "sh", ["-c", "trap 'echo hup >> /root/reap.log' HUP; "
                                               "trap 'echo term >> /root/reap.log' TERM; "
                                               "while :; do sleep 0.2; done"])
    deadline = time.monotonic() + 60
    while True:
        status, _, data = server.request("GET", f"/v1/boxes/{box}/executions/{eid}")
        if status != 200:
            break
        assert json.loads(data)["status"] == "running" and time.monotonic() < deadline
        time.sleep(0.5)
    err = error_of(data)
    assert status == 410 and (err["type"], err["code"]) == ("SessionReapedError", "session_reaped")
    out, _, code, _ = run_exec(server, box, "sh", ["-c", "cat /root/reap.log; "
                                                         "pgrep -f 'sleep 0.2' || echo gone"])
    assert (out, code) == (b"hup\nterm\ngone\n", 0)


def test_volumes(server, home_cli):
    vol = server.json("POST", "/v1/volumes", {}, expect=201)
    assert set(vol) == {"id", "created_at", "size_bytes"}
    assert (home_cli.home / "volumes" / vol["id"]).is_dir()
    assert vol["id"] in [v["id"] for v in server.json("GET", "/v1/volumes")["volumes"]]
    assert server.json("GET", f"/v1/volumes/{vol['id']}")["id"] == vol["id"]
    assert server.request("DELETE", f"/v1/volumes/{vol['id']}")[0] == 204
    assert not (home_cli.home / "volumes" / vol["id"]).exists()
    assert server.request("GET", f"/v1/volumes/{vol['id']}")[0] == 404


def test_main_command_attach(server):
    made = server.json("POST", "/v1/boxes", {
        "image": BASE, "memory_mib": 256, "name": "serve-main",
        "entrypoint": ["sh", "-c", "echo main-out; read x; echo got $x; exit 3"], "cmd": []},
        expect=201)
    box = made["box_id"]
    try:
        server.json("POST", f"/v1/boxes/{box}/start")
        ws = server.ws(f"/v1/boxes/{box}/attach")
        try:
            assert ws.getheaders()["x-boxlite-execution-id"]
            ws.send_binary(b"hi\n")
            out, err, code, close = collect(ws)
        finally:
            ws.close()
        assert b"main-out\n" in out and b"got hi\n" in out and code == 3 and close == 1000
        deadline = time.monotonic() + 60
        while (info := server.json("GET", f"/v1/boxes/{box}"))["status"] != "stopped":
            assert time.monotonic() < deadline, info
            time.sleep(0.5)
        assert info["exit_code"] == 3
    finally:
        assert server.request("DELETE", f"/v1/boxes/{box}")[0] == 204


def test_stop_snapshot_clone_export_import_delete(server, box, home_cli):
    stopped = server.json("POST", f"/v1/boxes/{box}/stop")
    assert stopped["status"] == "stopped"
    ls = json.loads(home_cli.run("ls", "-a", "--format", "json", check=True).stdout)
    assert [b["Status"] for b in ls if b["ID"] == box] == ["stopped"]

    snap = server.json("POST", f"/v1/boxes/{box}/snapshots", {"name": "s1"}, expect=201)
    assert snap["name"] == "s1" and snap["box_id"] == box and isinstance(snap["created_at"], int)
    assert (home_cli.home / "boxes" / box / "snapshots" / "s1").is_dir()
    assert [s["name"] for s in server.json("GET", f"/v1/boxes/{box}/snapshots")["snapshots"]] == ["s1"]
    assert server.json("GET", f"/v1/boxes/{box}/snapshots/s1")["id"] == snap["id"]
    assert server.request("POST", f"/v1/boxes/{box}/snapshots/s1/restore")[0] == 204
    assert server.request("GET", f"/v1/boxes/{box}/snapshots/nope")[0] == 404
    assert server.request("DELETE", f"/v1/boxes/{box}/snapshots/s1")[0] == 204
    assert not (home_cli.home / "boxes" / box / "snapshots" / "s1").exists()

    clone = server.json("POST", f"/v1/boxes/{box}/clone", {"name": "serve-clone"}, expect=201)
    assert clone["name"] == "serve-clone" and clone["status"] == "stopped"
    assert (home_cli.home / "boxes" / clone["box_id"]).is_dir()
    status, h, archive = server.request("POST", f"/v1/boxes/{box}/export", {})
    assert status == 200 and h["content-type"] == "application/octet-stream" and len(archive) > 4096
    status, _, data = server.request("POST", "/v1/boxes/import?name=serve-imported", raw=archive,
                                     headers={"Content-Type": "application/octet-stream"})
    assert status == 201, data
    imported = json.loads(data)
    assert imported["name"] == "serve-imported" and imported["box_id"] not in (box, clone["box_id"])
    status, _, data = server.request("POST", "/v1/boxes/import", raw=b"not an archive" * 100)
    assert status == 400, data
    for other in (clone["box_id"], imported["box_id"]):
        assert server.request("DELETE", f"/v1/boxes/{other}")[0] == 204
    assert server.request("DELETE", f"/v1/boxes/{box}")[0] == 204
    assert server.request("GET", f"/v1/boxes/{box}")[0] == 404
    assert not (home_cli.home / "boxes" / box).exists()
