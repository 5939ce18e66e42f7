#!/usr/bin/env python3
"""CodeBox benchmark (docs/codebox.md): one JSON line per metric on stdout, progress on
stderr, each figure against a floor measured in the same run on this machine:

  code_run_rtt_ms    run("1+1") in a CodeBox's kept interpreter, median
                     vs  exec("python3", "-c", "1") in the same box, median: what 0.9's
                     CodeBox paid per run (a new interpreter each time)

Target: a run costs at most a tenth of starting Python.

The image is the debian-python test image (scripts/test-images/build.sh --only
debian-python, cached), booted from its OCI layout. Environment: BENCH_ACTIONS (samples,
default 100; exec samples: a tenth of it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import boxlite  # noqa: E402
from computer_bench import Emitter  # noqa: E402


def log(msg: str) -> None:
    print("codebox_bench: " + msg, file=sys.stderr, flush=True)


def layout() -> str:
    out = subprocess.run([str(REPO / "scripts" / "test-images" / "build.sh"), "--json", "--only",
                          "debian-python"], check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)["images"]["debian-python"]["layout"]


async def bench(home: str) -> int:
    samples = int(os.environ.get("BENCH_ACTIONS", "100"))
    rt = boxlite.Boxlite(boxlite.Options(home_dir=home))
    em = Emitter((await rt.host_info()).get("accelerator", "unknown"))
    async with boxlite.CodeBox(rootfs_path=layout(), memory=512, runtime=rt) as cb:
        await cb.run("1+1")  # Starts the interpreter.
        runs, execs = [], []
        for _ in range(samples):
            t0 = time.perf_counter()
            result = await cb.run("1+1")
            runs.append(time.perf_counter() - t0)
            assert result.value == "2", result
        for _ in range(max(3, samples // 10)):
            t0 = time.perf_counter()
            done = await cb.exec("python3", "-c", "1")
            execs.append(time.perf_counter() - t0)
            assert done.exit_code == 0, done
    run_ms, exec_ms = statistics.median(runs) * 1e3, statistics.median(execs) * 1e3
    log(f"run {run_ms:.2f} ms, python3 -c 1 {exec_ms:.2f} ms")
    em.emit("code_run_rtt_ms", run_ms, "python_c_exec_rtt_ms", exec_ms, len(runs), 0.1)
    return 0


async def main() -> int:
    home = tempfile.mkdtemp(prefix="boxlite-codebox-bench.")
    try:
        return await bench(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
