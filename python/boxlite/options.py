"""Options of the runtime and of boxes, validated when they are built.

Every check here raises :class:`~boxlite.ConfigError` before any VM starts. Both the
spellings of the BoxLite 0.10 SDK and those of its documentation are accepted
(``cpu``/``cpus``, ``memory``/``memory_mib``, ``disk_size``/``disk_size_gb``,
``mounts``/``volumes``); the canonical attribute names are the C++ ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from ._core import core
from .errors import ConfigError

__all__ = [
    "Options",
    "ImageRegistry",
    "BoxOptions",
    "NetworkSpec",
    "VolumeMount",
    "PortForward",
    "EnvLike",
    "MountLike",
    "PortLike",
]

EnvLike = Union[
    Mapping[str, str], Mapping[bytes, bytes], Iterable[tuple[str, str]], Iterable[tuple[bytes, bytes]]
]
"""An environment: ``{"K": "v"}`` or ``[("K", "v"), ...]``; names and values may be
bytes (see :func:`as_text`)."""

MountLike = Union[
    tuple[str, str],
    tuple[str, str, str],
    tuple[str, str, bool],
    "VolumeMount",
    Mapping[str, Any],
]
"""A host mount: ``(host, guest)``, ``(host, guest, "ro"|"rw")``,
``(host, guest, read_only: bool)``, a :class:`VolumeMount` or a dict with
``host_path``, ``guest_path`` and ``read_only`` or ``mode``."""

PortLike = Union[tuple[int, int], tuple[int, int, str], "PortForward"]
"""A published TCP port: ``(host_port, guest_port)``; host port 0 picks a free one."""

# The core's defaults (include/boxlite/options.h): the one copy, read through the binding.
_DEFAULTS: dict[str, Any] = core.default_box_options()
_DEFAULT_IMAGE: str = _DEFAULTS["image"]


@dataclass(frozen=True)
class VolumeMount:
    """A host directory or file shared into the box (virtio-9p).

    Attributes:
        host_path: Absolute path on the host; it must exist.
        guest_path: Absolute path in the box (not ``/``).
        read_only: Whether the box may only read it.
    """

    host_path: str
    guest_path: str
    read_only: bool = False


@dataclass(frozen=True)
class PortForward:
    """A TCP port of the box published on the host (127.0.0.1 unless a ``host_ip`` was
    given with the port).

    Attributes:
        host_port: The host port; 0 picks a free one.
        guest_port: The port in the box.
    """

    host_port: int
    guest_port: int


@dataclass(frozen=True)
class NetworkSpec:
    """The box's network.

    Attributes:
        mode: ``"nat"`` or ``"enabled"`` (outbound access through user-mode networking,
            the default), ``"none"`` or ``"disabled"`` (no network interface).
        allow_net: The egress allow-list (docs/networking.md): empty, every public
            address; else only these, each an exact host, ``"*.domain"``, an IPv4/IPv6
            address or CIDR, with an optional ``":port"`` (``"[v6]:port"``) that is
            enforced. Other names do not resolve (NXDOMAIN) and other flows are refused.
        allow_host: ``"nat"`` only: let the box reach this host, its 127.0.0.1 at
            10.0.2.2 and its own addresses, which a default box cannot. Private networks
            (10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16) stay closed either way.
    """

    mode: str = "nat"
    allow_net: tuple[str, ...] = field(default_factory=tuple)
    allow_host: bool = False


def as_text(name: str, value: Any) -> Any:
    """The SDK's rule for names, paths, arguments and environment, which are bytes in the
    box: ``bytes`` become ``str`` by UTF-8 with each undecodable byte as a lone surrogate
    (U+DC80..U+DCFF, Python's "surrogateescape", as :func:`os.fsdecode` does on Linux),
    and such a ``str`` is turned back into exactly those bytes. Strings the SDK returns
    (box names, messages) are decoded the same way, so they never raise. Anything else is
    returned unchanged for the caller's type check."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        try:
            value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise ConfigError(
                f"{name} contains a lone surrogate that stands for no byte: {value!r}"
            ) from None
    return value


def _check_str(name: str, value: Any, *, allow_empty: bool = True) -> str:
    value = as_text(name, value)
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, not {type(value).__name__}")
    if not allow_empty and not value:
        raise ConfigError(f"{name} must not be empty")
    if "\0" in value:
        raise ConfigError(f"{name} must not contain NUL bytes")
    return value


def _pick(name: str, value: Any, alias: str, alias_value: Any, default: Any) -> Any:
    """Resolves a parameter with two spellings. Either may be given; giving both with
    different values is an error unless one of them is just the default."""
    if value is None:
        return default if alias_value is None else alias_value
    if alias_value is None or alias_value == value or alias_value == default:
        return value
    if value == default:
        return alias_value
    raise ConfigError(f"{name}={value!r} and {alias}={alias_value!r} disagree: give one")


def normalize_env(env: EnvLike | None, what: str = "env") -> list[tuple[str, str]]:
    """Returns ``env`` as a list of ``(name, value)`` pairs, checking names and values."""
    if env is None:
        return []
    if isinstance(env, Mapping):
        items: Iterable[Any] = env.items()
    elif isinstance(env, (str, bytes)):
        raise ConfigError(f"{what} must be a dict or a list of (name, value) pairs, not a string")
    else:
        try:
            items = list(env)
        except TypeError:
            raise ConfigError(
                f"{what} must be a dict or a list of (name, value) pairs, "
                f"not {type(env).__name__}"
            ) from None
    out: list[tuple[str, str]] = []
    for item in items:
        item = as_text(what, item) if isinstance(item, (bytes, bytearray)) else item
        if isinstance(item, str) and "=" in item:
            key, value = item.split("=", 1)
        else:
            try:
                key, value = item
            except (TypeError, ValueError):
                raise ConfigError(f"{what} entries must be (name, value) pairs, not {item!r}") from None
        key = _check_str(f"{what} name", key, allow_empty=False)
        if "=" in key:
            raise ConfigError(f"{what} name {key!r} must not contain '='")
        value = as_text(f"{what} value of {key}", value)
        if not isinstance(value, str):
            raise ConfigError(f"{what} value of {key} must be a string, not {type(value).__name__}")
        value = _check_str(f"{what} value of {key}", value)
        out.append((key, value))
    return out


def _mount_mode(value: Any, spec: Any) -> Any:
    """``"ro"``/``"rw"`` (and their long forms) as a bool; anything else is passed on for
    the core to reject with the field's name."""
    if isinstance(value, str):
        mode = value.lower()
        if mode in ("ro", "readonly", "read-only", "read_only"):
            return True
        if mode in ("rw", "readwrite", "read-write", "read_write"):
            return False
        raise ConfigError(f"mount mode must be \"ro\" or \"rw\" (or read_only: bool), not {value!r} in {spec!r}")
    return value


def _first(spec: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if key in spec:
            return spec[key]
    return default


def normalize_mount(spec: Any) -> VolumeMount:
    """One mount in any of its spellings: ``(host, guest[, "ro"|"rw"|read_only])``, a
    :class:`VolumeMount`, or a dict with ``host_path``/``host``/``source``,
    ``guest_path``/``guest``/``target`` and ``read_only``/``ro``/``mode``. The host path
    is made absolute; the core checks the rest."""
    if isinstance(spec, VolumeMount):
        host, guest, read_only = spec.host_path, spec.guest_path, spec.read_only
    elif isinstance(spec, Mapping):
        host = _first(spec, "host_path", "host", "source")
        guest = _first(spec, "guest_path", "guest", "target")
        read_only = _mount_mode(_first(spec, "read_only", "ro", "mode", default=False), spec)
    elif isinstance(spec, (tuple, list)) and len(spec) in (2, 3):
        host, guest = spec[0], spec[1]
        read_only = _mount_mode(spec[2], spec) if len(spec) == 3 else False
    else:
        raise ConfigError(
            f"a mount is (host_path, guest_path[, \"ro\"|\"rw\"|read_only]), not {spec!r}"
        )
    if isinstance(host, os.PathLike):
        host = os.fspath(host)
    # Volumes (boxlite/volumes.py): no host side (None or "") is an anonymous volume made
    # for the box; a volume id (12 Base62 characters, no '/') names a volume of the
    # runtime. The core checks the rest (ValidateBoxOptions).
    if host is None:
        host = ""
    host = as_text("mount host path", host)
    if isinstance(host, str) and host and "\0" not in host:
        if not ("/" not in host and _core_module().looks_like_volume_id(host)):
            host = os.path.abspath(host)
    return VolumeMount(host, as_text("mount guest path", guest), read_only)


def normalize_port(spec: Any) -> dict[str, Any]:
    """One published port in any of its spellings, as the core's dict: ``(host, guest)``,
    BoxLite 0.9's ``(host, guest[, protocol[, host_ip]])`` or ``{"guest_port"|"guest",
    "host_port"|"host", "protocol", "host_ip"}``, or a :class:`PortForward`. A host port
    of None or 0 picks a free one."""
    if isinstance(spec, PortForward):
        return {"host_port": spec.host_port, "guest_port": spec.guest_port}
    if isinstance(spec, Mapping):
        out = {
            "host_port": _first(spec, "host_port", "host"),
            "guest_port": _first(spec, "guest_port", "guest"),
        }
        for key in ("protocol", "host_ip"):
            if spec.get(key) is not None:
                out[key] = spec[key]
        if out["guest_port"] is None:
            raise ConfigError(f"a port needs guest_port, not {dict(spec)!r}")
        return out
    if isinstance(spec, (tuple, list)) and 2 <= len(spec) <= 4:
        out = {"host_port": spec[0], "guest_port": spec[1]}
        if len(spec) >= 3 and spec[2] is not None:
            out["protocol"] = spec[2].lower() if isinstance(spec[2], str) else spec[2]
        if len(spec) == 4 and spec[3] is not None:
            out["host_ip"] = spec[3]
        return out
    raise ConfigError(f"a port is (host_port, guest_port) or a dict with guest_port, not {spec!r}")


_NETWORK_MODES = {"enabled": "nat", "disabled": "none"}


def _normalize_network(network: Any) -> tuple[Any, bool, list[Any]]:
    """(mode, allow_host, allow_net) of a mode string or a :class:`NetworkSpec`; BoxLite
    0.9's modes ``"enabled"``/``"disabled"`` (any case) are ``"nat"``/``"none"``."""
    allow_host: Any = False
    allow_net: list[Any] = []
    if isinstance(network, NetworkSpec):
        allow_host = network.allow_host
        allow_net = list(network.allow_net or [])
        network = network.mode
    if isinstance(network, str):
        network = _NETWORK_MODES.get(network.lower(), network)
    return network, allow_host, allow_net


class BoxOptions:
    """Everything that describes a box. Checked on construction by the core's rules
    (ConfigError, or NotSupportedError for a feature this build lacks); the defaults are
    the core's too.

    Both spellings are accepted: this SDK's (``cpu``, ``memory``, ``disk_size`` in MiB,
    ``mounts`` with ``"ro"``/``"rw"``, ``network="nat"|"none"``) and BoxLite 0.9's
    (``cpus``, ``memory_mib``, ``disk_size_gb``, ``volumes`` with a bool or dicts,
    ``NetworkSpec(mode="enabled"|"disabled")``).

    Args:
        image: An OCI reference (short names mean ``docker.io/library/...``) or a
            built-in image such as ``"boxlite/base"``. None: ``"alpine:latest"``, unless
            ``rootfs_path`` is given.
        cpus: vCPUs (alias ``cpu``). Default 1.
        memory_mib: MiB of guest RAM (alias ``memory``). Default 1024.
        disk_size_mib: MiB of writable disk (alias ``disk_size``); or ``disk_size_gb``
            in GiB. Default: the image's size + 1 GiB.
        env: Box-wide environment, a dict or a list of ``(name, value)`` pairs.
        volumes: Host mounts (alias ``mounts``): ``(host, guest, "ro"|"rw")``,
            ``(host, guest, read_only)`` or dicts; the host path must exist.
        ports: Published TCP ports ``(host_port, guest_port)`` or dicts, on 127.0.0.1.
        network: ``"nat"`` (default), ``"none"`` or a :class:`NetworkSpec`.
        working_dir: Default working directory of commands (absolute).
        user: Default user of commands and of the main command (``name|uid[:group|gid]``).
        name: A unique name (``[a-zA-Z0-9][a-zA-Z0-9_.-]*``).
        auto_remove: Remove the box when it stops (None: True).
        detach: Keep the box running after this process exits (default False). A
            detached box must not be removed on stop: give ``auto_remove=False``.
        rootfs_path: A local OCI layout directory (or image archive) to boot instead of
            ``image``.
        entrypoint: Replaces the image's ENTRYPOINT (a list of strings).
        cmd: Replaces the image's CMD. entrypoint + cmd is the box's main command: it
            starts with the box (stdin held open), ``box.attach()`` reads it, and the box
            stops when it exits (``info().exit_code``).
        tty: Run the main command on a terminal.
        auto_pause: Idle seconds before a REST runtime pauses the box; locally only 0.
        auto_delete: 0 keeps the box when it stops, n > 0 removes it; set, it takes
            precedence over ``auto_remove``.
        auto_resume: BoxLite 0.9's flag for REST runtimes (default True).
        advanced: Advanced options (``boxlite.AdvancedBoxOptions``).
        secrets: ``boxlite.Secret`` values substituted by the network gateway in HTTPS
            requests to their hosts; the box sees placeholders only (docs/networking.md).
        warm: Warm start (docs/snapshots.md): True restores a template of this box's boot
            instead of booting (its first boot leaves one), False always boots. None: the
            runtime's setting (``BOXLITE_WARM``, on by default).
        max_clients: How many processes may use a detached box at once (each exec or
            attach holds one while it runs), 1 to 30 (None: 4). Each is one
            virtio-serial port of the VM (docs/kubernetes.md gives its memory cost).
    """

    image: str
    rootfs_path: str
    cpus: int
    memory_mib: int
    disk_size_mib: int
    env: list[tuple[str, str]]
    volumes: list[VolumeMount]
    ports: list[PortForward]
    network: str
    allow_host: bool
    working_dir: str
    user: str
    name: str
    auto_remove: bool
    detach: bool
    entrypoint: list[str] | None
    cmd: list[str] | None
    tty: bool
    auto_pause: int
    auto_delete: int | None
    auto_resume: bool
    warm: bool | None
    max_clients: int

    def __init__(
        self,
        image: str | None = None,
        *,
        cpus: int | None = None,
        cpu: int | None = None,
        memory_mib: int | None = None,
        memory: int | None = None,
        disk_size_mib: int | None = None,
        disk_size: int | None = None,
        disk_size_gb: float | None = None,
        env: EnvLike | None = None,
        volumes: Iterable[MountLike] | None = None,
        mounts: Iterable[MountLike] | None = None,
        ports: Iterable[PortLike] | None = None,
        network: str | NetworkSpec | None = None,
        working_dir: str | None = None,
        user: str | None = None,
        name: str | None = None,
        auto_remove: bool | None = None,
        detach: bool | None = None,
        rootfs_path: str | os.PathLike[str] | None = None,
        entrypoint: Iterable[str] | None = None,
        cmd: Iterable[str] | None = None,
        tty: bool | None = None,
        auto_pause: int | None = None,
        auto_delete: int | None = None,
        auto_resume: bool | None = None,
        advanced: Any = None,
        secrets: Iterable[Any] | None = None,
        warm: bool | None = None,
        max_clients: int | None = None,
    ) -> None:
        d = _DEFAULTS
        if isinstance(rootfs_path, os.PathLike):
            rootfs_path = os.fspath(rootfs_path)
        rootfs_path = as_text("rootfs_path", rootfs_path)
        if isinstance(rootfs_path, str) and rootfs_path:
            if not os.path.exists(rootfs_path):
                raise ConfigError(f"rootfs_path {os.path.abspath(rootfs_path)} does not exist")
            rootfs_path = os.path.abspath(rootfs_path)
        if image is None:
            image = "" if rootfs_path else d["image"]
        self.image = as_text("image", image)
        self.rootfs_path = rootfs_path or ""

        self.cpus = _pick("cpus", cpus, "cpu", cpu, d["cpus"])
        self.memory_mib = _pick("memory_mib", memory_mib, "memory", memory, d["memory_mib"])
        disk = _pick("disk_size_mib", disk_size_mib, "disk_size", disk_size, None)
        if disk_size_gb is not None:
            if isinstance(disk_size_gb, bool) or not isinstance(disk_size_gb, (int, float)):
                raise ConfigError(f"disk_size_gb must be a number, not {type(disk_size_gb).__name__}")
            gb_mib = int(round(disk_size_gb * 1024))
            if disk is not None and disk != gb_mib:
                raise ConfigError(f"disk_size={disk} MiB and disk_size_gb={disk_size_gb} disagree: give one")
            disk = gb_mib
        self.disk_size_mib = d["disk_size_mib"] if disk is None else disk

        self.env = normalize_env(env)
        if volumes is not None and mounts is not None:
            raise ConfigError("give either volumes or mounts, not both")
        mount_specs = volumes if volumes is not None else mounts
        if isinstance(mount_specs, (str, bytes)):
            raise ConfigError("mounts must be a list of (host, guest, mode) tuples")
        self.volumes = [normalize_mount(m) for m in (mount_specs or [])]
        if isinstance(ports, (str, bytes)):
            raise ConfigError("ports must be a list of (host_port, guest_port) tuples")
        self._ports = [normalize_port(p) for p in (ports or [])]
        mode, allow_host, self._allow_net = _normalize_network(d["network"] if network is None else network)
        self.network, self.allow_host = mode, allow_host
        self.working_dir = as_text("working_dir", working_dir or "")
        self.user = as_text("user", user or "")
        self.name = as_text("name", name or "")
        self.auto_remove = d["auto_remove"] if auto_remove is None else auto_remove
        self.detach = d["detach"] if detach is None else detach
        self.entrypoint = None if entrypoint is None else _argv("entrypoint", entrypoint)
        self.cmd = None if cmd is None else _argv("cmd", cmd)
        self.tty = d["tty"] if tty is None else tty
        self.auto_pause = d["auto_pause"] if auto_pause is None else auto_pause
        self.auto_delete = d["auto_delete"] if auto_delete is None else auto_delete
        self.auto_resume = d["auto_resume"] if auto_resume is None else auto_resume
        if advanced is not None and not callable(getattr(advanced, "_core_args", None)):
            raise ConfigError(
                f"advanced must be boxlite.AdvancedBoxOptions, not {type(advanced).__name__}"
            )
        self.advanced = advanced
        if isinstance(secrets, (str, bytes)):
            raise ConfigError("secrets must be a list of boxlite.Secret")
        self.secrets = list(secrets or [])
        self.warm = warm
        self.max_clients = d["max_clients"] if max_clients is None else max_clients
        # The core's rules (include/boxlite/options.h, ValidateBoxOptions).
        core.validate_box_options(self._core_args())

    # Aliases of the other SDK spelling.
    @property
    def cpu(self) -> int:
        """Alias of :attr:`cpus`."""
        return self.cpus

    @property
    def memory(self) -> int:
        """Alias of :attr:`memory_mib`."""
        return self.memory_mib

    @property
    def disk_size(self) -> int:
        """Alias of :attr:`disk_size_mib` (0: the default size)."""
        return self.disk_size_mib

    @property
    def disk_size_gb(self) -> float | None:
        """:attr:`disk_size_mib` in GiB (None: the default size)."""
        return self.disk_size_mib / 1024 if self.disk_size_mib else None

    @property
    def mounts(self) -> list[VolumeMount]:
        """Alias of :attr:`volumes`."""
        return self.volumes

    @property
    def ports(self) -> list[PortForward]:
        """The published ports (host port 0: picked when the box starts)."""
        return [PortForward(p.get("host_port") or 0, p["guest_port"]) for p in self._ports]

    @property
    def ephemeral(self) -> bool:
        """True when the box leaves nothing behind once stopped (removed on stop, not
        detached)."""
        return bool(core.removes_on_stop(self._core_args())) and not self.detach

    def replace(self, **changes: Any) -> BoxOptions:
        """Returns a copy with some options changed (validated again)."""
        current: dict[str, Any] = {
            "image": self.image or None,
            "rootfs_path": self.rootfs_path or None,
            "cpus": self.cpus,
            "memory_mib": self.memory_mib,
            "disk_size_mib": self.disk_size_mib or None,
            "env": list(self.env),
            "volumes": list(self.volumes),
            "ports": list(self._ports),
            "network": NetworkSpec(self.network, allow_net=tuple(self._allow_net), allow_host=self.allow_host),
            "working_dir": self.working_dir or None,
            "user": self.user or None,
            "name": self.name or None,
            "auto_remove": self.auto_remove,
            "detach": self.detach,
            "entrypoint": self.entrypoint,
            "cmd": self.cmd,
            "tty": self.tty,
            "auto_pause": self.auto_pause,
            "auto_delete": self.auto_delete,
            "auto_resume": self.auto_resume,
            "advanced": self.advanced,
            "secrets": list(self.secrets),
            "warm": self.warm,
            "max_clients": self.max_clients,
        }
        aliases = {"cpu": "cpus", "memory": "memory_mib", "disk_size": "disk_size_mib", "mounts": "volumes"}
        for key, value in changes.items():
            current[aliases.get(key, key)] = value
        if "disk_size_gb" in changes:
            current.pop("disk_size_mib", None)
        return BoxOptions(**current)

    def _core_args(self) -> dict[str, Any]:
        """The options as the core's dict (keys: the C++ BoxOptions field names)."""
        args: dict[str, Any] = {
            "image": self.image,
            "rootfs_path": self.rootfs_path,
            "cpus": self.cpus,
            "memory_mib": self.memory_mib,
            "disk_size_mib": self.disk_size_mib,
            "env": list(self.env),
            "mounts": [(m.host_path, m.guest_path, m.read_only) for m in self.volumes],
            "ports": [dict(p) for p in self._ports],
            "network": self.network,
            "allow_host": self.allow_host,
            "allow_net": list(self._allow_net),
            "working_dir": self.working_dir,
            "user": self.user,
            "name": self.name,
            "auto_remove": self.auto_remove,
            "detach": self.detach,
            "entrypoint": None if self.entrypoint is None else list(self.entrypoint),
            "cmd": None if self.cmd is None else list(self.cmd),
            "tty": self.tty,
            "auto_pause": self.auto_pause,
            "auto_delete": self.auto_delete,
            "auto_resume": self.auto_resume,
            "secrets": list(self.secrets),
            "warm": self.warm,
            "max_clients": self.max_clients,
        }
        if self.advanced is not None:
            args.update(self.advanced._core_args())
        return args

    def __repr__(self) -> str:
        return (
            f"BoxOptions(image={self.image or None!r}, rootfs_path={self.rootfs_path or None!r}, "
            f"cpus={self.cpus!r}, memory_mib={self.memory_mib!r}, advanced={self.advanced is not None})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BoxOptions):
            return NotImplemented
        return self._core_args() == other._core_args()

    __hash__ = None  # type: ignore[assignment]


def _argv(name: str, value: Any) -> Any:
    """A command as a list (the core checks its entries); a lone string is a mistake
    (it would be split into characters)."""
    if isinstance(value, (str, bytes)):
        raise ConfigError(f"{name} must be a list of strings, not a string: [{value!r}]")
    try:
        return [as_text(name, v) for v in value]
    except TypeError:
        raise ConfigError(f"{name} must be a list of strings, not {type(value).__name__}") from None


# --- Registries (ImageRegistry) and the runtime's Options ---
_REGISTRY_FIELDS = ("host", "transport", "skip_verify", "search", "username", "password", "bearer_token")


def _core_module() -> Any:
    from ._core import core

    return core


class ImageRegistry:
    """A registry images are pulled from, and how (BoxLite 0.9's ``ImageRegistry``).

    Args:
        host: ``host[:port]``, not a URL.
        transport: ``"https"`` (also ``""``) or ``"http"`` (plain HTTP).
        skip_verify: Accept any TLS certificate from this host (a self-signed one);
            other hosts are still verified.
        search: Look unqualified names (``alpine``) up here, in the order of
            ``Options.image_registries``, before docker.io.
        username, password: Basic credentials (given together); also sent to the
            registry's token service.
        bearer_token: Sent as ``Authorization: Bearer`` on every request; wins over
            username/password, which win over anonymous access.

    The checks are the core's (``ValidateImageRegistry``): ConfigError says what is
    wrong. ``repr`` never shows the password or the token.
    """

    __slots__ = ("_values",)

    def __init__(
        self,
        host: str,
        transport: str = "https",
        skip_verify: bool = False,
        search: bool = False,
        username: str | None = None,
        password: str | None = None,
        bearer_token: str | None = None,
    ) -> None:
        values = dict(zip(_REGISTRY_FIELDS, (host, transport, skip_verify, search, username, password, bearer_token)))
        object.__setattr__(self, "_values", self._checked(values))

    @staticmethod
    def _checked(values: dict[str, Any]) -> dict[str, Any]:
        parts: list[Any] = []
        for name in _REGISTRY_FIELDS:
            value = values[name]
            if name in ("skip_verify", "search"):
                if not isinstance(value, bool):
                    raise ConfigError(f"ImageRegistry {name} must be True or False, not {value!r}")
                parts.append(value)
            elif value is None and name not in ("host", "transport"):
                parts.append("")
            else:
                parts.append(_check_str(f"ImageRegistry {name}", value))
        normalized = _core_module().check_image_registry(tuple(parts))
        return dict(zip(_REGISTRY_FIELDS, normalized))

    def __getattr__(self, name: str) -> Any:
        if name in _REGISTRY_FIELDS:
            value = object.__getattribute__(self, "_values")[name]
            if name in ("username", "password", "bearer_token") and value == "":
                return None
            return value
        raise AttributeError(f"'ImageRegistry' object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _REGISTRY_FIELDS:
            raise AttributeError(f"'ImageRegistry' object has no attribute {name!r}")
        values = dict(self._values)
        values[name] = value
        object.__setattr__(self, "_values", self._checked(values))

    @property
    def auth(self) -> str:
        """Which credentials are used: ``"bearer"``, ``"basic"`` or ``"anonymous"``."""
        if self._values["bearer_token"]:
            return "bearer"
        return "basic" if self._values["username"] else "anonymous"

    def _core_tuple(self) -> tuple[Any, ...]:
        return tuple(self._values[name] for name in _REGISTRY_FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImageRegistry):
            return NotImplemented
        return self._values == other._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        v = self._values
        secret = lambda x: "'***'" if x else "None"  # noqa: E731
        user = repr(v["username"]) if v["username"] else "None"
        return (
            f"ImageRegistry(host={v['host']!r}, transport={v['transport']!r}, skip_verify={v['skip_verify']}, "
            f"search={v['search']}, username={user}, password={secret(v['password'])}, "
            f"bearer_token={secret(v['bearer_token'])})"
        )


class Options:
    """Options of a :class:`~boxlite.Boxlite` runtime.

    Args:
        home_dir: The state directory (images, boxes, volumes). Default:
            ``$BOXLITE_HOME``, else ``~/.local/share/boxlite``.
        image_registries: A list of :class:`ImageRegistry` (BoxLite 0.9: registries
            with transport, TLS and credentials; those with ``search=True`` resolve
            unqualified names in order, before docker.io) and/or strings: mirror URLs
            (or ``host:port``, HTTPS) tried first for Docker Hub references, e.g.
            ``["http://127.0.0.1:5000"]``, added to ``BOXLITE_REGISTRY_MIRRORS``.
        registry_mirrors: More mirror strings (the C++ spelling).
        insecure_registries: ``host:port`` entries reached over plain HTTP.
        data_dir: Where the guest kernel, initramfs and built-in images are. Default:
            ``$BOXLITE_DATA_DIR``, else the installed ``share/boxlite``.
    """

    def __init__(
        self,
        home_dir: str | os.PathLike[str] | None = None,
        image_registries: Iterable[str | ImageRegistry] | None = None,
        *,
        registry_mirrors: Iterable[str] | None = None,
        insecure_registries: Iterable[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.home_dir = self._path("home_dir", home_dir)
        self.data_dir = self._path("data_dir", data_dir)
        entries = self._registries("image_registries", image_registries)
        entries += self._strings("registry_mirrors", registry_mirrors)
        self.image_registries: list[str | ImageRegistry] = entries
        self.insecure_registries: list[str] = self._strings("insecure_registries", insecure_registries)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str]) -> Options:
        """Options from the JSON file of ``boxlite --config`` (``home_dir``,
        ``image_registries`` with ``auth: {type: anonymous|basic|bearer}``), parsed by
        the core. ConfigError names the file and the bad key."""
        d = _core_module().load_config(os.fspath(path))
        registries = [ImageRegistry(*t) for t in d["image_registries"]]
        return cls(home_dir=d["home_dir"] or None, image_registries=registries)

    @property
    def registry_mirrors(self) -> list[str]:
        """The mirror strings of :attr:`image_registries`."""
        return [r for r in self.image_registries if isinstance(r, str)]

    @property
    def registries(self) -> list[ImageRegistry]:
        """The :class:`ImageRegistry` entries of :attr:`image_registries`."""
        return [r for r in self.image_registries if isinstance(r, ImageRegistry)]

    @staticmethod
    def _path(name: str, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        value = _check_str(name, value)
        return os.path.abspath(os.path.expanduser(value)) if value else ""

    @staticmethod
    def _strings(name: str, values: Any) -> list[str]:
        if values is None:
            return []
        if isinstance(values, str):
            values = [v for v in values.split(",") if v.strip()]
        try:
            items = list(values)
        except TypeError:
            raise ConfigError(f"{name} must be a list of strings, not {type(values).__name__}") from None
        return [_check_str(f"{name} entry", v, allow_empty=False).strip() for v in items]

    @classmethod
    def _registries(cls, name: str, values: Any) -> list[str | ImageRegistry]:
        if values is None or isinstance(values, str):
            return list(cls._strings(name, values))
        try:
            items = list(values)
        except TypeError:
            raise ConfigError(f"{name} must be a list, not {type(values).__name__}") from None
        out: list[str | ImageRegistry] = []
        for v in items:
            if isinstance(v, ImageRegistry):
                out.append(v)
            else:
                out.extend(cls._strings(name, [v]))
        return out

    def _open_core(self) -> Any:
        """Opens the core runtime these options describe."""
        entries = self._registries("image_registries", self.image_registries)
        mirrors = [r for r in entries if isinstance(r, str)]
        registries = [r._core_tuple() for r in entries if isinstance(r, ImageRegistry)]
        return _core_module().Runtime.open(
            self.home_dir, self.data_dir, mirrors, list(self.insecure_registries), registries
        )

    def __repr__(self) -> str:
        return (
            f"Options(home_dir={self.home_dir!r}, image_registries={self.image_registries!r}, "
            f"insecure_registries={self.insecure_registries!r}, data_dir={self.data_dir!r})"
        )


# --- end registries and Options ---


def box_options_from_arguments(arguments: Mapping[str, Any]) -> BoxOptions:
    """The :class:`BoxOptions` of a box class's constructor arguments (its ``locals()``,
    taken first thing): the async and the sync ``SimpleBox`` share this, so their
    parameters mean the same. The default image gives way to ``rootfs_path``."""
    kwargs = {k: v for k, v in arguments.items() if k not in ("self", "runtime", "__class__")}
    if kwargs.get("rootfs_path") and kwargs.get("image") == _DEFAULT_IMAGE:
        kwargs["image"] = None
    return BoxOptions(**kwargs)


def box_options_for(options: BoxOptions | None, name: str | None, kwargs: Mapping[str, Any]) -> BoxOptions:
    """The options of ``runtime.create(options, name, **kwargs)`` (async and sync alike):
    ``options``, or keyword arguments instead of or changing it, and ``name`` over
    ``options.name``."""
    if options is None:
        options = BoxOptions(**kwargs)
    elif not isinstance(options, BoxOptions):
        raise ConfigError(f"options must be boxlite.BoxOptions, not {type(options).__name__}")
    elif kwargs:
        options = options.replace(**kwargs)
    if name is not None:
        options = options.replace(name=name)
    return options
