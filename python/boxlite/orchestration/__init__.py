"""``boxlite.orchestration``: boxes that run Python handlers and message each other
(BoxLite 0.9's ``BoxRuntime`` and ``ManagedBox``, Ray-style).

::

    from boxlite.orchestration import BoxRuntime

    async with BoxRuntime() as rt:
        worker = await rt.create_box("worker")
        client = await rt.create_box("client")

        @worker.on_message
        def answer(sender, data):
            return {"sum": sum(data), "from": sender}

        @client.task
        def ask():
            import boxlite_runtime
            print(boxlite_runtime.send_message("worker", [1, 2, 3]))  # {'sum': 6, ...}

        await worker.run()
        await client.run()
        await client.wait()          # 0
    # Leaving stops and removes every box.

Each box is a :class:`~boxlite.SimpleBox` (``managed-NAME``) of
``python:X.Y-slim`` (the host's Python version: handlers travel as cloudpickle, which
needs the same version on both sides). ``run()`` starts one ``python3`` in the box that
loads the handlers and speaks JSON lines with the host over its stdin/stdout (the
protocol is in boxlite_runtime.py beside this file); the host routes ``send_message`` to
the target box (30 s timeout) and ``publish_event`` to every other running box.

No network is needed in the box: the host ships its own cloudpickle (pure Python) and
the guest module ``boxlite_runtime`` into ``/opt/boxlite-orchestration`` on ``start()``,
where 0.9 ran ``pip install cloudpickle``. The image needs only ``python3`` of the
host's version. Handlers run in the box, so they import what they use inside their body
(``import boxlite_runtime``); data and results must be JSON values.

Needs ``pip install 'boxlite[orchestration]'`` (cloudpickle) on the host.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..box import SimpleBox, StreamExecution
from ..errors import BoxliteError

__all__ = ["BoxRuntime", "ManagedBox", "GUEST_DIR", "default_image"]

GUEST_DIR = "/opt/boxlite-orchestration"
"""Where the host ships cloudpickle and boxlite_runtime in each box."""
ROUTE_TIMEOUT = 30.0
STOP_GRACE = 5.0
# A protocol line longer than this ends the box's process (the guest is not trusted).
MAX_LINE = 16 * 1024 * 1024
_BOOTSTRAP = "import boxlite_runtime; boxlite_runtime._main()"
_STDERR_KEEP = 64 * 1024


def default_image() -> str:
    """``python:X.Y-slim`` for the host's Python X.Y (0.9's choice)."""
    return f"python:{sys.version_info[0]}.{sys.version_info[1]}-slim"


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError:
        raise ImportError(
            "boxlite.orchestration needs cloudpickle on the host: pip install 'boxlite[orchestration]'"
        ) from None
    return cloudpickle


def _stage(directory: Path) -> None:
    """Fills ``directory`` with what the box needs: cloudpickle and boxlite_runtime."""
    cloudpickle = _cloudpickle()
    source = Path(cloudpickle.__file__).resolve().parent
    shutil.copytree(source, directory / "cloudpickle",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(Path(__file__).with_name("boxlite_runtime.py"), directory / "boxlite_runtime.py")


class ManagedBox:
    """One box of a :class:`BoxRuntime`: handlers registered with :meth:`task`,
    :meth:`on_message` and :meth:`on_event`, started with :meth:`run`."""

    def __init__(self, runtime: BoxRuntime, name: str, box_kwargs: dict[str, Any]) -> None:
        self._runtime = runtime
        self.name = name
        kwargs = dict(box_kwargs)
        if "image" not in kwargs and "rootfs_path" not in kwargs:
            kwargs["image"] = runtime.image
        kwargs.setdefault("name", f"managed-{name}")
        # Checked now (ConfigError), before anything boots.
        self.box = SimpleBox(**kwargs)
        self._task: Callable[[], Any] | None = None
        self._message: Callable[[str, Any], Any] | None = None
        self._events: dict[str, list[Callable[[Any], Any]]] = {}
        self._execution: StreamExecution | None = None
        self._reader: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._exit_code: int | None = None
        self._stderr = bytearray()
        self._started = False

    def __repr__(self) -> str:
        return f"<ManagedBox {self.name!r} running={self.running}>"

    @property
    def running(self) -> bool:
        """Whether its process runs (between :meth:`run` and its exit)."""
        return self._reader is not None and not self._reader.done()

    @property
    def stderr(self) -> str:
        """What the handlers printed (stdout and stderr of the box's process; the last
        64 KiB)."""
        return self._stderr.decode("utf-8", errors="replace")

    # Handlers.

    def task(self, func: Callable[[], Any]) -> Callable[[], Any]:
        """Registers the box's one-shot task: ``run()`` calls it, then the process exits
        (0, or 1 when it raised)."""
        self._task = func
        return func

    def on_message(self, handler: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
        """Registers ``handler(sender, data) -> result`` for messages to this box."""
        self._message = handler
        return handler

    def on_event(self, event: str) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        """Registers ``handler(data)`` for ``event`` published by another box."""
        def register(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
            self._events.setdefault(event, []).append(handler)
            return handler
        return register

    # Lifecycle.

    async def start(self) -> ManagedBox:
        """Boots the box and ships cloudpickle and boxlite_runtime into it."""
        if self._started:
            return self
        await self.box.start()
        try:
            check = await self.box.exec(
                "python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])", timeout=120)
            want = f"{sys.version_info[0]}.{sys.version_info[1]}"
            if check.exit_code == 127:
                raise BoxliteError(f"box {self.name}: the image has no python3 (use {default_image()})")
            if check.stdout.strip() != want:
                raise BoxliteError(
                    f"box {self.name}: the image's Python is {check.stdout.strip()[:20] or '?'}, the "
                    f"host's {want}; handlers travel as cloudpickle and need the same version "
                    f"(use {default_image()})")
            with tempfile.TemporaryDirectory(prefix="boxlite-orchestration-") as tmp:
                stage = Path(tmp) / "ship"
                stage.mkdir()
                _stage(stage)
                await self.box.copy_in(stage, GUEST_DIR)
        except BaseException:
            await self.box.stop()
            raise
        self._started = True
        return self

    def _payload(self) -> bytes:
        cloudpickle = _cloudpickle()
        spec = {"task": self._task, "message": self._message, "events": self._events}
        handlers = [self._task, self._message, *itertools.chain(*self._events.values())]
        modules = {getattr(h, "__module__", None) for h in handlers if h is not None}
        # Handlers defined in an importable module of the user's (not __main__) are
        # pickled by value: the box does not have that module.
        by_value = [sys.modules[m] for m in modules
                    if m and m != "__main__" and m in sys.modules
                    and m.split(".")[0] not in sys.stdlib_module_names
                    and not m.startswith("boxlite")]
        for module in by_value:
            cloudpickle.register_pickle_by_value(module)
        try:
            return base64.b64encode(cloudpickle.dumps(spec))
        finally:
            for module in by_value:
                cloudpickle.unregister_pickle_by_value(module)

    async def run(self, env: dict[str, str] | None = None) -> None:
        """Starts the box's process with its handlers (starting the box first if
        needed). With a task it runs the task; without, it serves messages and events
        until :meth:`stop`."""
        if self.running:
            raise BoxliteError(f"box {self.name} is already running its handlers")
        payload = self._payload()
        await self.start()
        environment = dict(env or {})
        environment.update({"BOXLITE_BOX_NAME": self.name, "PYTHONPATH": GUEST_DIR})
        execution = await self.box.stream("python3", "-c", _BOOTSTRAP, env=environment)
        self._execution = execution
        self._exit_code = None
        self._stderr.clear()
        await self._send_raw(payload + b"\n")
        self._reader = asyncio.create_task(self._read(execution), name=f"managed-{self.name}")

    async def wait(self) -> int:
        """Waits for the box's process to exit and returns its exit code."""
        if self._reader is None:
            raise BoxliteError(f"box {self.name} was never run (await box.run())")
        await asyncio.shield(self._reader)
        assert self._exit_code is not None
        return self._exit_code

    async def stop(self) -> None:
        """Asks the process to stop (``shutdown``), kills it after 5 s, stops the box."""
        try:
            if self.running and self._execution is not None:
                with contextlib.suppress(BoxliteError, OSError):
                    await self._send({"type": "shutdown"})
                try:
                    await asyncio.wait_for(asyncio.shield(self._reader), STOP_GRACE)  # type: ignore[arg-type]
                except asyncio.TimeoutError:
                    with contextlib.suppress(BoxliteError):
                        await self._execution.kill()
                    with contextlib.suppress(asyncio.TimeoutError, BoxliteError):
                        await asyncio.wait_for(asyncio.shield(self._reader), STOP_GRACE)  # type: ignore[arg-type]
        finally:
            if self._reader is not None and not self._reader.done():
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, BaseException):
                    await self._reader
            self._started = False
            await self.box.stop()

    # The protocol.

    async def _send_raw(self, data: bytes) -> None:
        assert self._execution is not None
        async with self._write_lock:
            await self._execution.write_stdin(data)

    async def _send(self, message: dict[str, Any]) -> None:
        await self._send_raw(json.dumps(message).encode() + b"\n")

    async def _read(self, execution: StreamExecution) -> None:
        buf = bytearray()
        pending: dict[asyncio.Future[bytes], int] = {}
        try:
            out_done = err_done = False
            while not (out_done and err_done):
                if not out_done and 1 not in pending.values():
                    pending[asyncio.ensure_future(execution.read(1))] = 1
                if not err_done and 2 not in pending.values():
                    pending[asyncio.ensure_future(execution.read(2))] = 2
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    fd = pending.pop(fut)
                    chunk = fut.result()
                    if fd == 2:
                        err_done = not chunk
                        self._stderr += chunk
                        del self._stderr[:-_STDERR_KEEP]
                        continue
                    if not chunk:
                        out_done = True
                        continue
                    buf += chunk
                    while (nl := buf.find(b"\n")) >= 0:
                        line = bytes(buf[:nl])
                        del buf[: nl + 1]
                        self._dispatch(line)
                    if len(buf) > MAX_LINE:
                        self._stderr += b"\n[boxlite.orchestration: a protocol line over 16 MiB; killed]\n"
                        await execution.kill()
                        buf.clear()
            result = await execution.wait()
            self._exit_code = result.exit_code
        except BaseException:
            self._exit_code = -1
            raise
        finally:
            for fut in pending:
                fut.cancel()

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return  # Not the protocol: ignored.
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "send":
            self._runtime._spawn(self._runtime._route(self, msg))
        elif kind == "publish":
            self._runtime._spawn(self._runtime._publish(self, msg))
        elif kind == "response":
            self._runtime._answered(msg)


class BoxRuntime:
    """A group of managed boxes that message each other. An async context manager:
    leaving it calls :meth:`shutdown`.

    Args (all optional, keyword-only; 0.9's takes none):
        image: The image of boxes created without one (default ``python:X.Y-slim``).
        runtime: The :class:`~boxlite.Boxlite` runtime of the boxes.
    """

    def __init__(self, *, image: str | None = None, runtime: Any = None) -> None:
        _cloudpickle()  # Fails now, with what to install, rather than at run().
        self.image = image or default_image()
        self._box_runtime = runtime
        self._boxes: dict[str, ManagedBox] = {}
        self._routes: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._route_ids = itertools.count(1)
        self._tasks: set[asyncio.Future[None]] = set()

    async def __aenter__(self) -> BoxRuntime:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown()

    async def create_box(self, name: str, *, auto_start: bool = True, **kwargs: Any) -> ManagedBox:
        """Creates the managed box ``name`` (its box is ``managed-NAME``); ``kwargs`` go
        to :class:`~boxlite.SimpleBox`. With ``auto_start`` it is booted now.

        Raises:
            ValueError: The name is taken in this runtime.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, not {name!r}")
        if name in self._boxes:
            raise ValueError(f"a box named {name!r} already exists in this BoxRuntime")
        if self._box_runtime is not None:
            kwargs.setdefault("runtime", self._box_runtime)
        managed = ManagedBox(self, name, kwargs)
        self._boxes[name] = managed
        if auto_start:
            try:
                await managed.start()
            except BaseException:
                self._boxes.pop(name, None)
                raise
        return managed

    def list_boxes(self) -> list[str]:
        """The names of this runtime's boxes, in creation order."""
        return list(self._boxes)

    def get_box(self, name: str) -> ManagedBox | None:
        """The managed box ``name``, or None."""
        return self._boxes.get(name)

    async def wait_all(self, timeout: float | None = None) -> list[int]:
        """Waits for every box's process; returns their exit codes in creation order
        (-1 for a box never run, one that failed, or one still running at ``timeout``)."""
        boxes = list(self._boxes.values())

        async def one(box: ManagedBox) -> int:
            if box._reader is None:
                return -1
            try:
                return await asyncio.wait_for(box.wait(), timeout)
            except (asyncio.TimeoutError, BoxliteError):
                return -1

        return list(await asyncio.gather(*(one(b) for b in boxes)))

    async def stop_all(self) -> None:
        """Stops every box (they stay listed; :meth:`shutdown` also forgets them)."""
        results = await asyncio.gather(*(b.stop() for b in self._boxes.values()),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def shutdown(self) -> None:
        """Stops and removes every box, and forgets them."""
        try:
            await self.stop_all()
        finally:
            self._boxes.clear()
            for fut in self._routes.values():
                fut.cancel()
            self._routes.clear()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Routing.

    async def _route(self, sender: ManagedBox, msg: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"request_id": msg.get("request_id")}
        target = self._boxes.get(str(msg.get("target")))
        try:
            if target is None or not target.running:
                known = ", ".join(n for n, b in self._boxes.items() if b.running) or "none"
                raise LookupError(f"no running box named {msg.get('target')!r} (running: {known})")
            route_id = f"r{next(self._route_ids)}"
            fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._routes[route_id] = fut
            try:
                await target._send({"type": "message", "sender": sender.name,
                                    "data": msg.get("data"), "request_id": route_id})
                answer = await asyncio.wait_for(fut, ROUTE_TIMEOUT)
            finally:
                self._routes.pop(route_id, None)
            if answer.get("error") is not None:
                reply["error"] = answer["error"]
            else:
                reply["result"] = answer.get("result")
        except asyncio.TimeoutError:
            reply["error"] = f"box {target.name if target else '?'} did not answer within {ROUTE_TIMEOUT:g} s"
        except (LookupError, BoxliteError, OSError) as exc:
            reply["error"] = str(exc)
        with contextlib.suppress(BoxliteError, OSError):
            if sender.running:
                await sender._send(reply)

    def _answered(self, msg: dict[str, Any]) -> None:
        fut = self._routes.get(str(msg.get("request_id")))
        if fut is not None and not fut.done():
            fut.set_result(msg)

    async def _publish(self, sender: ManagedBox, msg: dict[str, Any]) -> None:
        event = {"type": "event", "event": msg.get("event"), "data": msg.get("data")}
        for box in list(self._boxes.values()):
            if box is not sender and box.running:
                with contextlib.suppress(BoxliteError, OSError):
                    await box._send(event)

