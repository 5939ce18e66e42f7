"""Advanced box options: security limits, Linux capabilities and health checks.

BoxLite 0.9's spelling::

    BoxOptions(image="alpine", advanced=AdvancedBoxOptions(
        security=SecurityOptions.maximum(),
        capabilities=ContainerCapabilities(add=["NET_ADMIN"], drop=["CHOWN"]),
        health_check=HealthCheckOptions(interval=5, timeout=2, retries=3, start_period=10),
    ))

The checks (ranges, capability names) are the core's (``include/boxlite/options.h``,
``ValidateAdvancedOptions``); they run when the box is created and raise ``ConfigError``.
What each option does inside the box is in ``docs/security.md``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AdvancedBoxOptions", "SecurityOptions", "ContainerCapabilities", "HealthCheckOptions"]

_GIB = 1 << 30


class SecurityOptions:
    """Limits and isolation of the box's processes.

    ``jailer_enabled`` and ``seccomp_enabled`` are accepted for BoxLite 0.9 programs;
    BoxLite's host jail (seccomp, namespaces, an unprivileged user for the VM) is always
    on and these cannot turn it off. The ``max_*`` limits are resource limits (setrlimit)
    of every process in the box: ``max_open_files`` (RLIMIT_NOFILE), ``max_file_size``
    (RLIMIT_FSIZE, bytes), ``max_processes`` (RLIMIT_NPROC; the kernel does not apply it
    to root), ``max_memory`` (RLIMIT_AS, bytes of address space), ``max_cpu_time``
    (RLIMIT_CPU, seconds); ``None`` keeps the guest's default. ``network_enabled=False``
    gives the box no network device. ``close_fds`` starts processes with only stdin,
    stdout and stderr open.
    """

    def __init__(
        self,
        jailer_enabled: bool = False,
        seccomp_enabled: bool = False,
        max_open_files: int | None = None,
        max_file_size: int | None = None,
        max_processes: int | None = None,
        max_memory: int | None = None,
        max_cpu_time: int | None = None,
        network_enabled: bool = True,
        close_fds: bool = True,
    ) -> None:
        self.jailer_enabled = jailer_enabled
        self.seccomp_enabled = seccomp_enabled
        self.max_open_files = max_open_files
        self.max_file_size = max_file_size
        self.max_processes = max_processes
        self.max_memory = max_memory
        self.max_cpu_time = max_cpu_time
        self.network_enabled = network_enabled
        self.close_fds = close_fds

    @staticmethod
    def development() -> SecurityOptions:
        """Everything off, descriptors left open (the host jail stays on regardless)."""
        return SecurityOptions(close_fds=False)

    @staticmethod
    def standard() -> SecurityOptions:
        """Jailer and seccomp on, no resource limits."""
        return SecurityOptions(jailer_enabled=True, seccomp_enabled=True)

    @staticmethod
    def maximum() -> SecurityOptions:
        """Jailer and seccomp on, 1024 open files, 1 GiB per file, 100 processes."""
        return SecurityOptions(jailer_enabled=True, seccomp_enabled=True, max_open_files=1024,
                               max_file_size=_GIB, max_processes=100)

    _FIELDS = ("jailer_enabled", "seccomp_enabled", "max_open_files", "max_file_size",
               "max_processes", "max_memory", "max_cpu_time", "network_enabled", "close_fds")

    def _core_args(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecurityOptions) and self._core_args() == other._core_args()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._core_args().items())
        return f"SecurityOptions({fields})"


class ContainerCapabilities:
    """Linux capabilities of the box's processes, changed from Docker's default set.

    Names are case-insensitive and the ``CAP_`` prefix is optional; ``"ALL"`` names every
    capability. An explicit add beats a named drop; with ``add=["ALL"]`` the named drops
    win; with ``drop=["ALL"]`` the adds are the whole set. Root in the box holds the set
    (bounding, permitted and effective); another user holds none effective.
    """

    def __init__(self, add: list[str] | None = None, drop: list[str] | None = None) -> None:
        self.add = list(add) if add is not None else []
        self.drop = list(drop) if drop is not None else []

    def _core_args(self) -> dict[str, Any]:
        return {"add": list(self.add), "drop": list(self.drop)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ContainerCapabilities) and self._core_args() == other._core_args()

    def __repr__(self) -> str:
        return f"ContainerCapabilities(add={self.add!r}, drop={self.drop!r})"


def _seconds(value: Any) -> Any:
    # 30.0 is 30 seconds; anything else goes to the core as given (and is checked there).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class HealthCheckOptions:
    """A health check of the running box, in seconds.

    The host pings the box's agent every ``interval``; an answer later than ``timeout`` is
    a failure. Failures during ``start_period`` after the start do not count, and
    ``retries`` failures in a row make the box unhealthy (``BoxInfo.health_status``).
    """

    def __init__(self, interval: int = 30, timeout: int = 10, retries: int = 3,
                 start_period: int = 60) -> None:
        self.interval = interval
        self.timeout = timeout
        self.retries = retries
        self.start_period = start_period

    def _core_args(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "interval_s": _seconds(self.interval),
            "timeout_s": _seconds(self.timeout),
            "retries": self.retries,
            "start_period_s": _seconds(self.start_period),
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HealthCheckOptions) and self._core_args() == other._core_args()

    def __repr__(self) -> str:
        return (f"HealthCheckOptions(interval={self.interval!r}, timeout={self.timeout!r}, "
                f"retries={self.retries!r}, start_period={self.start_period!r})")


class AdvancedBoxOptions:
    """Security, health check and capabilities of a box (``BoxOptions(advanced=...)``).

    ``security=None`` keeps the core's defaults (no limits, network on, descriptors
    closed); ``health_check=None`` means no health check.
    """

    def __init__(self, security: SecurityOptions | None = None,
                 health_check: HealthCheckOptions | None = None,
                 capabilities: ContainerCapabilities | None = None) -> None:
        self.security = security
        self.health_check = health_check
        self.capabilities = capabilities

    def _core_args(self) -> dict[str, Any]:
        """The ``security``, ``capabilities`` and ``health_check`` entries of the core's
        create options (dicts keyed by the C++ field names, or None for the defaults)."""
        def section(value: Any) -> Any:
            if value is None:
                return None
            core_args = getattr(value, "_core_args", None)
            # Anything else goes on as it is, and the core names the field it rejects.
            return core_args() if core_args is not None else value
        return {
            "security": section(self.security),
            "capabilities": section(self.capabilities),
            "health_check": section(self.health_check),
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AdvancedBoxOptions) and self._core_args() == other._core_args()

    def __repr__(self) -> str:
        return (f"AdvancedBoxOptions(security={self.security!r}, health_check={self.health_check!r}, "
                f"capabilities={self.capabilities!r})")
