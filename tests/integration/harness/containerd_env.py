# Debian's containerd in a temp root (root, state, socket, config.toml) with
# containerd-shim-boxlite-v2 on its PATH and a BoxLite home of its own, and an image
# imported from a docker-save tar built from a local OCI layout. Used by
# tests/integration/shim and bench/shim_bench.py (docs/kubernetes.md). Needs root.
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .waiting import wait_for

REPO = Path(__file__).resolve().parents[3]
BOXLITE = "io.containerd.boxlite.v2"
RUNC = "io.containerd.runc.v2"
NS = "shimtest"
IMAGE = "docker.io/library/shimtest:latest"


def _shim_binary():
    build = Path(os.environ.get("BOXLITE_BUILD_DIR", REPO / "build"))
    built = build / "shim" / "containerd-shim-boxlite-v2"
    if built.exists():
        return str(built)
    found = shutil.which("containerd-shim-boxlite-v2")
    if found:
        return found
    raise RuntimeError("no containerd-shim-boxlite-v2: build the tree (ninja -C build) with "
                       "golang-go and golang-github-containerd-containerd-dev installed")


def docker_save_tar(layout, dest, tag):
    """A `docker save` archive of the OCI layout's image (manifest.json names the config and
    the layer blobs, stored under their digests)."""
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    blob = lambda d: os.path.join(layout, "blobs", *d.split(":", 1))
    with open(blob(index["manifests"][0]["digest"])) as f:
        manifest = json.load(f)
    config = manifest["config"]["digest"]
    layers = [layer["digest"] for layer in manifest["layers"]]
    name = lambda d: "blobs/" + d.replace(":", "/")
    with tarfile.open(dest, "w") as tar:
        for d in [config] + layers:
            tar.add(blob(d), arcname=name(d))
        data = json.dumps([{"Config": name(config), "RepoTags": [tag],
                            "Layers": [name(d) for d in layers]}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def containerd_for_tests(cli_binary, layout, on_root, session_mark, extra_env=None):
    """A Containerd for a test (its caller closes it); a test failure when containerd or
    ctr is not installed (scripts/setup.sh installs them). session_mark is "K=V", added to its environment with extra_env."""
    if shutil.which("containerd") is None or shutil.which("ctr") is None:
        import pytest  # Only the tests use this; the benchmark has no pytest.
        pytest.fail("containerd is not installed (scripts/setup.sh installs it)")
    key, value = session_mark.split("=", 1)
    return Containerd(cli_binary, layout, on_root=on_root,
                      extra_env={key: value, **(extra_env or {})})


class Containerd:
    """Debian's containerd in a temp root with the shim on its PATH and a BoxLite home of
    its own; `ctr` runs against its socket in namespace NS."""

    def __init__(self, cli_binary, layout, on_root=None, extra_env=None):
        """on_root(path) is told the temp root before anything runs in it (the tests count
        the VMs of that home as theirs); extra_env is added to containerd's environment."""
        # Not under /tmp: the leak monitors of other test sessions count every mount
        # under /tmp as theirs (harness/leaks.py), and containerd mounts snapshots here.
        self.dir = Path(tempfile.mkdtemp(prefix="bl-ctrd-", dir="/var/tmp"))
        self.home = self.dir / "home"
        if on_root:
            on_root(self.dir)
        bindir = self.dir / "bin"
        bindir.mkdir()
        os.symlink(_shim_binary(), bindir / "containerd-shim-boxlite-v2")
        self.sock = str(self.dir / "c.sock")
        (self.dir / "config.toml").write_text(
            'version = 2\n'
            f'root = "{self.dir}/root"\n'
            f'state = "{self.dir}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.sock}"\n')
        self.env = dict(os.environ)
        self.env.update({"PATH": f"{bindir}:{os.environ['PATH']}", "BOXLITE_HOME": str(self.home),
                         "BOXLITE_CLI": cli_binary})
        self.env.update(extra_env or {})
        self.cli_binary = cli_binary
        self.log = open(self.dir / "containerd.log", "wb")
        self.proc = subprocess.Popen(["containerd", "--config", str(self.dir / "config.toml")],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        if not wait_for(lambda: self.ctr("version").returncode == 0, timeout=30, interval=0.1):
            raise RuntimeError("containerd did not start: " + self.logtail())
        tar = self.dir / "image.tar"
        docker_save_tar(layout, tar, IMAGE)
        self.ctr("image", "import", str(tar), check=True, timeout=120)

    def logtail(self):
        return (self.dir / "containerd.log").read_text(errors="replace")[-3000:]

    def argv(self, *args):
        """`ctr ARGS` against this containerd. `run` and `task exec` keep their stdio FIFOs
        (ctr leaves those of a detached task behind), and runc its state, in the temp root."""
        args = list(args)
        if args[:1] == ["run"]:
            args[1:1] = ["--fifo-dir", str(self.dir / "fifo")]
            if RUNC in args:  # runc's state too (else /run/containerd/runc/NS).
                args[1:1] = ["--runc-root", str(self.dir / "runc")]
        elif args[:2] == ["task", "exec"]:
            args[2:2] = ["--fifo-dir", str(self.dir / "fifo")]
        return ["ctr", "-a", self.sock, "-n", NS, *args]

    def ctr(self, *args, check=False, timeout=180, **kwargs):
        p = subprocess.run(self.argv(*args), capture_output=True,
                           timeout=timeout, env=self.env, **kwargs)
        if check and p.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} exited {p.returncode}: "
                                 f"{p.stderr.decode(errors='replace')}")
        return p

    def ctr_popen(self, *args, **kwargs):
        return subprocess.Popen(self.argv(*args), env=self.env, **kwargs)

    def boxlite(self, *args):
        return subprocess.run([self.cli_binary, *args], capture_output=True, env=self.env,
                              timeout=60)

    def task_status(self, task):
        out = self.ctr("task", "ls").stdout.decode()
        for line in out.splitlines()[1:]:
            f = line.split()
            if f and f[0] == task:
                return f[2]
        return None

    def remove(self, task):
        """Kills, deletes and removes task `task` if it is there."""
        if self.task_status(task) == "RUNNING":
            self.ctr("task", "kill", "-s", "KILL", task)
            wait_for(lambda: self.task_status(task) != "RUNNING", timeout=60, interval=0.1)
        self.ctr("task", "delete", task)
        self.ctr("container", "rm", task)

    def close(self):
        for line in self.ctr("container", "ls", "-q").stdout.decode().split():
            self.remove(line)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        subprocess.run(["umount", "-R", "-l", str(self.dir / "root")], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
