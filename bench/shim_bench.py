#!/usr/bin/env python3
"""containerd shim benchmark (docs/kubernetes.md): JSON lines on stdout, progress on stderr.

  shim_run_s        `ctr run --rm --runtime io.containerd.boxlite.v2 IMAGE ID true`, from
                    the start of ctr to its exit (container, snapshot, rootfs layout,
                    box boot, the command, delete)
                    vs  cold_start_s of this run (boxlite_bench --only start: create ->
                        first exec done through the C++ API). Goal ratio <= 1.3 (issue 19).
  shim_run_cached_s the same with BOXLITE_SHIM_CACHE_IMAGES=1 (the rootfs image stays
                    imported and later boxes restore its warm-start template)
                    vs  cold_start_s of this run.
  shim_run_runc_s   the same `ctr run` with runc, for reference (no floor).
  shim_pod_second_container_s
                    `ctr run --rm` of a container into a running pod (CRI's annotations:
                    container-type=container, the pod's sandbox-id), from the start of ctr
                    to its exit: the rootfs copied into the pod's box, the command, delete;
                    no boot
                    vs  shim_run_s of this run (a task that boots a box of its own).

Both run under Debian's containerd started in a temp root (tests/integration/harness/
containerd_env.py) with the busybox test image; medians over BENCH_RUNS (default 5) runs
after one untimed run of each runtime. Needs root.
"""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness.catalog import build_test_images  # noqa: E402
from harness.containerd_env import BOXLITE, IMAGE, RUNC, Containerd  # noqa: E402


def build_dir():
    return Path(os.environ.get("BOXLITE_BUILD_DIR", REPO / "build"))


def ctr_run_seconds(c, runtime, name):
    t0 = time.monotonic()
    p = c.ctr("run", "--rm", "--runtime", runtime, IMAGE, name, "true", timeout=600)
    elapsed = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"ctr run ({runtime}) exited {p.returncode}: "
                           f"{p.stderr.decode(errors='replace')[-1000:]}")
    return elapsed


POD = "benchpod"


def pod_annotations(kind):
    return ["--annotation", f"io.kubernetes.cri.container-type={kind}",
            "--annotation", f"io.kubernetes.cri.sandbox-id={POD}"]


def pod_second_container(c, runs):
    """Median seconds of `ctr run --rm` of a container into a running pod (its sandbox and
    a first container started untimed)."""
    c.ctr("run", "-d", "--runtime", BOXLITE, *pod_annotations("sandbox"), IMAGE, POD, "/pause",
          check=True, timeout=600)
    c.ctr("run", "-d", "--runtime", BOXLITE, *pod_annotations("container"), IMAGE, POD + "-first",
          "sleep", "1000", check=True, timeout=600)
    times = []
    try:
        for i in range(runs + 1):  # The first is untimed.
            t0 = time.monotonic()
            c.ctr("run", "--rm", "--runtime", BOXLITE, *pod_annotations("container"), IMAGE,
                  f"{POD}-c{i}", "true", check=True, timeout=600)
            if i:
                times.append(time.monotonic() - t0)
                print(f"pod second container {i}/{runs}: {times[-1]:.3f}s", file=sys.stderr)
    finally:
        for task in (POD + "-first", POD):
            c.remove(task)
    return statistics.median(times)


def cold_start(runs):
    """cold_start_s of boxlite_bench, measured now on this machine."""
    p = subprocess.run([str(build_dir() / "bench" / "boxlite_bench"), "--only", "start",
                        "--runs", str(runs)], capture_output=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError("boxlite_bench --only start failed: " + p.stderr.decode()[-1000:])
    for line in p.stdout.decode().splitlines():
        record = json.loads(line)
        if record.get("metric") == "cold_start_s":
            return record
    raise RuntimeError("boxlite_bench printed no cold_start_s")


def timed_runs(c, runtimes, runs, label):
    times = {r: [] for r in runtimes}
    for runtime in runtimes:
        ctr_run_seconds(c, runtime, "warmup")  # Untimed: first-use caches.
    for i in range(runs):
        for runtime in runtimes:
            times[runtime].append(ctr_run_seconds(c, runtime, f"bench{i}"))
        print(f"shim run ({label}) {i + 1}/{runs}: " +
              " ".join(f"{r.split('.')[2]} {times[r][-1]:.3f}s" for r in runtimes),
              file=sys.stderr)
    return {r: statistics.median(t) for r, t in times.items()}


def main():
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    images = build_test_images()
    cli = str(build_dir() / "src" / "cli" / "boxlite")
    layout = images.layout("busybox")
    c = Containerd(cli, layout)
    try:
        plain = timed_runs(c, [BOXLITE, RUNC], runs, "default")
        pod_second = pod_second_container(c, runs)
    finally:
        c.close()
    c = Containerd(cli, layout, extra_env={"BOXLITE_SHIM_CACHE_IMAGES": "1"})
    try:
        cached = timed_runs(c, [BOXLITE], runs, "cached images")
    finally:
        c.close()
    cold = cold_start(runs)
    host = f"{os.cpu_count()} cpu"
    for metric, value in (("shim_run_s", plain[BOXLITE]), ("shim_run_cached_s", cached[BOXLITE])):
        print(json.dumps(dict(metric=metric, value=round(value, 3), floor_name="cold_start_s",
                              floor=cold["value"], ratio=round(value / cold["value"], 3),
                              target_ratio=1.3, runs=runs, accel=cold.get("accel", "n/a"),
                              host=host)), flush=True)
    print(json.dumps(dict(metric="shim_pod_second_container_s", value=round(pod_second, 3),
                          floor_name="shim_run_s", floor=round(plain[BOXLITE], 3),
                          ratio=round(pod_second / plain[BOXLITE], 3), runs=runs, host=host)),
          flush=True)
    print(json.dumps(dict(metric="shim_run_runc_s", value=round(plain[RUNC], 3),
                          floor_name="none", runs=runs, host=host)), flush=True)


if __name__ == "__main__":
    main()
