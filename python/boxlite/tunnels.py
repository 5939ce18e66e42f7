"""Tunnels: TCP connections into a box (BoxLite 0.9's ``box.network.tunnel(port)``).

::

    async with boxlite.SimpleBox("boxlite/base") as box:
        await box.exec("sh", "-c", "nc -lk -p 8080 -e cat &")
        tunnel = await box.tunnel(8080)          # or: await box.network.tunnel(8080)
        conn = await tunnel.connect()
        await conn.write(b"ping")
        await conn.shutdown_write()
        print(await conn.read(4096))             # b"ping"; b"" at the end
        await conn.close()

A tunnel reaches the port as a server in the box sees a client on 127.0.0.1 (or, when
nothing listens there, on the box's own address). It is carried by the box's agent
channel, not its network: it works for a box created with ``network="none"`` too, and
nothing listens on the host. Both directions are flow-controlled end to end. The port is
checked, and the connection made, by ``tunnel(port)``: a port outside 1..65535 is a
:class:`ConfigError` (a ``ValueError``), a port nothing listens on a
:class:`BoxliteError` saying so. ``connect()`` hands the connection out once.

The synchronous twins (``boxlite.sync``, ``boxlite.sync_api``) have the same names
without ``await``: ``SyncNetworkHandle``, ``SyncBoxTunnel``, ``SyncBoxConnection``.
"""

from __future__ import annotations

import concurrent.futures
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _bridge
from .errors import BoxStateError, NotSupportedError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "NetworkHandle",
    "BoxTunnel",
    "BoxConnection",
    "SyncNetworkHandle",
    "SyncBoxTunnel",
    "SyncBoxConnection",
]

# What read() takes when not told (0.9 requires max_bytes; ours defaults it).
_READ_DEFAULT = 65536


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"write() takes bytes (or str, sent as UTF-8), not {type(data).__name__}")


def _endpoint_error() -> NotSupportedError:
    return NotSupportedError(
        "BoxTunnel.endpoint() is not available: a local tunnel is carried by the box's agent "
        "channel, with no socket or URL of its own; use connect()",
        code="not_supported",
    )


def _consumed(port: int) -> BoxStateError:
    # BoxLite 0.9's words.
    return BoxStateError(f"tunnel connection has already been consumed (port {port}); open a new tunnel")


class _PortBound:
    """What tunnels and connections share: the core object and the port in the box."""

    def __init__(self, core: Any, port: int) -> None:
        self._core: Any | None = core
        self._port = port

    @property
    def port(self) -> int:
        """The port in the box."""
        return self._port

    def __repr__(self) -> str:
        return f"<{type(self).__name__} port={self._port}>"


class _TunnelBase(_PortBound):
    def _take(self) -> Any:
        """The connection, once (0.9's one-shot connect)."""
        core_conn, self._core = self._core, None
        if core_conn is None:
            raise _consumed(self._port)
        return core_conn

    def endpoint(self) -> str | int:
        """BoxLite 0.9's URI or socket of the tunnel: not available here
        (:class:`NotSupportedError`); use ``connect()``."""
        raise _endpoint_error()


class BoxConnection(_PortBound):
    """One TCP connection into a box (from :meth:`BoxTunnel.connect`). Usable as
    ``async with``, which closes it on the way out."""

    def __init__(self, core_conn: Any, port: int) -> None:
        super().__init__(core_conn, port)
        # A read whose awaiting task was cancelled: its bytes are the next read's.
        self._pending: concurrent.futures.Future[bytes] | None = None

    async def read(self, max_bytes: int = _READ_DEFAULT) -> bytes:
        """Up to ``max_bytes`` received from the box; ``b""`` once the box's side has
        closed."""
        cf = self._pending or _bridge.submit(self._core.read, max_bytes)
        self._pending = cf
        data: bytes = await _bridge.wait(cf)
        self._pending = None
        return data

    async def write(self, data: bytes | bytearray | memoryview | str) -> int:
        """Sends all of ``data``; returns its length. Waits while the box has not taken
        the bytes before it."""
        payload = _as_bytes(data)
        await _bridge.call(self._core.write, payload)
        return len(payload)

    async def shutdown_write(self) -> None:
        """Half close: the program in the box reads end of stream; reading goes on."""
        await _bridge.call(self._core.shutdown_write)

    async def close(self) -> None:
        """Closes both directions. Safe to call twice."""
        await _bridge.call(self._core.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class BoxTunnel(_TunnelBase):
    """A tunnel to a port in a box (from :meth:`NetworkHandle.tunnel`): its connection,
    handed out once by :meth:`connect`."""

    async def connect(self) -> BoxConnection:
        """The connection; a second call raises :class:`BoxStateError`."""
        return BoxConnection(self._take(), self._port)


class NetworkHandle:
    """A box's network handle (``box.network``): tunnels into the box."""

    def __init__(self, box: Any) -> None:
        self._box = box

    async def tunnel(self, port: int) -> BoxTunnel:
        """Connects to TCP ``port`` (1..65535) in the running box; see the module."""
        core = self._box._require_core()
        conn = await _bridge.call(core.tunnel, port)
        return BoxTunnel(conn, port)

    def __repr__(self) -> str:
        return f"<NetworkHandle of {self._box!r}>"


# --- Synchronous twins (boxlite.sync, boxlite.sync_api) ---


class SyncBoxConnection(_PortBound):
    """One TCP connection into a box (synchronous API); see :class:`BoxConnection`.
    Usable as ``with``, which closes it."""

    def read(self, max_bytes: int = _READ_DEFAULT) -> bytes:
        """Up to ``max_bytes`` received from the box; ``b""`` once its side has closed."""
        data: bytes = _bridge.call_sync(self._core.read, max_bytes, on_interrupt=self._core.close)
        return data

    def write(self, data: bytes | bytearray | memoryview | str) -> int:
        """Sends all of ``data``; returns its length."""
        payload = _as_bytes(data)
        _bridge.call_sync(self._core.write, payload, on_interrupt=self._core.close)
        return len(payload)

    def shutdown_write(self) -> None:
        """Half close: the program in the box reads end of stream."""
        self._core.shutdown_write()

    def close(self) -> None:
        """Closes both directions. Safe to call twice."""
        self._core.close()

    def __enter__(self) -> SyncBoxConnection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SyncBoxTunnel(_TunnelBase):
    """A tunnel to a port in a box (synchronous API); see :class:`BoxTunnel`."""

    def connect(self) -> SyncBoxConnection:
        """The connection; a second call raises :class:`BoxStateError`."""
        return SyncBoxConnection(self._take(), self._port)


class SyncNetworkHandle:
    """A box's network handle (synchronous API; ``box.network``)."""

    def __init__(self, box: Any) -> None:
        self._box = box

    def tunnel(self, port: int) -> SyncBoxTunnel:
        """Connects to TCP ``port`` (1..65535) in the running box."""
        core = self._box._require_core()
        return SyncBoxTunnel(core.tunnel(port), port)  # Connecting in the box is immediate.

    def __repr__(self) -> str:
        return f"<SyncNetworkHandle of {self._box!r}>"
