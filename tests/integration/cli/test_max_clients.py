# How many host processes a background box serves at once (`--max-clients`, one
# virtio-serial port each; docs/cli.md): more than the default 4 long-running execs all
# answer at once, one past the bound fails with an error saying what to do, and a slot
# freed by an ending exec is taken by the next one.
import json
import subprocess

import pytest

from conftest import Cli

BASE = "boxlite/base"


@pytest.fixture
def own(cli_binary, tmp_path):
    return Cli(cli_binary, tmp_path / "home")


def _echo_exec(own, box, i):
    """A long-running exec that answers each line of its stdin with "i:line"."""
    return own.popen("exec", "-i", box, "--", "sh", "-c", f'while read l; do echo "{i}:$l"; done',
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_more_than_four_clients_answer_and_one_past_the_bound_is_refused(own):
    """Six execs at once in a box of --max-clients 6; the seventh is refused clearly."""
    p = own.run("run", "-d", "--name", "many", "--max-clients", "6", BASE, "sleep", "infinity",
                timeout=300)
    assert p.returncode == 0, p.stderr
    box_id = p.stdout.decode().strip()
    procs = []
    try:
        for i in range(6):
            procs.append(_echo_exec(own, "many", i))
        # All six hold their client at once: each answers while the others still run.
        for round_ in ("a", "b"):
            for i, proc in enumerate(procs):
                proc.stdin.write(f"{round_}\n".encode())
                proc.stdin.flush()
                line = proc.stdout.readline()
                assert line == f"{i}:{round_}\n".encode(), (i, line, proc.stderr.read1(4096)
                                                            if line == b"" else b"")
        p = own.run("exec", "many", "--", "true", timeout=120)
        assert p.returncode != 0
        err = p.stderr.decode()
        assert "box many already has 6 clients" in err, err
        assert "--max-clients" in err and "at most 30" in err, err
        # One ends: its slot serves the next exec.
        procs[0].stdin.close()
        assert procs[0].wait(timeout=60) == 0
        p = own.run("exec", "many", "--", "echo", "seventh", timeout=120)
        assert (p.returncode, p.stdout) == (0, b"seventh\n"), p.stderr
        # The bound is the box's, in its record, which every process using the box reads.
        record = json.loads((own.home / "boxes" / box_id / "box.json").read_text())
        assert record["options"]["max_clients"] == 6, record["options"]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        own.run("rm", "-f", "many", timeout=120)


def test_max_clients_out_of_bounds_is_one_clear_error(own):
    for bad in ("0", "31", "many"):
        p = own.run("create", "--max-clients", bad, BASE)
        assert p.returncode != 0
        assert b"--max-clients must be a whole number from 1 to 30" in p.stderr, p.stderr
