#!/usr/bin/env python3
"""Remote runtime benchmark (docs/remote.md): one JSON line per metric on stdout,
progress on stderr, each figure against the same operation on a local runtime in this
run on this machine:

  remote_exec_rtt_ms  box.run("true") through Boxlite.rest (REST + WebSocket, loopback),
                      median  vs  exec_rtt of the same call on a local runtime, median
  remote_create_s     create + start of a box through Boxlite.rest, median
                      vs  create + start on a local runtime, median

Target: remote_exec_rtt_ms within 1.5x of local (remote_create_s has none). The server
is `boxlite serve` of BOXLITE_BUILD_DIR (else PATH) on 127.0.0.1 with an API key.
Environment: BENCH_RTT_RUNS (exec samples, default 100), BENCH_RUNS (creates, default 5).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

import boxlite  # noqa: E402
from computer_bench import Emitter  # noqa: E402
from harness.serve import Serve  # noqa: E402

IMAGE = "boxlite/base"
MEMORY = 512


def log(msg: str) -> None:
    print("remote_bench: " + msg, file=sys.stderr, flush=True)


def cli() -> str:
    built = Path(os.environ.get("BOXLITE_BUILD_DIR", REPO / "build")) / "src" / "cli" / "boxlite"
    return str(built) if built.exists() else (shutil.which("boxlite") or "boxlite")


async def exec_rtts(rt: boxlite.Boxlite, runs: int) -> list[float]:
    box = await rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY, auto_remove=False))
    try:
        await box.start()
        for _ in range(5):  # Warm the path.
            await box.run("true")
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            result = await box.run("true")
            out.append((time.perf_counter() - t0) * 1000)
            assert result.exit_code == 0, result
        return out
    finally:
        await rt.remove(box.id, force=True)


async def creates(rt: boxlite.Boxlite, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        box = await rt.create(boxlite.BoxOptions(image=IMAGE, memory_mib=MEMORY, auto_remove=False))
        await box.start()
        out.append(time.perf_counter() - t0)
        await rt.remove(box.id, force=True)
    return out


async def bench(local_home: str, server_home: str) -> None:
    rtt_runs = int(os.environ.get("BENCH_RTT_RUNS", "100"))
    create_runs = int(os.environ.get("BENCH_RUNS", "5"))
    key = secrets.token_hex(16)
    local = boxlite.Boxlite(boxlite.Options(home_dir=local_home))
    em = Emitter((await local.host_info()).get("accelerator", "unknown"))
    server = Serve(cli(), server_home, key)
    url = server.url
    try:
        remote = boxlite.Boxlite.rest(boxlite.BoxliteRestOptions(url, credential=boxlite.ApiKeyCredential(key)))
        log(f"exec round trips: {rtt_runs} local, {rtt_runs} remote ({url})")
        local_rtt = await exec_rtts(local, rtt_runs)
        remote_rtt = await exec_rtts(remote, rtt_runs)
        em.emit("remote_exec_rtt_ms", statistics.median(remote_rtt), "exec_rtt_ms",
                statistics.median(local_rtt), rtt_runs, 1.5)
        log(f"create + start: {create_runs} local, {create_runs} remote")
        await creates(local, 1)  # The image's first preparation is not what is compared.
        await creates(remote, 1)
        local_create = await creates(local, create_runs)
        remote_create = await creates(remote, create_runs)
        em.emit("remote_create_s", statistics.median(remote_create), "local_create_s",
                statistics.median(local_create), create_runs, None)
    finally:
        server.stop()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="remote-bench-") as tmp:
        local_home = os.path.join(tmp, "local")
        server_home = os.path.join(tmp, "server")
        os.makedirs(local_home)
        os.makedirs(server_home)
        asyncio.run(bench(local_home, server_home))
    return 0


if __name__ == "__main__":
    sys.exit(main())
