"""`boxlite network tunnel BOX PORT`: stdin and stdout connected to a TCP port inside a
running box (detached, network none: the tunnel rides the agent channel), like nc.
What the box's server received comes back from it, and the end of stdin is the half
close it waits for."""
import time

from conftest import Cli

BASE = "boxlite/base"


def test_network_tunnel_relays_stdin_and_stdout(cli_binary, tmp_path):
    c = Cli(cli_binary, tmp_path / "home")
    p = c.run("network", "--help")
    assert p.returncode == 0 and p.stdout.startswith(b"Usage: boxlite network tunnel BOX PORT")
    assert b"  network " in c.run("--help").stdout
    server = "while true; do nc -l -p 9000 -e sh -c 'cat; echo end'; done"
    c.run("run", "-d", "--name", "tun", "--network", "none", "--memory", "256", BASE,
          "sh", "-c", server, check=True)
    try:
        data = bytes(range(256)) * 4096  # 1 MiB, every byte value.
        for _ in range(100):
            p = c.run("network", "tunnel", "tun", "9000", input=data, timeout=120)
            if b"nothing listens" not in p.stderr:
                break
            time.sleep(0.1)
        assert p.returncode == 0, p.stderr
        assert p.stdout == data + b"end\n"
        p = c.run("network", "tunnel", "tun", "9001", input=b"")
        assert p.returncode == 1 and b"nothing listens on TCP port 9001" in p.stderr, p.stderr
        p = c.run("network", "tunnel", "tun", "http")
        assert p.returncode == 2 and b"PORT must be a number" in p.stderr, p.stderr
    finally:
        c.run("rm", "-f", "tun")
