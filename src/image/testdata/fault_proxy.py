#!/usr/bin/env python3
# Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
"""A fault-injecting HTTP proxy in front of a local docker-registry, for
image_registry_test. Listens on 127.0.0.1 only (two ports: the registry face and a
"redirect target" that plays the role of a blob CDN on another host) and logs every
request as one JSON line.

Faults (each applies to blob GETs unless noted; counters are per URL path):
  --fail-status S --fail-count N   answer S (500, 429, ...) to the first N requests
  --drop-count N                   close the connection without answering, N times
  --cut-count N                    send headers with the full Content-Length and half the
                                   body, then drop the connection, N times (-1: always)
  --ignore-range                   answer 200 with the whole blob even to Range requests
  --corrupt                        flip one byte of every blob body
  --redirect                       answer blob GETs with 307 to the redirect port at
                                   "localhost" (another origin than 127.0.0.1)
  --bearer                         demand Bearer tokens (all /v2/ requests), issued by
                                   /token; with --token-user/--token-password the token
                                   endpoint demands Basic credentials
Once bound, writes {"port": P, "redirect_port": R} to --ready-file.
"""

import argparse
import base64
import http.client
import http.server
import json
import os
import re
import socket
import threading
import urllib.parse

ARGS = None
LOCK = threading.Lock()
COUNTS = {}
TOKENS = set()
MAIN_PORT = 0
REDIRECT_PORT = 0
FORWARD_HEADERS = ("content-type", "content-length", "docker-content-digest", "content-range",
                   "accept-ranges", "www-authenticate", "etag", "docker-distribution-api-version")


def log(record):
    with LOCK:
        with open(ARGS.log, "a") as f:
            f.write(json.dumps(record) + "\n")


def bump(key):
    with LOCK:
        COUNTS[key] = COUNTS.get(key, 0) + 1
        return COUNTS[key]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.handle_request("GET")

    def do_HEAD(self):
        self.handle_request("HEAD")

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def drop(self):
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def handle_request(self, method):
        port = self.server.server_address[1]
        url = urllib.parse.urlparse(self.path)
        path = url.path
        is_blob = "/blobs/sha256:" in path
        record = {"port": "redirect" if port == REDIRECT_PORT else "main", "method": method,
                  "path": path, "query": url.query,
                  "auth": self.headers.get("Authorization", ""),
                  "range": self.headers.get("Range", ""), "blob": is_blob}

        if path == "/token":
            return self.token(url, record)

        if ARGS.bearer and port == MAIN_PORT and path.startswith("/v2/"):
            auth = self.headers.get("Authorization", "")
            if not (auth.startswith("Bearer ") and auth[7:] in TOKENS):
                m = re.match(r"^/v2/(.+?)/(manifests|blobs)/", path)
                challenge = ('Bearer realm="http://127.0.0.1:%d/token",service="boxlite-test"'
                             % MAIN_PORT)
                if m:
                    challenge += ',scope="repository:%s:pull,push"' % m.group(1)
                record["status"] = 401
                log(record)
                return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}',
                                  {"WWW-Authenticate": challenge,
                                   "Content-Type": "application/json"})

        if ARGS.redirect and is_blob and port == MAIN_PORT:
            record["status"] = 307
            log(record)
            return self.reply(307, b"", {"Location": "http://localhost:%d%s" % (REDIRECT_PORT,
                                                                                self.path)})

        n = bump(path) if is_blob else 0
        if is_blob and ARGS.fail_count and n <= ARGS.fail_count:
            record["status"] = ARGS.fail_status
            log(record)
            headers = {"Retry-After": "0"} if ARGS.fail_status == 429 else {}
            return self.reply(ARGS.fail_status, b"injected failure", headers)
        if is_blob and ARGS.drop_count and n <= ARGS.drop_count:
            record["status"] = "dropped"
            log(record)
            return self.drop()

        upstream = http.client.HTTPConnection(ARGS.upstream_host, ARGS.upstream_port, timeout=30)
        headers = {}
        for h in ("Accept", "Range"):
            if self.headers.get(h) and not (h == "Range" and ARGS.ignore_range):
                headers[h] = self.headers.get(h)
        if self.headers.get("Authorization") and not ARGS.bearer:
            headers["Authorization"] = self.headers.get("Authorization")
        upstream.request(method, self.path, headers=headers)
        resp = upstream.getresponse()
        body = resp.read()
        upstream.close()
        record["status"] = resp.status

        cut = is_blob and ARGS.cut_count and (ARGS.cut_count < 0 or n <= ARGS.cut_count)
        if cut and resp.status == 200 and len(body) > 1 and method == "GET":
            record["status"] = "cut"
            log(record)
            self.send_response(200)
            for k, v in resp.getheaders():
                if k.lower() in FORWARD_HEADERS:
                    self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            return self.drop()

        if ARGS.corrupt and is_blob and resp.status in (200, 206) and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        log(record)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in FORWARD_HEADERS and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def token(self, url, record):
        query = urllib.parse.parse_qs(url.query)
        record["service"] = query.get("service", [""])
        record["scope"] = query.get("scope", [])
        if ARGS.token_user:
            want = "Basic " + base64.b64encode(
                ("%s:%s" % (ARGS.token_user, ARGS.token_password)).encode()).decode()
            if self.headers.get("Authorization", "") != want:
                record["status"] = 401
                log(record)
                return self.reply(401, b'{"details":"bad credentials"}')
        with LOCK:
            token = "tok-%d" % (len(TOKENS) + 1)
            TOKENS.add(token)
        record["status"] = 200
        log(record)
        return self.reply(200, json.dumps({"token": token, "expires_in": 300}).encode(),
                          {"Content-Type": "application/json"})


def main():
    global ARGS, MAIN_PORT, REDIRECT_PORT
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)  # host:port of the registry
    p.add_argument("--log", required=True)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--fail-status", type=int, default=500)
    p.add_argument("--fail-count", type=int, default=0)
    p.add_argument("--drop-count", type=int, default=0)
    p.add_argument("--cut-count", type=int, default=0)
    p.add_argument("--ignore-range", action="store_true")
    p.add_argument("--corrupt", action="store_true")
    p.add_argument("--redirect", action="store_true")
    p.add_argument("--bearer", action="store_true")
    p.add_argument("--token-user", default="")
    p.add_argument("--token-password", default="")
    ARGS = p.parse_args()
    ARGS.upstream_host, port = ARGS.upstream.rsplit(":", 1)
    ARGS.upstream_port = int(port)

    main_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    redirect_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    MAIN_PORT = main_server.server_address[1]
    REDIRECT_PORT = redirect_server.server_address[1]
    threading.Thread(target=redirect_server.serve_forever, daemon=True).start()
    with open(ARGS.ready_file + ".tmp", "w") as f:
        json.dump({"port": MAIN_PORT, "redirect_port": REDIRECT_PORT}, f)
    os.rename(ARGS.ready_file + ".tmp", ARGS.ready_file)
    main_server.serve_forever()


if __name__ == "__main__":
    main()
