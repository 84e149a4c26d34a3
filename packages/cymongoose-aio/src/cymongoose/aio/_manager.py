"""`AsyncManager`, threaded mode.

Threads and who touches what:

- The *poll thread* (a daemon thread started by ``__aenter__``) calls ``Manager.poll()`` in
  a loop while holding ``_lock``. Every mongoose event handler, timer callback and every
  callback queued with `AsyncManager.call_in_poll_thread` runs on this thread.
- The *asyncio thread* may call `listen`, `connect`, `timer_add`, ... . These take
  ``_lock``; to avoid waiting up to ``poll_interval`` ms for it, they first interrupt
  ``poll()`` through the wakeup pipe (``Manager.wakeup_id``), and a turnstile lock makes
  sure the poll thread cannot grab ``_lock`` again before the waiting caller did.
- `wakeup` is thread-safe in the core and needs no lock.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from cymongoose import Manager

__all__ = ["AsyncManager"]

logger = logging.getLogger("cymongoose.aio")

# Interval at which shutdown re-sends the wakeup and warns about a blocked poll thread.
_SHUTDOWN_WARN_INTERVAL_S = 5.0


def _ignore_event(conn: Any, ev: int, data: Any) -> None:
    pass


class AsyncManager:
    """Run a `cymongoose.Manager` in a daemon thread beside the running asyncio loop.

    Usage::

        async with AsyncManager(handler) as am:
            am.listen("http://127.0.0.1:8080")
            await asyncio.sleep(60)

    Args:
        handler: default event handler ``handler(conn, ev, data)`` for all connections;
            it runs on the poll thread.
        poll_interval: milliseconds that one ``poll()`` may wait for I/O (default 100).
        error_handler: called with the exception when a handler raises (default: the
            core prints the traceback).
        shutdown_timeout: seconds that ``__aexit__`` waits for the poll thread. Every 5 s
            a RuntimeWarning names the still-running thread and the wakeup is retried;
            past the limit the manager is *not* closed (its memory may be in use by a
            blocked handler) and the daemon thread is abandoned.
    """

    _MAX_POLL_MS = 200

    def __init__(
        self,
        handler: Callable[..., Any] | None = None,
        poll_interval: int = 100,
        error_handler: Callable[[BaseException], Any] | None = None,
        shutdown_timeout: float = 30,
    ) -> None:
        if not isinstance(poll_interval, int) or poll_interval < 0:
            raise ValueError(f"poll_interval must be an int >= 0 (ms), got {poll_interval!r}")
        if shutdown_timeout < 0:
            raise ValueError(f"shutdown_timeout must be >= 0 (s), got {shutdown_timeout!r}")
        self._handler = handler
        self._poll_interval = min(poll_interval, self._MAX_POLL_MS)
        self._error_handler = error_handler
        self._shutdown_timeout = shutdown_timeout
        self._manager: Manager | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()
        # Held by a caller from before it interrupts poll() until it owns _lock, so the
        # poll thread (which passes through it before taking _lock) lets the caller in.
        self._turnstile = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_id = 0
        # Callbacks to run on the poll thread (see call_in_poll_thread).
        self._pending: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._wake_pending = False

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> AsyncManager:  # noqa: PYI034 (Self is 3.11+)
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Create the manager and start the poll thread (what ``async with`` does)."""
        if self._thread is not None:
            raise RuntimeError("AsyncManager already started")
        self._loop = asyncio.get_running_loop()
        self._manager = Manager(
            self._handler, enable_wakeup=True, error_handler=self._error_handler
        )
        self._wake_id = self._manager.wakeup_id
        if not self._manager.wakeup(self._wake_id, b""):
            # This core does not accept its own pipe as a wakeup target: ring a private,
            # silent connection instead (a loopback UDP socket whose handler ignores all).
            doorbell = self._manager.listen("udp://127.0.0.1:0", _ignore_event, http=False)
            self._wake_id = doorbell.id
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cymongoose-poll", daemon=True)
        self._thread.start()

    async def aclose(self) -> None:
        """Stop the poll thread and close the manager; see ``shutdown_timeout``."""
        thread = self._thread
        if thread is None or self._manager is None:
            return
        self._stop.set()
        self._wake_poll()
        waited = 0.0
        deadline = time.monotonic() + self._shutdown_timeout
        next_warning = time.monotonic() + _SHUTDOWN_WARN_INTERVAL_S
        while thread.is_alive():
            now = time.monotonic()
            if now >= deadline:
                warnings.warn(
                    f"cymongoose poll thread {thread.name!r} still running after "
                    f"shutdown_timeout={self._shutdown_timeout}s; abandoning it without "
                    "closing the manager",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._thread = None
                return
            if now >= next_warning:
                waited = now - (deadline - self._shutdown_timeout)
                warnings.warn(
                    f"cymongoose poll thread {thread.name!r} has not stopped after "
                    f"{waited:.0f}s (a handler may be blocked); retrying wakeup",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._wake_poll()
                next_warning = now + _SHUTDOWN_WARN_INTERVAL_S
            # Never block the asyncio loop: handlers may be waiting on it.
            await asyncio.sleep(0.005)
        self._thread = None
        self._run_pending()
        self._manager.close()

    def _run(self) -> None:
        mgr = self._manager
        assert mgr is not None
        while not self._stop.is_set():
            with self._turnstile:
                pass
            with self._lock:
                mgr.poll(self._poll_interval)
                if self._pending:
                    self._run_pending()

    def _run_pending(self) -> None:
        self._wake_pending = False
        pending = self._pending
        while pending:
            callback, args = pending.popleft()
            try:
                callback(*args)
            except Exception as exc:  # noqa: BLE001 (a callback must not kill the poll thread)
                self._report(exc)

    def _report(self, exc: BaseException) -> None:
        if self._error_handler is not None:
            try:
                self._error_handler(exc)
            except Exception:
                logger.exception("error_handler raised")
            else:
                return
        logger.error("exception in poll-thread callback", exc_info=exc)

    def _wake_poll(self) -> None:
        """Best-effort interrupt of ``poll()`` so that it returns (and frees the lock) now."""
        mgr = self._manager
        if mgr is not None and self._wake_id:
            try:
                mgr.wakeup(self._wake_id, b"")
            except RuntimeError:  # manager already closed
                pass

    def _locked(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        mgr = self._require_manager()
        if self._thread is None or threading.current_thread() is self._thread:
            with self._lock:
                return fn(mgr, *args, **kwargs)
        with self._turnstile:
            self._wake_poll()
            self._lock.acquire()
        try:
            return fn(mgr, *args, **kwargs)
        finally:
            self._lock.release()

    def _require_manager(self) -> Manager:
        if self._manager is None:
            raise RuntimeError(
                "AsyncManager is not running: use 'async with AsyncManager(...)' first"
            )
        return self._manager

    # -- properties --------------------------------------------------------------------

    @property
    def manager(self) -> Manager:
        """The underlying `cymongoose.Manager` (RuntimeError before start)."""
        return self._require_manager()

    @property
    def running(self) -> bool:
        """True while the poll thread is alive and not asked to stop."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop that `start` ran on."""
        if self._loop is None:
            raise RuntimeError("AsyncManager is not running")
        return self._loop

    # -- delegating API (asyncio thread or poll thread) ----------------------------------

    def listen(
        self,
        url: str,
        handler: Callable[..., Any] | None = None,
        *,
        http: bool | None = None,
    ) -> Any:
        """`Manager.listen` under the lock; returns the listening Connection."""
        return self._locked(lambda m: m.listen(url, handler, http=http))

    def connect(
        self,
        url: str,
        handler: Callable[..., Any] | None = None,
        *,
        http: bool | None = None,
    ) -> Any:
        """`Manager.connect` under the lock; returns the Connection at once."""
        return self._locked(lambda m: m.connect(url, handler, http=http))

    def ws_connect(self, url: str, handler: Callable[..., Any] | None = None) -> Any:
        """`Manager.ws_connect` under the lock."""
        return self._locked(lambda m: m.ws_connect(url, handler))

    def mqtt_connect(self, url: str, **kwargs: Any) -> Any:
        """`Manager.mqtt_connect` under the lock; keyword arguments are passed through."""
        return self._locked(lambda m: m.mqtt_connect(url, **kwargs))

    def mqtt_listen(self, url: str, handler: Callable[..., Any] | None = None) -> Any:
        """`Manager.mqtt_listen` under the lock."""
        return self._locked(lambda m: m.mqtt_listen(url, handler))

    def sntp_connect(self, url: str, handler: Callable[..., Any] | None = None) -> Any:
        """`Manager.sntp_connect` under the lock."""
        return self._locked(lambda m: m.sntp_connect(url, handler))

    def timer_add(
        self,
        ms: int,
        callback: Callable[[], Any],
        *,
        repeat: bool = False,
        run_now: bool = False,
    ) -> Any:
        """`Manager.timer_add` under the lock; the callback runs on the poll thread."""
        return self._locked(lambda m: m.timer_add(ms, callback, repeat=repeat, run_now=run_now))

    def wakeup(self, connection_id: int, data: bytes = b"") -> bool:
        """Thread-safe: deliver MG_EV_WAKEUP with ``data`` to a connection (no lock needed)."""
        return self._require_manager().wakeup(connection_id, data)

    # -- crossing threads ----------------------------------------------------------------

    def schedule(self, coro_or_callback: Any) -> Any:
        """Run a coroutine or a no-argument callback on the asyncio loop; thread-safe.

        Meant for handlers on the poll thread. A coroutine is wrapped in a Task and a
        `concurrent.futures.Future` for its result is returned; a callback is queued with
        ``call_soon_threadsafe`` and its `asyncio.Handle` is returned. TypeError for
        anything else.
        """
        loop = self.loop
        if asyncio.iscoroutine(coro_or_callback):
            return asyncio.run_coroutine_threadsafe(coro_or_callback, loop)
        if callable(coro_or_callback):
            return loop.call_soon_threadsafe(coro_or_callback)
        raise TypeError(
            f"schedule() takes a coroutine or a callable, got {type(coro_or_callback).__name__}"
        )

    def call_in_poll_thread(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the poll thread soon, in call order; thread-safe.

        Calls are batched: however many arrive before the poll thread gets to them cost
        one wakeup. Exceptions go to ``error_handler`` (default: logged).
        """
        self._pending.append((callback, args))
        if not self._wake_pending:
            self._wake_pending = True
            if threading.current_thread() is not self._thread:
                self._wake_poll()
