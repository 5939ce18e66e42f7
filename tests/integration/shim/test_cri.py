# BoxLite under containerd's CRI plugin, driven as a kubelet drives it (docs/kubernetes.md,
# "Tested under containerd's CRI"): the test starts Debian's containerd with its CRI plugin
# on a socket of its own, and calls the CRI's gRPC API (runtime.v1, the subset in
# cri/api.proto, compiled at test time) there: RunPodSandbox with the runtime handler
# "boxlite" (the RuntimeClass's handler), CreateContainer/StartContainer of two containers
# from two images, ExecSync, ContainerStatus, ListContainers, PodSandboxStatus,
# StopPodSandbox/RemovePodSandbox, and the streaming calls behind `kubectl exec -it`,
# `attach` and `port-forward` (Exec, Attach, PortForward: a WebSocket session on
# containerd's streaming server, as kubectl's). The shim thus gets what a kubelet's pod
# gives it: the CRI's annotations, bundles, the sandbox ("pause") container and the CRI's
# FIFOs and logs.
# Every case also runs with the handler "" (runc) as the control. containerd runs in a
# network namespace of the test's (its "node"), where the CRI sets up each pod's network
# namespace with Debian's CNI plugins (a bridge and host-local addresses, as a cluster's
# CNI would), so the pod has an IP the node reaches.
import ctypes
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import SESSION_MARK, add_session_root, qemu_processes, wait_for
from harness.containerd_env import _shim_binary, docker_save_tar
from harness.leaks import holds_file_under

# scripts/setup.sh installs these (python/requirements-dev.txt): a missing one is an error,
# not a reason to skip.
import grpc  # noqa: E402
import grpc_tools.protoc as protoc  # noqa: E402
import websocket  # noqa: E402  (websocket-client)

PROTO = Path(__file__).resolve().parent / "cri" / "api.proto"
K8S_NS = "k8s.io"  # The containerd namespace of the CRI plugin.
BUSYBOX = "docker.io/library/cri-busybox:latest"
DATA = "docker.io/library/cri-data:latest"  # busybox and a layer with /data
PAUSE = "docker.io/library/cri-pause:latest"
HANDLERS = [pytest.param("", id="runc"), pytest.param("boxlite", id="boxlite")]
CNI_BIN = "/usr/lib/cni"  # Debian's containernetworking-plugins.
SUBNET = "10.89.0.0/24"
PORT = 8080  # web's port, published at the pod's IP (boxlite.dev/publish).
LOCAL_PORT = 9090  # A port the pod does not publish.


def _compile_stubs(dest):
    """runtime.v1's messages and stubs (api_pb2, api_pb2_grpc), compiled into dest."""
    rc = protoc.main(["protoc", f"-I{PROTO.parent}", f"--python_out={dest}",
                      f"--grpc_python_out={dest}", str(PROTO)])
    if rc != 0:
        raise RuntimeError(f"protoc could not compile {PROTO} (exit {rc})")
    sys.path.insert(0, str(dest))
    try:
        import api_pb2
        import api_pb2_grpc
    finally:
        sys.path.remove(str(dest))
    return api_pb2, api_pb2_grpc


def _derived_image(layout, dest, entrypoint=None, files=None):
    """A copy of the OCI layout's image with the entrypoint `entrypoint` (the pause image)
    or a layer of `files` ({path: bytes}) added on top."""
    shutil.copytree(layout, dest)
    blobs = os.path.join(dest, "blobs", "sha256")

    def read(digest):
        with open(os.path.join(blobs, digest.split(":", 1)[1]), "rb") as f:
            return f.read()

    def write(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    with open(os.path.join(dest, "index.json")) as f:
        index = json.load(f)
    manifest = json.loads(read(index["manifests"][0]["digest"]))
    config = json.loads(read(manifest["config"]["digest"]))
    if entrypoint:
        config.setdefault("config", {}).update(Entrypoint=entrypoint, Cmd=None)
    if files:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, data in files.items():
                info = tarfile.TarInfo(path)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        layer = write(buf.getvalue())
        config["rootfs"]["diff_ids"].append(layer["digest"])
        manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                   **layer})
    manifest["config"].update(write(json.dumps(config).encode()))
    index["manifests"][0].update(write(json.dumps(manifest).encode()))
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump(index, f)


_LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
# The channels of the streaming protocol (channel.k8s.io): a message's first byte.
STDIN, STDOUT, STDERR, ERROR, RESIZE = range(5)


class Channels:
    """A WebSocket session on containerd's streaming server at url (what Exec, Attach and
    PortForward answer), subprotocol v4.channel.k8s.io: each message's first byte is its
    channel. What arrives is kept per channel in `out`."""

    def __init__(self, cri, url, query=""):
        parts = urlsplit(url)
        assert parts.scheme == "http" and parts.hostname == "127.0.0.1", url
        sock = cri.connect_in_node(parts.hostname, parts.port)
        self.ws = websocket.create_connection(
            "ws://" + parts.netloc + parts.path + query, socket=sock, timeout=60,
            subprotocols=["v4.channel.k8s.io"])
        self.out = defaultdict(bytes)
        self.closed = False

    def send(self, channel, data):
        self.ws.send_binary(bytes([channel]) + data)

    def read_until(self, done):
        """Reads until done(out) or the server closes; whether done(out)."""
        while not done(self.out) and not self.closed:
            try:
                opcode, data = self.ws.recv_data()
            except websocket.WebSocketConnectionClosedException:
                opcode, data = websocket.ABNF.OPCODE_CLOSE, b""
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self.closed = True
            elif data:
                self.out[data[0]] += data[1:]
        return done(self.out)

    def wait_closed(self):
        self.read_until(lambda out: False)
        self.ws.close()

    def resize(self, width, height):
        """Resizes the terminal of the shell on stdin, and returns once `stty size` in it
        shows the new size. The resize travels beside stdin, not in order with it: the
        shell is asked until it answers so (the echo of the typed line has no digits
        after "size-", the answer has)."""
        self.send(RESIZE, json.dumps({"Width": width, "Height": height}).encode())
        sizes = lambda out: re.findall(rb"size-(\d+)x(\d+)", out[STDOUT])
        want = (str(height).encode(), str(width).encode())
        for asked in range(1, 31):
            self.send(STDIN, b"echo size-$(stty size | tr ' ' x)\n")
            assert self.read_until(lambda out: len(sizes(out)) >= asked), self.out
            if sizes(self.out)[-1] == want:
                return
        assert sizes(self.out)[-1] == want, self.out

    def exit_code(self):
        """The command's exit code, from the error channel's Status once closed."""
        status = json.loads(self.out[ERROR])
        if status["status"] == "Success":
            return 0
        assert status["reason"] == "NonZeroExitCode", status
        return int(next(c["message"] for c in status["details"]["causes"]
                        if c["reason"] == "ExitCode"))


class CriContainerd:
    """Debian's containerd with its CRI plugin, in a temp root under /var/tmp (not /tmp: the
    leak monitors of other test sessions count mounts under /tmp as theirs), the BoxLite
    shim on its PATH and a BoxLite home of its own; runc's state in the temp root too."""

    def __init__(self, cli_binary, test_images):
        self.dir = Path(tempfile.mkdtemp(prefix="bl-cri-", dir="/var/tmp"))
        add_session_root(self.dir)
        self.proc = None
        self.log = None
        self.netns = None
        try:
            self._start(cli_binary, test_images)
        except BaseException:
            self.close()
            raise

    def _start(self, cli_binary, test_images):
        d = self.dir
        (d / "bin").mkdir()
        os.symlink(_shim_binary(), d / "bin" / "containerd-shim-boxlite-v2")
        for sub in ("cni-conf", "logs", "stubs"):
            (d / sub).mkdir()
        # The node's network namespace, and the pods' network: a bridge in it, the pods'
        # addresses leased in the temp root (host-local's default is /var/lib/cni).
        self.netns = f"bl-cri-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        (d / "cni-conf" / "10-pods.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "bl-cri-pods",
            "plugins": [{"type": "bridge", "bridge": "blcri0", "isGateway": True,
                         "ipam": {"type": "host-local", "dataDir": str(d / "cni-ipam"),
                                  "ranges": [[{"subnet": SUBNET}]]}}]}))
        self.sock = str(d / "c.sock")
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        (d / "config.toml").write_text(f"""version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{self.sock}"
[{cri}]
  sandbox_image = "{PAUSE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # A pause container asks for oom_score_adj -998: keep it at or above the test's own
  # (runc cannot lower it where the test itself runs in a container).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{d}/cni-conf"
[{cri}.containerd]
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  Root = "{d}/runc"
[{cri}.containerd.runtimes.boxlite]
  runtime_type = "io.containerd.boxlite.v2"
  pod_annotations = ["boxlite.dev/*"]
""")
        key, value = SESSION_MARK.split("=", 1)
        self.env = dict(os.environ, PATH=f"{d}/bin:{os.environ['PATH']}",
                        BOXLITE_HOME=str(d / "home"), BOXLITE_CLI=cli_binary, **{key: value})
        self.cli_binary = cli_binary
        self.log = open(d / "containerd.log", "wb")
        # nsenter, not `ip netns exec`: that one mounts a /sys of its own, without the
        # cgroup file systems runc needs.
        self.proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{self.netns}",
                                      "containerd", "--config", str(d / "config.toml")],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        self.pb, stubs = _compile_stubs(d / "stubs")
        self.channel = grpc.insecure_channel("unix://" + self.sock)
        self.rt = stubs.RuntimeServiceStub(self.channel)
        self.img = stubs.ImageServiceStub(self.channel)
        if not wait_for(self._serving, timeout=30, interval=0.2):
            raise RuntimeError("containerd's CRI plugin did not answer: " + self.logtail())
        busybox = test_images.layout("busybox")
        _derived_image(busybox, d / "pause-layout", entrypoint=["sleep", "100000000"])
        _derived_image(busybox, d / "data-layout", files={"data/keep.txt": b"keep\n"})
        for ref, layout in ((BUSYBOX, busybox), (DATA, str(d / "data-layout")),
                            (PAUSE, str(d / "pause-layout"))):
            tar = d / "image.tar"
            docker_save_tar(layout, tar, ref)
            p = subprocess.run(["ctr", "-a", self.sock, "-n", K8S_NS, "image", "import",
                                str(tar)], capture_output=True, env=self.env, timeout=120)
            assert p.returncode == 0, p.stderr.decode(errors="replace")
            tar.unlink()
            # The CRI plugin sees an import through containerd's events.
            assert wait_for(lambda: self.image_id(ref), timeout=30), ref

    def _serving(self):
        try:
            return self.rt.Version(self.pb.VersionRequest(), timeout=2).runtime_name
        except grpc.RpcError:
            return None

    def image_id(self, ref):
        return self.img.ImageStatus(self.pb.ImageStatusRequest(
            image=self.pb.ImageSpec(image=ref)), timeout=10).image.id

    def logtail(self):
        return (self.dir / "containerd.log").read_text(errors="replace")[-3000:]

    def boxlite(self, *args):
        return subprocess.run([self.cli_binary, *args], capture_output=True, env=self.env,
                              timeout=60)

    def connect_in_node(self, host, port):
        """A TCP connection to host:port made in the node's network namespace (where
        containerd's streaming server listens), by a thread that enters it: the namespace
        is a thread's, the test's other threads stay where they are."""
        out = {}

        def run():
            try:
                fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
                try:
                    if _LIBC.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns into the node's netns")
                finally:
                    os.close(fd)
                out["sock"] = socket.create_connection((host, port), timeout=30)
            except BaseException as e:  # Raised in the caller's thread below.
                out["error"] = e

        t = threading.Thread(target=run)
        t.start()
        t.join()
        if "error" in out:
            raise out["error"]
        return out["sock"]

    def in_node(self, *argv):
        """argv run in the node's network namespace."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True,
                              timeout=60)

    def vms(self):
        mine = {os.path.realpath(str(self.dir)) + "/"}
        return {p for p in qemu_processes() if holds_file_under(p, mine)}

    def shims(self):
        """Pids of the shims (BoxLite's and runc's) this containerd started."""
        out = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    name = os.path.basename(f.read().split(b"\0")[0])
                if not name.startswith(b"containerd-shim"):
                    continue
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if str(self.dir).encode() in f.read():
                        out.append(int(pid))
            except OSError:
                pass
        return out

    def close(self):
        if self.proc is not None:
            try:
                pods = self.rt.ListPodSandbox(self.pb.ListPodSandboxRequest(), timeout=30)
                for pod in pods.items:
                    self.rt.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod.id),
                                           timeout=120)
                    self.rt.RemovePodSandbox(
                        self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id), timeout=120)
            except Exception:  # Cleanup goes on: containerd may be the thing that failed.
                pass
            self.channel.close()
            self.proc.terminate()
            if not wait_for(lambda: self.proc.poll() is not None, timeout=30, interval=0.1):
                self.proc.kill()
            self.proc.wait()
        if self.log:
            self.log.close()
        if self.netns:
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        for sub in ("state", "root"):
            subprocess.run(["umount", "-R", "-l", str(self.dir / sub)], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cri(cli_binary, test_images):
    assert shutil.which("containerd") and shutil.which("ctr"), \
        "containerd is not installed (scripts/setup.sh installs it)"
    assert os.path.exists(os.path.join(CNI_BIN, "bridge")), \
        "Debian's CNI plugins are not installed (scripts/setup.sh installs containernetworking-plugins)"
    c = CriContainerd(cli_binary, test_images)
    yield c
    c.close()


class Pod:
    """One pod of the CRI: its sandbox and the containers created in it."""

    def __init__(self, cri, handler, name):
        self.cri, self.pb, self.handler = cri, cri.pb, handler
        pb = self.pb
        self.logdir = cri.dir / "logs" / name
        self.logdir.mkdir()
        # What a kubelet sends for a pod without hostNetwork and shareProcessNamespace.
        podnet = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
        self.config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="default"),
            log_directory=str(self.logdir), labels={"test": name},
            hostname=name, annotations={"boxlite.dev/disk-size": "2G",
                                        "boxlite.dev/publish": str(PORT)},
            linux=pb.LinuxPodSandboxConfig(
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=podnet)))
        self.id = cri.rt.RunPodSandbox(pb.RunPodSandboxRequest(
            config=self.config, runtime_handler=handler), timeout=300).pod_sandbox_id
        self.containers = {}

    def container(self, name, image, command, envs=None, workdir="", user=None, stdin=False,
                  tty=False):
        pb = self.pb
        security = pb.LinuxContainerSecurityContext(
            namespace_options=self.config.linux.security_context.namespace_options)
        if user is not None:
            security.run_as_user.value = user
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=image),
            command=command, working_dir=workdir, log_path=f"{name}.log",
            envs=[pb.KeyValue(key=k, value=v) for k, v in (envs or {}).items()],
            stdin=stdin, tty=tty, linux=pb.LinuxContainerConfig(security_context=security))
        cid = self.cri.rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=self.id, config=config, sandbox_config=self.config),
            timeout=300).container_id
        self.cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=300)
        self.containers[name] = cid
        return cid

    def exec(self, name, script, timeout=60):
        return self.cri.rt.ExecSync(self.pb.ExecSyncRequest(
            container_id=self.containers[name], cmd=["sh", "-c", script], timeout=timeout),
            timeout=timeout + 60)

    def status(self, name):
        return self.cri.rt.ContainerStatus(self.pb.ContainerStatusRequest(
            container_id=self.containers[name]), timeout=30).status

    def wait_exited(self, name):
        """The status of container `name` once it exited."""
        status = []
        assert wait_for(lambda: status.append(self.status(name)) or
                        status[-1].state == self.pb.CONTAINER_EXITED, timeout=60,
                        interval=0.2), status[-1]
        return status[-1]

    def remove(self):
        self.cri.rt.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=self.id),
                                   timeout=120)
        self.cri.rt.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=self.id),
                                     timeout=120)


@pytest.fixture(scope="module", params=HANDLERS)
def pod(request, cri):
    """A pod per handler: container "web" (busybox) serves HTTP on the pod's localhost,
    container "data" (busybox and a layer with /data) sleeps as user 65534. The cases
    run in file order; the last one removes the pod."""
    handler = request.param
    vms_before = cri.vms()
    p = Pod(cri, handler, "pod-" + (handler or "runc"))
    p.vms_before = vms_before
    page = "echo served-by-web > /tmp/www/index.html"
    p.container("web", BUSYBOX, ["sh", "-c", f"mkdir -p /tmp/www; {page}; "
                                 f"exec httpd -f -p {PORT} -h /tmp/www"])
    p.container("data", DATA, ["sleep", "100000"], envs={"WHO": "data"}, workdir="/data",
                user=65534)
    yield p
    if cri.rt.ListPodSandbox(cri.pb.ListPodSandboxRequest(
            filter=cri.pb.PodSandboxFilter(id=p.id)), timeout=30).items:
        p.remove()


def test_pod_sandbox_is_ready_and_one_vm(cri, pod):
    pb = cri.pb
    status = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod.id),
                                     timeout=30).status
    assert (status.state, status.runtime_handler) == (pb.SANDBOX_READY, pod.handler)
    assert status.annotations["boxlite.dev/disk-size"] == "2G"
    listed = cri.rt.ListPodSandbox(pb.ListPodSandboxRequest(
        filter=pb.PodSandboxFilter(label_selector={"test": status.metadata.name})), timeout=30)
    assert [s.id for s in listed.items] == [pod.id]
    containers = cri.rt.ListContainers(pb.ListContainersRequest(
        filter=pb.ContainerFilter(pod_sandbox_id=pod.id)), timeout=30).containers
    assert sorted((c.metadata.name, c.state) for c in containers) == \
        [("data", pb.CONTAINER_RUNNING), ("web", pb.CONTAINER_RUNNING)]
    new_vms = cri.vms() - pod.vms_before
    # The pod is one box (its sandbox's); its containers run inside it. runc: no VM.
    assert len(new_vms) == (1 if pod.handler == "boxlite" else 0), new_vms
    if pod.handler == "boxlite":
        # Both containers see the same kernel boot: the pod's one VM.
        web = pod.exec("web", "cat /proc/sys/kernel/random/boot_id")
        data = pod.exec("data", "cat /proc/sys/kernel/random/boot_id")
        assert web.stdout == data.stdout and len(web.stdout.strip()) == 36
        assert web.stdout != open("/proc/sys/kernel/random/boot_id", "rb").read()


def test_exec_sync_output_and_exit_code(cri, pod):
    r = pod.exec("data", 'echo "$WHO $(pwd) $(id -u) $(cat /data/keep.txt)"; echo oops >&2; exit 7')
    assert (r.exit_code, r.stdout, r.stderr) == (7, b"data /data 65534 keep\n", b"oops\n")
    # Each container has its own root: web's image has no /data, data's no /tmp/www.
    r = pod.exec("web", "test -e /data/keep.txt || echo no-data; cat /tmp/www/index.html")
    assert (r.exit_code, r.stdout) == (0, b"no-data\nserved-by-web\n"), r.stderr
    r = pod.exec("data", "test -e /tmp/www || echo no-www")
    assert (r.exit_code, r.stdout) == (0, b"no-www\n"), r.stderr


def test_containers_share_the_pods_shm(cri, pod):
    r = pod.exec("web", "echo from-web > /dev/shm/ipc")
    assert r.exit_code == 0, r.stderr
    r = pod.exec("data", "cat /dev/shm/ipc")
    assert (r.exit_code, r.stdout) == (0, b"from-web\n"), r.stderr


def test_containers_share_localhost(cri, pod):
    fetch = f"wget -qO- http://127.0.0.1:{PORT}/index.html"
    last = []
    assert wait_for(lambda: last.append(pod.exec("data", fetch)) or last[-1].exit_code == 0,
                    timeout=60, interval=0.5), last[-1]
    assert last[-1].stdout == b"served-by-web\n"


def test_pod_ip_reaches_the_pod(cri, pod):
    """The CNI gave the pod an address of its bridge; the node reaches web's server there
    (BoxLite: the port the pod's boxlite.dev/publish names, published by the box)."""
    pb = cri.pb
    ip = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod.id),
                                 timeout=30).status.network.ip
    assert ip.startswith(SUBNET.rsplit(".", 2)[0] + "."), ip
    url = f"http://{ip}:{PORT}/index.html"
    last = []
    fetch = lambda: cri.in_node("wget", "-qO-", "-t", "1", "-T", "5", url)
    assert wait_for(lambda: last.append(fetch()) or last[-1].returncode == 0,
                    timeout=60, interval=0.5), last[-1]
    assert last[-1].stdout == b"served-by-web\n"


def test_container_stats(cri, pod):
    """What a kubelet polls: the CPU time and memory of a container (BoxLite: its pod box's)."""
    stats = cri.rt.ContainerStats(cri.pb.ContainerStatsRequest(
        container_id=pod.containers["web"]), timeout=60).stats
    assert stats.attributes.metadata.name == "web"
    assert stats.cpu.usage_core_nano_seconds.value > 0, stats
    assert stats.memory.working_set_bytes.value > 0, stats


def _stream_exec(cri, pod, name, cmd, tty):
    """Exec as `kubectl exec -i` (-t with tty) asks it: the session on the streaming server."""
    url = cri.rt.Exec(cri.pb.ExecRequest(container_id=pod.containers[name], cmd=cmd, tty=tty,
                                         stdin=True, stdout=True, stderr=not tty),
                      timeout=60).url
    return Channels(cri, url)


def test_exec_tty_stdin_and_resize(cri, pod):
    """`kubectl exec -it`: a shell on a terminal reads stdin, a resize reaches its terminal,
    the exit code comes back on the error channel."""
    s = _stream_exec(cri, pod, "web", ["sh"], tty=True)
    s.resize(100, 40)
    s.send(STDIN, b"echo mark-$((6*7)); exit 3\n")
    s.wait_closed()
    assert b"mark-42\r\n" in s.out[STDOUT], s.out
    assert not s.out[STDERR]  # A terminal has one output stream.
    assert s.exit_code() == 3, s.out


def test_exec_stdin_with_separate_output_streams(cri, pod):
    """`kubectl exec -i` without a terminal: stdin reaches the command, stdout and stderr
    come back apart, and the exit code."""
    s = _stream_exec(cri, pod, "data",
                     ["sh", "-c", 'read line; echo "got $line"; echo to-err >&2; exit 4'],
                     tty=False)
    s.send(STDIN, b"ping\n")
    s.wait_closed()
    assert (s.out[STDOUT], s.out[STDERR]) == (b"got ping\n", b"to-err\n"), s.out
    assert s.exit_code() == 4, s.out


def test_attach_to_a_running_container(cri, pod):
    """`kubectl attach -i`: a container started with stdin open gets what is typed, its
    output comes back; its end shows in its status."""
    pb = cri.pb
    pod.container("talk", BUSYBOX, ["sh", "-c", 'echo ready; while read l; do '
                                    '[ "$l" = quit ] && exit 6; echo "echo:$l"; done'],
                  stdin=True)
    log = pod.logdir / "talk.log"
    assert wait_for(lambda: log.exists() and "ready" in log.read_text(), timeout=60,
                    interval=0.2)
    url = cri.rt.Attach(pb.AttachRequest(container_id=pod.containers["talk"], stdin=True,
                                         stdout=True, stderr=True), timeout=60).url
    s = Channels(cri, url)
    s.send(STDIN, b"hello\n")
    assert s.read_until(lambda out: b"echo:hello\n" in out[STDOUT]), s.out
    s.send(STDIN, b"quit\n")
    s.wait_closed()
    assert pod.wait_exited("talk").exit_code == 6
    # What went through the attach is in the container's log too.
    assert "echo:hello" in log.read_text()
    cri.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=pod.containers.pop("talk")),
                           timeout=120)


def test_attach_to_a_container_on_a_terminal(cri, pod):
    """`kubectl attach -it`: a container started with stdin and a terminal: typed lines
    reach its shell (and echo back), a resize reaches its terminal."""
    pb = cri.pb
    pod.container("term-sh", BUSYBOX, ["sh"], stdin=True, tty=True)
    url = cri.rt.Attach(pb.AttachRequest(container_id=pod.containers["term-sh"], stdin=True,
                                         tty=True, stdout=True), timeout=60).url
    s = Channels(cri, url)
    s.resize(90, 30)
    s.send(STDIN, b"exit 9\n")
    s.wait_closed()
    assert pod.wait_exited("term-sh").exit_code == 9
    cri.rt.RemoveContainer(pb.RemoveContainerRequest(
        container_id=pod.containers.pop("term-sh")), timeout=120)


def _port_forward(cri, pod, port, data):
    """`kubectl port-forward` of port: data sent to it, what comes back (WebSocket
    port-forward: data channel 0, error channel 1, each opened by the port as two
    little-endian bytes) once the server closes."""
    url = cri.rt.PortForward(cri.pb.PortForwardRequest(pod_sandbox_id=pod.id, port=[port]),
                             timeout=60).url
    s = Channels(cri, url, query=f"?port={port}")
    s.send(0, data)
    s.wait_closed()
    opened = port.to_bytes(2, "little")
    assert s.out[1] == opened, s.out  # No error.
    assert s.out[0][:2] == opened, s.out
    return s.out[0][2:]


def test_port_forward_reaches_the_pods_localhost(cri, pod):
    """Bytes to web's port arrive at its server on the pod's localhost, its answer comes
    back."""
    answer = _port_forward(cri, pod, PORT, b"GET /index.html HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.") and answer.endswith(b"\r\n\r\nserved-by-web\n"), \
        answer


def test_port_forward_to_a_port_the_pod_does_not_publish(cri, pod):
    """A server on a port no annotation names, listening on the pod's localhost only (as
    a debug endpoint would): port-forward reaches it all the same."""
    # Started by an exec (httpd without -f goes to the background and outlives it).
    r = pod.exec("web", f"httpd -p 127.0.0.1:{LOCAL_PORT} -h /tmp/www")
    assert r.exit_code == 0, r.stderr
    fetch = f"wget -qO- http://127.0.0.1:{LOCAL_PORT}/index.html"
    last = []
    assert wait_for(lambda: last.append(pod.exec("data", fetch)) or last[-1].exit_code == 0,
                    timeout=60, interval=0.2), last[-1]
    answer = _port_forward(cri, pod, LOCAL_PORT, b"GET /index.html HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.") and answer.endswith(b"\r\n\r\nserved-by-web\n"), \
        answer


def test_stop_container_signals_it_first(cri, pod):
    """StopContainer with a grace period: TERM reaches the container's command (its trap's
    exit code is the container's), the other containers keep running."""
    pb = cri.pb
    pod.container("term", BUSYBOX, ["sh", "-c", "trap 'exit 5' TERM; echo up; "
                                    "while true; do sleep 0.1; done"])
    log = pod.logdir / "term.log"
    # Stopped once its trap is set (it logged), so TERM finds it.
    assert wait_for(lambda: log.exists() and "up" in log.read_text(), timeout=60, interval=0.2)
    cri.rt.StopContainer(pb.StopContainerRequest(container_id=pod.containers["term"],
                                                 timeout=30), timeout=120)
    status = pod.status("term")
    assert (status.state, status.exit_code) == (pb.CONTAINER_EXITED, 5), status
    cri.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=pod.containers.pop("term")),
                           timeout=120)
    assert pod.exec("web", "true").exit_code == 0


def test_exited_container_status_and_log(cri, pod):
    pb = cri.pb
    pod.container("once", BUSYBOX, ["sh", "-c", "echo to-the-log; echo err-line >&2; exit 3"])
    status = []
    assert wait_for(lambda: status.append(pod.status("once")) or
                    status[-1].state == pb.CONTAINER_EXITED, timeout=120, interval=0.5), \
        status[-1]
    assert status[-1].exit_code == 3 and status[-1].started_at > 0 and status[-1].finished_at > 0
    # The CRI's log (its FIFOs read by containerd): "TIME STREAM F LINE" per line.
    lines = [line.split(" ", 3)[1:] for line in
             (pod.logdir / "once.log").read_text().splitlines()]
    assert sorted(lines) == [["stderr", "F", "err-line"], ["stdout", "F", "to-the-log"]], lines
    cri.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=pod.containers.pop("once")),
                           timeout=120)
    left = cri.rt.ListContainers(pb.ListContainersRequest(
        filter=pb.ContainerFilter(pod_sandbox_id=pod.id)), timeout=30).containers
    assert sorted(c.metadata.name for c in left) == ["data", "web"]
    if pod.handler == "boxlite":
        r = pod.exec("web", "true")
        assert r.exit_code == 0


def test_stop_and_remove_pod_leave_nothing(cri, pod):
    pb = cri.pb
    # Stopped, the pod's containers are killed (with the box, for BoxLite) and it is not ready.
    cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.id), timeout=120)
    status = cri.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod.id),
                                     timeout=30).status
    assert status.state == pb.SANDBOX_NOTREADY
    for name in ("web", "data"):
        status = pod.status(name)
        assert (status.state, status.exit_code) == (pb.CONTAINER_EXITED, 137), (name, status)
    cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id), timeout=120)
    assert not cri.rt.ListPodSandbox(pb.ListPodSandboxRequest(
        filter=pb.PodSandboxFilter(id=pod.id)), timeout=30).items
    assert not cri.rt.ListContainers(pb.ListContainersRequest(
        filter=pb.ContainerFilter(pod_sandbox_id=pod.id)), timeout=30).containers
    # No VM, no shim, no box, no task state, no mount of the pod.
    assert wait_for(lambda: not (cri.vms() - pod.vms_before), timeout=60), cri.vms()
    assert wait_for(lambda: not cri.shims(), timeout=60), cri.shims()
    p = cri.boxlite("ls", "-a", "-q")
    assert (p.returncode, p.stdout.strip()) == (0, b""), (p.stdout, p.stderr)
    tasks = cri.dir / "state" / "io.containerd.runtime.v2.task" / K8S_NS
    assert not tasks.exists() or not os.listdir(tasks), os.listdir(tasks)
    sandboxes = cri.dir / "state" / "io.containerd.grpc.v1.cri" / "sandboxes"
    assert not sandboxes.exists() or not os.listdir(sandboxes), os.listdir(sandboxes)
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if str(cri.dir) in line and pod.id in line]
    # The pod's network is torn down: its veth is gone from the node, its address released.
    links = cri.in_node("ip", "-o", "link").stdout.decode()
    assert "veth" not in links, links
    leases = cri.dir / "cni-ipam" / "bl-cri-pods"
    assert not [f for f in os.listdir(leases) if f[0].isdigit()], os.listdir(leases)
