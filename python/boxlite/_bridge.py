"""The bridge between blocking core calls and asyncio (and interruptible sync waits).

Design:
  * Each blocking core call runs on its own daemon thread (:func:`submit`), which
    returns a :class:`concurrent.futures.Future`. There is no pool to exhaust: twenty
    execs that each wait for minutes never hold up a twenty-first call, and a thread
    stuck in the core never blocks interpreter exit.
  * :func:`wait` awaits such a future from whichever event loop is running *now*: the
    result is handed over with ``loop.call_soon_threadsafe``. Nothing is bound to a
    loop ahead of time, so an object can be used from one ``asyncio.run()`` and then
    from another.
  * Cancelling the awaiting task does not stop the thread (a thread inside C++ cannot be
    interrupted); the caller passes ``on_cancel`` to end the operation in the core (e.g.
    ``Exec.kill``), which makes the thread return promptly. The ``on_cancel`` action
    runs on a fresh thread too, so it never blocks the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ._core import track_thread

T = TypeVar("T")

__all__ = ["submit", "wait", "call", "call_sync", "fire_and_forget"]


def _run(cf: concurrent.futures.Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    thread = threading.current_thread()
    track_thread(thread, True)
    try:
        if not cf.set_running_or_notify_cancel():
            return
        try:
            result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter.
            cf.set_exception(exc)
        else:
            cf.set_result(result)
    finally:
        track_thread(thread, False)


def submit(fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
    """Runs ``fn(*args)`` on a new daemon thread; returns its future."""
    cf: concurrent.futures.Future[T] = concurrent.futures.Future()
    name = f"boxlite-{getattr(fn, '__name__', 'call')}"
    threading.Thread(target=_run, args=(cf, fn, args), name=name, daemon=True).start()
    return cf


def _transfer(fut: asyncio.Future[Any], cf: concurrent.futures.Future[Any]) -> None:
    if fut.done():
        return
    exc = cf.exception()
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(cf.result())


async def wait(cf: concurrent.futures.Future[T]) -> T:
    """Awaits a core call's future on the running loop.

    Cancelling the awaiting task leaves ``cf`` running (and its result on ``cf``).
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def done(_: concurrent.futures.Future[T]) -> None:
        try:
            loop.call_soon_threadsafe(_transfer, fut, cf)
        except RuntimeError:
            pass  # That loop is closed: nobody waits for this result any more.

    cf.add_done_callback(done)
    return await fut


def fire_and_forget(fn: Callable[..., Any], *args: Any) -> None:
    """Runs ``fn(*args)`` on a daemon thread and ignores its outcome (used for kills
    and cleanups that must not block the caller)."""

    def quiet() -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - best effort by definition.
            pass

    submit(quiet)


async def call(fn: Callable[..., T], *args: Any, on_cancel: Callable[[], Any] | None = None) -> T:
    """Runs a blocking core call off the loop and awaits it.

    Args:
        fn: The blocking function (it releases the GIL).
        *args: Its arguments.
        on_cancel: Called (on a fresh thread) when the awaiting task is cancelled, to end
            the operation in the core.
    """
    cf = submit(fn, *args)
    try:
        return await wait(cf)
    except asyncio.CancelledError:
        if on_cancel is not None:
            fire_and_forget(on_cancel)
        raise


def call_sync(fn: Callable[..., T], *args: Any, on_interrupt: Callable[[], Any] | None = None) -> T:
    """Runs a long blocking core call from synchronous code so that Ctrl-C still works.

    The call runs on a worker thread while this thread waits (an interruptible wait);
    on KeyboardInterrupt ``on_interrupt`` ends the operation, the call is given a moment
    to return, and the KeyboardInterrupt propagates.
    """
    cf = submit(fn, *args)
    try:
        return cf.result()
    except KeyboardInterrupt:
        if on_interrupt is not None:
            try:
                on_interrupt()
            except Exception:  # noqa: BLE001 - the interrupt is what matters.
                pass
        concurrent.futures.wait([cf], timeout=5)
        raise
