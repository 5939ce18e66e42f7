# One box per pod (docs/kubernetes.md, "Pods"): what the CRI sends is simulated with `ctr
# run --annotation`: a sandbox task (container-type=sandbox, sandbox-id=POD) and containers
# of that pod (container-type=container, same sandbox-id). containerd starts one shim for
# the pod; the sandbox boots the pod's box and each container runs in it, chrooted in its
# own copy of its image. The cases share one pod (module-scoped) and run in file order:
# the last ones kill a container, then remove the pod.
import hashlib
import io
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tarfile

import pytest

from conftest import SESSION_MARK, add_session_root, qemu_processes, wait_for
from harness.containerd_env import BOXLITE, IMAGE, NS, containerd_for_tests, docker_save_tar
from harness.leaks import holds_file_under

POD = "pod1"
A = "pod1-a"  # busybox: serves HTTP on 127.0.0.1:8080.
B = "pod1-b"  # The "data" image (busybox and a layer with /data): a long sleep.
DATA_IMAGE = "docker.io/library/shimtest-data:latest"
PORT = 8080


def _annotations(kind):
    return ["--annotation", f"io.kubernetes.cri.container-type={kind}",
            "--annotation", f"io.kubernetes.cri.sandbox-id={POD}"]


@pytest.fixture(scope="module")
def containerd(cli_binary, test_images):
    c = containerd_for_tests(cli_binary, test_images.layout("busybox"), add_session_root,
                             SESSION_MARK)
    try:
        layout = c.dir / "data-layout"
        _data_image(test_images.layout("busybox"), layout)
        tar = c.dir / "data.tar"
        docker_save_tar(str(layout), tar, DATA_IMAGE)
        c.ctr("image", "import", str(tar), check=True, timeout=120)
    except BaseException:
        c.close()
        raise
    yield c
    c.close()


def _data_image(busybox_layout, dest):
    """An OCI layout: the busybox image and a layer with /data: a file, a hard link to it,
    a character device and a setuid file (what the copy into the pod's box must keep)."""
    shutil.copytree(busybox_layout, dest)
    blobs = os.path.join(dest, "blobs", "sha256")

    def blob(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return "sha256:" + digest, len(data)

    def read(digest):
        with open(os.path.join(blobs, digest.split(":", 1)[1]), "rb") as f:
            return f.read()

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name, kind, data=b"", mode=0o644, **attrs):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.size = kind, mode, len(data)
            for k, v in attrs.items():
                setattr(info, k, v)
            tar.addfile(info, io.BytesIO(data) if data else None)
        add("data", tarfile.DIRTYPE, mode=0o755)
        add("data/keep.txt", tarfile.REGTYPE, b"keep\n")
        add("data/hardlink", tarfile.LNKTYPE, linkname="data/keep.txt")
        add("data/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)
        add("data/setuid", tarfile.REGTYPE, b"#!/bin/sh\n", mode=0o4755)
    layer, layer_size = blob(buf.getvalue())
    with open(os.path.join(dest, "index.json")) as f:
        index = json.load(f)
    manifest = json.loads(read(index["manifests"][0]["digest"]))
    config = json.loads(read(manifest["config"]["digest"]))
    config["rootfs"]["diff_ids"].append(layer)
    config_digest, config_size = blob(json.dumps(config).encode())
    manifest["config"].update(digest=config_digest, size=config_size)
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                               "digest": layer, "size": layer_size})
    digest, size = blob(json.dumps(manifest).encode())
    index["manifests"][0].update(digest=digest, size=size)
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump(index, f)


def _vms(containerd):
    mine = {os.path.realpath(str(containerd.dir)) + "/"}
    return {p for p in qemu_processes() if holds_file_under(p, mine)}


def _exec(containerd, task, script, exec_id, *flags, **kwargs):
    return containerd.ctr("task", "exec", "--exec-id", exec_id, *flags, task, "sh", "-c", script,
                          timeout=120, **kwargs)


@pytest.fixture(scope="module")
def pod(containerd):
    """The pod: its sandbox task, container A serving on 127.0.0.1:PORT, container B."""
    p = containerd.ctr("run", "-d", "--runtime", BOXLITE, *_annotations("sandbox"),
                       "--annotation", "boxlite.dev/disk-size=3G",
                       "--annotation", "boxlite.dev/max-clients=12", IMAGE, POD, "/pause",
                       timeout=300)
    assert p.returncode == 0, p.stderr.decode(errors="replace") + containerd.logtail()
    serve = f"echo only-in-a > /only-a; exec httpd -f -p 127.0.0.1:{PORT} -h /"
    p = containerd.ctr("run", "-d", "--runtime", BOXLITE, *_annotations("container"),
                       IMAGE, A, "sh", "-c", serve, timeout=300)
    assert p.returncode == 0, p.stderr.decode(errors="replace") + containerd.logtail()
    p = containerd.ctr("run", "-d", "--runtime", BOXLITE, *_annotations("container"),
                       "--env", "WHO=container-b", "--cwd", "/data",
                       DATA_IMAGE, B, "sleep", "1000", timeout=300)
    assert p.returncode == 0, p.stderr.decode(errors="replace") + containerd.logtail()
    fetch = f"wget -qO- http://127.0.0.1:{PORT}/only-a"
    last = []
    assert wait_for(lambda: last.append(_exec(containerd, A, fetch, "up")) or
                    last[-1].returncode == 0, timeout=60), (last[-1], containerd.logtail())
    yield
    for task in (A, B, POD):
        containerd.remove(task)


def test_one_vm_and_one_kernel_for_the_pod(containerd, pod):
    assert len(_vms(containerd)) == 1, _vms(containerd)
    boot = "cat /proc/sys/kernel/random/boot_id"
    a = _exec(containerd, A, boot, "boot-a")
    b = _exec(containerd, B, boot, "boot-b")
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    assert a.stdout == b.stdout and len(a.stdout.strip()) == 36, (a.stdout, b.stdout)
    # The pod's disk (where the containers' roots live) has the annotation's size.
    p = _exec(containerd, POD, "df -k /var/lib/boxlite | tail -1", "disk")
    total_kib = int(p.stdout.split()[1])
    assert 2.5 * (1 << 20) < total_kib <= 3 * (1 << 20), p.stdout
    # A container's metrics are its pod box's (CPU time and memory in use).
    p = containerd.ctr("task", "metrics", B)
    assert p.returncode == 0, p.stderr
    assert re.search(rb"memory\.usage_in_bytes\s+[1-9]", p.stdout), p.stdout


def test_containers_share_the_pods_network_and_shm(containerd, pod):
    # B reaches what A serves on the pod's localhost; A's file was written in A's root.
    p = _exec(containerd, B, f"wget -qO- http://127.0.0.1:{PORT}/only-a", "net")
    assert (p.returncode, p.stdout) == (0, b"only-in-a\n"), p.stderr
    p = _exec(containerd, A, "echo shared > /dev/shm/pod-shm", "shm-a")
    assert p.returncode == 0, p.stderr
    p = _exec(containerd, B, "cat /dev/shm/pod-shm; rm /dev/shm/pod-shm", "shm-b")
    assert (p.returncode, p.stdout) == (0, b"shared\n"), p.stderr


def test_containers_have_their_own_root_filesystems(containerd, pod):
    p = _exec(containerd, A, "test -e /only-a && ! test -e /data && echo a-ok", "root-a")
    assert (p.returncode, p.stdout) == (0, b"a-ok\n"), (p.stdout, p.stderr)
    # B's root is its own image, copied whole: content, hard links, a device, setuid.
    script = ("test ! -e /only-a; cat /data/keep.txt; "
              "[ $(stat -c %i /data/keep.txt) = $(stat -c %i /data/hardlink) ] && echo linked; "
              "stat -c '%F %t,%T' /data/null; stat -c %A /data/setuid; ls /proc/self/fd >/dev/null "
              "&& echo proc; grep -q ' /sys sysfs ro' /proc/mounts && echo sys-ro")
    p = _exec(containerd, B, script, "root-b")
    out = p.stdout.decode()
    assert p.returncode == 0, (out, p.stderr)
    assert out.startswith("keep\nlinked\ncharacter special file 1,3\n"), out
    assert re.search(r"^-..s", out.splitlines()[3]), out
    assert out.endswith("proc\nsys-ro\n"), out


def test_a_container_root_is_resolved_inside_the_box(containerd, pod):
    """`boxlite exec --rootfs-dir` (what the shim runs): the box's root itself, also reached
    through a symlink, is refused; `..` and absolute links resolve inside the box."""
    box = f"{NS}-{POD}"
    p = containerd.boxlite("exec", box, "--", "ln", "-sfn", "/", "/var/lib/to-top")
    assert p.returncode == 0, p.stderr
    for root in ("/", "/var/lib/to-top", "/var/lib/to-top/../.."):
        p = containerd.boxlite("exec", "--rootfs-dir", root, box, "--", "true")
        assert p.returncode != 0 and b"cannot be the box's root" in p.stderr, (root, p.stderr)
    p = containerd.boxlite("exec", "--rootfs-dir", "/var/lib/missing", box, "--", "true")
    assert p.returncode != 0 and b"/var/lib/missing" in p.stderr, p.stderr
    p = containerd.boxlite("exec", "--rootfs-dir", f"/var/lib/to-top/../../../../var/lib/boxlite/"
                           f"containers/{B}/rootfs", box, "--", "cat", "/data/keep.txt")
    assert (p.returncode, p.stdout) == (0, b"keep\n"), p.stderr


def test_env_cwd_and_user_are_each_containers(containerd, pod):
    # B's main process got its env and cwd (ctr's exec inherits the container's process).
    p = _exec(containerd, B, 'echo "$WHO $(pwd) $(id -u)"', "env-b")
    assert (p.returncode, p.stdout) == (0, b"container-b /data 0\n"), p.stderr
    p = _exec(containerd, A, 'echo "${WHO:-none} $(pwd)"', "env-a")
    assert (p.returncode, p.stdout) == (0, b"none /\n"), p.stderr
    # The user is resolved in the container's own /etc/passwd: uid 65534 is "nobody" with
    # home /nonexistent there (the pod box's base image has no such user).
    p = _exec(containerd, B, 'echo "$(id -u):$(id -g) $HOME"', "user-b", "--user", "65534")
    assert (p.returncode, p.stdout) == (0, b"65534:65534 /nonexistent\n"), p.stderr


def test_exec_with_a_terminal_in_a_container(containerd, pod):
    """`ctr task exec -t` into B: a terminal of the pod's /dev/pts, in B's root."""
    ctr = shlex.join(containerd.argv("task", "exec", "-t", "--exec-id", "tty-b", B, "sh", "-c",
                                     "tty; test -f /data/keep.txt && echo in-b; exit 6"))
    p = subprocess.run(["script", "-qec", ctr, "/dev/null"], capture_output=True,
                       env=containerd.env, timeout=120)
    assert p.returncode == 6, (p.stdout, p.stderr)
    assert b"/dev/pts/" in p.stdout and b"in-b" in p.stdout, p.stdout


def test_a_container_runs_to_its_exit_code(containerd, pod):
    """A third container in the running pod: its output and exit code reach ctr; its root
    is removed from the pod's box when it is deleted."""
    # Two in a row: the second joins the same pod after the first was deleted.
    for name in ("pod1-c", "pod1-d"):
        p = containerd.ctr("run", "--rm", "--runtime", BOXLITE, *_annotations("container"),
                           "--env", "X=1", "--cwd", "/tmp", IMAGE, name, "sh", "-c",
                           'echo "c:$X:$(pwd)"; ls /only-a 2>&1 | grep -c "No such"; exit 3',
                           timeout=300)
        assert p.returncode == 3, (name, p.stdout, p.stderr, containerd.logtail())
        assert p.stdout == b"c:1:/tmp\n1\n", (name, p.stdout)
    assert len(_pod_shims(containerd)) == 1, _pod_shims(containerd)
    p = _exec(containerd, POD, "ls /var/lib/boxlite/containers", "roots")
    assert (p.returncode, sorted(p.stdout.decode().split())) == (0, [A, B]), (p.stdout, p.stderr)
    assert len(_vms(containerd)) == 1


def test_a_pod_runs_more_processes_than_four_at_once(containerd, pod):
    """Each running process of a pod holds one client of the pod's box (its `boxlite
    exec`): with the keeper, A's and B's main processes and five execs in B, eight run at
    once (a box used to serve four) in the pod's box of 12 (boxlite.dev/max-clients), and
    more commands still find a client."""
    ids = [f"many-{i}" for i in range(5)]
    try:
        for exec_id in ids:
            p = containerd.ctr("task", "exec", "--detach", "--exec-id", exec_id, B, "sleep", "2000",
                               timeout=120)
            assert p.returncode == 0, (exec_id, p.stderr)
        count = "ps -o args | grep -c '^sleep 2000'"
        last = []
        assert wait_for(lambda: last.append(_exec(containerd, B, count, "count-many")) or
                        last[-1].stdout == b"5\n", timeout=60), (last[-1].stdout, last[-1].stderr)
        # A still answers on the pod's network while all of them run.
        p = _exec(containerd, A, f"wget -qO- http://127.0.0.1:{PORT}/only-a", "net-many")
        assert (p.returncode, p.stdout) == (0, b"only-in-a\n"), p.stderr
    finally:
        for exec_id in ids:
            containerd.ctr("task", "kill", "-s", "KILL", "--exec-id", exec_id, B)


def test_a_containers_own_limits_apply_to_its_processes(containerd, pod):
    """A pod container's linux.resources hold in a cgroup of its own in the pod's box,
    which its main process and its execs join: its memory.max and CPU quota are the
    container's, an allocation over its memory limit is OOM-killed there while the other
    containers live; its rlimits are its own (the CLI the shim runs, with --ulimit)."""
    lim = "pod1-lim"
    cg = f"/sys/fs/cgroup/box/c-{lim}"
    try:
        p = containerd.ctr("run", "-d", "--runtime", BOXLITE, *_annotations("container"),
                           "--memory-limit", str(64 << 20), "--cpu-quota", "50000",
                           "--cpu-period", "100000", IMAGE, lim, "sleep", "1000", timeout=300)
        assert p.returncode == 0, p.stderr.decode(errors="replace") + containerd.logtail()
        # An exec joins the container's cgroup; its nofile is the container's rlimit (ctr's
        # default spec: 1024).
        p = _exec(containerd, lim, "cat /proc/self/cgroup; ulimit -n", "cg")
        assert p.returncode == 0, p.stderr
        assert p.stdout == f"0::/box/c-{lim}\n1024\n".encode(), p.stdout
        # The CPU quota is the cgroup's cpu.max: half a CPU.
        p = _exec(containerd, POD, f"cat {cg}/memory.max {cg}/cpu.max; "
                  f"grep -c . {cg}/cgroup.procs", "cg-files")
        assert p.returncode == 0, p.stderr
        lines = p.stdout.decode().split("\n")
        assert lines[0] == str(64 << 20) and lines[1] == "50000 100000", p.stdout
        assert int(lines[2]) >= 1, p.stdout  # The main process (sleep) is there.
        # A cap, not a share: a busy loop in the container is throttled (counted by the
        # kernel in cpu.stat), although nothing else in the box wants the CPU.
        p = _exec(containerd, lim, "timeout 1 sh -c 'while :; do :; done'", "busy")
        p = _exec(containerd, POD, f"grep nr_throttled {cg}/cpu.stat", "throttled")
        assert re.search(rb"nr_throttled [1-9]", p.stdout), p.stdout
        # Over the limit: the allocation is OOM-killed in the container, nothing else.
        p = _exec(containerd, lim, "dd if=/dev/zero of=/dev/null bs=100M count=1", "oom")
        assert p.returncode == 137, (p.returncode, p.stderr)
        p = _exec(containerd, POD, f"grep oom_kill {cg}/memory.events", "oom-events")
        assert re.search(rb"oom_kill [1-9]", p.stdout), p.stdout
        assert containerd.task_status(lim) == "RUNNING"
        assert containerd.task_status(B) == "RUNNING"
        p = _exec(containerd, B, "echo alive", "alive")
        assert (p.returncode, p.stdout) == (0, b"alive\n"), p.stderr
        # The flags the shim passes for a container's own rlimits and cgroup, directly.
        box = f"{NS}-{POD}"
        p = containerd.boxlite("exec", "--rootfs-dir", f"/var/lib/boxlite/containers/{B}/rootfs",
                               "--ulimit", "nofile=321", "--cgroup-name", "direct",
                               "--pids-limit", "7", box, "--", "sh", "-c",
                               "ulimit -n; cat /proc/self/cgroup")
        assert (p.returncode, p.stdout) == (0, b"321\n0::/box/c-direct\n"), p.stderr
        p = containerd.boxlite("exec", box, "--", "cat", "/sys/fs/cgroup/box/c-direct/pids.max")
        assert (p.returncode, p.stdout) == (0, b"7\n"), p.stderr
        # A name that is not one safe path component is refused before anything is made.
        p = containerd.boxlite("exec", "--cgroup-name", "../escape", box, "--", "true")
        assert p.returncode != 0 and b"cgroup name must be" in p.stderr, p.stderr
    finally:
        containerd.remove(lim)


def test_kill_of_one_container_leaves_the_other_running(containerd, pod):
    p = containerd.ctr("task", "kill", "-s", "KILL", A)
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: containerd.task_status(A) == "STOPPED", timeout=60)
    assert containerd.task_status(B) == "RUNNING"
    # A's server is gone from the pod's box; B still runs and reaches the pod's network.
    p = _exec(containerd, B, f"! wget -qO- http://127.0.0.1:{PORT}/ && ps -o args | grep -c '^sleep 1000'",
              "after-kill")
    assert (p.returncode, p.stdout) == (0, b"1\n"), (p.stdout, p.stderr)
    assert containerd.ctr("task", "delete", A).returncode == 0
    assert containerd.ctr("container", "rm", A).returncode == 0
    p = _exec(containerd, POD, "ls /var/lib/boxlite/containers", "roots-after")
    assert (p.returncode, p.stdout) == (0, f"{B}\n".encode()), (p.stdout, p.stderr)


def _pod_mounts(containerd, pod=POD):
    """The pod's volume directory on the host (shim/volumes.go)."""
    return (containerd.dir / "state" / "io.containerd.runtime.v2.task" / NS /
            f".pod-mounts@{pod}")


def _mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f
                if (line.split()[4] + "/").startswith(str(path) + "/")]


def _mount(src, dst, mode):
    return ["--mount", f"type=bind,src={src},dst={dst},options=rbind:{mode}"]


def test_volumes_are_live_binds_of_the_host(containerd, pod, tmp_path):
    """(After A's removal: the pod's box serves 4 clients at once.) Kubernetes volumes:
    config.json's bind mounts reach a pod container live, both ways; one host directory in
    two containers is shared (emptyDir); ro refuses writes; a file bind (the
    service-account token) is seen rewritten; a destination that is a symlink out of the
    container's root stays inside it; delete leaves no host mount."""
    vol = tmp_path / "empty-dir"
    vol.mkdir()
    os.chmod(vol, 0o777)  # As kubelet makes an emptyDir: the VM's user writes there.
    token = tmp_path / "token"
    token.write_text("token-1\n")
    os.chmod(token, 0o644)
    (vol / "secret-0600").write_text("root only\n")
    os.chmod(vol / "secret-0600", 0o600)
    v1, v2 = "pod1-v1", "pod1-v2"
    try:
        p = containerd.ctr("run", "-d", "--runtime", BOXLITE, *_annotations("container"),
                           *_mount(vol, "/data", "rw"), *_mount(vol, "/ro", "ro"),
                           *_mount(token, "/var/run/secrets/token", "ro"),
                           IMAGE, v1, "sleep", "1000", timeout=300)
        assert p.returncode == 0, p.stderr.decode(errors="replace") + containerd.logtail()
        # The host writes after the container started.
        (vol / "from-host").write_text("host\n")
        p = _exec(containerd, v1, "cat /data/from-host /var/run/secrets/token", "v1-read")
        assert (p.returncode, p.stdout) == (0, b"host\ntoken-1\n"), p.stderr
        # A container's write reaches the host and the other container (emptyDir).
        p = _exec(containerd, v1, "echo v1 > /data/from-v1", "v1-write")
        assert p.returncode == 0, p.stderr
        assert (vol / "from-v1").read_text() == "v1\n"
        # Created by QEMU's user on the host (9p security_model=none, docs/kubernetes.md).
        assert (vol / "from-v1").stat().st_uid == pwd.getpwnam("boxlite").pw_uid
        # A second container with the same host directory (an emptyDir) reads and writes
        # the same files (run to its end: a box serves 4 clients at once, docs/kubernetes.md).
        p = containerd.ctr("run", "--rm", "--runtime", BOXLITE, *_annotations("container"),
                           *_mount(vol, "/shared", "rw"), IMAGE, v2, "sh", "-c",
                           "cat /shared/from-v1 /shared/from-host; echo v2 > /shared/from-v2",
                           timeout=300)
        assert (p.returncode, p.stdout) == (0, b"v1\nhost\n"), p.stderr + containerd.logtail().encode()
        p = _exec(containerd, v1, "cat /data/from-v2", "v1-read-v2")
        assert (p.returncode, p.stdout) == (0, b"v2\n"), p.stderr
        # ro: refused in the container, nothing reaches the host.
        p = _exec(containerd, v1, "echo no > /ro/refused", "v1-ro")
        assert p.returncode != 0 and b"Read-only" in p.stderr, (p.stdout, p.stderr)
        assert not (vol / "refused").exists()
        p = _exec(containerd, v1, "echo no > /var/run/secrets/token", "v1-ro-file")
        assert p.returncode != 0, p.stdout
        # A root-only file of the host is not readable through the VM's user.
        p = _exec(containerd, v1, "cat /data/secret-0600", "v1-0600")
        assert p.returncode != 0 and b"ermission denied" in p.stderr, (p.stdout, p.stderr)
        # The token rewritten in place by the host: the new content is read.
        token.write_text("token-2\n")
        p = _exec(containerd, v1, "cat /var/run/secrets/token", "v1-token")
        assert (p.returncode, p.stdout) == (0, b"token-2\n"), p.stderr
        # The agent binds inside the container's root only: a destination that is a link
        # out of it (through ..) resolves inside it (`boxlite exec --container-mount`,
        # what the shim passes).
        box = f"{NS}-{POD}"
        root = f"/var/lib/boxlite/containers/{v1}/rootfs"
        p = containerd.boxlite("exec", box, "--", "sh", "-c",
                               f"mkdir -p /inside {root}/inside && "
                               f"ln -s ../../../../../../../../inside {root}/escape")
        assert p.returncode == 0, p.stderr
        src = [n for n in os.listdir(_pod_mounts(containerd) / v1)
               if (_pod_mounts(containerd) / v1 / n / "from-v1").exists()][0]
        p = containerd.boxlite("exec", "--rootfs-dir", root, "--container-mount",
                               f"/var/lib/boxlite/pod-mounts/{v1}/{src}:/escape", box, "--",
                               "ls", "/inside")
        assert p.returncode == 0 and b"from-v1" in p.stdout, (p.stdout, p.stderr)
        p = containerd.boxlite("exec", box, "--", "ls", "-A", "/inside")
        assert (p.returncode, p.stdout) == (0, b""), (p.stdout, p.stderr)
        mounted = _mounts_under(_pod_mounts(containerd))
        assert len(mounted) == 4, mounted  # The directory's own bind and v1's three volumes.
    finally:
        for task in (v1, v2):
            containerd.remove(task)
    # Deleted: no volume mount and no mount point is left; the host's files are.
    assert _mounts_under(_pod_mounts(containerd)) == [str(_pod_mounts(containerd))]
    assert os.listdir(_pod_mounts(containerd)) == []
    assert sorted(os.listdir(vol)) == ["from-host", "from-v1", "from-v2", "secret-0600"]


@pytest.fixture(scope="module")
def decoy(tmp_path_factory):
    """A host directory standing for /etc: where the guest's planted links point."""
    d = tmp_path_factory.mktemp("decoy") / "etc"
    d.mkdir()
    (d / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return d


def _assert_decoy_intact(decoy):
    assert [p.name for p in decoy.iterdir()] == ["passwd"]
    assert (decoy / "passwd").read_text() == "root:x:0:0::/root:/bin/sh\n"
    st = decoy.stat()
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o755), st
    assert not _mounts_under(decoy)


def test_the_pods_box_cannot_change_its_volume_directory(containerd, pod, tmp_path, decoy):
    """THE ATTACK: root in the pod's box (outside the containers' roots) tries to replace
    a container's volume directory and its mount points with links to a host directory
    (the decoy, standing for /etc), to create files in the pod's volume directory and to
    chmod and chown it: the host refuses every step (the directory and what the shim made
    in it are root's, 0755: shim/volumes.go), the volumes still work, and deleting the
    container leaves the decoy intact and nothing in the directory."""
    vol = tmp_path / "empty-dir"
    vol.mkdir()
    os.chmod(vol, 0o777)
    ro = tmp_path / "config"
    ro.mkdir()
    (ro / "key").write_text("value\n")
    v3 = "pod1-v3"
    d = "/var/lib/boxlite/pod-mounts"
    c = f"{d}/{v3}"
    try:
        p = containerd.ctr("run", "-d", "--runtime", BOXLITE, *_annotations("container"),
                           *_mount(vol, "/data", "rw"), *_mount(ro, "/config", "ro"),
                           IMAGE, v3, "sleep", "1000", timeout=300)
        assert p.returncode == 0, p.stderr.decode(errors="replace") + containerd.logtail()
        host_dir = _pod_mounts(containerd)
        points = sorted(os.listdir(host_dir / v3))
        assert len(points) == 2, points
        box = f"{NS}-{POD}"
        # The box sees the structure as the host's root's.
        p = containerd.boxlite("exec", box, "--", "stat", "-c", "%u %a", d, c,
                               *[f"{c}/{n}" for n in points])
        assert p.returncode == 0, p.stderr
        assert p.stdout.decode().splitlines()[:2] == ["0 755", "0 755"], p.stdout
        attacks = [f"mv {c} {d}/moved", f"rmdir {c}/{points[0]}", f"mv {c}/{points[1]} {d}/x",
                   f"mv {c}/{points[0]} {c}/x", f"ln -s {decoy} {d}/pod1-v4",
                   f"ln -s {decoy} {c}/9", f"touch {d}/planted", f"mkdir {d}/planted-dir",
                   f"touch {c}/planted", f"chmod 777 {d}", f"chmod 777 {c}",
                   f"chown 1000 {d}", f"chown 1000 {c}", f"chmod 777 {c}/{points[1]}"]
        script = "; ".join(f"if {a} 2>/dev/null; then echo 'allowed: {a}'; fi" for a in attacks)
        p = containerd.boxlite("exec", box, "--", "sh", "-c", script)
        assert (p.returncode, p.stdout) == (0, b""), (p.stdout, p.stderr)
        assert sorted(os.listdir(host_dir)) == [v3] and sorted(os.listdir(host_dir / v3)) == points
        for path in (host_dir, host_dir / v3):
            st = os.lstat(path)
            assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o755), (path, st)
        # The volumes still work: rw written, ro refused.
        p = _exec(containerd, v3, "echo w > /data/w && cat /config/key && ! touch /config/no",
                  "v3-io")
        assert (p.returncode, p.stdout) == (0, b"value\n"), (p.stdout, p.stderr)
        assert (vol / "w").read_text() == "w\n" and sorted(os.listdir(ro)) == ["key"]
        _assert_decoy_intact(decoy)
    finally:
        containerd.remove(v3)
    _assert_decoy_intact(decoy)
    assert _mounts_under(_pod_mounts(containerd)) == [str(_pod_mounts(containerd))]
    assert os.listdir(_pod_mounts(containerd)) == []
    assert sorted(os.listdir(vol)) == ["w"] and sorted(os.listdir(ro)) == ["key"]


def test_delete_of_the_sandbox_leaves_nothing(containerd, pod, decoy):
    assert _vms(containerd)
    assert containerd.ctr("task", "kill", "-s", "KILL", POD).returncode == 0
    assert wait_for(lambda: containerd.task_status(POD) == "STOPPED", timeout=60)
    # The pod's box is gone, and B's processes with it.
    assert wait_for(lambda: containerd.task_status(B) == "STOPPED", timeout=60)
    for task in (B, POD):
        assert containerd.ctr("task", "delete", task).returncode == 0, task
        assert containerd.ctr("container", "rm", task).returncode == 0, task
    assert wait_for(lambda: not _vms(containerd), timeout=30), _vms(containerd)
    _assert_pod_left_nothing(containerd, POD)
    assert not os.path.lexists(_pod_mounts(containerd))
    _assert_decoy_intact(decoy)
    # No shim left serving the pod.
    shims = _pod_shims(containerd)
    assert wait_for(lambda: not [p for p in shims if os.path.exists(f"/proc/{p}")], timeout=30)


def _assert_pod_left_nothing(containerd, pod):
    """No box of the pod, no bundle directory and no mount under containerd's task state."""
    assert containerd.boxlite("inspect", f"{NS}-{pod}").returncode != 0
    state = containerd.dir / "state" / "io.containerd.runtime.v2.task" / NS
    assert wait_for(lambda: not state.exists() or not os.listdir(state), timeout=30), \
        os.listdir(state)
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if str(state) in line]


def _pod_shims(containerd):
    """The pids of the shims of this containerd."""
    return [int(pid) for pid in filter(str.isdigit, os.listdir("/proc"))
            if _cmdline(pid) == b"containerd-shim-boxlite-v2"
            and str(containerd.dir).encode() in _environ(pid)]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return os.path.basename(f.read().split(b"\0")[0])
    except OSError:
        return b""


def _environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


def test_dead_pod_shim_is_cleaned_up(containerd, tmp_path):
    """The pod's shim killed (SIGKILL): containerd runs `shim delete` for each task, which
    removes the pod's box (its VM ends), each container's rootfs mount and its volumes'
    binds (before containerd removes the bundle: the volume's files stay)."""
    pod, ctr = "pod2", "pod2-a"
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "kept").write_text("kept\n")
    ann = lambda kind: ["--annotation", f"io.kubernetes.cri.container-type={kind}",
                        "--annotation", f"io.kubernetes.cri.sandbox-id={pod}"]
    before = _vms(containerd)
    p = containerd.ctr("run", "-d", "--runtime", BOXLITE, *ann("sandbox"), IMAGE, pod, "/pause",
                       timeout=300)
    assert p.returncode == 0, p.stderr
    p = containerd.ctr("run", "-d", "--runtime", BOXLITE, *ann("container"),
                       *_mount(vol, "/data", "ro"), IMAGE, ctr, "sleep", "1000", timeout=300)
    assert p.returncode == 0, p.stderr
    vms = _vms(containerd) - before
    assert len(vms) == 1, vms
    assert len(_mounts_under(_pod_mounts(containerd, pod) / ctr)) == 1
    shims = _pod_shims(containerd)
    assert len(shims) == 1, shims  # One shim serves the pod.
    os.kill(shims[0], signal.SIGKILL)
    assert wait_for(lambda: not (_vms(containerd) & vms), timeout=60), vms
    for task in (ctr, pod):
        assert wait_for(lambda: containerd.task_status(task) != "RUNNING", timeout=60), task
        containerd.ctr("task", "delete", task)
        containerd.ctr("container", "rm", task)
    _assert_pod_left_nothing(containerd, pod)
    assert not _mounts_under(vol) and os.listdir(vol) == ["kept"]
