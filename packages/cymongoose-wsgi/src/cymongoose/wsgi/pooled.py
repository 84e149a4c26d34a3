"""Pooled mode (``threads >= 1``): the poll thread runs what is quick, the pool what is slow.

* Leader/followers: the pool has ``threads + 1`` threads, of which one, the *leader*,
  polls (``Manager.poll``). Mongoose's callbacks only queue each request's
  :class:`~.cycle.Cycle` (the core's fast path queues its own, the request copied out);
  once ``poll()`` has returned, the leader runs the queued cycles itself (the core's
  ``run_ready``), as the inline mode does: no hand-off, no wakeup, the answer leaves at
  the next poll. A connection's pipelined requests are parsed and run one after the
  other there too, their answers sent together. The role lives in C
  (``WsgiPollRole``): taking it, and the leader's check after each app call that it
  still has it, are atomic under the GIL.
* An idle pool thread stands by, looking every ``STANDBY_S``: a leader found inside the
  same app call twice in a row loses its role (a *takeover*); the standby becomes the
  leader, the cycles still queued go to the pool, and for ``HANDOFF_S`` (again while 1
  in ``SLOW_RATIO`` app calls on the pool takes ``SLOW_APP_S`` or more) every request is
  handed to the pool as before: the app runs on a pool thread, and the polling thread
  is woken to send what it posted. When the former leader's app returns, it joins the
  pool. The same hand-off period starts when 1 in ``SLOW_RATIO`` of the leader's own
  app calls takes ``SLOW_APP_S`` or more (the kernel's send of a large body, the
  cycle's ``send_s``, not counted): an app that waits even briefly (a database
  query) runs concurrently on the pool. Without a standby the leader runs no app.
* A leader about to wait for the polling thread (a streamed response, which waits for
  the client) gives up its role first; requests with a streamed body go to the pool from
  the start. At most one thread polls; at most ``threads`` apps run.
* ``serve()`` (the thread of ``WSGIServer.run``) waits for the stop, then takes the
  role back for the graceful stop, during which every request goes to the pool.
* What a pool thread sends is appended to one shared outbox, and the poll thread is
  woken with an empty ``Manager.wakeup()``: at most one wakeup is in flight, every post
  made while one is pending rides on it (the leader's own posts need none: it applies
  them before it polls again).
* On ``MG_EV_WAKEUP`` the poll thread empties the whole outbox. Blocks of one response
  that wait there together leave as one chunk (up to ``COALESCE_BYTES``).
* Backpressure: a streamed response may have ``STREAM_QUEUE_BYTES`` posted but not yet
  taken by the client; while mongoose's send buffer holds more than
  ``SEND_HIGH_WATER_BYTES``, the poll thread credits bytes back only once it has drained
  to ``SEND_LOW_WATER_BYTES`` (``EV_WRITABLE``). A request body above the
  core's stream threshold is fed to a bounded :class:`~.environ.RequestBody`; reading
  the socket pauses while the app is behind.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import sys
import threading
from collections import deque
from time import monotonic
from typing import Any

from cymongoose import WsgiPollRole

from . import protocol as _protocol
from .cycle import Cancelled, Cycle
from .environ import RequestBody
from .rules import COALESCE_BYTES, SEND_HIGH_WATER_BYTES, SEND_LOW_WATER_BYTES

__all__ = ["PooledWriter", "StreamStalled"]

logger = logging.getLogger("cymongoose.wsgi")

#: A streaming app thread may have this many bytes handed over but not yet sent.
STREAM_QUEUE_BYTES = 1 << 20
#: At most this much of a streamed request body waits for the app before reading pauses.
BODY_BUFFER_BYTES = 1 << 20
#: The standby looks at the leader this often (seconds): an app call running at two
#: looks in a row (5 to 10 ms) costs the leader its role.
STANDBY_S = 0.005
#: An app call this long (seconds) is slow: handing it to another thread costs a few
#: microseconds, under 1% of it, while running it on the leader holds up the others.
SLOW_APP_S = 0.0005
#: Requests are handed to the pool for ``HANDOFF_S`` seconds after a takeover, or once
#: ``SLOW_WINDOW`` of the leader's app calls were slow within ``SLOW_RATIO *
#: SLOW_WINDOW``; and again for as long while 1 in ``SLOW_RATIO`` app calls on the pool
#: is slow (one slow call now and then, or a thread the OS preempted, does not keep
#: every request on the pool).
HANDOFF_S = 1.0
SLOW_RATIO = 100
SLOW_WINDOW = 10

# Job queue tokens: the pool thread that takes it becomes the standby / takes a free
# poll role.
_STANDBY = object()
_LOOK = object()

# Outbox item kinds.
_RESPONSE, _HEAD, _DATA, _END, _ABORT, _RESUME, _FILE, _ADOPT = range(8)


class StreamStalled(TimeoutError):
    """A streamed response waited ``stream_timeout_s`` for the client to take data."""


class PooledWriter:
    """The writer of a pooled server: app threads post, the poll thread applies.

    ``manager``: the server's ``Manager`` (with ``enable_wakeup``); ``protocols``: the
    server's ``{connection id: Protocol}`` (poll thread); ``threads``: the pool size;
    ``stream_timeout_s``: how long a streaming app thread waits for the client to take
    data before it gives up (seconds); ``run_fast`` and ``run_ready``: the core fast
    path's ``run`` (one queued cycle) and ``run_ready`` (the leader's), set once the
    fast path exists (made with ``role=self.role``).
    """

    def __init__(self, manager: Any, protocols: dict[int, Any], threads: int,
                 stream_timeout_s: float) -> None:
        self.manager = manager
        self.protocols = protocols
        self.threads = threads
        self.stream_timeout_s = stream_timeout_s
        self.stopping = False  # responses say "Connection: close" from now on
        self.run_fast: Any = None
        self.run_ready: Any = None
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pool: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._outbox: list[tuple[Any, ...]] = []  # guarded by _lock
        self._wake_target: int | None = None  # guarded by _lock: the wakeup in flight
        # Who polls (see the module docstring): until serve() the server's caller does
        # (leader 1, not a thread ident) and every request goes to the pool.
        self.role = WsgiPollRole(deque(), HANDOFF_S)
        self.role.leader = 1
        self.role.slow_s = SLOW_APP_S
        self._roles = threading.Condition(self._lock)  # serve() waits there at the stop
        self._recruiting = False  # a _STANDBY token is in the job queue
        self._stop: threading.Event | None = None
        self._poll_ms = 100
        self._error: BaseException | None = None  # raised by poll() on a pool thread

    # -- the pool ------------------------------------------------------------------------

    def start_threads(self) -> None:
        """Start the pool: ``threads + 1`` threads, one to poll (idempotent)."""
        if not self._pool:
            _limit_malloc_arenas(self.threads)
        while len(self._pool) <= self.threads:
            t = threading.Thread(
                target=self._work, name=f"cymongoose-wsgi-{len(self._pool)}", daemon=True
            )
            t.start()
            self._pool.append(t)

    def stop_threads(self) -> None:
        self.role.closing = True
        for _ in self._pool:
            self.jobs.put(None)

    def serve(self, stop: threading.Event, poll_ms: int) -> None:
        """Have the pool poll (every ``poll_ms`` ms at most) until ``stop`` is set; then
        return with the poll role given to the calling thread, every request going to
        the pool (graceful stop). Re-raises what ``Manager.poll()`` raised on a pool
        thread (SystemExit, KeyboardInterrupt)."""
        role = self.role
        me = threading.get_ident()
        self._stop, self._poll_ms, role.main = stop, poll_ms, me
        role.leader = 0
        self.jobs.put(_LOOK)  # a pool thread takes the free role
        while not stop.wait(0.1):  # with a timeout: signal handlers run on this thread
            pass
        role.final = True
        role.inline = False
        try:
            self.manager.wakeup(self.manager.wakeup_id)  # the leader sees the stop at once
        except RuntimeError:
            pass
        last = -1
        with self._roles:
            while not role.take(me, last, monotonic()):
                last = role.seq
                self._roles.wait(STANDBY_S)
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        """A pool thread: run queued cycles; stand by, lead when its turn comes."""
        me = threading.get_ident()
        get = self.jobs.get
        run_fast = self.run_fast
        role = self.role
        run_pooled = role.run_pooled
        standby = False
        last = -1
        while True:
            if standby:
                try:
                    item = get(timeout=STANDBY_S)
                except queue.Empty:
                    item = _LOOK
            else:
                item = get()
            if item is None:
                return
            if item is _STANDBY or item is _LOOK:
                with self._lock:
                    if item is _STANDBY:
                        self._recruiting = False
                        if role.standby == 0:
                            role.standby = me
                            standby = True
                    lead = role.take(me, last, monotonic())
                    last = role.seq
                    if lead and standby:
                        role.standby = 0
                        standby = False
                if lead:
                    self._lead(me)
                    last = -1
                continue
            if standby:  # a job for the pool: the leader recruits another standby
                with self._lock:
                    if role.standby == me:
                        role.standby = 0
                standby = False
            try:
                # the core's fast path, or cycle.run() once taken; counted (role.pool_*)
                run_pooled(run_fast, item)
            except BaseException:  # never lose a pool thread
                logger.exception("error in WSGI pool thread")

    def _resign(self) -> None:
        """The leader is about to wait for the poll thread: another thread polls."""
        if self.role.resign(threading.get_ident()):
            with self._roles:
                self._roles.notify_all()  # serve()'s thread, at the stop
            self.jobs.put(_LOOK)

    def _lead(self, me: int) -> None:
        """Poll, and run what is queued between polls, while ``me`` leads."""
        manager = self.manager
        role = self.role
        ready = role.ready
        run_ready = self.run_ready
        stop = self._stop
        assert stop is not None
        while True:
            if ready:
                try:
                    if not run_ready(me):
                        return  # the standby took over: join the pool
                except BaseException:
                    logger.exception("error in WSGI pool thread")
                    if role.leader != me:
                        return
            if self._outbox:
                self.flush()  # what the apps posted (no wakeup for the leader's posts)
                if ready:
                    continue  # pipelined requests started by the flush
            if role.final:
                self._resign()  # serve()'s thread takes over
                return
            # Run apps here only while a standby watches, outside a hand-off period.
            if role.slow_calls >= SLOW_WINDOW or role.calls >= SLOW_RATIO * SLOW_WINDOW:
                if role.slow_calls >= SLOW_WINDOW:  # 1 in SLOW_RATIO or more: slow app
                    role.handoff_until = monotonic() + HANDOFF_S
                role.calls = role.slow_calls = 0
            inline = True
            if role.handoff_until:
                now = monotonic()
                if now < role.handoff_until:
                    inline = False
                else:
                    if role.pool_slow * SLOW_RATIO > role.pool_calls:
                        role.handoff_until = now + HANDOFF_S  # the app is still slow
                        inline = False
                    else:
                        role.handoff_until = 0.0
                    role.pool_calls = role.pool_slow = 0
            if role.standby == 0:
                if inline and not self._recruiting:
                    self._recruiting = True
                    self.jobs.put(_STANDBY)
                inline = False
            role.inline = inline
            try:
                manager.poll(self._poll_ms)
            except BaseException as exc:  # SystemExit...: serve() raises it
                self._error = exc
                stop.set()

    def idle(self) -> bool:
        """Nothing waits in the outbox (a handed-over request may wait there)."""
        return not self._outbox and not self.role.ready

    # -- protocol side (poll thread) -----------------------------------------------------

    def start(self, cycle: Cycle) -> None:
        if self.role.inline and cycle.body is None:
            self.role.ready.append(cycle)
        else:
            self.jobs.put(cycle)  # its app may wait for the body: never on the leader

    def new_body(self, cycle: Cycle) -> RequestBody:
        body = RequestBody(
            lambda: self._post(cycle, (_RESUME, cycle)),
            high_water=BODY_BUFFER_BYTES,
            low_water=BODY_BUFFER_BYTES // 4,
            timeout_s=_protocol.BODY_READ_TIMEOUT_S,
        )
        cycle.environ["wsgi.input"] = body
        return body

    def cancel(self, cycle: Cycle) -> None:
        """The connection is gone: stop the app thread that answers ``cycle``."""
        with self._lock:
            cycle.cancelled = True
        cond = cycle.cond
        if cond is not None:
            with cond:
                cond.notify_all()

    def sweep(self, protocol: Any, cycle: Cycle, now: float) -> None:
        pass  # a stalled stream is noticed by its app thread (StreamStalled)

    def writable(self, protocol: Any) -> None:
        cycle = protocol.current
        if cycle is not None and cycle.uncredited:
            self._credit(cycle, cycle.uncredited)
            cycle.uncredited = 0

    # -- cycle side (app thread) ---------------------------------------------------------

    def adopt(self, cycle: Cycle) -> None:
        self._post(cycle, (_ADOPT, cycle), force=True)

    def response(self, cycle: Cycle, status: str, headers: list[tuple[str, str]],
                 body: bytes, head_only: bool) -> None:
        self._post(cycle, (_RESPONSE, cycle, status, headers, body, head_only))

    def head(self, cycle: Cycle, status: str, headers: list[tuple[str, str]]) -> None:
        if self.role.leader == threading.get_ident():
            self._resign()  # a stream waits for the client, through the poll thread
        cycle.cond = threading.Condition()
        self._post(cycle, (_HEAD, cycle, status, headers))

    def data(self, cycle: Cycle, data: bytes) -> None:
        cond = cycle.cond
        if cond is None:  # the core's fast path wrote the head
            if self.role.leader == threading.get_ident():
                self._resign()
            cond = cycle.cond = threading.Condition()
        timeout_s = self.stream_timeout_s
        with cond:
            if cycle.queued_bytes >= STREAM_QUEUE_BYTES and not cycle.cancelled:
                if not cond.wait_for(
                    lambda: cycle.queued_bytes < STREAM_QUEUE_BYTES or cycle.cancelled,
                    timeout_s,
                ):
                    raise StreamStalled(
                        f"streamed response stalled for {timeout_s} s "
                        f"({cycle.queued_bytes} bytes not yet taken by the client)"
                    )
            if cycle.cancelled:
                raise Cancelled
            cycle.queued_bytes += len(data)
        self._post(cycle, (_DATA, cycle, data))

    @staticmethod
    def pause(cycle: Cycle) -> bool:
        return False  # data() waits instead

    def end(self, cycle: Cycle) -> None:
        self._post(cycle, (_END, cycle))

    def abort(self, cycle: Cycle, hard: bool) -> None:
        self._post(cycle, (_ABORT, cycle, hard))

    def file(self, cycle: Cycle, status: str, headers: list[tuple[str, str]], fd: int,
             offset: int, length: int, wrapper: Any) -> None:
        if not self._post(cycle, (_FILE, cycle, status, headers, fd, offset, length, wrapper)):
            wrapper.close()  # the client has gone

    @staticmethod
    def stalled(exc: BaseException | None) -> bool:
        return isinstance(exc, StreamStalled)

    # -- the outbox ----------------------------------------------------------------------

    def _post(self, cycle: Cycle, item: tuple[Any, ...], force: bool = False) -> bool:
        """Hand ``item`` to the poll thread; wake it unless a wakeup is already on its way.
        Returns False (item dropped) when the cycle's connection has closed."""
        conn_id = cycle.conn.id
        with self._lock:
            if cycle.cancelled and not force:
                return False
            self._outbox.append(item)
            if self._wake_target is not None or self.role.leader == threading.get_ident():
                return True  # on its way, or posted by the leader, which applies it
            self._wake_target = conn_id
        self._wake(conn_id)
        return True

    def _wake(self, conn_id: int | None) -> None:
        tried: set[int] = set()
        while conn_id is not None:
            try:
                if self.manager.wakeup(conn_id, b""):
                    return
            except RuntimeError:  # manager closed: nobody left to answer
                return
            # That connection has just closed. If its MG_EV_CLOSE has not flushed the
            # outbox yet, aim the wakeup at another connection that has items waiting.
            tried.add(conn_id)
            with self._lock:
                if self._wake_target != conn_id:
                    return  # flushed meanwhile
                conn_id = next(
                    (
                        item[1].conn.id
                        for item in self._outbox
                        if not item[1].cancelled and item[1].conn.id not in tried
                    ),
                    None,
                )
                self._wake_target = conn_id

    def closed(self, conn_id: int) -> None:
        """MG_EV_CLOSE of ``conn_id`` (poll thread): a wakeup aimed at it will not come."""
        with self._lock:
            orphaned = self._wake_target == conn_id
        if orphaned:
            self.flush()

    def flush(self) -> None:
        """``MG_EV_WAKEUP`` (poll thread): apply everything posted."""
        with self._lock:
            items, self._outbox = self._outbox, []
            self._wake_target = None
        protocols = self.protocols
        i, n = 0, len(items)
        while i < n:
            item = items[i]
            i += 1
            kind, cycle = item[0], item[1]
            protocol = protocols.get(cycle.conn.id)
            if kind == _ADOPT:
                if protocol is None:
                    self.cancel(cycle)
                else:
                    protocol.adopt(cycle)
                continue
            if protocol is None or protocol.current is not cycle:
                if kind == _FILE:
                    _close_quietly(item[7])
                continue  # connection closed meanwhile: drop
            if kind == _DATA:
                # The blocks of this response that wait together: one chunk.
                parts, size = [item[2]], len(item[2])
                while (i < n and items[i][0] == _DATA and items[i][1] is cycle
                       and size < COALESCE_BYTES):
                    parts.append(items[i][2])
                    size += len(items[i][2])
                    i += 1
                item = (_DATA, cycle, parts[0] if len(parts) == 1 else b"".join(parts))
            try:
                self._apply(protocol, item)
            except Exception:
                logger.exception("error while sending a response on connection %d",
                                 protocol.conn.id)
                try:
                    protocol.conn.close()
                except RuntimeError:
                    pass

    def _apply(self, protocol: Any, item: tuple[Any, ...]) -> None:
        kind, cycle = item[0], item[1]
        conn = protocol.conn
        if kind == _RESPONSE:
            cycle.put_response(*item[2:])
        elif kind == _HEAD:
            if not cycle.put_head(item[2], item[3]):
                self.cancel(cycle)
        elif kind == _DATA:
            data = item[2]
            if cycle.chunked:
                conn.http_chunk(data)
            else:
                conn.send(data)
            if conn.send_len > SEND_HIGH_WATER_BYTES:
                # Credit the app thread only once the client has taken most of it.
                if not cycle.uncredited:
                    conn.notify_writable(SEND_LOW_WATER_BYTES)
                cycle.uncredited += len(data)
            else:
                self._credit(cycle, len(data) + cycle.uncredited)
                cycle.uncredited = 0
        elif kind == _END:
            if cycle.chunked:
                conn.http_chunk(b"")
            conn.finish_response()
            protocol.finish(cycle)
        elif kind == _ABORT:
            protocol.abort(cycle, item[2])
        elif kind == _RESUME:
            protocol.resume_reading()
        elif kind == _FILE:
            cycle.put_file(*item[2:])

    @staticmethod
    def _credit(cycle: Cycle, nbytes: int) -> None:
        cond = cycle.cond
        if cond is None:
            return
        with cond:
            cycle.queued_bytes -= nbytes
            cond.notify()


def _close_quietly(iterable: Any) -> None:
    """Call a response iterable's close() on the poll thread (PEP 3333: always)."""
    try:
        iterable.close()
    except Exception:
        logger.exception("error in the close() of a WSGI response iterable")


def _limit_malloc_arenas(threads: int) -> None:
    """glibc gives each thread that allocates its own malloc arena and keeps freed memory
    in it: with a pool of app threads RSS creeps up over a long run (soak, 1,000,000
    requests: +11%; with 2 arenas: flat). Cap them at 2, as gunicorn's docs advise with
    MALLOC_ARENA_MAX, unless the environment sets that variable itself."""
    if threads < 2 or sys.platform != "linux" or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return  # not glibc
    mallopt(-8, 2)  # M_ARENA_MAX
