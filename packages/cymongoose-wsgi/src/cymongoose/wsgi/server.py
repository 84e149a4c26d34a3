"""The WSGI server: mongoose's poll thread parses and writes, a thread pool runs the app.

Threads and hand-offs (see design.md, "Threads and hops"):

* The poll thread receives ``MG_EV_HTTP_MSG``, builds the environ (plain Python objects)
  and queues the request for the pool. It never blocks.
* The common request (HTTP/1.1, no body to stream, a response in one block) never runs
  the server's Python: the core's ``WsgiFastPath`` builds the environ and queues it, and
  on the worker calls the app and writes the response into the send buffer itself, under
  the GIL, which ``Manager.poll()`` holds except while it waits for I/O. What it cannot
  answer it hands to :meth:`_Exchange.resume`, which goes on as below.
* A worker runs the app and appends the finished response (or, for streamed bodies, the
  head and each block) to one shared outbox, then wakes the poll thread with an empty
  ``Manager.wakeup()``. Payloads never travel through mongoose's wakeup pipe, and at most
  one wakeup is in flight at a time: every post made while one is pending rides on it.
* On ``MG_EV_WAKEUP`` the poll thread empties the whole outbox, for all connections.

Request bodies above the core's ``stream_threshold`` (and chunked ones) arrive after the
head as ``EV_HTTP_BODY`` events and are fed to a bounded :class:`RequestBody`; the poll
thread pauses reading the socket while the app is behind. Streamed responses are bounded
the same way: a worker may have ``STREAM_QUEUE_BYTES`` posted but not yet flushed towards
the client, and the poll thread credits bytes back only once mongoose's send buffer has
drained (``EV_WRITABLE``).

Requests on one connection run one at a time, in arrival order, so pipelined requests are
answered in order.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import signal
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

from cymongoose.serving.accesslog import access_log_enabled, log_access
from cymongoose.serving.config import ServerConfig
from cymongoose.serving.listen import listen_http
from cymongoose.serving.proxy import ProxyHeaders
from cymongoose.serving.tls import load_tls

import cymongoose
from cymongoose import MG_EV_ACCEPT, MG_EV_CLOSE, MG_EV_HTTP_MSG, MG_EV_WAKEUP, Manager

from .environ import ClientDisconnected, FileWrapper, RequestBody, base_environ, request_environ

__all__ = ["WSGIServer", "serve"]

logger = logging.getLogger("cymongoose.wsgi")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Response bodies that grow past this many bytes are streamed (chunked, or with the
#: app's Content-Length) instead of being sent in one piece.
STREAM_THRESHOLD_BYTES = 1 << 20
#: A streaming worker may have this many bytes handed over but not yet flushed.
STREAM_QUEUE_BYTES = 1 << 20
#: mongoose's send buffer may hold this much before a streaming worker has to wait.
SEND_LOW_WATER_BYTES = 256 << 10
#: Request bodies above this size arrive in pieces (``EV_HTTP_BODY``) instead of whole.
BODY_STREAM_THRESHOLD_BYTES = 64 << 10
#: At most this much of a streamed request body waits for the app before reading pauses.
BODY_BUFFER_BYTES = 1 << 20
#: A worker reading ``wsgi.input`` gives up after this long without data.
BODY_READ_TIMEOUT_S = 60.0
#: Pipelined requests queued behind the running one before the connection is closed.
MAX_PIPELINED = 64

# Events of the core's HTTP server protocol; absent from cores that predate it.
EV_HTTP_BODY: int = getattr(cymongoose, "EV_HTTP_BODY", -1)
EV_WRITABLE: int = getattr(cymongoose, "EV_WRITABLE", -2)

# Outbox item kinds.
_RESPONSE, _HEAD, _DATA, _END, _ABORT, _RESUME, _FILE, _ADOPT = range(8)

_INTERNAL_ERROR_BODY = b"Internal Server Error"
_ERROR_HEADERS = [("Content-Type", "text/plain; charset=utf-8")]
_PROXY_HEADERS = (
    (b"forwarded", "HTTP_FORWARDED"),
    (b"x-forwarded-for", "HTTP_X_FORWARDED_FOR"),
    (b"x-forwarded-proto", "HTTP_X_FORWARDED_PROTO"),
    (b"x-forwarded-host", "HTTP_X_FORWARDED_HOST"),
)
_PROXY_KEYS = frozenset(key for _, key in _PROXY_HEADERS)


class _Cancelled(Exception):
    """The client went away while the app was running."""


class StreamStalled(TimeoutError):
    """A streamed response waited ``stream_timeout`` seconds for the client to take data."""


class _Request:
    """One request; shared by the poll thread and the worker that runs it."""

    __slots__ = (
        "conn_id",
        "environ",
        "body",
        "deferred",
        "keep_alive",
        "is_head",
        "chunked",
        "cancelled",
        "cond",
        "queued_bytes",
        "path",
        "query",
        "client",
    )

    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self.environ: dict[str, Any] = {}
        self.keep_alive = True
        self.is_head = False
        self.body: RequestBody | None = None  # a streamed request body
        # Current, but not handed to a worker until its body is in or fills the buffer.
        self.deferred = False
        self.chunked = False
        # Set by the poll thread under WSGIServer._lock when the connection closes.
        self.cancelled = False
        # Back-pressure for streamed responses; created on first use.
        self.cond: threading.Condition | None = None
        self.queued_bytes = 0
        # For the access log.
        self.path = ""
        self.query = ""
        self.client: tuple[str, int] | None = None


# The core's fast path answers common requests in C; it reads the connection's ``base``
# environ and ``fast`` flag from this class's instances (Connection.userdata).
_ConnBase: Any = getattr(cymongoose, "WsgiConnState", None)
_FastPath: Any = getattr(cymongoose, "WsgiFastPath", None)


class _ConnState(_ConnBase if _ConnBase is not None else object):  # type: ignore[misc]
    """Per-connection bookkeeping; touched by the poll thread only (``busy``: by the
    core's fast path, under the GIL)."""

    __slots__ = (
        "conn",
        "client",
        "trusted",
        "current",
        "pending",
        "receiving",
        "reading_paused",
        "uncredited",
        "writable_armed",
    ) + (("base", "fast", "proxied", "busy") if _ConnBase is None else ())

    def __init__(
        self, conn: Any, base: dict[str, Any], client: tuple[str, int], trusted: bool
    ) -> None:
        self.conn = conn
        self.base = base
        self.client = client  # the peer (host, port)
        self.trusted = trusted  # the peer may set proxy headers
        self.fast = True  # the core's fast path may answer this connection's requests
        self.proxied = trusted  # ...except those carrying a trusted proxy's headers
        self.busy = False
        self.current: _Request | None = None
        self.pending: deque[_Request] = deque()
        self.receiving: _Request | None = None  # its body is still arriving
        self.reading_paused = False
        self.uncredited = 0  # bytes written for `current` but not yet credited to its worker
        self.writable_armed = False


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts ones such as '¹' that int() refuses."""
    return text.isascii() and text.isdigit()


def _parse_status(status: str) -> int:
    if not isinstance(status, str):
        raise TypeError(f"WSGI status must be a str like '200 OK', got {status!r}")
    code = status[:3]
    if len(status) < 4 or status[3] != " " or not _digits(code) \
            or not 100 <= int(code) <= 599:
        raise ValueError(f"WSGI status must look like '200 OK', got {status!r}")
    if code[0] == "1":
        # Interim responses (RFC 9110 section 15.2) are the server's business: 100 Continue
        # is sent by the server, and WSGI has no way to take over the connection (101).
        raise ValueError(f"a WSGI app cannot send a 1xx (interim) status, got {status!r}")
    return int(code)


def _check_headers(headers: Any) -> list[tuple[str, str]]:
    if type(headers) is not list:
        raise TypeError(f"WSGI response headers must be a list of tuples, got {type(headers)}")
    for item in headers:
        if not (
            type(item) is tuple
            and len(item) == 2
            and type(item[0]) is str
            and type(item[1]) is str
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


def _without(headers: list[tuple[str, str]], lname: str) -> list[tuple[str, str]]:
    return [(n, v) for n, v in headers if n.lower() != lname]


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    value = _find_header(headers, "content-length")
    if value is None:
        return None
    value = value.strip()
    if not _digits(value):
        raise ValueError(f"WSGI app set an invalid Content-Length: {value!r}")
    return int(value)


def file_region(
    wrapper: FileWrapper, headers: list[tuple[str, str]]
) -> tuple[int, int, int, list[tuple[str, str]]] | None:
    """``(fd, offset, length, headers)`` for sending a ``wsgi.file_wrapper`` with
    ``Connection.send_file``: the rest of a regular file from its current position, and
    the headers with a Content-Length. None when it cannot: no fileno, not a regular file,
    or a Content-Length the file is too short for (the ordinary path then closes)."""
    filelike = wrapper.filelike
    try:
        fd = filelike.fileno()
        st = os.fstat(fd)
        offset = filelike.tell()
    except (AttributeError, OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode) or offset > st.st_size:
        return None
    length = _content_length(headers)
    if length is None:
        length = st.st_size - offset
        headers = [*headers, ("Content-Length", str(length))]
    elif length > st.st_size - offset:
        return None
    return fd, offset, length, headers


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
        "no_body",
        "streaming",
        "stream_eager",
        "head_sent",
        "length",
        "sent",
    )

    def __init__(self, server: WSGIServer, req: _Request) -> None:
        self.server = server
        self.req = req
        self.status: str | None = None
        self.code = 0
        self.headers: list[tuple[str, str]] = []
        self.parts: list[bytes] = []
        self.size = 0  # body bytes produced by the app
        self.no_body = False  # HEAD, 204, 304: no body goes out
        self.streaming = False
        self.stream_eager = False
        self.head_sent = False
        self.length: int | None = None  # the app's Content-Length, when streaming
        self.sent = 0  # body bytes handed to the poll thread, when streaming

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        """PEP 3333 ``start_response(status, response_headers, exc_info=None) -> write``.

        With ``exc_info`` once the app has produced body data, re-raises that exception
        (the server then answers 500, or closes the connection if the head is out);
        before, it replaces status and headers. A second call without ``exc_info`` raises
        AssertionError; an invalid status or header list raises ValueError/TypeError.
        """
        if exc_info is not None:
            try:
                # PEP 3333: the head counts as sent once a non-empty block was produced
                # (even if it still waits in our buffer).
                if self.head_sent or self.size:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        code = _parse_status(status)
        self.headers = list(_check_headers(headers))
        self.code = code
        self.status = status
        self.no_body = self.req.is_head or code == 204 or code == 304
        self.parts = []
        self.size = 0
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write(data)`` callable returned by ``start_response`` (PEP 3333).

        Data is on its way to the client when it returns: ``write`` streams at once.
        """
        self.stream_eager = True
        self._body(data)

    def _body(self, data: bytes) -> None:
        if self.status is None:
            raise AssertionError("the WSGI app produced body data before start_response()")
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"WSGI body blocks must be bytes, got {type(data).__name__}")
            data = bytes(data)
        if self.req.cancelled:
            raise _Cancelled
        if not data:
            return
        self.size += len(data)
        if self.no_body:
            return  # HEAD and friends: count the length, send no body
        if self.streaming:
            self._send_block(data)
            return
        self.parts.append(data)
        if self.stream_eager or self.size > STREAM_THRESHOLD_BYTES:
            self._start_stream()

    def _start_stream(self) -> None:
        req = self.req
        self.streaming = True
        headers = self.headers
        self.length = _content_length(headers)
        if self.length is None:
            if req.environ["SERVER_PROTOCOL"] == "HTTP/1.1":
                req.chunked = True
                headers = [*headers, ("Transfer-Encoding", "chunked")]
            else:
                req.keep_alive = False  # HTTP/1.0 client: the end of the body is the close
        else:
            # RFC 9112 section 6.1: Transfer-Encoding and Content-Length never together.
            headers = _without(headers, "transfer-encoding")
        headers = self._connection_headers(headers)
        req.cond = threading.Condition()
        self.head_sent = True
        self.server._post(req, (_HEAD, req, self.status, headers))
        parts, self.parts = self.parts, []
        if parts:
            self._send_block(parts[0] if len(parts) == 1 else b"".join(parts))

    def _send_block(self, data: bytes) -> None:
        req = self.req
        if self.length is not None:
            room = self.length - self.sent
            if len(data) > room:
                logger.error(
                    "WSGI app produced more body than its Content-Length %d; truncated",
                    self.length,
                )
                data = data[:room]
                if not data:
                    return
        self.sent += len(data)
        cond = req.cond
        assert cond is not None
        timeout_s = self.server.stream_timeout
        with cond:
            if req.queued_bytes >= STREAM_QUEUE_BYTES and not req.cancelled:
                if not cond.wait_for(
                    lambda: req.queued_bytes < STREAM_QUEUE_BYTES or req.cancelled, timeout_s
                ):
                    raise StreamStalled(
                        f"streamed response stalled for {timeout_s} s "
                        f"({req.queued_bytes} bytes not yet taken by the client)"
                    )
            if req.cancelled:
                raise _Cancelled
            req.queued_bytes += len(data)
        self.server._post(req, (_DATA, req, data))

    def _connection_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        req = self.req
        if self.server._stopping:
            req.keep_alive = False
        if not req.keep_alive:
            return [*_without(headers, "connection"), ("Connection", "close")]
        if req.environ["SERVER_PROTOCOL"] != "HTTP/1.1":
            return [*headers, ("Connection", "keep-alive")]
        return headers

    def run(self) -> None:
        if self.req.cancelled:
            return  # the client left while the request waited for a thread
        self._serve(None, None)

    def resume(self, start: Any, result: Any, failed: bool) -> None:
        """Go on with a request the core's fast path began on this worker (see
        ``cymongoose.WsgiFastPath``): the app was called with ``start``, returned ``result``
        or raised (``failed``, called in the ``except`` block). ``start`` forwards to this
        exchange from now on."""
        start.delegate = self
        if start.status is not None:
            self.status = start.status
            self.headers = list(start.headers)
            self.code = code = start.code
            self.no_body = code == 204 or code == 304
        if failed:
            self._failed(sys.exc_info()[1])
            return
        self._serve(result, start)

    def _serve(self, result: Any, start: Any) -> None:
        # start: None to call the app here; else the fast path's start_response, whose
        # write() blocks and lazy iteration are taken over.
        req = self.req
        environ = req.environ
        server = self.server
        try:
            if start is None:
                result = server.app(environ, self.start_response)
            elif start.written:
                for data in start.written:
                    self.write(data)
            if type(result) is FileWrapper and server._send_file and self._send_file(result):
                return  # the poll thread sends the file and closes the wrapper
            blocks = result
            if start is not None and start.iterator is not None:
                blocks = chain(start.prefix, start.iterator)  # the blocks taken, then the rest
            try:
                if type(result) is not list and type(result) is not tuple:
                    # Generators and other lazy iterables: send each block as it comes
                    # (PEP 3333, "Buffering and Streaming") unless the length is known and
                    # small.
                    length = _find_header(self.headers, "content-length") if self.status else None
                    self.stream_eager = (
                        length is None
                        or not _digits(length)
                        or int(length) > STREAM_THRESHOLD_BYTES
                    )
                for data in blocks:
                    self._body(data)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if self.status is None:
                raise AssertionError("the WSGI app returned without calling start_response()")
        except Exception as exc:
            self._failed(exc)
            return
        if self.streaming:
            if self.length is not None and self.sent < self.length:
                logger.error(
                    "WSGI app produced %d bytes of its Content-Length %d; closing",
                    self.sent,
                    self.length,
                )
                server._post(req, (_ABORT, req, False))
            else:
                server._post(req, (_END, req))
            self._log(self.code)
        else:
            parts = self.parts
            body = parts[0] if len(parts) == 1 else b"".join(parts)
            self._respond(self.headers, body)

    def _failed(self, exc: BaseException | None) -> None:
        """The app (or its iterable) raised ``exc``: a 500, or an abort once the head is out.
        Called in the ``except`` block (the log shows the traceback)."""
        req = self.req
        if isinstance(exc, _Cancelled):
            return
        if isinstance(exc, ClientDisconnected):
            logger.debug("client disconnected while the app read the request body")
            return
        if req.cancelled:
            return
        environ = req.environ
        logger.exception(
            "Exception in WSGI application (%s %s)",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
        )
        if self.head_sent:
            # A client that stopped reading gets no chance to drain what is queued.
            self.server._post(req, (_ABORT, req, isinstance(exc, StreamStalled)))
            self._log(self.code)
        else:
            self.status = "500 Internal Server Error"
            self.no_body = req.is_head
            self.code = 500
            self._respond(list(_ERROR_HEADERS), _INTERNAL_ERROR_BODY)

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Hand a ``wsgi.file_wrapper`` over a regular file to the core, which reads it
        straight into the socket's buffer (``Connection.send_file``): the file's bytes never
        pass through Python. Returns False (nothing done) when the ordinary path must serve
        the response: no fileno, not a regular file, HEAD or a status without a body,
        a Content-Length the file cannot fill, or a connection that closes afterwards."""
        req = self.req
        if self.status is None or self.no_body or not req.keep_alive or self.server._stopping:
            return False
        region = file_region(wrapper, self.headers)
        if region is None:
            return False
        fd, offset, length, headers = region
        self.size = length
        headers = self._connection_headers(headers)
        if not self.server._post(req, (_FILE, req, self.status, headers, fd, offset, length,
                                       wrapper)):
            wrapper.close()  # the client has gone
        self._log(self.code)
        return True

    def _respond(self, headers: list[tuple[str, str]], body: bytes) -> None:
        """Post a complete response; fixes up Content-Length as RFC 9110 section 8.6 says."""
        req = self.req
        code = self.code
        length = _content_length(headers)
        if self.no_body:
            body = b""
            if code == 204:
                headers = _without(headers, "content-length")
            elif length is None and (req.is_head or code != 304):
                headers = [*headers, ("Content-Length", str(self.size))]
        elif length is not None and length != len(body):
            if length < len(body):
                logger.error(
                    "WSGI app produced more body than its Content-Length %d; truncated",
                    length,
                )
                body = body[:length]
            else:
                logger.error(
                    "WSGI app produced %d bytes of its Content-Length %d; closing",
                    len(body),
                    length,
                )
                req.keep_alive = False
        headers = self._connection_headers(headers)
        if self.no_body and _find_header(headers, "content-length") is None:
            # 204/304 without a length: a complete response would get "Content-Length: 0"
            self.server._post(req, (_HEAD, req, self.status, headers))
            self.server._post(req, (_END, req))
        else:
            self.server._post(req, (_RESPONSE, req, self.status, headers, body))
        self._log(code)

    def _log(self, code: int) -> None:
        if self.server._access_log:
            req = self.req
            log_access(
                req.client,
                req.environ["REQUEST_METHOD"],
                req.path,
                req.query,
                req.environ["SERVER_PROTOCOL"][5:],
                code,
            )


class WSGIServer:
    """Serve a PEP 3333 application on a mongoose event loop.

    The positional parameters are cymongoose 0.2.x's, in its order:
    ``WSGIServer(app, workers, error_handler, stream_timeout)``; the settings added since
    are keyword-only.

    Args:
        app: the WSGI callable ``app(environ, start_response) -> iterable of bytes``.
        workers: size of the thread pool running the app (0.2.x's name; ``threads`` is
            the same thing under the name the config and ``--threads`` use; processes are
            the CLI's ``--workers``). Default: ``config.threads``. 0: no pool, the app runs
            on the poll thread (inline mode, for apps that never block; see ``inline.py``).
        error_handler: receives exceptions raised in the event loop (not app errors, which
            become 500 responses and are logged on the ``cymongoose.wsgi`` logger).
        stream_timeout: seconds a worker streaming a response waits for the client to take
            data before it gives up (and the connection is closed).
        config: a :class:`cymongoose.serving.config.ServerConfig`; keyword ``fields``
            (``host``, ``port``, ``root_path``, ``keep_alive_timeout_s``, ...) override it.
        threads: the pool size, as ``workers`` (give one of the two).

    On shutdown, in-flight requests get ``graceful_timeout_s`` seconds to finish. Raises
    TypeError/ValueError (from ServerConfig) for invalid settings, and the errors of
    :func:`cymongoose.serving.tls.load_tls` (FileNotFoundError, PermissionError, ...
    naming the file) when a TLS file cannot be read.
    """

    def __init__(
        self,
        app: WSGIApp,
        workers: int | None = None,
        error_handler: Callable[[BaseException], Any] | None = None,
        stream_timeout: float = 5.0,
        *,
        config: ServerConfig | None = None,
        threads: int | None = None,
        **fields: Any,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, got {app!r}")
        for name, size in (("workers", workers), ("threads", threads)):
            if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
                hint = ("; pass a ServerConfig as config=..."
                        if isinstance(size, ServerConfig) else "")
                raise TypeError(f"{name} (the thread pool size) must be an int or None, "
                                f"got {size!r}{hint}")
        if workers is not None and threads is not None and workers != threads:
            raise ValueError(
                f"workers={workers!r} and threads={threads!r} both set the thread pool size; "
                "give one of them"
            )
        pool_size = threads if threads is not None else workers
        if pool_size is not None:
            fields["threads"] = pool_size
        config = ServerConfig.from_kwargs(config, **fields)
        if isinstance(stream_timeout, bool) or not stream_timeout > 0:
            raise ValueError(f"stream_timeout must be > 0 seconds, got {stream_timeout!r}")
        self.app = app
        self.config = config
        self.workers = config.threads
        self.stream_timeout = float(stream_timeout)
        self.graceful_timeout_s = config.graceful_timeout_s
        self._access_log = access_log_enabled(config.access_log)
        # Other processes may run the same app: --workers N children and gunicorn workers
        # (both serve an inherited socket).
        self._multiprocess = config.workers > 1 or config.fd is not None
        # Cores with Connection.send_file serve wsgi.file_wrapper files without Python.
        self._send_file = hasattr(cymongoose.Connection, "send_file")
        self._proxy = ProxyHeaders(config.forwarded_allow_ips) if config.proxy_headers else None
        self._tls = load_tls(config)
        self._mgr = Manager(self._on_event, enable_wakeup=True, error_handler=error_handler)
        self._jobs: queue.SimpleQueue[_Exchange | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._listeners: list[Any] = []
        self._states: dict[int, _ConnState] = {}  # poll thread only
        self._lock = threading.Lock()
        self._outbox: list[tuple[Any, ...]] = []  # guarded by _lock
        self._wake_target: int | None = None  # guarded by _lock: id of the wakeup in flight
        self._sweep_timer: Any = None
        self._stop = threading.Event()
        self._stopping = False
        self._closed = False
        self._fast_path: Any = None  # the core's WsgiFastPath, in front of _on_event
        if config.threads == 0:
            # Inline mode: no pool, the app runs on the poll thread (see inline.py).
            from .inline import InlineHandler

            inline = InlineHandler(self)
            self._fast_path = inline.fast_path
            self._on_event = inline.handler  # type: ignore[method-assign]
        elif _FastPath is not None and getattr(_FastPath, "pool_supported", False):
            self._fast_path = _FastPath(
                app,
                self._on_event,
                self._resume_fast,
                _parse_status,
                _check_headers,
                log_fast_path if self._access_log else None,
                file_wrapper=FileWrapper,
                buffer_limit=STREAM_THRESHOLD_BYTES,
                submit=self._jobs.put,
            )
            self._on_event = self._fast_path  # type: ignore[method-assign]

    @property
    def manager(self) -> Manager:
        """The underlying ``cymongoose.Manager``."""
        return self._mgr

    def listen(self, url: str | None = None, *, fd: int | None = None) -> Any:
        """Listen on ``url`` (``http://host:port`` or ``https://``; port 0 picks a free one).

        Without ``url``, listens where the config says (``host``/``port``, or the already
        listening socket ``fd``). With ``ssl_certfile``/``ssl_keyfile`` set, connections
        speak TLS whatever the scheme. Returns the listening ``Connection``; its
        ``local_addr[1]`` is the bound port. Raises
        :class:`~cymongoose.serving.listen.ListenError` (an OSError with the errno, e.g.
        EADDRINUSE, and also a RuntimeError as in 0.2.x) when it cannot listen there,
        ValueError/OSError for an ``fd`` that is not a listening TCP socket (see
        :func:`~cymongoose.serving.listen.check_listen_fd`).
        """
        config = self.config
        if fd is None and url is None:
            fd = config.fd
        if url is None:
            url = config.url
        conn = listen_http(self._mgr, url, self._on_event, fd=fd)
        conn.io_events = False  # no Python call per loop iteration per connection
        configure = getattr(conn, "configure_http_server", None)
        if configure is not None:
            configure(
                max_header_count=config.max_header_count,
                max_header_bytes=config.max_header_bytes,
                max_body_size=config.max_body_size or 0,
                stream_threshold=BODY_STREAM_THRESHOLD_BYTES,
                keep_alive_timeout_ms=max(1, int(config.keep_alive_timeout_s * 1000)),
                max_connections=config.max_connections or 0,
            )
        if self._tls is None and url.startswith("https:"):
            conn.close()
            raise ValueError(f"{url!r} needs ssl_certfile and ssl_keyfile")
        self._listeners.append(conn)
        self._start_threads()
        if self._sweep_timer is None:
            self._sweep_timer = self._mgr.timer_add(
                1000, self._sweep_stalled_bodies, repeat=True
            )
        return conn

    def _start_threads(self) -> None:
        if not self._threads:
            _limit_malloc_arenas(self.workers)
        while len(self._threads) < self.workers:
            t = threading.Thread(
                target=self._worker_loop,
                name=f"cymongoose-wsgi-{len(self._threads)}",
                daemon=True,
            )
            t.start()
            self._threads.append(t)

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
            if not self._listeners:
                self.listen()
            while not self._stop.is_set():
                self._mgr.poll(poll_ms)
            self._graceful_stop(poll_ms)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()

    def shutdown(self) -> None:
        """Ask :meth:`run` to stop; safe from any thread and from signal handlers."""
        self._stop.set()

    def close(self) -> None:
        """Close every connection and the manager, stop the worker threads; idempotent.

        Call it from the poll thread or after :meth:`run` has returned.
        """
        if self._closed:
            return
        self._closed = True
        self._begin_stop()
        for state in self._states.values():
            self._cancel(state)
        self._mgr.close()
        for _ in self._threads:
            self._jobs.put(None)

    def _begin_stop(self) -> None:
        # Responses say "Connection: close" from now on: the Python path writes them.
        self._stopping = True
        if self._fast_path is not None:
            self._fast_path.enabled = False

    def _graceful_stop(self, poll_ms: int) -> None:
        """Stop accepting, close idle connections, let running requests finish (up to
        ``graceful_timeout_s``), then close what is left."""
        self._begin_stop()
        for conn in self._listeners:
            try:
                conn.close()
            except RuntimeError:
                pass
        # Not the listeners, nor the wakeup pipe that brings the running responses back.
        keep = {c.id for c in self._listeners} | {self._mgr.wakeup_id}
        for conn in self._mgr.connections:
            state = self._states.get(conn.id)
            if conn.id not in keep and (state is None or not self._in_flight(state)):
                conn.drain()  # idle keep-alive connection (or no complete request yet)
        deadline = time.monotonic() + self.graceful_timeout_s
        while time.monotonic() < deadline:
            # The outbox may hold a fast-path request handed over (_ADOPT) but not applied.
            if not self._outbox and not any(map(self._in_flight, self._states.values())):
                break
            self._mgr.poll(min(poll_ms, 50))
        for state in list(self._states.values()):
            try:
                state.conn.drain()
            except RuntimeError:
                pass
        # Draining connections close once their send buffers are empty: keep polling
        # (within the deadline) so that what the responses queued reaches the clients.
        while True:
            self._mgr.poll(0 if time.monotonic() >= deadline else min(poll_ms, 50))
            if time.monotonic() >= deadline or not any(
                    c.id not in keep for c in self._mgr.connections):
                break

    @staticmethod
    def _in_flight(state: _ConnState) -> bool:
        return state.current is not None or state.busy

    # -- poll thread -------------------------------------------------------------------

    def _on_event(self, conn: Any, ev: int, data: Any) -> None:
        if ev == MG_EV_HTTP_MSG:
            self._on_request(conn, data)
        elif ev == EV_HTTP_BODY:
            self._on_body(conn, data)
        elif ev == MG_EV_WAKEUP:
            self._flush()
        elif ev == EV_WRITABLE:
            self._on_writable(conn)
        elif ev == MG_EV_CLOSE:
            self._on_close(conn)
        elif ev == MG_EV_ACCEPT:
            if self._tls is not None:
                conn.tls_init(self._tls)
            if self._fast_path is not None:
                self._new_state(conn)  # the fast path needs it from the first request

    def _new_state(self, conn: Any) -> _ConnState:
        scheme = "https" if conn.is_tls else "http"
        remote = conn.remote_addr
        trusted = self._proxy is not None and self._proxy.is_trusted(remote[0])
        base = base_environ(
            conn.local_addr,
            remote,
            scheme,
            script_name=self.config.root_path,
            multiprocess=self._multiprocess,
        )
        state = self._states[conn.id] = _ConnState(conn, base, (remote[0], remote[1]), trusted)
        conn.userdata = state  # where the core's fast path finds it
        return state

    def _on_request(self, conn: Any, msg: Any) -> None:
        state = self._states.get(conn.id) or self._new_state(conn)
        req = _Request(conn.id)
        body = None
        if msg.more_body:
            body = req.body = RequestBody(
                lambda: self._post(req, (_RESUME, req)),
                high_water=BODY_BUFFER_BYTES,
                low_water=BODY_BUFFER_BYTES // 4,
                timeout_s=BODY_READ_TIMEOUT_S,
            )
            state.receiving = req
        environ = req.environ = request_environ(state.base, msg, body)  # CGI keys built in C
        connection = environ.get("HTTP_CONNECTION")
        if environ["SERVER_PROTOCOL"] == "HTTP/1.1":
            req.keep_alive = connection is None or "close" not in connection.lower()
        else:
            req.keep_alive = connection is not None and "keep-alive" in connection.lower()
        req.is_head = environ["REQUEST_METHOD"] == "HEAD"
        if self._access_log:
            req.path = msg.uri
            req.query = msg.query
        client = state.client
        if state.trusted and (
            "HTTP_X_FORWARDED_FOR" in environ or "HTTP_FORWARDED" in environ
            or "HTTP_X_FORWARDED_PROTO" in environ or "HTTP_X_FORWARDED_HOST" in environ
        ):
            assert self._proxy is not None
            headers = [
                (name, environ[key].encode("latin-1"))
                for name, key in _PROXY_HEADERS
                if key in environ
            ]
            result = self._proxy.resolve(headers, client, environ["wsgi.url_scheme"])
            if result.client is not None:
                client = result.client
                environ["REMOTE_ADDR"] = client[0]
                environ["REMOTE_PORT"] = str(client[1])
            environ["wsgi.url_scheme"] = result.scheme
            if result.host:
                environ["HTTP_HOST"] = result.host
        req.client = client
        if self._stopping:
            req.keep_alive = False
        if state.current is None:
            self._dispatch(state, req)
        elif len(state.pending) < MAX_PIPELINED:
            state.pending.append(req)
        else:
            logger.warning(
                "closing connection %d: more than %d pipelined requests", conn.id, MAX_PIPELINED
            )
            conn.close()

    def _on_body(self, conn: Any, data: bytes) -> None:
        state = self._states.get(conn.id)
        req = state.receiving if state is not None else None
        if req is None or req.body is None:
            return
        body = req.body
        if body.feed(data) and not state.reading_paused:
            state.reading_paused = True
            conn.pause_reading()
        if req.deferred and body.ready:
            req.deferred = False
            self._jobs.put(_Exchange(self, req))
        if not data:
            # The whole body is in: what follows is the next request, which the core holds
            # back until this one is answered.
            state.receiving = None
            self._resume(state)

    def _resume(self, state: _ConnState) -> None:
        """Read the socket again, unless the body still arriving wants the pause."""
        if not state.reading_paused:
            return
        receiving = state.receiving
        if receiving is not None and receiving.body is not None and receiving.body.still_paused():
            return
        state.reading_paused = False
        state.conn.resume_reading()

    def _on_writable(self, conn: Any) -> None:
        state = self._states.get(conn.id)
        if state is None:
            return
        state.writable_armed = False
        req = state.current
        if req is not None and state.uncredited:
            self._credit(req, state.uncredited)
        state.uncredited = 0

    @staticmethod
    def _credit(req: _Request, nbytes: int) -> None:
        cond = req.cond
        assert cond is not None
        with cond:
            req.queued_bytes -= nbytes
            cond.notify()

    def _dispatch(self, state: _ConnState, req: _Request) -> None:
        state.current = req
        body = req.body
        if body is not None and not body.ready:
            # A client that sends a little of its body and stalls must not hold an app
            # thread (R-U-Dead-Yet): the request goes to the pool once the body is in, or
            # once a quarter of the read-ahead buffer (BODY_BUFFER_BYTES / 4) has arrived.
            req.deferred = True
        else:
            self._jobs.put(_Exchange(self, req))

    def _sweep_stalled_bodies(self) -> None:
        """Timer (poll thread): answer 408 to requests whose body stopped arriving before
        any app thread took them."""
        deadline = time.monotonic() - BODY_READ_TIMEOUT_S
        for state in list(self._states.values()):
            req = state.current
            if req is not None and req.deferred and req.body is not None:
                if req.body.last_feed < deadline:
                    logger.info(
                        "closing connection %d: request body stalled for %.0f s",
                        state.conn.id,
                        BODY_READ_TIMEOUT_S,
                    )
                    req.deferred = False
                    state.current = None
                    state.conn.send_response(
                        408,
                        [("Content-Type", "text/plain"), ("Connection", "close")],
                        b"Request Timeout",
                    )
                    state.conn.drain()

    def _cancel(self, state: _ConnState) -> None:
        """The connection is gone: stop its requests' workers."""
        req = state.current
        with self._lock:
            if req is not None:
                req.cancelled = True
        for r in (req, state.receiving, *state.pending):
            if r is not None and r.body is not None:
                r.body.fail(ClientDisconnected("the client closed the connection"))
        state.pending.clear()
        if req is not None and req.cond is not None:
            with req.cond:
                req.cond.notify_all()

    def _on_close(self, conn: Any) -> None:
        state = self._states.pop(conn.id, None)
        if state is None:
            return
        self._cancel(state)
        with self._lock:
            # A wakeup aimed at this connection will not be delivered: flush ourselves.
            orphaned = self._wake_target == conn.id
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
            if item[0] == _ADOPT:
                self._adopt(state, req)
                continue
            if state is None or state.current is not req:
                if item[0] == _FILE:
                    self._close_quietly(item[7])
                continue  # connection closed meanwhile: drop
            try:
                self._apply(state, item)
            except Exception:
                logger.exception("error while sending a response on connection %d", req.conn_id)
                try:
                    state.conn.close()
                except RuntimeError:
                    pass

    def _adopt(self, state: _ConnState | None, req: _Request) -> None:
        """A request the core's fast path began is the connection's current one from now
        on (the core parses nothing more on it until it is answered)."""
        if state is not None and state.current is None:
            state.current = req
            return
        with self._lock:  # the connection has gone: stop the worker
            req.cancelled = True
        if req.cond is not None:
            with req.cond:
                req.cond.notify_all()

    def _apply(self, state: _ConnState, item: tuple[Any, ...]) -> None:
        kind, req = item[0], item[1]
        conn = state.conn
        if kind == _RESPONSE:
            try:
                conn.send_wsgi_response(item[2], item[3], item[4])
            except ValueError as exc:
                self._refused(conn, exc, req.is_head)
            self._finish(state, req)
        elif kind == _HEAD:
            try:
                conn.send_wsgi_head(item[2], item[3])
            except ValueError as exc:
                state.current = None
                self._refused(conn, exc, req.is_head)
        elif kind == _DATA:
            data = item[2]
            if req.chunked:
                conn.http_chunk(data)
            else:
                conn.send(data)
            if EV_WRITABLE >= 0 and conn.send_len > SEND_LOW_WATER_BYTES:
                # Credit the worker only once the client has taken most of it.
                state.uncredited += len(data)
                if not state.writable_armed:
                    state.writable_armed = True
                    conn.notify_writable(SEND_LOW_WATER_BYTES)
            else:
                self._credit(req, len(data) + state.uncredited)
                state.uncredited = 0
        elif kind == _END:
            if req.chunked:
                conn.http_chunk(b"")
            conn.finish_response()
            self._finish(state, req)
        elif kind == _ABORT:
            state.current = None
            if item[2]:
                conn.close()
            else:
                conn.drain()  # the client gets what was sent, then sees the close
        elif kind == _RESUME:
            self._resume(state)
        elif kind == _FILE:
            try:
                conn.send_wsgi_head(item[2], item[3])
                conn.send_file(item[4], item[5], item[6])  # duplicates the descriptor
            finally:
                self._close_quietly(item[7])
            self._finish(state, req)

    @staticmethod
    def _refused(conn: Any, exc: ValueError, head: bool) -> None:
        # The core refused the app's status or headers (not a token, not latin-1, ...):
        # a 500 instead, never the malformed head. HEAD: the same head, no content.
        logger.error("invalid response from WSGI application: %s", exc)
        if head:
            conn.send_wsgi_response(
                "500 Internal Server Error",
                [*_ERROR_HEADERS, ("Content-Length", str(len(_INTERNAL_ERROR_BODY)))],
                b"", close=True)
        else:
            conn.send_wsgi_response("500 Internal Server Error", list(_ERROR_HEADERS),
                                    _INTERNAL_ERROR_BODY, close=True)

    @staticmethod
    def _close_quietly(iterable: Any) -> None:
        """Call a response iterable's close() on the poll thread (PEP 3333: always)."""
        try:
            iterable.close()
        except Exception:
            logger.exception("error in the close() of a WSGI response iterable")

    def _finish(self, state: _ConnState, req: _Request) -> None:
        state.current = None
        state.uncredited = 0
        body = req.body
        if body is not None and not body.complete:
            # The app answered without reading the whole body: skip the rest of it so that
            # the next request on this connection can be parsed.
            body.discard()
        self._resume(state)
        if not req.keep_alive:
            state.pending.clear()
            state.conn.drain()
        elif state.pending:
            self._dispatch(state, state.pending.popleft())

    # -- worker threads ----------------------------------------------------------------

    def _worker_loop(self) -> None:
        get = self._jobs.get
        run_fast = self._fast_path.run if self._fast_path is not None else None
        while True:
            job = get()
            if job is None:
                return
            try:
                if type(job) is _Exchange:
                    job.run()
                else:  # a start_response queued by the core's fast path
                    run_fast(job)
            except BaseException:  # never lose a worker thread
                logger.exception("error in WSGI worker thread")

    def _resume_fast(
        self, conn: Any, environ: dict[str, Any], start: Any, result: Any, failed: bool
    ) -> None:
        """Worker: finish a request the core's fast path began (``WsgiFastPath`` resume);
        its answer then goes through the outbox like any other."""
        state = conn.userdata
        req = _Request(conn.id)
        req.environ = environ  # HTTP/1.1, no Connection header: keep-alive
        req.client = state.client
        if self._access_log:
            req.path = start.uri
            req.query = start.query
        self._post(req, (_ADOPT, req))
        _Exchange(self, req).resume(start, result, failed)

    def _post(self, req: _Request, item: tuple[Any, ...]) -> bool:
        """Hand ``item`` to the poll thread; wake it unless a wakeup is already on its way.

        Returns False (item dropped) when the request's connection has closed."""
        with self._lock:
            if req.cancelled:
                return False
            self._outbox.append(item)
            if self._wake_target is not None:
                return True
            self._wake_target = req.conn_id
        self._wake(req.conn_id)
        return True

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


def log_fast_path(
    state: _ConnState, environ: dict[str, Any], path: str, query: str, code: int
) -> None:
    """The access log of a request the core's fast path answered (``WsgiFastPath`` log)."""
    log_access(
        state.client, environ["REQUEST_METHOD"], path, query, environ["SERVER_PROTOCOL"][5:],
        code,
    )


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


def serve(
    app: WSGIApp,
    url: str | None = None,
    workers: int | None = None,
    stream_timeout: float = 5.0,
    *,
    config: ServerConfig | None = None,
    threads: int | None = None,
    error_handler: Callable[[BaseException], Any] | None = None,
    **fields: Any,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM (blocking), then shut down gracefully.

    The positional parameters are cymongoose 0.2.x's, in its order:
    ``serve(app, url, workers, stream_timeout)``. ``url`` (``"http://0.0.0.0:8000"``)
    defaults to the config's host and port (``http://127.0.0.1:8000``); ``workers`` (or
    ``threads``) sizes the thread pool; ``config``, keyword ``fields`` (ServerConfig field
    names) and ``error_handler`` are as for :class:`WSGIServer`. Raises what
    :class:`WSGIServer` and :meth:`WSGIServer.listen` raise (OSError, ``ListenError``,
    when it cannot listen).
    """
    if url is not None and not isinstance(url, str):
        raise TypeError(f"url must be a str such as 'http://127.0.0.1:8000', got {url!r}"
                        + ("; pass a ServerConfig as config=..."
                           if isinstance(url, ServerConfig) else ""))
    server = WSGIServer(app, workers, error_handler, stream_timeout, config=config,
                        threads=threads, **fields)
    try:
        conn = server.listen(url)
    except BaseException:
        server.close()
        raise
    host, port = conn.local_addr[0], conn.local_addr[1]
    scheme = "https" if server._tls is not None else "http"
    logger.info(
        "cymongoose-wsgi serving on %s://%s:%d (%d threads)", scheme, host, port, server.workers
    )
    server.run()
