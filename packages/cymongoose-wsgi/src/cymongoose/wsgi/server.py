"""The WSGI server: mongoose's poll thread parses and writes, a thread pool runs the app.

Threads and hand-offs (see design.md, "Threads and hops"):

* The poll thread receives ``MG_EV_HTTP_MSG``, builds the environ (plain Python objects)
  and submits the request to the pool. It never blocks.
* A worker runs the app and appends the finished response (or, for streamed bodies, the
  head and each chunk) to one shared outbox, then wakes the poll thread with an empty
  ``Manager.wakeup()``. Payloads never travel through mongoose's wakeup pipe, and at most
  one wakeup is in flight at a time: every post made while one is pending rides on it.
* On ``MG_EV_WAKEUP`` the poll thread empties the whole outbox, for all connections.

Requests on one connection run one at a time, in arrival order, so pipelined requests are
answered in order.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cymongoose import MG_EV_CLOSE, MG_EV_HTTP_MSG, MG_EV_WAKEUP, Manager

from .environ import base_environ, request_environ

__all__ = ["WSGIServer", "serve"]

logger = logging.getLogger("cymongoose.wsgi")
access_logger = logging.getLogger("cymongoose.wsgi.access")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Bodies that grow past this many bytes are streamed with chunked encoding.
STREAM_THRESHOLD_BYTES = 1 << 20
#: A streaming worker may have this many bytes handed over but not yet written.
STREAM_QUEUE_BYTES = 1 << 20
#: Pipelined requests queued behind the running one before the connection is closed.
MAX_PIPELINED = 64

# Outbox item kinds.
_RESPONSE, _HEAD, _DATA, _END, _ABORT = range(5)

_INTERNAL_ERROR_BODY = b"Internal Server Error"


class _Cancelled(Exception):
    """The client went away while the app was running."""


class _Request:
    """One request; shared by the poll thread and the worker that runs it."""

    __slots__ = (
        "conn_id",
        "environ",
        "keep_alive",
        "is_head",
        "chunked",
        "cancelled",
        "cond",
        "queued_bytes",
    )

    def __init__(self, conn_id: int, environ: dict[str, Any], keep_alive: bool, is_head: bool):
        self.conn_id = conn_id
        self.environ = environ
        self.keep_alive = keep_alive
        self.is_head = is_head
        self.chunked = False
        # Set by the poll thread under WSGIServer._lock when the connection closes.
        self.cancelled = False
        # Back-pressure for streamed bodies; created on first use.
        self.cond: threading.Condition | None = None
        self.queued_bytes = 0


class _ConnState:
    """Per-connection bookkeeping; touched by the poll thread only."""

    __slots__ = ("conn", "base", "current", "pending")

    def __init__(self, conn: Any, base: dict[str, Any]):
        self.conn = conn
        self.base = base
        self.current: _Request | None = None
        self.pending: deque[_Request] = deque()


def _parse_status(status: str) -> int:
    if not isinstance(status, str):
        raise TypeError(f"WSGI status must be a str like '200 OK', got {status!r}")
    code = status[:3]
    if len(status) < 4 or status[3] != " " or not code.isdigit() or not 100 <= int(code) <= 999:
        raise ValueError(f"WSGI status must look like '200 OK', got {status!r}")
    return int(code)


def _check_headers(headers: Any) -> list[tuple[str, str]]:
    if not isinstance(headers, list):
        raise TypeError(f"WSGI response headers must be a list of tuples, got {type(headers)}")
    for item in headers:
        if not (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], str)
        ):
            raise TypeError(f"WSGI response header must be a (str, str) tuple, got {item!r}")
        name, value = item
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise ValueError(f"invalid character in response header {item!r}")
    return headers


def _find_header(headers: list[tuple[str, str]], lname: str) -> str | None:
    for name, value in headers:
        if name.lower() == lname:
            return value
    return None


class _Exchange:
    """Runs the app for one request on a worker thread (PEP 3333 server side)."""

    __slots__ = (
        "server",
        "req",
        "status",
        "code",
        "headers",
        "parts",
        "size",
        "streaming",
        "stream_eager",
        "head_sent",
    )

    def __init__(self, server: WSGIServer, req: _Request):
        self.server = server
        self.req = req
        self.status: str | None = None
        self.code = 0
        self.headers: list[tuple[str, str]] = []
        self.parts: list[bytes] = []
        self.size = 0
        self.streaming = False
        self.stream_eager = False
        self.head_sent = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        """PEP 3333 ``start_response``."""
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        self.code = _parse_status(status)
        self.headers = list(_check_headers(headers))
        self.status = status
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable returned by ``start_response``."""
        self._body(data)

    def _body(self, data: bytes) -> None:
        if self.status is None:
            raise AssertionError("the WSGI app produced body data before start_response()")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"WSGI body chunks must be bytes, got {type(data).__name__}")
        if self.req.cancelled:
            raise _Cancelled
        if not data:
            return
        self.size += len(data)
        if self.req.is_head:
            return  # HEAD: count the length, send no body
        if self.streaming:
            self._send_chunk(bytes(data))
            return
        self.parts.append(data)
        if self.stream_eager or self.size > STREAM_THRESHOLD_BYTES:
            self._start_stream()

    def _start_stream(self) -> None:
        req = self.req
        self.streaming = True
        headers = [(n, v) for n, v in self.headers if n.lower() != "content-length"]
        if req.environ["SERVER_PROTOCOL"] == "HTTP/1.1":
            req.chunked = True
            headers.append(("Transfer-Encoding", "chunked"))
        else:
            req.keep_alive = False  # HTTP/1.0 client: the end of the body is the close
        if not req.keep_alive:
            headers.append(("Connection", "close"))
        req.cond = threading.Condition()
        self.head_sent = True
        self.server._post(req, (_HEAD, req, self.code, headers))
        parts, self.parts = self.parts, []
        if parts:
            self._send_chunk(b"".join(parts))

    def _send_chunk(self, data: bytes) -> None:
        req = self.req
        cond = req.cond
        assert cond is not None
        with cond:
            ok = cond.wait_for(
                lambda: req.queued_bytes < STREAM_QUEUE_BYTES or req.cancelled,
                timeout=self.server.stream_timeout,
            )
            if req.cancelled:
                raise _Cancelled
            if not ok:
                raise TimeoutError(
                    f"streamed response stalled for {self.server.stream_timeout} s "
                    f"({req.queued_bytes} bytes not yet written)"
                )
            req.queued_bytes += len(data)
        self.server._post(req, (_DATA, req, data))

    def run(self) -> None:
        req = self.req
        environ = req.environ
        server = self.server
        try:
            result = server.app(environ, self.start_response)
            try:
                if not isinstance(result, (list, tuple)):
                    # Generators and other lazy iterables: send each block as it comes
                    # (PEP 3333, "Buffering and Streaming") unless the length is known and small.
                    length = _find_header(self.headers, "content-length") if self.status else None
                    self.stream_eager = (
                        length is None
                        or not length.isdigit()
                        or (int(length) > STREAM_THRESHOLD_BYTES)
                    )
                for data in result:
                    self._body(data)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if self.status is None:
                raise AssertionError("the WSGI app returned without calling start_response()")
        except _Cancelled:
            return
        except Exception:
            logger.exception(
                "Exception in WSGI application (%s %s)",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
            )
            if self.head_sent:
                server._post(req, (_ABORT, req))
            else:
                self._respond(
                    500,
                    [("Content-Type", "text/plain; charset=utf-8")],
                    b"" if req.is_head else _INTERNAL_ERROR_BODY,
                    len(_INTERNAL_ERROR_BODY),
                )
            return
        if self.streaming:
            server._post(req, (_END, req))
        else:
            body = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
            self._respond(self.code, self.headers, bytes(body), self.size)

    def _respond(self, code: int, headers: list[tuple[str, str]], body: bytes, size: int) -> None:
        req = self.req
        if req.is_head and _find_header(headers, "content-length") is None:
            headers = [*headers, ("Content-Length", str(size))]
        if not req.keep_alive:
            headers = [*headers, ("Connection", "close")]
        elif req.environ["SERVER_PROTOCOL"] != "HTTP/1.1":
            headers = [*headers, ("Connection", "keep-alive")]
        self.server._post(req, (_RESPONSE, req, code, headers, body))
        if self.server.access_log and access_logger.isEnabledFor(logging.INFO):
            env = req.environ
            access_logger.info(
                '%s:%s - "%s %s %s" %d %d',
                env["REMOTE_ADDR"],
                env["REMOTE_PORT"],
                env["REQUEST_METHOD"],
                env["PATH_INFO"],
                env["SERVER_PROTOCOL"],
                code,
                size,
            )


class WSGIServer:
    """Serve a PEP 3333 application on a mongoose event loop.

    ``app`` runs in a pool of ``workers`` threads; ``error_handler(exc)`` receives exceptions
    raised in the event loop (not app errors, which become 500 responses and are logged on
    the ``cymongoose.wsgi`` logger). A worker streaming a body waits at most
    ``stream_timeout`` seconds for the client to take data before it gives up. On shutdown,
    in-flight requests get ``graceful_timeout_s`` seconds to finish.
    """

    def __init__(
        self,
        app: WSGIApp,
        workers: int = 4,
        error_handler: Callable[[BaseException], Any] | None = None,
        stream_timeout: float = 5.0,
        *,
        access_log: bool = True,
        graceful_timeout_s: float = 5.0,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, got {app!r}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        if stream_timeout <= 0:
            raise ValueError(f"stream_timeout must be > 0 seconds, got {stream_timeout!r}")
        self.app = app
        self.workers = workers
        self.stream_timeout = stream_timeout
        self.access_log = access_log
        self.graceful_timeout_s = graceful_timeout_s
        self._mgr = Manager(self._on_event, enable_wakeup=True, error_handler=error_handler)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="cymongoose-wsgi")
        self._listeners: list[Any] = []
        self._states: dict[int, _ConnState] = {}  # poll thread only
        self._lock = threading.Lock()
        self._outbox: list[tuple[Any, ...]] = []  # guarded by _lock
        self._wake_target: int | None = None  # guarded by _lock: id of the wakeup in flight
        self._stop = threading.Event()
        self._closed = False

    @property
    def manager(self) -> Manager:
        """The underlying ``cymongoose.Manager``."""
        return self._mgr

    def listen(self, url: str) -> Any:
        """Listen on ``url`` (``http://host:port``; port 0 picks a free one).

        Returns the listening ``Connection``; its ``local_addr[1]`` is the bound port.
        Raises RuntimeError when mongoose cannot listen there.
        """
        conn = self._mgr.listen(url, self._on_event, http=True)
        conn.io_events = False  # no Python call per loop iteration per connection
        self._listeners.append(conn)
        return conn

    def run(self, poll_ms: int = 100) -> None:
        """Poll until SIGINT/SIGTERM or :meth:`shutdown`, finish in-flight requests, close.

        Signal handlers are installed only when called from the main thread, and the
        previous handlers are restored afterwards.
        """
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: self._stop.set())
        try:
            while not self._stop.is_set():
                self._mgr.poll(poll_ms)
            self._drain_in_flight(poll_ms)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()

    def shutdown(self) -> None:
        """Ask :meth:`run` to stop; safe from any thread and from signal handlers."""
        self._stop.set()

    def close(self) -> None:
        """Close every connection and the manager; idempotent.

        Call it from the poll thread or after :meth:`run` has returned.
        """
        if self._closed:
            return
        self._closed = True
        self._mgr.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _drain_in_flight(self, poll_ms: int) -> None:
        """Stop accepting, then poll until running requests are answered or time runs out."""
        for conn in self._listeners:
            try:
                conn.close()
            except RuntimeError:
                pass
        deadline = time.monotonic() + self.graceful_timeout_s
        while time.monotonic() < deadline:
            if not any(s.current is not None for s in self._states.values()):
                break
            self._mgr.poll(min(poll_ms, 50))
        for state in list(self._states.values()):
            try:
                state.conn.drain()
            except RuntimeError:
                pass
        self._mgr.poll(0)

    # -- poll thread -------------------------------------------------------------------

    def _on_event(self, conn: Any, ev: int, data: Any) -> None:
        if ev == MG_EV_HTTP_MSG:
            self._on_request(conn, data)
        elif ev == MG_EV_WAKEUP:
            self._flush()
        elif ev == MG_EV_CLOSE:
            self._on_close(conn)

    def _on_request(self, conn: Any, msg: Any) -> None:
        state = self._states.get(conn.id)
        if state is None:
            scheme = "https" if getattr(conn, "is_tls", False) else "http"
            state = _ConnState(conn, base_environ(conn.local_addr, conn.remote_addr, scheme))
            self._states[conn.id] = state
        environ = request_environ(state.base, msg)
        connection = environ.get("HTTP_CONNECTION", "").lower()
        if environ["SERVER_PROTOCOL"] == "HTTP/1.1":
            keep_alive = "close" not in connection
        else:
            keep_alive = "keep-alive" in connection
        req = _Request(conn.id, environ, keep_alive, environ["REQUEST_METHOD"] == "HEAD")
        if state.current is None:
            self._dispatch(state, req)
        elif len(state.pending) < MAX_PIPELINED:
            state.pending.append(req)
        else:
            logger.warning(
                "closing connection %d: more than %d pipelined requests", conn.id, MAX_PIPELINED
            )
            conn.close()

    def _dispatch(self, state: _ConnState, req: _Request) -> None:
        state.current = req
        try:
            self._pool.submit(_Exchange(self, req).run)
        except RuntimeError:  # pool shut down: we are closing
            state.current = None
            self._send(state.conn, 503, [("Connection", "close")], b"Service Unavailable")
            state.conn.drain()

    def _on_close(self, conn: Any) -> None:
        state = self._states.pop(conn.id, None)
        if state is None:
            return
        req = state.current
        state.pending.clear()
        with self._lock:
            if req is not None:
                req.cancelled = True
            # A wakeup aimed at this connection will not be delivered: flush ourselves.
            orphaned = self._wake_target == conn.id
        if req is not None and req.cond is not None:
            with req.cond:
                req.cond.notify_all()
        if orphaned:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            items, self._outbox = self._outbox, []
            self._wake_target = None
        states = self._states
        for item in items:
            req: _Request = item[1]
            state = states.get(req.conn_id)
            if state is None or state.current is not req:
                continue  # connection closed meanwhile: drop
            try:
                self._apply(state, item)
            except Exception:
                logger.exception("error while sending a response on connection %d", req.conn_id)
                try:
                    state.conn.close()
                except RuntimeError:
                    pass

    def _apply(self, state: _ConnState, item: tuple[Any, ...]) -> None:
        kind, req = item[0], item[1]
        conn = state.conn
        if kind == _RESPONSE:
            self._send(conn, item[2], item[3], item[4])
            self._finish(state, req)
        elif kind == _HEAD:
            conn.send_response_head(item[2], item[3])
        elif kind == _DATA:
            data = item[2]
            if req.chunked:
                conn.http_chunk(data)
            else:
                conn.send(data)
            cond = req.cond
            assert cond is not None
            with cond:
                req.queued_bytes -= len(data)
                cond.notify()
        elif kind == _END:
            if req.chunked:
                conn.http_chunk(b"")
            else:
                conn.finish_response()
            self._finish(state, req)
        elif kind == _ABORT:
            conn.close()

    def _send(self, conn: Any, code: int, headers: list[tuple[str, str]], body: bytes) -> None:
        conn.send_response(code, headers, body)

    def _finish(self, state: _ConnState, req: _Request) -> None:
        state.current = None
        if not req.keep_alive:
            state.pending.clear()
            state.conn.drain()
        elif state.pending:
            self._dispatch(state, state.pending.popleft())

    # -- worker threads ----------------------------------------------------------------

    def _post(self, req: _Request, item: tuple[Any, ...]) -> None:
        """Hand ``item`` to the poll thread; wake it unless a wakeup is already on its way."""
        with self._lock:
            if req.cancelled:
                return
            self._outbox.append(item)
            if self._wake_target is not None:
                return
            self._wake_target = req.conn_id
        self._wake(req.conn_id)

    def _wake(self, conn_id: int | None) -> None:
        tried: set[int] = set()
        while conn_id is not None:
            try:
                if self._mgr.wakeup(conn_id, b""):
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
                        item[1].conn_id
                        for item in self._outbox
                        if not item[1].cancelled and item[1].conn_id not in tried
                    ),
                    None,
                )
                self._wake_target = conn_id


def serve(
    app: WSGIApp, url: str = "http://127.0.0.1:8000", workers: int = 4, **kwargs: Any
) -> None:
    """Serve ``app`` on ``url`` until SIGINT/SIGTERM (blocking).

    Extra keyword arguments go to :class:`WSGIServer`.
    """
    server = WSGIServer(app, workers=workers, **kwargs)
    conn = server.listen(url)
    host, port = conn.local_addr[0], conn.local_addr[1]
    logger.info("cymongoose-wsgi serving on http://%s:%d (%d workers)", host, port, workers)
    server.run()
