"""Values the SDK returns: command results, box facts, metrics and images."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .images import ImageInfo  # Moved to images.py; still importable from here.
from .options import PortForward, VolumeMount

__all__ = [
    "ExecResult", "BoxInfo", "BoxMetrics", "ImageInfo",
    # BoxLite 0.9's info and metrics classes.
    "BoxStateInfo", "NetworkInfo", "PublishedPort", "HealthStatus", "HealthState", "RuntimeMetrics",
]


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


def _known_fields(cls: Any, d: Mapping[str, Any]) -> Any:
    """An instance of the dataclass `cls` from the keys of `d` it has (the core may send more)."""
    return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def _rfc3339(unix: int) -> str:
    return datetime.fromtimestamp(unix, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class HealthState:
    """A box's health: ``.value`` is ``"none"`` (no health check), ``"starting"``,
    ``"healthy"`` or ``"unhealthy"``. Compares equal to another HealthState or its value."""

    _VALUES = ("none", "starting", "healthy", "unhealthy")
    __slots__ = ("_value",)

    def __init__(self, value: str = "none") -> None:
        if value not in self._VALUES:
            raise ValueError(f"health state must be one of {', '.join(self._VALUES)}, not {value!r}")
        self._value = value

    @property
    def value(self) -> str:
        """``"none"``, ``"starting"``, ``"healthy"`` or ``"unhealthy"``."""
        return self._value

    # Static constructors none() / starting() / healthy() / unhealthy(), and the
    # predicates is_none() / is_starting() / is_healthy() / is_unhealthy().
    none: Any
    starting: Any
    healthy: Any
    unhealthy: Any
    is_none: Any
    is_starting: Any
    is_healthy: Any
    is_unhealthy: Any

    def __str__(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"HealthState({self._value!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HealthState):
            return self._value == other._value
        if isinstance(other, str):
            return self._value == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._value)


def _health_state_helpers() -> None:
    def constructor(value: str) -> Any:
        def make() -> HealthState:
            return HealthState(value)
        make.__doc__ = f"The state ``{value}``."
        return staticmethod(make)

    def predicate(value: str) -> Any:
        def test(self: HealthState) -> bool:
            return self._value == value
        test.__doc__ = f"True when the state is ``{value}``."
        return test

    for value in HealthState._VALUES:
        setattr(HealthState, value, constructor(value))
        setattr(HealthState, f"is_{value}", predicate(value))


_health_state_helpers()


@dataclass(frozen=True)
class HealthStatus:
    """The health check's view of a box, from this process's prober.

    Attributes:
        state: A :class:`HealthState`.
        failures: Failed probes in a row.
        last_check: When the last probe ended (RFC 3339, UTC), or None before the first.
    """

    state: HealthState = field(default_factory=HealthState.none)
    failures: int = 0
    last_check: str | None = None

    @classmethod
    def _from_core(cls, d: Mapping[str, Any] | None) -> HealthStatus:
        if not d:
            return cls()
        last = d.get("last_check_unix", 0)
        return cls(state=HealthState(d.get("state", "none")), failures=d.get("failures", 0),
                   last_check=_rfc3339(last) if last else None)

    def _to_json(self) -> dict[str, Any]:
        return {"state": self.state.value, "failures": self.failures, "last_check": self.last_check}


class BoxStateInfo(str):
    """A box's state: BoxLite 0.9's ``status`` / ``running`` / ``pid``.

    It is also the status string itself, so ``info.state == "running"`` keeps working.
    """

    status: str
    running: bool
    pid: int | None

    def __new__(cls, status: str, running: bool | None = None, pid: int | None = None) -> BoxStateInfo:
        obj = super().__new__(cls, status)
        obj.status = status
        obj.running = status == "running" if running is None else running
        obj.pid = pid
        return obj

    def __repr__(self) -> str:
        return f"BoxStateInfo(status={self.status!r}, running={self.running!r}, pid={self.pid!r})"

    def _to_json(self) -> dict[str, Any]:
        return {"status": self.status, "running": self.running, "pid": self.pid}


@dataclass(frozen=True)
class PublishedPort:
    """A published port: ``host_ip:host_port`` on the host forwards to ``guest_port``."""

    guest_port: int
    host_ip: str = "127.0.0.1"
    host_port: int = 0
    protocol: str = "tcp"

    def _to_json(self) -> dict[str, Any]:
        return {"guest_port": self.guest_port, "host_ip": self.host_ip,
                "host_port": self.host_port, "protocol": self.protocol}


class NetworkInfo(str):
    """A box's network: BoxLite 0.9's ``mode`` (``"enabled"``/``"disabled"``),
    ``allow_net`` and ``published_ports``.

    It is also our network string (``"nat"`` or ``"none"``), so ``info.network == "nat"``
    keeps working.
    """

    mode: str
    allow_net: list[str]
    published_ports: list[PublishedPort] | None

    def __new__(cls, network: str, allow_net: list[str] | None = None,
                published_ports: list[PublishedPort] | None = None) -> NetworkInfo:
        obj = super().__new__(cls, network)
        obj.mode = "disabled" if network == "none" else "enabled"
        obj.allow_net = list(allow_net or [])
        obj.published_ports = published_ports
        return obj

    def __repr__(self) -> str:
        return (f"NetworkInfo(mode={self.mode!r}, allow_net={self.allow_net!r}, "
                f"published_ports={self.published_ports!r})")

    def _to_json(self) -> dict[str, Any]:
        ports = self.published_ports
        return {"mode": self.mode, "allow_net": self.allow_net,
                "published_ports": None if ports is None else [p._to_json() for p in ports]}


@dataclass(frozen=True, repr=False)
class BoxInfo:
    """What a box is: its identity, configuration and state.

    Both spellings: BoxLite 0.9's (``state.status``, ``created_at``, ``network.mode``,
    ``health_status``, ``auto_*``) and ours (``state`` and ``network`` as strings,
    ``created_unix``, ``ports``, ``volumes``, ...). The repr is pretty JSON.

    Attributes:
        id: The box id (12 Base62 characters; boxes made before may have 32 hex digits).
        name: The box name (the id's prefix unless one was given).
        image: The image reference it boots (``"rootfs:<path>"`` for a box made from a
            local OCI layout, as in BoxLite 0.9).
        state: A :class:`BoxStateInfo`, equal to the status string: ``"configured"`` (never
            started), ``"running"``, ``"stopping"``, ``"stopped"``, ``"paused"``,
            ``"failed"`` or ``"unknown"`` (BoxLite 0.9's).
        created_unix: Creation time, seconds since the epoch.
        cpus: vCPUs.
        memory_mib: Guest RAM in MiB.
        disk_size_mib: Writable disk in MiB (0 until it is known).
        network: A :class:`NetworkInfo`, equal to ``"nat"`` or ``"none"``.
        ports: Published ports.
        volumes: Host mounts.
        auto_remove: Whether the box is removed when it stops.
        detach: Whether the box outlives this process.
        pid: The VM process id while running, else 0.
        accel: ``"kvm"`` or ``"tcg"`` once started.
        health_status: A :class:`HealthStatus` (state ``none`` without a health check).
        auto_pause, auto_delete, auto_resume, exit_code: as the core reports them.
        failure: Why the box failed (state ``"failed"``: its VM ended without a stop and
            without its main command exiting, or a start failed); None otherwise.
        warm_start: True when the VM's last start restored a warm-start template instead
            of booting (docs/snapshots.md, "Warm start").
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
    health_status: HealthStatus = field(default_factory=HealthStatus)
    auto_pause: int = 0
    auto_delete: int = 0
    auto_resume: bool = True
    exit_code: int | None = None
    failure: str | None = None
    warm_start: bool = False

    def __post_init__(self) -> None:
        # Built with plain strings (our older spelling): give them 0.9's attributes.
        if not isinstance(self.state, BoxStateInfo):
            object.__setattr__(self, "state", BoxStateInfo(
                self.state, pid=self.pid or None))
        if not isinstance(self.network, NetworkInfo):
            object.__setattr__(self, "network", NetworkInfo(self.network, published_ports=[
                PublishedPort(guest_port=p.guest_port, host_port=p.host_port) for p in self.ports]))

    @property
    def running(self) -> bool:
        """True while the box's VM runs."""
        return self.state == "running"

    @property
    def created_at(self) -> str:
        """Creation time in RFC 3339 (UTC)."""
        return _rfc3339(self.created_unix)

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

    def _to_json(self) -> dict[str, Any]:
        state = self.state
        network = self.network
        return {
            "id": self.id,
            "name": self.name,
            "state": state._to_json() if isinstance(state, BoxStateInfo) else state,
            "created_at": self.created_at,
            "image": self.image,
            "cpus": self.cpus,
            "memory_mib": self.memory_mib,
            "network": network._to_json() if isinstance(network, NetworkInfo) else network,
            "auto_pause": self.auto_pause,
            "auto_delete": self.auto_delete,
            "auto_resume": self.auto_resume,
            "health_status": self.health_status._to_json(),
        }

    def __repr__(self) -> str:
        return json.dumps(self._to_json(), indent=2)

    @classmethod
    def _from_core(cls, d: Mapping[str, Any]) -> BoxInfo:
        ports = tuple(PortForward(*p[:2]) if isinstance(p, (tuple, list)) else
                      PortForward(p["host_port"], p["guest_port"]) for p in d["ports"])
        published = []
        for p in d["ports"]:
            if isinstance(p, Mapping):
                published.append(PublishedPort(guest_port=p["guest_port"], host_ip=p.get("host_ip", "127.0.0.1"),
                                               host_port=p["host_port"], protocol=p.get("protocol", "tcp")))
            else:
                published.append(PublishedPort(guest_port=p[1], host_port=p[0]))
        status = d["state"]
        pid = d.get("pid", 0)
        extra = {k: d[k] for k in ("auto_pause", "auto_delete", "auto_resume") if d.get(k) is not None}
        return cls(
            id=d["id"],
            name=d["name"],
            image=d["image"],
            state=BoxStateInfo(status, status == "running", pid or None),
            created_unix=d["created_unix"],
            cpus=d["cpus"],
            memory_mib=d["memory_mib"],
            disk_size_mib=d["disk_size_mib"],
            network=NetworkInfo(d["network"], d.get("allow_net"), published),
            ports=ports,
            volumes=tuple(VolumeMount(h, g, ro) for h, g, ro in d["mounts"]),
            auto_remove=d["auto_remove"],
            detach=d["detach"],
            pid=pid,
            accel=d["accel"],
            health_status=HealthStatus._from_core(d.get("health")),
            exit_code=d.get("exit_code"),
            failure=d.get("failure"),
            warm_start=bool(d.get("warm_start", False)),
            **extra,
        )


@dataclass(frozen=True)
class BoxMetrics:
    """Resource use of a running box.

    BoxLite 0.9's names (``docs/metrics.md`` says how each is measured):

    Attributes:
        commands_executed_total: Commands started through this box object.
        exec_errors_total: Commands that failed to start, or lost the box while running.
        bytes_sent_total: stdin bytes sent to the box's commands.
        bytes_received_total: stdout and stderr bytes received from them.
        cpu_percent: Percent of one host CPU the VM used since the previous ``metrics()``
            call (the first call: since the VM started); None when unknown.
        memory_bytes: Host memory the VM process holds (RSS).
        network_bytes_sent: Bytes the guest sent on its network device (None: no network).
        network_bytes_received: Bytes it received.
        network_tcp_connections: TCP connections the guest opened or accepted since boot.
        network_tcp_errors: Failed TCP connection attempts, resets and bad segments.
        network_refused_flows: Guest packets the host's network helper refused (to an
            address the box may not reach: answered with a TCP reset or ICMP
            unreachable) since the VM started; counted on the host. None: no network.
        total_create_duration_ms: Start to the guest agent answering.
        guest_boot_duration_ms: VM process start to the guest agent answering.
        stage_filesystem_setup_ms, stage_image_prepare_ms, stage_guest_rootfs_ms,
        stage_box_config_ms, stage_box_spawn_ms, stage_container_init_ms: the launch's
            stages (None for a box another process started).

    And ours: cpu_seconds, memory_rss_bytes, guest_memory_used_bytes,
    guest_memory_total_bytes, execs_run, create_seconds, boot_seconds.
    """

    cpu_seconds: float = 0.0
    memory_rss_bytes: int = 0
    guest_memory_used_bytes: int = 0
    guest_memory_total_bytes: int = 0
    execs_run: int = 0
    create_seconds: float = 0.0
    boot_seconds: float = 0.0
    commands_executed_total: int = 0
    exec_errors_total: int = 0
    bytes_sent_total: int = 0
    bytes_received_total: int = 0
    cpu_percent: float | None = None
    memory_bytes: int | None = None
    network_bytes_sent: int | None = None
    network_bytes_received: int | None = None
    network_tcp_connections: int | None = None
    network_tcp_errors: int | None = None
    total_create_duration_ms: int | None = None
    guest_boot_duration_ms: int | None = None
    stage_filesystem_setup_ms: int | None = None
    stage_image_prepare_ms: int | None = None
    stage_guest_rootfs_ms: int | None = None
    stage_box_config_ms: int | None = None
    stage_box_spawn_ms: int | None = None
    stage_container_init_ms: int | None = None
    network_refused_flows: int | None = None

    @classmethod
    def _from_core(cls, d: Mapping[str, Any]) -> BoxMetrics:
        return _known_fields(cls, d)


@dataclass(frozen=True)
class RuntimeMetrics:
    """Counters of one runtime object (this process) since it was opened.

    Attributes:
        boxes_created_total: Boxes created.
        boxes_failed_total: Box starts that failed.
        boxes_stopped_total: Running boxes stopped (or removed while running).
        num_running_boxes: Boxes of this runtime running now.
        total_commands_executed: Commands started in its boxes.
        total_exec_errors: Commands that failed to start or lost their box.
    """

    boxes_created_total: int = 0
    boxes_failed_total: int = 0
    boxes_stopped_total: int = 0
    num_running_boxes: int = 0
    total_commands_executed: int = 0
    total_exec_errors: int = 0

    @classmethod
    def _from_core(cls, d: Mapping[str, Any]) -> RuntimeMetrics:
        return _known_fields(cls, d)

