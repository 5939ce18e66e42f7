#!/usr/bin/env python3
"""BrowserBox benchmark (docs/browserbox.md): one JSON line on stdout, progress on stderr,
against a floor measured in the same run on this machine:

  browser_ready_s    BrowserBox() entered + endpoint() answered (Chromium started in the
                     box and its /json/version read through the host listener), median
                     vs  cold start of boxlite/base (SimpleBox entered + exec true), median

No target: the figure is Chromium's own start in the guest plus one boot, and under TCG
Chromium's start dominates (tens of seconds).

The image is boxlite/browser: installed in the data directory (browser.tar), or built and
imported here (scripts/test-images/build.sh --only browser, cached). Image import and root
file system creation happen before anything is timed (one untimed box of each kind).
Environment: BENCH_RUNS (boots per kind, default 3).
"""

from __future__ import annotations

import asyncio
import json
import os
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

BROWSER = "boxlite/browser"
BASE = "boxlite/base"


def log(msg: str) -> None:
    print("browser_bench: " + msg, file=sys.stderr, flush=True)


async def ensure_image(rt: boxlite.Boxlite) -> None:
    data_dir = os.environ.get("BOXLITE_DATA_DIR", "/usr/local/share/boxlite")
    if os.path.exists(os.path.join(data_dir, "images", "browser.tar")):
        return
    out = subprocess.run([str(REPO / "scripts" / "test-images" / "build.sh"), "--json", "--only",
                          "browser"], check=True, stdout=subprocess.PIPE, text=True).stdout
    await rt.images.import_image(json.loads(out)["images"]["browser"]["layout"],
                                 tag=BROWSER + ":latest")


async def browser_ready(rt: boxlite.Boxlite) -> float:
    t0 = time.perf_counter()
    async with boxlite.BrowserBox(runtime=rt) as box:
        url = await box.endpoint(timeout=600)
        took = time.perf_counter() - t0
    assert url.startswith("ws://127.0.0.1:"), url
    return took


async def base_cold_start(rt: boxlite.Boxlite) -> float:
    t0 = time.perf_counter()
    async with boxlite.SimpleBox(BASE, memory=256, runtime=rt) as box:
        result = await box.exec("true")
        took = time.perf_counter() - t0
    assert result.exit_code == 0, result
    return took


async def bench(home: str) -> int:
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    rt = boxlite.Boxlite(boxlite.Options(home_dir=home))
    em = Emitter((await rt.host_info()).get("accelerator", "unknown"))
    await ensure_image(rt)
    async with boxlite.BrowserBox(runtime=rt):  # Untimed: imports the image, makes the rootfs.
        pass
    await base_cold_start(rt)
    ready, cold = [], []
    for i in range(runs):
        ready.append(await browser_ready(rt))
        cold.append(await base_cold_start(rt))
        log(f"run {i + 1}/{runs}: browser ready {ready[-1]:.2f} s, base cold start {cold[-1]:.2f} s")
    em.emit("browser_ready_s", statistics.median(ready), "cold_start_s", statistics.median(cold),
            runs, None)
    return 0


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="boxlite-browser-bench.") as home:
        return await bench(home)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
