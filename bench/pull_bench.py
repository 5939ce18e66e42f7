#!/usr/bin/env python3
"""Pull + rootfs benchmark (docs/design.md §7): `boxlite pull` of the Debian+python3 test image
from a loopback registry into an empty store (download, verify, build the ext4 root file
system) against the same work done by standard tools in the same run: `skopeo copy` to
an OCI layout, `umoci unpack`, and `mke2fs -t ext4 -d` of the unpacked tree (the floor).
Prints one JSON line; progress goes to stderr."""
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
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness.catalog import build_test_images  # noqa: E402
from harness.registry import Registry  # noqa: E402


def cli_path():
    built = Path(os.environ.get("BOXLITE_BUILD_DIR", REPO / "build")) / "src" / "cli" / "boxlite"
    return str(built) if built.exists() else shutil.which("boxlite")


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {p.stderr.decode()[-2000:]}")
    return p


def main():
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    images = build_test_images()
    work = Path(tempfile.mkdtemp(prefix="boxlite-pull-bench."))
    reg = Registry(workdir=str(work / "registry"))
    reg.start()
    try:
        ref = reg.push(images.layout("debian-python"), "latest", "debian-python", format="oci")
        env = dict(os.environ)
        env["BOXLITE_INSECURE_REGISTRIES"] = reg.host
        env.pop("BOXLITE_REGISTRY_MIRRORS", None)
        cli = cli_path()
        ours, floor = [], []
        for i in range(runs):
            home = work / f"home{i}"
            env["BOXLITE_HOME"] = str(home)
            ours.append(timed(lambda: run([cli, "pull", "-q", ref], env=env)))
            shutil.rmtree(home, ignore_errors=True)

            layout, bundle, disk = work / f"oci{i}", work / f"bundle{i}", work / f"disk{i}.ext4"

            def tools():
                run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                     f"docker://{ref}", f"oci:{layout}:latest"])
                run(["umoci", "unpack", "--image", f"{layout}:latest", str(bundle)])
                used = int(run(["du", "-sk", str(bundle / "rootfs")]).stdout.split()[0])
                size_mb = used // 1024 * 3 // 2 + 64
                run(["mke2fs", "-q", "-t", "ext4", "-d", str(bundle / "rootfs"), str(disk),
                     f"{size_mb}M"])
            floor.append(timed(tools))
            shutil.rmtree(layout, ignore_errors=True)
            shutil.rmtree(bundle, ignore_errors=True)
            disk.unlink(missing_ok=True)
            print(f"pull+rootfs {i + 1}/{runs}: boxlite {ours[-1]:.2f}s, "
                  f"skopeo+umoci+mke2fs {floor[-1]:.2f}s", file=sys.stderr)
        value, base = statistics.median(ours), statistics.median(floor)
        print(json.dumps({"metric": "pull_rootfs_s", "value": round(value, 3),
                          "floor_name": "skopeo_umoci_mke2fs_s", "floor": round(base, 3),
                          "ratio": round(value / base, 3), "target_ratio": 1.0, "runs": runs,
                          "accel": "n/a", "host": f"{os.cpu_count()} cpu",
                          "image": "debian-python (bookworm minbase + python3)"}), flush=True)
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
