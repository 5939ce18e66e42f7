"""`boxlite serve` as a child process for tests and benchmarks of remote runtimes
(docs/remote.md): bound to 127.0.0.1 on a free port, with its own home and an optional API
key; the URL is read from its `listening on http://...` line."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

# Remote settings of the caller's environment that must not reach the server.
REMOTE_VARS = ("BOXLITE_REST_URL", "BOXLITE_API_KEY", "BOXLITE_REST_PATH_PREFIX", "BOXLITE_PROFILE")


class Serve:
    """A running `boxlite serve`: .url, .home, .output (its lines so far); stop() ends it."""

    def __init__(self, cli: str, home: Path | str, key: str | None = None, timeout: float = 120) -> None:
        self.home = Path(home)
        args = [cli, "serve", "--host", "127.0.0.1", "--port", "0"]
        if key:
            args += ["--api-key", key]
        env = {k: v for k, v in os.environ.items() if k not in REMOTE_VARS}
        env["BOXLITE_HOME"] = str(self.home)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.output: list[str] = []
        self.url = ""
        ready = threading.Event()

        def drain() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace")
                self.output.append(line)
                if not self.url and "listening on " in line:
                    self.url = line.split("listening on ", 1)[1].split()[0].rstrip("/")
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        ready.wait(timeout)
        if not self.url:
            self.stop()
            raise RuntimeError("boxlite serve did not say where it listens:\n" + "".join(self.output))

    def stop(self) -> None:
        """SIGINT (the server stops its execs and boxes), then SIGKILL after 60 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
