# containerd-shim-boxlite-v2 under Debian's containerd (docs/kubernetes.md): the test starts
# its own containerd (temp root, state and socket; ctr's default snapshotter, overlayfs), imports a
# docker-save tar it builds from the busybox test image, and drives tasks with `ctr`. Every
# case runs with runc as the control and with BoxLite (`--runtime io.containerd.boxlite.v2`):
# output and exit codes, env, cwd, a bind mount, exec (stdin, user, exit code), signals, a
# tty. BoxLite-only cases check what only a VM has (vCPUs and memory from the limits) and
# that kill/delete and a dead shim leave no VM, process, box, image, mount or file behind.
import hashlib
import os
import re
import shlex
import signal
import subprocess

import pytest

from conftest import SESSION_MARK, add_session_root, qemu_processes, wait_for
from harness.containerd_env import BOXLITE, IMAGE, NS, RUNC, containerd_for_tests
from harness.leaks import holds_file_under

# The main command of a task that ends on SIGTERM with 7 (its trap) and says when it is ready.
TRAP_TERM = "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done"


@pytest.fixture(scope="module")
def containerd(cli_binary, test_images):
    c = containerd_for_tests(cli_binary, test_images.layout("busybox"), add_session_root,
                             SESSION_MARK)
    yield c
    c.close()


RUNTIMES = [pytest.param(RUNC, id="runc"), pytest.param(BOXLITE, id="boxlite")]


def ready(containerd, task):
    """Returns once the task's box runs (an exec waits for its boot)."""
    p = containerd.ctr("task", "exec", "--exec-id", "ready", task, "true", timeout=300)
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module", params=RUNTIMES)
def running_task(request, containerd):
    """One running task per runtime, shared by the exec cases."""
    runtime = request.param
    name = "shared-" + runtime.split(".")[2]
    p = containerd.ctr("run", "-d", "--runtime", runtime, IMAGE, name, "sleep", "1000", timeout=300)
    assert p.returncode == 0, p.stderr.decode(errors="replace") + containerd.logtail()
    ready(containerd, name)
    yield runtime, name
    containerd.remove(name)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_prints_output_and_exit_code(containerd, runtime, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello").write_text("from-the-host\n")
    extra = []
    if runtime == BOXLITE:
        # The limits become the VM's size, seen from inside it.
        extra = ["--cpus", "2", "--memory-limit", str(384 << 20)]
    # containerd's default spec sets RLIMIT_NOFILE to 1024, soft and hard (a box's own
    # default hard limit is 4096).
    script = ("echo out:$FOO; pwd; cat /data/hello; echo nofile:$(ulimit -Sn):$(ulimit -Hn); "
              "echo to-stderr >&2; echo nproc:$(nproc); grep MemTotal /proc/meminfo; exit 3")
    p = containerd.ctr("run", "--rm", "--runtime", runtime, "--env", "FOO=bar baz",
                       "--cwd", "/tmp", "--mount",
                       f"type=bind,src={data},dst=/data,options=rbind:ro", *extra,
                       IMAGE, "run-" + runtime.split(".")[2], "sh", "-c", script, timeout=300)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 3, (p.returncode, out, p.stderr, containerd.logtail())
    assert out.startswith("out:bar baz\n/tmp\nfrom-the-host\nnofile:1024:1024\n"), out
    assert "to-stderr" in p.stderr.decode(errors="replace")
    assert "to-stderr" not in out
    if runtime == BOXLITE:
        assert "nproc:2\n" in out, out
        mem_kib = int(re.search(r"MemTotal:\s+(\d+) kB", out).group(1))
        assert 256 * 1024 < mem_kib <= 384 * 1024, out


def test_exec_in_running_task(containerd, running_task):
    _, task = running_task
    p = containerd.ctr("task", "exec", "--exec-id", "e1", "--cwd", "/etc", task,
                       "sh", "-c", "pwd; echo err >&2; exit 5")
    assert p.returncode == 5, (p.stdout, p.stderr)
    assert p.stdout.decode() == "/etc\n"
    assert p.stderr.decode().endswith("err\n")
    # stdin reaches the process and its end is an end of file.
    p = containerd.ctr("task", "exec", "--exec-id", "e2", task, "sh", "-c", "cat; echo done",
                       input=b"line1\nline2\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == "line1\nline2\ndone\n"
    p = containerd.ctr("task", "exec", "--exec-id", "e3", "--user", "1000", task, "id", "-u")
    assert (p.returncode, p.stdout.decode()) == (0, "1000\n"), p.stderr
    # The exec ended; the task still runs.
    assert containerd.task_status(task) == "RUNNING"


def test_exec_with_tty(containerd, running_task):
    _, task = running_task
    ctr = shlex.join(containerd.argv("task", "exec", "-t", "--exec-id", "t1", task, "sh", "-c",
                                     "tty; exit 6"))
    p = subprocess.run(["script", "-qec", ctr, "/dev/null"], capture_output=True,
                       env=containerd.env, timeout=120)
    assert p.returncode == 6, (p.stdout, p.stderr)
    assert b"/dev/pts/" in p.stdout


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_with_tty(containerd, runtime):
    """A terminal, sized as ctr's own (ResizePty carries the size into the box)."""
    name = "tty-" + runtime.split(".")[2]
    # ctr resizes once the task started: the command waits for the size to arrive.
    ctr = shlex.join(containerd.argv(
        "run", "--rm", "-t", "--runtime", runtime, IMAGE, name, "sh", "-c",
        'tty; i=0; while [ "$(stty size)" != "31 101" ] && [ $i -lt 150 ]; do sleep 0.2; '
        'i=$((i+1)); done; stty size; exit 4'))
    p = subprocess.run(["script", "-qec", "stty rows 31 cols 101; " + ctr, "/dev/null"],
                       capture_output=True, env=containerd.env, timeout=300)
    assert p.returncode == 4, (p.stdout, p.stderr, containerd.logtail())
    assert b"/dev/pts/" in p.stdout
    assert b"31 101" in p.stdout, p.stdout


def test_metrics_and_pids_of_a_running_task(containerd, running_task):
    runtime, task = running_task
    p = containerd.ctr("task", "ps", task)
    assert p.returncode == 0, p.stderr
    pids = [int(line.split()[0]) for line in p.stdout.decode().splitlines()[1:]]
    assert pids and all(os.path.exists(f"/proc/{pid}") for pid in pids), p.stdout
    p = containerd.ctr("task", "metrics", task)
    assert p.returncode == 0, p.stderr
    if runtime == BOXLITE:
        # The box's memory in use, as cgroup v1 metrics.
        m = re.search(rb"memory\.usage_in_bytes\s+(\d+)", p.stdout)
        assert m and int(m.group(1)) > 1 << 20, p.stdout


def _run_until_ready(containerd, runtime, name):
    proc = containerd.ctr_popen("run", "--rm", "--runtime", runtime, IMAGE, name, "sh", "-c",
                                TRAP_TERM, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
    line = proc.stdout.readline()
    assert line == b"ready\n", (line, proc.stderr.read() if proc.poll() is not None else b"")
    return proc


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_signals_reach_the_main_command(containerd, runtime):
    short = runtime.split(".")[2]
    # SIGTERM reaches the command: its trap runs and sets the exit code.
    proc = _run_until_ready(containerd, runtime, "term-" + short)
    assert containerd.ctr("task", "kill", "term-" + short).returncode == 0
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 7, (out, err)
    assert out == b"got-term\n"
    # SIGKILL ends it: 128+9.
    proc = _run_until_ready(containerd, runtime, "kill-" + short)
    assert containerd.ctr("task", "kill", "-s", "KILL", "kill-" + short).returncode == 0
    proc.communicate(timeout=120)
    assert proc.returncode == 137


def _snapshot(containerd):
    """The VMs (of this containerd's BoxLite home) and the images there are now."""
    mine = {os.path.realpath(str(containerd.dir)) + "/"}
    vms = {p for p in qemu_processes() if holds_file_under(p, mine)}
    images = set(containerd.boxlite("images", "-q").stdout.decode().split())
    return vms, images


def _leftovers(containerd, task, before):
    """What task `task` left since `before` (_snapshot): VMs, its box, images, its bundle
    directory, mounts under it."""
    out = {}
    vms, images = _snapshot(containerd)
    if vms - before[0]:
        out["vms"] = vms - before[0]
    if images - before[1]:
        out["images"] = images - before[1]
    if containerd.boxlite("inspect", f"{NS}-{task}").returncode == 0:
        out["box"] = f"{NS}-{task}"
    bundle = containerd.dir / "state" / "io.containerd.runtime.v2.task" / NS / task
    if bundle.exists():
        out["bundle"] = sorted(os.listdir(bundle))
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if str(bundle) in line]
    if mounts:
        out["mounts"] = mounts
    return out


def _shim_pid(task):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"containerd-shim-boxlite-v2") and task.encode() in argv:
            return int(pid)
    return None


@pytest.mark.parametrize("booted", [True, False], ids=["running", "booting"])
def test_kill_and_delete_leave_nothing(containerd, booted):
    """SIGKILL of a running task, or of one whose box still boots (it goes once it is
    registered), then delete: no VM, box, image, bundle or mount is left."""
    task = "gone" if booted else "early"
    before = _snapshot(containerd)
    p = containerd.ctr("run", "-d", "--runtime", BOXLITE, IMAGE, task, "sleep", "1000",
                       timeout=300)
    assert p.returncode == 0, p.stderr
    if booted:
        ready(containerd, task)
        assert containerd.boxlite("inspect", f"{NS}-{task}").returncode == 0, "no box"
    assert containerd.ctr("task", "kill", "-s", "KILL", task, timeout=300).returncode == 0
    assert wait_for(lambda: containerd.task_status(task) == "STOPPED", timeout=120)
    assert containerd.ctr("task", "delete", task).returncode == 0
    assert containerd.ctr("container", "rm", task).returncode == 0
    assert wait_for(lambda: not _leftovers(containerd, task, before), timeout=30), \
        _leftovers(containerd, task, before)


def test_pod_sandbox_container_runs_no_box(containerd):
    """A pod's sandbox ("pause") container holds the pod's place: a host process, no VM.
    The pod's publish annotation (here not even a port) is for its app containers."""
    task = "pause"
    before = _snapshot(containerd)
    p = containerd.ctr("run", "-d", "--runtime", BOXLITE,
                       "--annotation", "io.kubernetes.cri.container-type=sandbox",
                       "--annotation", "boxlite.dev/publish=not-a-port",
                       IMAGE, task, "/pause", timeout=120)
    assert p.returncode == 0, p.stderr
    assert containerd.task_status(task) == "RUNNING"
    p = containerd.ctr("task", "exec", "--exec-id", "x", task, "true")
    assert p.returncode != 0 and b"sandbox container" in p.stderr, p.stderr
    assert _snapshot(containerd) == before  # No VM, no image.
    assert containerd.boxlite("inspect", f"{NS}-{task}").returncode != 0
    assert containerd.ctr("task", "kill", task).returncode == 0
    assert wait_for(lambda: containerd.task_status(task) == "STOPPED", timeout=30)
    assert containerd.ctr("task", "delete", task).returncode == 0
    assert containerd.ctr("container", "rm", task).returncode == 0
    assert not _leftovers(containerd, task, before)


def test_dead_shim_is_cleaned_up(containerd):
    task = "orphan"
    before = _snapshot(containerd)
    p = containerd.ctr("run", "-d", "--runtime", BOXLITE, IMAGE, task, "sleep", "1000", timeout=300)
    assert p.returncode == 0, p.stderr
    ready(containerd, task)
    pid = _shim_pid(task)
    assert pid, "no shim process for the task"
    # The shim's socket: containerd names it by its own address, the namespace and the id.
    socket = "/run/containerd/s/" + hashlib.sha256(
        os.path.join(containerd.sock, NS, task).encode()).hexdigest()
    assert os.path.exists(socket)
    os.kill(pid, signal.SIGKILL)
    # containerd sees the shim go and runs `containerd-shim-boxlite-v2 delete`, which
    # removes the box: its VM ends.
    assert wait_for(lambda: containerd.task_status(task) != "RUNNING", timeout=60)
    containerd.ctr("task", "delete", task)
    containerd.ctr("container", "rm", task)
    assert wait_for(lambda: not _leftovers(containerd, task, before), timeout=30), \
        _leftovers(containerd, task, before)
    assert not os.path.exists(socket)  # Nor the dead shim's socket.


def test_cached_rootfs_images_are_kept_and_shared(cli_binary, test_images):
    """BOXLITE_SHIM_CACHE_IMAGES=1: the rootfs image a task imported stays after its delete,
    named by its content, and the next task of the same image uses it (no second image)."""
    c = containerd_for_tests(cli_binary, test_images.layout("busybox"), add_session_root,
                             SESSION_MARK, {"BOXLITE_SHIM_CACHE_IMAGES": "1"})
    try:
        seen = []
        for i in range(2):
            p = c.ctr("run", "--rm", "--runtime", BOXLITE, IMAGE, f"cached{i}", "sh", "-c",
                      f"echo run{i}", timeout=300)
            assert (p.returncode, p.stdout) == (0, f"run{i}\n".encode()), p.stderr
            listing = c.boxlite("images").stdout.decode()
            seen.append(sorted(re.findall(r"boxlite-shim/rootfs-[0-9a-f]+", listing)))
            # The box itself is gone.
            assert c.boxlite("inspect", f"{NS}-cached{i}").returncode != 0
        assert len(seen[0]) == 1 and seen[1] == seen[0], seen
    finally:
        c.close()


@pytest.fixture
def netns():
    """A network namespace with only its loopback up (as a pod's, without the CNI's NIC)."""
    name = f"bl-shim-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


HTTPD = "mkdir -p /www && echo served-$0 > /www/index.html && exec httpd -f -p 8888 -h /www"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_task_joins_the_pods_network_namespace(containerd, runtime, netns):
    """config.json's network namespace (a pod's): the server in the task is reached at
    port 8888 of that namespace (BoxLite: the box joins it and publishes the port named
    by the boxlite.dev/publish annotation)."""
    task = "net-" + runtime.split(".")[2]
    p = containerd.ctr("run", "-d", "--runtime", runtime, "--with-ns",
                       f"network:/run/netns/{netns}", "--annotation", "boxlite.dev/publish=8888",
                       IMAGE, task, "sh", "-c", HTTPD, task, timeout=300)
    assert p.returncode == 0, p.stderr
    try:
        fetch = lambda: subprocess.run(
            ["ip", "netns", "exec", netns, "curl", "-s", "--max-time", "2",
             "http://127.0.0.1:8888/"], capture_output=True).stdout
        body = wait_for(lambda: fetch() == f"served-{task}\n".encode(), timeout=60, interval=0.2)
        assert body, fetch()
    finally:
        containerd.remove(task)


@pytest.mark.parametrize("annotations,key", [
    (["boxlite.dev/publish=http"], b"boxlite.dev/publish:"),
    # In a pod of several containers, the container's own key wins.
    (["io.kubernetes.cri.container-name=app", "boxlite.dev/publish=8080",
      "boxlite.dev/publish.app=80,x"], b"boxlite.dev/publish.app:"),
], ids=["pod", "container"])
def test_bad_publish_annotation_is_refused(containerd, annotations, key):
    before = _snapshot(containerd)
    flags = [a for kv in annotations for a in ("--annotation", kv)]
    p = containerd.ctr("run", "--rm", "--runtime", BOXLITE, *flags, IMAGE, "badport", "true",
                       timeout=120)
    assert p.returncode != 0
    assert key in p.stderr and b"not a port" in p.stderr, p.stderr
    containerd.ctr("container", "rm", "badport")
    assert not _leftovers(containerd, "badport", before)
