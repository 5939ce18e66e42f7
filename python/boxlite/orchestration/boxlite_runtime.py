"""``boxlite_runtime``: the guest side of :mod:`boxlite.orchestration` (BoxLite 0.9's
module of the same name), imported by the handlers that run in a managed box.

::

    def handler(sender, data):          # registered on the host with @box.on_message
        import boxlite_runtime           # import it inside the function: it exists in the box
        return {"seen": data, "by": boxlite_runtime.BOX_NAME}

Calls: ``send_message(target, data)`` (waits for the target's handler and returns its
result; raises RuntimeError with the target's error), ``publish_event(event, data)`` (to
every other running box), ``on_message``, ``on_event(event)``, ``run_forever()``,
``stop()``, ``BOX_NAME``.

The protocol is JSON lines: this process's stdout carries them (what the code prints goes
to stderr instead) and its stdin brings the host's. Guest to host:
``{"type": "send", "target", "data", "request_id"}``, ``{"type": "publish", "event",
"data"}``, ``{"type": "response", "request_id", "result" | "error"}``. Host to guest:
``{"type": "message", "sender", "data", "request_id"}``, ``{"type": "event", "event",
"data"}``, ``{"request_id", "result" | "error"}``, ``{"type": "shutdown"}``.

Only the standard library (and cloudpickle, for the host's handlers) is needed.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import traceback
import uuid
from typing import Any, Callable

__all__ = ["BOX_NAME", "send_message", "publish_event", "on_message", "on_event",
           "run_forever", "stop"]

BOX_NAME = os.environ.get("BOXLITE_BOX_NAME", "")
# How long send_message waits for the target's answer (the host gives up after 30 s).
SEND_TIMEOUT = 60.0

_out: Any = None
_write_lock = threading.Lock()
_pending: dict[str, list[Any]] = {}
_pending_lock = threading.Lock()
_message_handler: Callable[[str, Any], Any] | None = None
_event_handlers: dict[str, list[Callable[[Any], Any]]] = {}
_stopped = threading.Event()
# Handler threads still running: the process waits for them (a handler that calls stop()
# still sends its answer).
_active: set[threading.Thread] = set()
_active_lock = threading.Lock()


def _write(obj: dict[str, Any]) -> None:
    if _out is None:
        raise RuntimeError("boxlite_runtime works only in a box run by boxlite.orchestration")
    line = json.dumps(obj) + "\n"
    with _write_lock:
        _out.write(line)
        _out.flush()


def on_message(func: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    """Registers the handler of messages: ``func(sender, data)``; its return value (JSON)
    is the sender's result, an exception its error."""
    global _message_handler
    _message_handler = func
    return func


def on_event(event: str) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Registers ``func(data)`` for the event named ``event``."""
    def register(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
        _event_handlers.setdefault(event, []).append(func)
        return func
    return register


def send_message(target: str, data: Any = None, timeout: float = SEND_TIMEOUT) -> Any:
    """Sends ``data`` to the box named ``target`` and returns its handler's result."""
    request_id = uuid.uuid4().hex
    slot: list[Any] = [threading.Event(), None]
    with _pending_lock:
        _pending[request_id] = slot
    try:
        _write({"type": "send", "target": target, "data": data, "request_id": request_id})
        if not slot[0].wait(timeout):
            raise RuntimeError(f"no answer from box {target!r} within {timeout:g} s")
    finally:
        with _pending_lock:
            _pending.pop(request_id, None)
    answer = slot[1]
    if "error" in answer and answer["error"] is not None:
        raise RuntimeError(str(answer["error"]))
    return answer.get("result")


def publish_event(event: str, data: Any = None) -> None:
    """Publishes ``event`` with ``data`` to the other running boxes."""
    _write({"type": "publish", "event": event, "data": data})


def run_forever() -> None:
    """Serves messages and events until the host's shutdown or :func:`stop`."""
    _stopped.wait()


def stop() -> None:
    """Ends :func:`run_forever` (the box's process then exits with 0)."""
    _stopped.set()


def _answer_message(msg: dict[str, Any]) -> None:
    reply: dict[str, Any] = {"type": "response", "request_id": msg.get("request_id")}
    try:
        if _message_handler is None:
            raise RuntimeError(f"box {BOX_NAME!r} has no message handler (on_message)")
        reply["result"] = _message_handler(msg.get("sender"), msg.get("data"))
        json.dumps(reply)  # The result must be JSON: a TypeError goes back as the error.
    except Exception as exc:  # noqa: BLE001 - the error goes back to the sender
        traceback.print_exc()
        reply.pop("result", None)
        reply["error"] = f"{type(exc).__name__}: {exc}"
    _write(reply)


def _run_event(msg: dict[str, Any]) -> None:
    for handler in list(_event_handlers.get(str(msg.get("event")), [])):
        try:
            handler(msg.get("data"))
        except Exception:  # noqa: BLE001 - an event handler's failure is only logged
            traceback.print_exc()


def _spawn(func: Callable[[dict[str, Any]], None], msg: dict[str, Any]) -> None:
    def body() -> None:
        try:
            func(msg)
        finally:
            with _active_lock:
                _active.discard(thread)

    thread = threading.Thread(target=body, daemon=True)
    with _active_lock:
        _active.add(thread)
    thread.start()


def _join_handlers(timeout: float = 5.0) -> None:
    with _active_lock:
        threads = list(_active)
    for thread in threads:
        thread.join(timeout)


def _reader(stdin: Any) -> None:
    for line in stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            print(f"boxlite_runtime: ignored a malformed line from the host: {line[:80]!r}",
                  file=sys.stderr)
            continue
        if not isinstance(msg, dict):
            continue
        kind = msg.get("type")
        if kind == "shutdown":
            break
        if kind == "message":
            _spawn(_answer_message, msg)
        elif kind == "event":
            _spawn(_run_event, msg)
        elif kind is None and "request_id" in msg:
            with _pending_lock:
                slot = _pending.get(str(msg["request_id"]))
            if slot is not None:
                slot[1] = msg
                slot[0].set()
    _stopped.set()


def _main() -> None:
    """The entry point of a managed box's process (``python3 -c``, set up by the host):
    the first stdin line is the base64 cloudpickle of the handlers."""
    global _out
    stdin = sys.stdin
    payload = stdin.readline()
    # The protocol keeps the real stdout; prints (and child processes) go to stderr.
    _out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", encoding="utf-8", buffering=1)
    import cloudpickle  # noqa: F401 - shipped by the host beside this module

    import pickle

    spec = pickle.loads(base64.b64decode(payload))
    if spec.get("message") is not None:
        on_message(spec["message"])
    for event, handlers in spec.get("events", {}).items():
        for handler in handlers:
            on_event(event)(handler)
    threading.Thread(target=_reader, args=(stdin,), daemon=True).start()
    code = 0
    task = spec.get("task")
    if task is not None:
        try:
            task()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - reported, and the exit code says so
            traceback.print_exc()
            code = 1
    else:
        run_forever()
    _join_handlers()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
