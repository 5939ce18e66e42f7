#!/usr/bin/env python3
"""Egress allow-list benchmark (docs/networking.md): one JSON line on stdout, progress on
stderr.

  allowlisted_https_rtt_ms   an HTTPS GET by name from inside a box whose allow-list names
                             the server (DNS filtered and pinned, the connection diverted
                             through boxlite-net's interception layer, SNI checked, spliced)
                             vs  the same GET from a box without an allow-list (libslirp
                             straight through): the floor.

Both run in the closed test network of tests/integration/harness/netns_env.py (root only),
each as BENCH_EGRESS_REQUESTS (default 20) sequential `wget` calls inside one box, timed
in the guest; the figure is the mean per request, median over BENCH_RUNS boxes (default
3). Goal ratio <= 1.1 (issue 15).
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness.netns_env import EgressNetns  # noqa: E402

NAME = "api.egress.test"


def cli_path():
    return str(Path(os.environ.get("BOXLITE_BUILD_DIR", REPO / "build")) / "src" / "cli" / "boxlite")


def per_request_ms(env, home, allow, requests):
    """Mean milliseconds of one HTTPS GET by name, measured in the guest."""
    script = ("wget -q -O /dev/null --no-check-certificate https://%s/warm; "
              "s=$(cat /proc/uptime); i=0; while [ $i -lt %d ]; do "
              "wget -q -O /dev/null --no-check-certificate https://%s/b || exit 3; "
              "i=$((i+1)); done; e=$(cat /proc/uptime); echo \"T $s $e\"" % (NAME, requests, NAME))
    run_env = env.box_env(home)
    args = [cli_path(), "run", "--rm"]
    for pattern in allow:
        args += ["--allow-net", pattern]
    p = env.run([*args, "boxlite/base", "sh", "-c", script], env=run_env)
    m = re.search(r"T ([\d.]+) \S+ ([\d.]+) ", p.stdout.decode(errors="replace") + " ")
    if p.returncode != 0 or not m:
        raise RuntimeError("bench box failed: %s %s" % (p.stdout.decode()[-500:],
                                                        p.stderr.decode()[-1000:]))
    return (float(m.group(2)) - float(m.group(1))) * 1000.0 / requests


def main():
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    requests = int(os.environ.get("BENCH_EGRESS_REQUESTS", "20"))
    work = Path(tempfile.mkdtemp(prefix="boxlite-egress-bench."))
    env = EgressNetns(work, {NAME: "A"})
    env.start()
    try:
        ours, floor = [], []
        for i in range(runs):
            ours.append(per_request_ms(env, work / "home", [NAME], requests))
            floor.append(per_request_ms(env, work / "home", [], requests))
            print(f"egress {i + 1}/{runs}: allow-listed {ours[-1]:.1f} ms, "
                  f"no policy {floor[-1]:.1f} ms", file=sys.stderr)
        value, base = statistics.median(ours), statistics.median(floor)
        record = dict(metric="allowlisted_https_rtt_ms", value=value,
                      floor_name="unfiltered_https_rtt_ms", floor=base, ratio=value / base)
        record = {k: round(v, 3) if isinstance(v, float) else v for k, v in record.items()}
        record.update(target_ratio=1.1, runs=runs, requests=requests, accel="n/a",
                      host=f"{os.cpu_count()} cpu")
        print(json.dumps(record), flush=True)
    finally:
        env.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
