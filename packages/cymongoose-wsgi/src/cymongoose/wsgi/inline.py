"""Inline mode: the WSGI app runs on mongoose's poll thread (``threads=0``).

No worker pool, no hand-off, no wakeup per response: for a plain request the cost is one
event, the environ built in one C call (``HttpMessage.wsgi_environ``), the app, and one
``Connection.send_wsgi_response``. This suits apps that do not block (CPU-bound work, data
in memory), one such process per core. An app that waits (a database, an upstream HTTP
call, ``time.sleep``) stalls every connection of the process meanwhile: use the pooled mode
(``threads >= 1``) for those.

PEP 3333 behaviour is the pooled mode's (see :mod:`cymongoose.wsgi.server`), adapted to a
loop that must never wait:

* ``wsgi.input``: a body above the core's stream threshold (and every chunked body) is
  received in full before the app is called, into a ``tempfile.SpooledTemporaryFile`` that
  keeps up to ``BODY_MEMORY_BYTES`` in memory and spills the rest to disk.
* Streamed responses (iterables other than lists/tuples that give no small
  Content-Length, and anything above ``STREAM_THRESHOLD_BYTES``): one block is written, then
  the iteration is suspended until the socket has taken the data (``EV_WRITABLE``), so a
  slow client costs memory of one block and never blocks the loop. Blocks of a list are
  written back to back until ``SEND_HIGH_WATER_BYTES`` are queued.
* ``wsgi.file_wrapper`` over a regular file is sent by the core (``Connection.send_file``):
  no file bytes pass through Python.
* ``write()`` (the legacy callable) appends to the connection's send buffer at once; the
  data goes out when the app returns control to the loop.
* ``close()`` of the response iterable is always called: at the end of the response, on an
  error, and when the client disconnects while the iteration is suspended.
* A response stream whose client takes nothing for ``stream_timeout`` seconds, and a request
  body that stops arriving for ``server.BODY_READ_TIMEOUT_S`` seconds (answered 408), close the
  connection.
"""

from __future__ import annotations

import logging
import time
from io import BytesIO
from itertools import chain
from tempfile import SpooledTemporaryFile
from typing import Any

from cymongoose.serving.accesslog import log_access

import cymongoose
from cymongoose import MG_EV_ACCEPT, MG_EV_CLOSE, MG_EV_HTTP_MSG

from . import server as _server
from .environ import FileWrapper, base_environ
from .server import (
    _ERROR_HEADERS,
    _INTERNAL_ERROR_BODY,
    _PROXY_HEADERS,
    STREAM_THRESHOLD_BYTES,
    _check_headers,
    _content_length,
    _find_header,
    _parse_status,
    _without,
    file_region,
)

__all__ = ["InlineHandler"]

logger = logging.getLogger("cymongoose.wsgi")

EV_HTTP_BODY: int = getattr(cymongoose, "EV_HTTP_BODY", -1)
EV_WRITABLE: int = getattr(cymongoose, "EV_WRITABLE", -2)

#: A streamed request body keeps this many bytes in memory, the rest in a temporary file.
BODY_MEMORY_BYTES = 1 << 20
#: Blocks of a streamed response are queued until mongoose's send buffer holds this much...
SEND_HIGH_WATER_BYTES = 256 << 10
#: ...and the iteration goes on once the buffer has drained to this many bytes.
SEND_LOW_WATER_BYTES = 64 << 10
#: Period of the sweep for stalled uploads and stalled response streams (milliseconds).
SWEEP_MS = 1000


def _keep_alive(protocol: str, connection: str | None) -> bool:
    """Whether the connection stays open after this response (RFC 9112 section 9.3)."""
    if protocol == "HTTP/1.1":
        return connection is None or "close" not in connection.lower()
    return connection is not None and "keep-alive" in connection.lower()


# The core's fast path (WsgiFastPath) answers common requests in C; it reads the
# connection's ``base`` environ and ``fast`` flag from this class's instances.
_ConnBase: Any = getattr(cymongoose, "WsgiConnState", None)
_FastPath: Any = getattr(cymongoose, "WsgiFastPath", None)


class _Conn(_ConnBase if _ConnBase is not None else object):  # type: ignore[misc]
    """Per-connection state (poll thread only). Also kept in ``WSGIServer._states`` under
    the connection id, where the server's graceful stop looks for ``current``."""

    __slots__ = ("handler", "conn", "client", "trusted", "current", "receiving") + (
        ("base", "fast", "proxied") if _ConnBase is None else ()
    )

    # Read by WSGIServer._cancel() on close(): inline connections never queue requests
    # (the core parses the next pipelined request only once this one is answered).
    pending: list[Any] = []

    def __init__(
        self, handler: InlineHandler, conn: Any, base: dict[str, Any], client: Any, trusted: bool
    ) -> None:
        self.handler = handler
        self.conn = conn
        self.base = base
        self.client = client
        self.trusted = trusted
        self.fast = True
        self.proxied = trusted  # requests with proxy headers take the Python path
        self.current: _Exchange | None = None  # the request being answered
        self.receiving: _Exchange | None = None  # its body is still arriving


class _Exchange:
    """One request and its response, run on the poll thread (PEP 3333 server side).

    A plain class (no ``__slots__``, no ``__init__``): the rarely used fields stay
    class-level defaults, so a hello-world request writes only ``state`` and ``environ``.
    """

    state: _Conn
    environ: dict[str, Any]

    # Defaults; the instance overrides what it uses.
    status: str | None = None
    code = 0
    headers: list[tuple[str, str]] = []
    no_body = False
    head_sent = False  # the status line is in the send buffer
    size = 0  # body bytes produced by the app
    parts: list[bytes] | None = None  # body blocks produced before the head went out
    result: Any = None  # the app's response iterable while its iteration is open
    iterator: Any = None  # a suspended streamed response
    eager = False  # stream each block as it comes (PEP 3333 "Buffering and Streaming")
    chunked = False
    length: int | None = None  # the app's Content-Length, when streaming
    sent = 0  # body bytes written, when streaming
    spool: Any = None  # SpooledTemporaryFile holding a streamed request body
    deadline = 0.0  # time.monotonic() after which a stalled body/stream is dropped
    cancelled = False  # the connection has closed
    logged = False
    flushing = False  # the response is complete, its tail still in the send buffer
    keep_alive = True
    is_head = False
    client: Any = None  # (host, port) from the proxy headers, if they say
    path = ""
    query = ""
    # Read by WSGIServer (_cancel, _sweep_stalled_bodies) for entries of its _states.
    body = None
    cond = None
    deferred = False

    @property
    def handler(self) -> InlineHandler:
        return self.state.handler

    # -- the PEP 3333 callables ----------------------------------------------------------

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        """PEP 3333 ``start_response(status, response_headers, exc_info=None) -> write``.

        With ``exc_info`` once body data was produced, re-raises that exception (the server
        then answers 500, or closes the connection if the head is out); before, it replaces
        status and headers. A second call without ``exc_info`` raises AssertionError; an
        invalid status or header list raises ValueError/TypeError.
        """
        if exc_info is not None:
            try:
                if self.head_sent or self.size:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        # The checks of the pooled mode; the core's fast path caches what they passed.
        code = _parse_status(status)  # raises for an invalid status
        _check_headers(headers)  # raises TypeError/ValueError
        self.headers = headers
        self.code = code
        self.status = status
        if code == 204 or code == 304 or self.is_head:
            self.no_body = True
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write(data)`` callable (PEP 3333): the head and ``data`` are put in
        the send buffer at once; they reach the client when the app returns to the loop."""
        self.eager = True
        self._block(data)

    # -- producing the response ----------------------------------------------------------

    def _block(self, data: Any) -> None:
        """One body block from the app: buffered, counted (no body) or written."""
        if self.status is None:
            raise AssertionError("the WSGI app produced body data before start_response()")
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"WSGI body blocks must be bytes, got {type(data).__name__}")
            data = bytes(data)
        if not data:
            return
        self.size += len(data)
        if self.no_body:
            return
        if self.head_sent:
            self._send(data)
            return
        if self.parts is None:
            self.parts = [data]
        else:
            self.parts.append(data)
        if self.eager or self.size > STREAM_THRESHOLD_BYTES:
            self._start_stream()

    def _start_stream(self) -> None:
        headers = self.headers
        self.length = _content_length(headers)
        if self.length is None:
            if self.environ["SERVER_PROTOCOL"] == "HTTP/1.1":
                self.chunked = True
            else:
                self.keep_alive = False  # HTTP/1.0: the end of the body is the close
        else:
            headers = _without(headers, "transfer-encoding")  # RFC 9112 section 6.1
        headers = self._connection_headers(headers)
        self.state.conn.send_wsgi_head(self.status, headers, chunked=self.chunked)
        self.head_sent = True
        self._log()
        parts, self.parts = self.parts, None
        if parts:
            self._send(parts[0] if len(parts) == 1 else b"".join(parts))

    def _send(self, data: bytes) -> None:
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
        conn = self.state.conn
        if self.chunked:
            conn.http_chunk(data)
        else:
            conn.send(data)

    def _connection_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if self.handler.server._stopping:
            self.keep_alive = False
        if not self.keep_alive:
            return [*_without(headers, "connection"), ("Connection", "close")]
        if self.environ["SERVER_PROTOCOL"] != "HTTP/1.1":
            return [*headers, ("Connection", "keep-alive")]
        return headers

    def _respond(self, body: bytes) -> None:
        """Write a complete response; Content-Length fixed up as RFC 9110 section 8.6 says."""
        headers = self.headers
        code = self.code
        length = _content_length(headers)
        if self.no_body:
            body = b""
            if code == 204:
                headers = _without(headers, "content-length")
            elif length is None and (self.is_head or code != 304):
                headers = [*headers, ("Content-Length", str(self.size))]
        elif length is not None and length != len(body):
            if length < len(body):
                logger.error(
                    "WSGI app produced more body than its Content-Length %d; truncated", length
                )
                body = body[:length]
            else:
                logger.error(
                    "WSGI app produced %d bytes of its Content-Length %d; closing",
                    len(body),
                    length,
                )
                self.keep_alive = False
        headers = self._connection_headers(headers)
        conn = self.state.conn
        if self.no_body and _find_header(headers, "content-length") is None:
            # 204/304 without a length: a complete response would get "Content-Length: 0"
            conn.send_wsgi_head(self.status, headers)
            conn.finish_response()
        else:
            conn.send_wsgi_response(self.status, headers, body)
        self._log()

    def _log(self) -> None:
        if self.handler.access_log and not self.logged:
            self.logged = True
            environ = self.environ
            log_access(
                self.client if self.client is not None else self.state.client,
                environ["REQUEST_METHOD"],
                self.path,
                self.query,
                environ["SERVER_PROTOCOL"][5:],
                self.code,
            )

    # -- running the app -----------------------------------------------------------------

    def run(self) -> None:
        """Call the app and answer; a streamed answer may be left suspended (``iterator``)."""
        try:
            result = self.state.handler.app(self.environ, self.start_response)
        except Exception:
            self._failed()
            return
        self.answer(result)

    def answer(self, result: Any) -> None:
        """Answer with the app's ``result`` (PEP 3333 response iterable)."""
        handler = self.state.handler
        if type(result) is list and len(result) == 1 and type(result[0]) is bytes:
            status = self.status
            if (
                status is not None
                and not self.no_body
                and not self.head_sent
                and self.keep_alive
                and self.environ["SERVER_PROTOCOL"] == "HTTP/1.1"
                and not handler.server._stopping
            ):
                # The hot path (hello world, most framework responses): one send.
                body = result[0]
                headers = self.headers
                for name, value in headers:
                    if (
                        len(name) == 14
                        and name.lower() == "content-length"
                        and value != str(len(body))
                    ):
                        break  # the general path below truncates or closes
                else:
                    try:
                        self.state.conn.send_wsgi_response(status, headers, body)
                    except Exception:
                        self._failed()
                        return
                    if handler.access_log:
                        self._log()
                    self.state.current = None  # _finish(), for a kept-alive bodiless request
                    return
        if type(result) is list or type(result) is tuple:
            self.result = result
            self.iterator = iter(result)
        elif type(result) is FileWrapper and self.handler.send_file and self._send_file(result):
            return
        else:
            self.result = result
            try:
                self.iterator = iter(result)
            except Exception:
                self._failed()
                return
            if self.status is not None:
                # Lazy iterables are streamed block by block unless they announce a small
                # length (PEP 3333, "Buffering and Streaming").
                length = _find_header(self.headers, "content-length")
                self.eager = (
                    length is None
                    or not _server._digits(length)
                    or int(length) > STREAM_THRESHOLD_BYTES
                )
            else:
                self.eager = True
        self.pump()

    def pump(self) -> None:
        """Iterate the response until it ends, or suspend it until the socket drains."""
        iterator = self.iterator
        conn = self.state.conn
        try:
            for data in iterator:
                self._block(data)
                if self.head_sent and (
                    (self.eager and self.sent) or conn.send_len > SEND_HIGH_WATER_BYTES
                ):
                    if self.eager:
                        # PEP 3333: a block goes out before the next one is asked for.
                        conn.notify_writable(SEND_HIGH_WATER_BYTES)
                    else:
                        conn.notify_writable(SEND_LOW_WATER_BYTES)
                    self.deadline = time.monotonic() + self.handler.stream_timeout
                    self.handler._arm_sweep()
                    return
            if self.status is None:
                raise AssertionError("the WSGI app returned without calling start_response()")
        except Exception:
            self._failed()
            return
        self.iterator = None
        if not self._close_result():
            self._failed(log=False)  # close() raised (logged) before the head went out
            return
        if self.head_sent:
            if self.length is not None and self.sent < self.length:
                logger.error(
                    "WSGI app produced %d bytes of its Content-Length %d; closing",
                    self.sent,
                    self.length,
                )
                self._abort()
                return
            if self.chunked:
                conn.http_chunk(b"")
            conn.finish_response()
            self.handler._finish(self.state, self, flush=True)
            return
        parts = self.parts
        self.parts = None
        body = b"" if not parts else parts[0] if len(parts) == 1 else b"".join(parts)
        try:
            self._respond(body)
        except Exception:
            self._failed()  # a header the core refuses (NUL): nothing was written
            return
        self.handler._finish(self.state, self)

    def _close_result(self) -> bool:
        """Call the response iterable's close() (PEP 3333: always). False if it raised
        before the head was written (the caller answers 500)."""
        result, self.result = self.result, None
        close = getattr(result, "close", None) if result is not None else None
        if close is None:
            return True
        try:
            close()
        except Exception:
            logger.exception("error in the close() of a WSGI response iterable")
            return self.head_sent
        return True

    def _failed(self, log: bool = True) -> None:
        """The app raised: 500 if nothing is written yet, else close the connection."""
        environ = self.environ
        if log:
            logger.exception(
                "Exception in WSGI application (%s %s)",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
            )
        self.iterator = None
        self._close_result()
        if self.head_sent:
            self._abort()
            return
        self.status = "500 Internal Server Error"
        self.code = 500
        self.no_body = self.is_head
        self.headers = list(_ERROR_HEADERS)
        self.size = len(_INTERNAL_ERROR_BODY)
        self._respond(_INTERNAL_ERROR_BODY)
        self.handler._finish(self.state, self)

    def _abort(self) -> None:
        """The response cannot be completed: the client gets what was written, then the
        close."""
        self._log()
        self.handler._finish(self.state, self, abort=True)

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Hand a ``wsgi.file_wrapper`` over a regular file to the core
        (``Connection.send_file``). False (nothing done) when the ordinary path must serve
        it: no fileno, not a regular file, HEAD or a status without a body, a Content-Length
        the file cannot fill, or a connection that closes afterwards."""
        if (
            self.status is None
            or self.no_body
            or not self.keep_alive
            or self.handler.server._stopping
        ):
            return False
        region = file_region(wrapper, self.headers)
        if region is None:
            return False
        fd, offset, length, headers = region
        self.size = length
        headers = self._connection_headers(headers)
        conn = self.state.conn
        self.result = wrapper  # closed below, or by _failed()
        try:
            conn.send_wsgi_head(self.status, headers)
            self.head_sent = True
            conn.send_file(fd, offset, length)  # duplicates the descriptor
        except Exception:
            self._failed()
            return True
        self._close_result()
        self._log()
        self.handler._finish(self.state, self)
        return True


class InlineHandler:
    """The event handler of a :class:`~cymongoose.wsgi.server.WSGIServer` with
    ``threads=0``: requests are answered on the poll thread, as they arrive.

    ``on_event(conn, ev, data)`` is installed as the server's handler; it reads the
    server's settings (app, config, access log, proxy headers, TLS, stream timeout) and
    keeps each connection's state in the server's ``_states`` so that graceful shutdown
    sees requests in flight.
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        self.app = server.app
        self.access_log: bool = server._access_log
        self.stream_timeout: float = server.stream_timeout
        self.send_file: bool = server._send_file
        self._states: dict[int, _Conn] = server._states
        self._sweep_timer: Any = None
        #: The event handler to install: the core's C fast path in front of on_event.
        self.fast_path: Any = None
        self.handler: Any = self.on_event
        if _FastPath is not None:
            self.fast_path = self.handler = _FastPath(
                self.app,
                self.on_event,
                self.resume,
                _server._parse_status,
                _server._check_headers,
                _server.log_fast_path if self.access_log else None,
                file_wrapper=FileWrapper,
                buffer_limit=STREAM_THRESHOLD_BYTES,
            )

    def resume(
        self, conn: Any, environ: dict[str, Any], start: Any, result: Any, failed: bool
    ) -> None:
        """The fast path called the app; answer as the Python path does (see
        ``cymongoose.WsgiFastPath``). ``start`` forwards to the new exchange from now on."""
        state = conn.userdata
        ex = _Exchange()
        ex.state = state
        ex.environ = environ
        state.current = ex
        start.delegate = ex
        if start.status is not None:
            ex.status = start.status
            ex.headers = start.headers
            ex.code = code = start.code
            if code == 204 or code == 304:
                ex.no_body = True
        if self.access_log:
            ex.path = start.uri
            ex.query = start.query
        if failed:
            ex._failed()
            return
        if start.written:
            ex.eager = True
            try:
                for data in start.written:
                    ex._block(data)
            except Exception:
                ex._failed()
                return
        if start.iterator is not None:
            # A lazy iterable that did not produce the blocks its Content-Length announced:
            # go on with its iteration here, from the blocks already taken.
            ex.result = result
            ex.iterator = chain(start.prefix, start.iterator)
            ex.pump()
            return
        ex.answer(result)

    def on_event(self, conn: Any, ev: int, data: Any) -> None:
        """The mongoose event handler (poll thread)."""
        if ev == MG_EV_HTTP_MSG:
            # The hot path, kept in this one frame.
            state = conn.userdata
            if state is None:
                state = self._new_state(conn)
            environ = data.wsgi_environ(state.base)  # the CGI keys, built in C
            ex = _Exchange()
            ex.state = state
            ex.environ = environ
            state.current = ex
            connection = environ.get("HTTP_CONNECTION")
            if connection is not None or environ["SERVER_PROTOCOL"] != "HTTP/1.1":
                ex.keep_alive = _keep_alive(environ["SERVER_PROTOCOL"], connection)
            if environ["REQUEST_METHOD"] == "HEAD":
                ex.is_head = True
            if self.access_log:
                ex.path = data.uri
                ex.query = data.query
            if state.trusted and (  # the keys of server._PROXY_KEYS, looked up one by one
                "HTTP_X_FORWARDED_FOR" in environ
                or "HTTP_FORWARDED" in environ
                or "HTTP_X_FORWARDED_PROTO" in environ
                or "HTTP_X_FORWARDED_HOST" in environ
            ):
                self._proxy_headers(ex)
            if data.more_body:
                self._receive(ex)
                return
            # As environ.request_environ() does for a body that arrived whole.
            environ["wsgi.input"] = (
                BytesIO(data.body_bytes) if "CONTENT_LENGTH" in environ else BytesIO()
            )
            ex.run()
        elif ev == EV_WRITABLE:
            state = conn.userdata
            if state is not None and state.current is not None:
                ex = state.current
                if ex.iterator is not None:
                    ex.pump()
                elif ex.flushing:
                    ex.flushing = False
                    state.current = None
        elif ev == EV_HTTP_BODY:
            self._on_body(conn, data)
        elif ev == MG_EV_CLOSE:
            self._on_close(conn)
        elif ev == MG_EV_ACCEPT and self.server._tls is not None:
            conn.tls_init(self.server._tls)

    def _new_state(self, conn: Any) -> _Conn:
        server = self.server
        remote = conn.remote_addr
        proxy = server._proxy
        base = base_environ(
            conn.local_addr,
            remote,
            "https" if conn.is_tls else "http",
            script_name=server.config.root_path,
            multithread=False,  # one thread runs every request of this process
            multiprocess=server._multiprocess,
        )
        trusted = proxy is not None and proxy.is_trusted(remote[0])
        state = _Conn(self, conn, base, (remote[0], remote[1]), trusted)
        conn.userdata = state
        self._states[conn.id] = state
        return state

    def _receive(self, ex: _Exchange) -> None:
        """The app cannot wait for a streamed body on this thread: receive it first."""
        ex.spool = SpooledTemporaryFile(max_size=BODY_MEMORY_BYTES)
        ex.deadline = time.monotonic() + _server.BODY_READ_TIMEOUT_S
        ex.state.receiving = ex
        self._arm_sweep()

    def _proxy_headers(self, ex: _Exchange) -> None:
        environ = ex.environ
        headers = [
            (name, environ[key].encode("latin-1")) for name, key in _PROXY_HEADERS if key in environ
        ]
        client = ex.state.client
        result = self.server._proxy.resolve(headers, client, environ["wsgi.url_scheme"])
        if result.client is not None:
            ex.client = result.client
            environ["REMOTE_ADDR"] = result.client[0]
            environ["REMOTE_PORT"] = str(result.client[1])
        environ["wsgi.url_scheme"] = result.scheme
        if result.host:
            environ["HTTP_HOST"] = result.host

    def _on_body(self, conn: Any, data: bytes) -> None:
        state = conn.userdata
        ex = state.receiving if state is not None else None
        if ex is None:
            return
        spool = ex.spool
        if data:
            spool.write(data)
            ex.deadline = time.monotonic() + _server.BODY_READ_TIMEOUT_S
            return
        # The whole body is in: run the app.
        state.receiving = None
        size = spool.tell()
        spool.seek(0)
        environ = ex.environ
        environ["wsgi.input"] = spool
        if "CONTENT_LENGTH" not in environ:
            environ["CONTENT_LENGTH"] = str(size)  # a chunked body, now of known size
            environ["wsgi.input_terminated"] = True
        ex.deadline = 0.0
        ex.run()

    def _finish(
        self, state: _Conn, ex: _Exchange, abort: bool = False, flush: bool = False
    ) -> None:
        """The response is complete (or given up): next request, or close.

        With ``flush`` (the end of a streamed response) the request stays ``current`` until
        the send buffer is empty, so that a graceful shutdown waits for the stream's tail.
        """
        conn = state.conn
        if flush and ex.keep_alive and conn.send_len:
            ex.flushing = True
            conn.notify_writable(0)
        elif state.current is ex:
            state.current = None
        if ex.spool is not None:
            ex.spool.close()
            ex.spool = None
        if abort or not ex.keep_alive:
            conn.drain()  # the client gets what was written, then the close

    def _on_close(self, conn: Any) -> None:
        state = conn.userdata
        if state is None:
            return
        conn.userdata = None
        self._states.pop(conn.id, None)
        ex = state.current
        state.current = state.receiving = None
        if ex is not None:
            ex.cancelled = True
            ex.iterator = None
            ex._close_result()
            if ex.spool is not None:
                ex.spool.close()
                ex.spool = None

    def _arm_sweep(self) -> None:
        if self._sweep_timer is None:
            self._sweep_timer = self.server.manager.timer_add(SWEEP_MS, self._sweep, repeat=True)

    def _sweep(self) -> None:
        """Timer (poll thread): drop uploads and response streams that stopped moving."""
        now = time.monotonic()
        for state in list(self._states.values()):
            ex = state.current
            if ex is None or not ex.deadline or ex.deadline > now:
                continue
            conn = state.conn
            if state.receiving is ex:
                logger.info(
                    "closing connection %d: request body stalled for %.0f s",
                    conn.id,
                    _server.BODY_READ_TIMEOUT_S,
                )
                state.receiving = None
                ex.code = 408
                conn.send_response(
                    408,
                    [("Content-Type", "text/plain"), ("Connection", "close")],
                    b"Request Timeout",
                )
                self._finish(state, ex, abort=True)
            elif ex.iterator is not None:
                logger.error(
                    "closing connection %d: the client took no data for %s s",
                    conn.id,
                    self.stream_timeout,
                )
                conn.close()  # MG_EV_CLOSE calls the iterable's close()
