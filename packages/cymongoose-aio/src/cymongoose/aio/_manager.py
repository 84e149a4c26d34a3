"""`AsyncManager`: two ways to run mongoose beside asyncio, with one public API.

*Integrated* mode (Linux, where ``Manager.epoll_fd >= 0``): mongoose is polled on the asyncio
thread itself. The loop watches mongoose's epoll descriptor (``loop.add_reader``) and calls
``poll(0)`` when it is readable; ``call_later`` timers run ``poll(0)`` every
``poll_interval`` ms (MG_EV_POLL housekeeping) and when a `timer_add` timer is due; and a
coalesced ``poll(0)`` (at most one pending, queued with ``call_soon``) follows every write
made outside ``poll()`` and every ``poll()`` that ran Python code. That last poll matters:
mongoose only sends inside ``poll()``, arming EPOLLOUT for connections whose send buffer
is non-empty, so data queued by a handler or a coroutine goes out on the *next* poll.
No thread, no lock; `wakeup` from other threads still works because mongoose's wakeup
socketpair makes the epoll descriptor readable.

*Threaded* mode (everywhere), threads and who touches what:

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
import concurrent.futures
import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from cymongoose import Manager

__all__ = ["AsyncManager"]

logger = logging.getLogger("cymongoose.aio")

# What every method needing the manager raises before start and after close (0.2.5's
# wording: code written for cymongoose 0.2.x may match on it).
_NOT_STARTED = "AsyncManager is not started"

# Interval at which shutdown re-sends the wakeup and warns about a blocked poll thread.
_SHUTDOWN_WARN_INTERVAL_S = 5.0

_MODES = ("auto", "integrated", "threaded")

# Integrated mode wakes up this much after a mongoose timer is due (mongoose compares
# whole milliseconds of its own clock).
_TIMER_SLACK_S = 0.001


def _ignore_event(conn: Any, ev: int, data: Any) -> None:
    pass


class AsyncManager:
    """Run a `cymongoose.Manager` beside (or inside) the running asyncio loop.

    Usage::

        async with AsyncManager(handler) as am:
            am.listen("http://127.0.0.1:8080")
            await asyncio.sleep(60)

    Args:
        handler: default event handler ``handler(conn, ev, data)`` for all connections;
            it runs on the poll thread (in integrated mode: the asyncio thread).
        poll_interval: milliseconds that one ``poll()`` may wait for I/O (default 100);
            in integrated mode, the period of the housekeeping poll (MG_EV_POLL).
        error_handler: called with the exception when a handler raises (default: the
            core prints the traceback).
        shutdown_timeout: seconds that ``__aexit__`` waits for the poll thread. Every 5 s
            a RuntimeWarning names the still-running thread and the wakeup is retried;
            past the limit the manager is *not* closed (its memory may be in use by a
            blocked handler) and the daemon thread is abandoned. (Integrated mode has no
            thread: a blocked handler blocks the asyncio loop itself.)
        mode: ``"auto"`` (default: integrated where mongoose has an epoll descriptor and
            the loop supports ``add_reader``, else threaded), ``"integrated"`` (RuntimeError
            from `start` where unavailable) or ``"threaded"``. The `mode` property
            reports the mode in use.
        enable_wakeup: accepted for compatibility with ``Manager``; wakeup is always
            enabled (ValueError if False).
    """

    _MAX_POLL_MS = 200

    def __init__(
        self,
        handler: Callable[..., Any] | None = None,
        poll_interval: int = 100,
        error_handler: Callable[[BaseException], Any] | None = None,
        shutdown_timeout: float = 30,
        mode: str = "auto",
        enable_wakeup: bool = True,
    ) -> None:
        if not enable_wakeup:
            raise ValueError("enable_wakeup=False is not supported: AsyncManager always wakes")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
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
        self._requested_mode = mode
        self._mode = mode
        # Integrated mode state (asyncio thread only).
        self._integrated = False
        self._epoll_fd = -1
        self._loop_tid = 0
        self._flush_pending = False
        self._tick_s = max(self._poll_interval, 1) / 1000
        self._tick_handle: asyncio.TimerHandle | None = None
        self._timer_handles: set[asyncio.TimerHandle] = set()

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> AsyncManager:  # noqa: PYI034 (Self is 3.11+)
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Create the manager and start polling it (what ``async with`` does)."""
        if self._thread is not None or self._integrated:
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
        if self._requested_mode != "threaded" and self._start_integrated():
            return
        self._mode = "threaded"
        self._thread = threading.Thread(target=self._run, name="cymongoose-poll", daemon=True)
        self._thread.start()

    def _start_integrated(self) -> bool:
        """Register mongoose's epoll descriptor with the loop; False: use threaded mode."""
        mgr = self._manager
        loop = self._loop
        assert mgr is not None and loop is not None
        fd = getattr(mgr, "epoll_fd", -1)
        reason = "mongoose has no epoll descriptor on this platform"
        if fd >= 0:
            try:
                loop.add_reader(fd, self._ipoll)
            except (NotImplementedError, RuntimeError, ValueError, OSError) as exc:
                reason = f"the event loop cannot watch file descriptors ({exc!r})"
            else:
                self._integrated = True
                self._mode = "integrated"
                self._epoll_fd = fd
                self._loop_tid = threading.get_ident()
                self._tick_handle = loop.call_later(self._tick_s, self._tick)
                self._flush_soon()
                return True
        if self._requested_mode == "integrated":
            self._manager = None
            mgr.close()
            raise RuntimeError(f"integrated mode is not available: {reason}")
        return False

    async def aclose(self) -> None:
        """Stop polling and close the manager; see ``shutdown_timeout``."""
        if self._integrated:
            self._close_integrated()
            return
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
                self._manager = None
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
        self._manager = None

    def _close_integrated(self) -> None:
        mgr = self._manager
        loop = self._loop
        assert mgr is not None and loop is not None
        self._stop.set()
        self._integrated = False
        loop.remove_reader(self._epoll_fd)
        for handle in (self._tick_handle, *self._timer_handles):
            if handle is not None:
                handle.cancel()
        self._tick_handle = None
        self._timer_handles.clear()
        # Whatever was queued just before (responses, close frames) goes out now.
        try:
            mgr.poll(0)
        except RuntimeError:  # aclose() from inside a handler: poll() is not re-entrant
            pass
        mgr.close()
        self._manager = None

    # -- integrated mode: everything below runs on the asyncio thread --------------------

    def _ipoll(self, flushing: bool = False) -> None:
        """One ``poll(0)``; if it ran Python code, another one soon to send what it queued.

        ``Manager.poll`` returns how many Python callbacks it made (MG_EV_POLL excluded);
        a core that returns None gets one follow-up poll after every poll that is not
        itself a follow-up.
        """
        mgr = self._manager
        if not self._integrated or mgr is None:
            return
        try:
            calls = mgr.poll(0)
            if calls:
                # What the handlers just queued goes out now (this poll arms EPOLLOUT
                # and writes), saving a loop iteration per request.
                calls = mgr.poll(0)
        except RuntimeError:
            # Re-entrant (a handler ran a nested loop) or closed: nothing to do now.
            return
        if calls is None:
            calls = not flushing
        if calls and not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)  # type: ignore[union-attr]

    def _flush(self) -> None:
        self._flush_pending = False
        self._ipoll(True)

    def _flush_soon(self) -> None:
        """Coalesced ``poll(0)`` on the next loop iteration (at most one pending)."""
        if self._integrated and not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)  # type: ignore[union-attr]

    def _tick(self) -> None:
        self._tick_handle = self._loop.call_later(self._tick_s, self._tick)  # type: ignore[union-attr]
        self._ipoll()

    def _watch_timer(self, timer: Any, ms: int, repeat: bool) -> None:
        """Poll when a mongoose timer is due, so it fires on time (not at the next tick).

        mongoose starts a timer's clock at the first poll after ``timer_add`` (the
        coalesced poll that `timer_add` schedules) and keeps repeats on a fixed schedule;
        so do these wake-ups.
        """
        loop = self._loop
        assert loop is not None
        period = max(ms, 1) / 1000
        start = loop.time()

        def wake() -> None:
            self._timer_handles.discard(handles[0])
            if not self._integrated or not timer.active:
                return
            self._ipoll()
            if repeat and timer.active and self._integrated:
                # Next due time on the fixed schedule, skipping any we fell behind on.
                k = int((loop.time() - start) / period) + 1
                handles[0] = loop.call_at(start + k * period + _TIMER_SLACK_S, wake)
                self._timer_handles.add(handles[0])

        handles = [loop.call_at(start + period + _TIMER_SLACK_S, wake)]
        self._timer_handles.add(handles[0])

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
        if self._integrated:
            if threading.get_ident() != self._loop_tid:
                return self._on_loop_thread(fn, *args, **kwargs)
            result = fn(mgr, *args, **kwargs)
            self._flush_soon()
            return result
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

    def _on_loop_thread(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Integrated mode, called from another thread: run ``fn`` on the loop and wait."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def call() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self._locked(fn, *args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 (re-raised in the caller)
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        return future.result()

    def _require_manager(self) -> Manager:
        # Before start and after close: use 'async with AsyncManager(...)'.
        if self._manager is None:
            raise RuntimeError(_NOT_STARTED)
        return self._manager

    # -- properties --------------------------------------------------------------------

    @property
    def manager(self) -> Manager:
        """The underlying `cymongoose.Manager`.

        RuntimeError("AsyncManager is not started") before `start` and after `aclose`.
        """
        return self._require_manager()

    @property
    def mode(self) -> str:
        """``"integrated"`` or ``"threaded"`` once started (before: the requested mode)."""
        return self._mode

    @property
    def running(self) -> bool:
        """True while mongoose is being polled (and not asked to stop)."""
        if self._integrated:
            return not self._stop.is_set()
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop that `start` ran on."""
        if self._loop is None:
            raise RuntimeError(_NOT_STARTED)
        return self._loop

    # -- delegating API (asyncio thread or poll thread) ----------------------------------

    def listen(
        self,
        url: str,
        handler: Callable[..., Any] | None = None,
        *,
        http: bool | None = None,
        fd: int | None = None,
    ) -> Any:
        """`Manager.listen` under the lock; returns the listening Connection.

        ``fd``: serve on this already bound, listening socket (see `Manager.listen`).
        """
        if fd is None:
            return self._locked(lambda m: m.listen(url, handler, http=http))
        return self._locked(lambda m: m.listen(url, handler, http=http, fd=fd))

    def run_locked(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn(manager, *args)`` where the manager may be touched and return its result.

        Threaded mode: under the poll lock (the poll thread is paused); integrated mode: on
        the loop thread. For several Manager/Connection calls that must happen together,
        e.g. ``listen`` and configuring the listener before any connection is accepted.
        """
        return self._locked(fn, *args)

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

        def add(m: Manager) -> Any:
            timer = m.timer_add(ms, callback, repeat=repeat, run_now=run_now)
            if self._integrated:
                self._watch_timer(timer, ms, repeat)
            return timer

        return self._locked(add)

    def flush(self) -> None:
        """Make sure data queued outside a handler goes out soon; thread-safe.

        Only needed in integrated mode after writing to a connection directly from asyncio
        code (``conn.send(...)`` in a coroutine): mongoose sends only inside ``poll()``, and
        this schedules one (coalesced). `call_in_poll_thread` does it by itself. In
        threaded mode it interrupts the current ``poll()``.
        """
        if self._integrated:
            if threading.get_ident() == self._loop_tid:
                self._flush_soon()
            else:
                self.loop.call_soon_threadsafe(self._flush_soon)
        else:
            self._wake_poll()

    def wakeup(self, connection_id: int, data: bytes = b"") -> bool:
        """Thread-safe: deliver MG_EV_WAKEUP with ``data`` to a connection (no lock needed)."""
        return self._require_manager().wakeup(connection_id, data)

    # -- crossing threads ----------------------------------------------------------------

    def schedule(self, coro_or_callback: Any) -> Any:
        """Run a coroutine or a no-argument callback on the asyncio loop; thread-safe.

        Meant for handlers on the poll thread. A coroutine is wrapped in a Task and a
        `concurrent.futures.Future` for its result is returned; a callback is queued with
        ``call_soon_threadsafe`` and its `asyncio.Handle` is returned. TypeError for
        anything else; RuntimeError("AsyncManager is not started") before `start` and
        after `aclose`.
        """
        self._require_manager()
        loop = self.loop
        if asyncio.iscoroutine(coro_or_callback):
            return asyncio.run_coroutine_threadsafe(coro_or_callback, loop)
        if callable(coro_or_callback):
            if self._integrated and threading.get_ident() == self._loop_tid:
                return loop.call_soon(coro_or_callback)
            return loop.call_soon_threadsafe(coro_or_callback)
        raise TypeError(
            f"schedule() takes a coroutine or a callable, got {type(coro_or_callback).__name__}"
        )

    def poll_thread_caller(self) -> Callable[..., None]:
        """A function that does what `call_in_poll_thread` does, for callers on the event
        loop's thread: in integrated mode it calls ``callback(*args)`` at once (exceptions
        propagate to the caller) and schedules the coalesced ``poll(0)``, with no thread
        check per call; in threaded mode it is `call_in_poll_thread`. For hot paths that
        write to connections many times per request (the ASGI server)."""
        if not self._integrated:
            return self.call_in_poll_thread
        flush_soon = self._flush_soon

        def call(callback: Callable[..., Any], *args: Any) -> None:
            callback(*args)
            if not self._flush_pending:  # one flush per batch: no call for the others
                flush_soon()

        return call

    def call_in_poll_thread(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the poll thread soon, in call order; thread-safe.

        Calls are batched: however many arrive before the poll thread gets to them cost
        one wakeup. Exceptions go to ``error_handler`` (default: logged).

        Integrated mode: the asyncio thread *is* the poll thread, so a call from it runs
        ``callback`` at once and schedules the coalesced ``poll(0)`` that sends what it
        wrote; a call from another thread is handed over with ``call_soon_threadsafe``.
        """
        if self._integrated:
            if threading.get_ident() == self._loop_tid:
                try:
                    callback(*args)
                except Exception as exc:  # noqa: BLE001 (same contract as threaded mode)
                    self._report(exc)
                self._flush_soon()
            else:
                self.loop.call_soon_threadsafe(self.call_in_poll_thread, callback, *args)
            return
        self._pending.append((callback, args))
        if not self._wake_pending:
            self._wake_pending = True
            if threading.current_thread() is not self._thread:
                self._wake_poll()
