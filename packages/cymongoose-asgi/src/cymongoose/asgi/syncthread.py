"""A thread for asgiref's thread-sensitive ``sync_to_async`` calls, woken without the GIL.

``sync_to_async(f)`` (thread_sensitive, asgiref's default; Channels calls it for every
message it dispatches, to run Django's ``close_old_connections``, and for every
``database_sync_to_async``) runs ``f`` on ``SyncToAsync.single_thread_executor`` when no
outer ``async_to_sync`` lends a thread: a ``ThreadPoolExecutor(1)``, whose ``submit``
wakes the worker while the event loop's thread holds the GIL. With both threads on one
CPU (the usual case for a process per CPU), the woken worker preempts the loop, finds the
GIL taken and sleeps again, and so does the loop when the result comes back: six context
switches per call, on any event loop (plain asyncio and uvloop alike), where two would do.

`SyncThread` wakes its worker with ``os.eventfd_write``, during which CPython releases the
GIL: the worker takes it at once, runs the call, posts the result and sleeps before the
loop resumes. Two context switches per call; on one CPU a call costs about a quarter less
(and a Channels consumer's messages a fifth less CPU). `acquire` makes one the process's
thread-sensitive executor for as long as a server uses it (`MqttServer` does by default).
Linux only (``os.eventfd``); elsewhere `acquire` leaves asgiref alone.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SyncThread", "acquire", "release"]

_lock = threading.Lock()
_users = 0
_previous: Any = None


class SyncThread(concurrent.futures.Executor):
    """One worker thread (daemon, named ``name``) running submitted calls in order.

    ``submit`` returns a `concurrent.futures.Future`; an exception the call raises is set
    on it. ``shutdown`` runs what was submitted before it, then ends the thread;
    ``submit`` afterwards raises RuntimeError. Linux only: OSError/AttributeError where
    ``os.eventfd`` is missing.
    """

    def __init__(self, name: str = "cymongoose-sync") -> None:
        self._fd = os.eventfd(0, os.EFD_CLOEXEC)
        self._calls: collections.deque[Any] = collections.deque()
        self._closed = False
        self._submit_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._submit_lock:  # held while writing: the worker closes the fd under it
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._calls.append((future, fn, args, kwargs))
            os.eventfd_write(self._fd, 1)  # the GIL is released here: the worker runs now
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._submit_lock:
            if not self._closed:
                self._closed = True
                if cancel_futures:
                    for item in self._calls:
                        item[0].cancel()
                self._calls.append(None)
                os.eventfd_write(self._fd, 1)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                os.eventfd_read(self._fd)
                while self._calls:
                    item = self._calls.popleft()
                    if item is None:
                        return
                    future, fn, args, kwargs = item
                    del item
                    if future.set_running_or_notify_cancel():
                        try:
                            result = fn(*args, **kwargs)
                        except BaseException as exc:  # noqa: BLE001 (the caller gets it)
                            future.set_exception(exc)
                            del exc
                        else:
                            future.set_result(result)
                            del result
                    del future, fn, args, kwargs  # nothing of a call outlives it
        finally:
            with self._submit_lock:  # not while submit or shutdown still writes to it
                os.close(self._fd)


def acquire() -> bool:
    """Make a `SyncThread` asgiref's thread for thread-sensitive calls until the matching
    `release` (calls nest: the first installs it, the last `release` restores asgiref's
    own). False, and nothing changed, where ``os.eventfd`` is missing or this asgiref has
    no ``SyncToAsync.single_thread_executor``."""
    global _users, _previous
    from asgiref.sync import SyncToAsync

    if not hasattr(os, "eventfd") or not hasattr(SyncToAsync, "single_thread_executor"):
        return False
    with _lock:
        if _users == 0:
            _previous = SyncToAsync.single_thread_executor
            SyncToAsync.single_thread_executor = SyncThread()
        _users += 1
    return True


def release() -> None:
    """Undo one `acquire` that returned True; the last one gives asgiref its executor
    back and ends the thread once the calls already submitted have run."""
    global _users, _previous
    from asgiref.sync import SyncToAsync

    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users:
            return
        ours = SyncToAsync.single_thread_executor
        SyncToAsync.single_thread_executor, _previous = _previous, None
    if isinstance(ours, SyncThread):
        ours.shutdown(wait=False)
