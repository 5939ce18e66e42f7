"""Values the SDK returns: command results, box facts, metrics and images."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .options import PortForward, VolumeMount

__all__ = ["ExecResult", "BoxInfo", "BoxMetrics", "ImageInfo"]


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


@dataclass
class ExecResult:
    """How a command ended, with its output.

    A non-zero exit is a result, never an exception. A process killed by signal N has
    ``exit_code == 128 + N`` (from ``SimpleBox.exec``, ``Box.run`` and ``box.stream``)
    or ``-N`` (from 0.9's ``Box.exec(...).wait()``, which carries no output). The first
    four fields are BoxLite 0.9's dataclass (``exit_code, stdout, stderr,
    error_message``), in its order.

    Attributes:
        exit_code: The exit status (``128 + signo`` when a signal ended it).
        stdout: Standard output decoded as UTF-8 (invalid bytes replaced).
        stderr: Standard error decoded as UTF-8 (invalid bytes replaced).
        timed_out: True when ``timeout`` expired and the process was killed.
        error_message: Why the command could not start (e.g. not found), else ``None``.
        stdout_bytes: Standard output exactly as the process wrote it.
        stderr_bytes: Standard error exactly as the process wrote it.
        duration: Seconds from start to exit.
        signal: The signal that ended the process, or 0.
        stdout_truncated: The command wrote more than ``max_output_bytes`` to stdout;
            ``stdout`` holds the first ``max_output_bytes`` (the rest was read and
            dropped).
        stderr_truncated: The same for stderr.
    """

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    error_message: str | None = None
    timed_out: bool = False
    stdout_bytes: bytes = field(default=b"", repr=False)
    stderr_bytes: bytes = field(default=b"", repr=False)
    duration: float = 0.0
    signal: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    def __post_init__(self) -> None:
        # Built from one representation, the other follows.
        if self.stdout_bytes and not self.stdout:
            self.stdout = _decode(self.stdout_bytes)
        elif self.stdout and not self.stdout_bytes:
            self.stdout_bytes = self.stdout.encode("utf-8", errors="surrogateescape")
        if self.stderr_bytes and not self.stderr:
            self.stderr = _decode(self.stderr_bytes)
        elif self.stderr and not self.stderr_bytes:
            self.stderr_bytes = self.stderr.encode("utf-8", errors="surrogateescape")

    @property
    def returncode(self) -> int:
        """Same as :attr:`exit_code` (the ``subprocess`` spelling)."""
        return self.exit_code

    @property
    def ok(self) -> bool:
        """True when the command exited 0 without timing out."""
        return self.exit_code == 0 and not self.timed_out

    @classmethod
    def _from_core(
        cls,
        exit_code: int,
        signal: int,
        timed_out: bool,
        error_message: str,
        stdout: bytes = b"",
        stderr: bytes = b"",
        duration: float = 0.0,
        stdout_truncated: bool = False,
        stderr_truncated: bool = False,
        command: str = "",
    ) -> ExecResult:
        if error_message and command and command not in error_message:
            error_message = f"{command}: {error_message}"
        return cls(
            exit_code=exit_code,
            stdout=_decode(stdout),
            stderr=_decode(stderr),
            timed_out=timed_out,
            error_message=error_message or None,
            stdout_bytes=stdout,
            stderr_bytes=stderr,
            duration=duration,
            signal=signal,
            stdout_truncated=stdout_truncated,
            stderr_truncated=stderr_truncated,
        )


@dataclass(frozen=True)
class BoxInfo:
    """What a box is: its identity, configuration and state.

    Attributes:
        id: The box id (unique, hex).
        name: The box name (the id's prefix unless one was given).
        image: The image reference it boots.
        state: ``"created"``, ``"running"`` or ``"stopped"``.
        created_unix: Creation time, seconds since the epoch.
        cpus: vCPUs.
        memory_mib: Guest RAM in MiB.
        disk_size_mib: Writable disk in MiB (0 until it is known).
        network: ``"nat"`` or ``"none"``.
        ports: Published ports.
        volumes: Host mounts.
        auto_remove: Whether the box is removed when it stops.
        detach: Whether the box outlives this process.
        pid: The VM process id while running, else 0.
        accel: ``"kvm"`` or ``"tcg"`` once started.
    """

    id: str
    name: str
    image: str
    state: str
    created_unix: int = 0
    cpus: int = 0
    memory_mib: int = 0
    disk_size_mib: int = 0
    network: str = "nat"
    ports: tuple[PortForward, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    auto_remove: bool = True
    detach: bool = False
    pid: int = 0
    accel: str = ""

    @property
    def running(self) -> bool:
        """True while the box's VM runs."""
        return self.state == "running"

    @property
    def mounts(self) -> tuple[VolumeMount, ...]:
        """Alias of :attr:`volumes`."""
        return self.volumes

    @property
    def cpu(self) -> int:
        """Alias of :attr:`cpus`."""
        return self.cpus

    @property
    def memory(self) -> int:
        """Alias of :attr:`memory_mib`."""
        return self.memory_mib

    @classmethod
    def _from_core(cls, d: Mapping[str, Any]) -> BoxInfo:
        return cls(
            id=d["id"],
            name=d["name"],
            image=d["image"],
            state=d["state"],
            created_unix=d["created_unix"],
            cpus=d["cpus"],
            memory_mib=d["memory_mib"],
            disk_size_mib=d["disk_size_mib"],
            network=d["network"],
            ports=tuple(PortForward(h, g) for h, g in d["ports"]),
            volumes=tuple(VolumeMount(h, g, ro) for h, g, ro in d["mounts"]),
            auto_remove=d["auto_remove"],
            detach=d["detach"],
            pid=d["pid"],
            accel=d["accel"],
        )


@dataclass(frozen=True)
class BoxMetrics:
    """Resource use of a running box.

    Attributes:
        cpu_seconds: CPU time of the VM process (all vCPUs and devices).
        memory_rss_bytes: Host memory the VM process holds.
        guest_memory_used_bytes: Memory in use inside the guest (0 if unknown).
        guest_memory_total_bytes: Memory the guest sees (0 if unknown).
        execs_run: Commands started in the box so far.
        create_seconds: Time to prepare the disk and start the VM process.
        boot_seconds: Time from the VM process start to the guest agent answering.
    """

    cpu_seconds: float = 0.0
    memory_rss_bytes: int = 0
    guest_memory_used_bytes: int = 0
    guest_memory_total_bytes: int = 0
    execs_run: int = 0
    create_seconds: float = 0.0
    boot_seconds: float = 0.0

    @classmethod
    def _from_core(cls, d: Mapping[str, Any]) -> BoxMetrics:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ImageInfo:
    """An image in the local store.

    Attributes:
        reference: The normalized reference (``docker.io/library/alpine:latest``).
        id: The config digest.
        manifest_digest: The manifest digest.
        size_bytes: Size of the layers.
        created_unix: Creation time from the image config, seconds since the epoch.
    """

    reference: str
    id: str
    manifest_digest: str = ""
    size_bytes: int = 0
    created_unix: int = 0

    @classmethod
    def _from_core(cls, d: Mapping[str, Any]) -> ImageInfo:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})
