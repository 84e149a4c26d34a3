"""ASGI HTTP protocol (ASGI spec "HTTP & WebSocket", version 2.4).

Objects here live on two threads, and each attribute is owned by one of them:

- `HttpConnection.conn` (the mongoose Connection) is touched only on the poll thread; the
  asyncio thread hands writes over with `AsyncManager.call_in_poll_thread` (integrated mode:
  a direct call; threaded mode: many writes batched behind one wakeup).
- `RequestCycle` (one request/response) runs on the asyncio thread; the poll thread feeds it
  body pieces, writability and disconnects through ``call_soon``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import stat
from collections.abc import Callable
from time import perf_counter
from typing import Any

from cymongoose.serving.accesslog import AccessAtoms, AccessLogFormat, access_logger, log_access
from cymongoose.serving.httprules import parse_content_length

logger = logging.getLogger("cymongoose.asgi")

_ERROR_500_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
_ERROR_500_BODY = b"Internal Server Error"
# HEAD (RFC 9110 section 9.3.2): the same head, no content.
_ERROR_500_HEAD_HEADERS = [*_ERROR_500_HEADERS,
                           (b"content-length", str(len(_ERROR_500_BODY)).encode())]
_CHUNKED = (b"transfer-encoding", b"chunked")
# Request bodies: stop reading the socket above HIGH queued bytes, resume below LOW.
_BODY_HIGH = 1 << 20
_BODY_LOW = 1 << 18
# Responses: send() waits once this much is queued in the send buffer, until it drains
# to _SEND_LOW (EV_WRITABLE).
_SEND_HIGH = 1 << 20
_SEND_LOW = 1 << 16


class ClientDisconnected(OSError):
    """Raised by an ASGI ``send()`` once the client has gone: the server-specific
    subclass of OSError of the ASGI "HTTP & WebSocket" spec 2.4. ``receive()`` then
    answers ``http.disconnect`` (``websocket.disconnect``)."""


def _disconnected() -> ClientDisconnected:
    return ClientDisconnected("ASGI send(): the client has disconnected")


def caused_by_disconnect(exc: BaseException | None) -> bool:
    """``exc`` is a `ClientDisconnected`, or was raised while handling one (frameworks
    turn it into their own: Starlette's ``ClientDisconnect``)."""
    for _ in range(8):  # a cause chain can be made circular by hand
        if exc is None:
            return False
        if isinstance(exc, ClientDisconnected):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class HttpConnection:
    """One keep-alive TCP connection: requests are answered one after another, in order."""

    __slots__ = ("body_cycle", "client", "closed", "conn", "current", "received", "requests",
                 "runner", "server", "tls", "trusted", "writable")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.client: tuple[str, int] | None = None  # the peer, as in the ASGI scope
        # (host, port); a Unix socket: (path, None), as uvicorn gives
        self.server: tuple[str, int | None] | None = None
        self.trusted = False  # the peer is a trusted proxy (proxy headers apply)
        self.closed = False  # set on the asyncio thread when MG_EV_CLOSE was seen
        self.requests: collections.deque[RequestCycle] = collections.deque()
        self.current: RequestCycle | None = None
        self.runner: asyncio.Task[None] | None = None
        self.body_cycle: RequestCycle | None = None  # poll thread: who gets EV_HTTP_BODY
        # Poll thread: requests parsed so far (one is handed to the asyncio thread before
        # it shows in ``requests``: a graceful stop sees it here).
        self.received = 0
        self.writable: asyncio.Future[None] | None = None  # asyncio thread
        # The ASGI "tls" extension's dict on a TLS listener, else None.
        self.tls: dict[str, Any] | None = None


# -- writers: run on the poll thread ----------------------------------------------------


def _ended(hc: HttpConnection) -> bool:
    # Closing or draining: the response is over (or was refused by _refuse, which wrote a
    # whole 500): nothing more of it may reach the wire after what was sent.
    return hc.closed or hc.conn.is_closing or hc.conn.is_draining


def write_error(hc: HttpConnection, head: bool) -> None:
    """A 500 in place of the response, then the close; for HEAD the same head without
    content (RFC 9110 section 9.3.2)."""
    if _ended(hc):
        return
    if head:
        hc.conn.send_response(500, _ERROR_500_HEAD_HEADERS, b"")
    else:
        hc.conn.send_response(500, _ERROR_500_HEADERS, _ERROR_500_BODY)
    hc.conn.drain()


def _refuse(hc: HttpConnection, exc: Exception, head: bool) -> None:
    # The core refused the app's status or headers (CR/LF, bad status): never on the wire.
    logger.error("invalid response from ASGI application: %s", exc)
    write_error(hc, head)


def write_response(
    hc: HttpConnection, status: int, headers: list[Any], body: bytes, close: bool,
    head: bool = False,
) -> None:
    conn = hc.conn
    if hc.closed or conn.is_closing or conn.is_draining:  # _ended(), inline: per response
        return
    try:
        conn.send_response(status, headers, body)
    except (ValueError, TypeError) as exc:
        _refuse(hc, exc, head)
        return
    if close:
        conn.drain()


def write_head(hc: HttpConnection, status: int, headers: list[Any], head: bool = False) -> bool:
    """Send the response head; False when the response has ended or the head was refused
    (then answered with a 500)."""
    if _ended(hc):
        return False
    try:
        hc.conn.send_response_head(status, headers)
    except (ValueError, TypeError) as exc:
        _refuse(hc, exc, head)
        return False
    return True


def write_chunk(hc: HttpConnection, data: bytes, chunked: bool) -> None:
    if not data or _ended(hc):
        return
    if chunked:
        hc.conn.http_chunk(data)
    else:
        hc.conn.send(data)


def write_end(hc: HttpConnection, chunked: bool, close: bool) -> None:
    if _ended(hc):
        return
    conn = hc.conn
    if chunked:
        conn.http_chunk(b"")
    conn.finish_response()
    if close:
        conn.drain()


def write_file(hc: HttpConnection, status: int, headers: list[Any], fd: int, count: int,
               close: bool) -> None:
    """http.response.pathsend: the head, then ``count`` bytes of the open file ``fd`` sent
    by the core (`Connection.send_file`: sendfile(2) on plain TCP, never through
    Python); ``fd`` is closed here in every case (the core keeps its own duplicate)."""
    try:
        if not write_head(hc, status, headers):
            return
        if count:
            hc.conn.send_file(fd, 0, count)  # completes the response after the last byte
        else:
            hc.conn.finish_response()
        if close:
            hc.conn.drain()  # the core keeps part of the file queued until the end
    finally:
        os.close(fd)


def write_raw(hc: HttpConnection, data: bytes) -> None:
    """Bytes framed by the caller: a 103 Early Hints response, the last chunk with
    trailer fields."""
    if not _ended(hc):
        hc.conn.send(data)


def write_trailers(hc: HttpConnection, fields: bytes | None, close: bool) -> None:
    """End a chunked response with its last chunk and ``fields`` (``Name: value\r\n``
    lines, maybe none) as its trailer section (RFC 9112 section 7.1.2); None: not
    chunked, nothing to add."""
    if _ended(hc):
        return
    conn = hc.conn
    if fields is not None:
        conn.send(b"0\r\n" + fields + b"\r\n")
    conn.finish_response()
    if close:
        conn.drain()


def want_writable(hc: HttpConnection) -> None:
    if not hc.closed:
        hc.conn.notify_writable(_SEND_LOW)


def set_reading(hc: HttpConnection, on: bool) -> None:
    if not hc.closed:
        if on:
            hc.conn.resume_reading()
        else:
            hc.conn.pause_reading()


def drain_connection(hc: HttpConnection) -> None:
    if not hc.closed:
        hc.conn.drain()


def log_response(log: bool | AccessLogFormat, scope: dict[str, Any], method: str, status: int,
                 headers: Any = (), length: int | None = None,
                 arrived: float | None = None) -> None:
    """One access record for ``scope`` (``log``: True for the default line, or a gunicorn
    format; ``arrived``: the request's perf_counter() time); nothing when the access
    logger is off."""
    if not log or not access_logger.isEnabledFor(logging.INFO):
        return
    if log is True:
        log_access(scope["client"], method, scope["raw_path"], scope["query_string"],
                   scope["http_version"], status)
        return
    assert isinstance(log, AccessLogFormat)
    log.log(AccessAtoms(
        scope["client"], method, scope["raw_path"], scope["query_string"],
        scope["http_version"], status, request_headers=scope["headers"],
        response_headers=headers, length=length,
        duration_s=None if arrived is None else perf_counter() - arrived))


# -- the request/response cycle: runs on the asyncio thread ------------------------------


class RequestCycle:
    """One ASGI ``http`` call.

    ``receive()`` gives the body (whole, or the streamed pieces with ``more_body``), then
    waits for ``http.disconnect``: sent when the response is complete or the client went
    away. ``send()`` writes the response; streamed bodies wait while the connection's send
    buffer is full (backpressure).
    """

    __slots__ = (
        "arrived",
        "call",
        "body",
        "body_done",
        "body_queued",
        "body_waiter",
        "chunked",
        "close",
        "complete",
        "finished",
        "hc",
        "headers",
        "http10",
        "is_head",
        "length",
        "no_body",
        "log",
        "paused",
        "request_done",
        "scope",
        "sent",
        "server",
        "started",
        "status",
        "streaming",
        "trailers",
        "unflushed",
    )

    def __init__(
        self,
        call: Callable[..., None],
        hc: HttpConnection,
        scope: dict[str, Any],
        body: bytes | None,
        close: bool,
        log: bool | AccessLogFormat,
        is_head: bool,
        http10: bool,
    ) -> None:
        self.call = call  # AsyncManager.poll_thread_caller()
        self.hc = hc
        self.scope = scope
        # body None: it streams in (feed_body); else the whole body. No deque for none
        # (most requests): the empty tuple is never appended to.
        self.body: collections.deque[bytes] | tuple[()] = \
            collections.deque() if body is None else collections.deque((body,)) if body \
            else ()
        self.body_done = body is not None
        self.body_queued = 0
        self.body_waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.request_done = False
        self.close = close
        # The access log: False, True (the default line, logged when the status goes
        # out), or a gunicorn format (logged when the response ends; the server then sets
        # ``arrived``, perf_counter() seconds, and ``sent`` counts a streamed body).
        self.log = log
        self.is_head = is_head
        self.no_body = is_head
        self.length: int | None = None  # the app's Content-Length, then what is left of it
        self.http10 = http10
        self.started = False
        self.complete = False
        self.status = 200
        self.headers: list[Any] | tuple[()] = ()  # the app's, from http.response.start
        self.streaming = False
        self.chunked = False
        self.unflushed = 0
        # http.response.trailers: None unless http.response.start announced trailers.
        self.trailers: _Trailers | None = None
        # The response is complete or the client went away: receive() may answer
        # http.disconnect (a future only while receive() waits for it).
        self.finished = False

    async def run(self, app: Any) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            # Graceful shutdown ran out of time (logged once by the server).
            self._fail()
            raise
        except BaseException as exc:
            if self.hc.closed and caused_by_disconnect(exc):
                # Our send() told the app that its client left: not an app error.
                logger.debug("ASGI application ended: its client disconnected")
            else:
                logger.error("exception in ASGI application", exc_info=exc)
            self._fail()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if not self.complete and not self.hc.closed:
                if self.started:
                    logger.error("ASGI application returned without completing the response")
                else:
                    logger.error("ASGI application returned without starting a response")
                self._fail()
        finally:
            if not self.finished:
                self.finish()
            if self.streaming and self.log and self.log is not True:
                self._log(self.sent)  # a gunicorn format: when the stream ends, however
            if self.paused:  # the app left the body unread: let the core drain it
                self.paused = False
                self.call(set_reading, self.hc, True)

    def _fail(self) -> None:
        if self.hc.closed or self.complete:
            return
        self.complete = True
        if not self.streaming:  # nothing of the response is written yet
            self.status = 500
            self.call(write_error, self.hc, self.is_head)
            if self.log:
                self._log(0 if self.is_head else len(_ERROR_500_BODY))
        else:
            # Part of the response is on the wire: ending the connection (after what was
            # sent, without the rest) is the only honest signal.
            self.call(drain_connection, self.hc)

    def _log(self, length: int | None = None) -> None:
        if access_logger.isEnabledFor(logging.INFO):
            scope = self.scope
            if self.log is True:
                log_access(scope["client"], scope["method"], scope["raw_path"],
                           scope["query_string"], scope["http_version"], self.status)
            else:
                log_response(self.log, scope, scope["method"], self.status, self.headers,
                             length, self.arrived)

    # -- fed by the poll thread (through call_soon) ---------------------------------------

    def feed_body(self, data: bytes) -> None:
        if self.complete:
            return  # the response is done: the rest of the body is discarded
        if data:
            self.body.append(data)  # type: ignore[union-attr]  # a deque: body streams
            self.body_queued += len(data)
            if self.body_queued > _BODY_HIGH and not self.paused:
                self.paused = True
                self.call(set_reading, self.hc, False)
        else:
            self.body_done = True
        waiter = self.body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def finish(self) -> None:
        """The response is complete or the connection closed: wake a waiting receive()."""
        self.finished = True
        waiter = self.body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the app's receive/send ----------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        while True:
            if self.body:
                chunk = self.body.popleft()  # type: ignore[union-attr]  # not empty
                self.body_queued -= len(chunk)
                if self.paused and self.body_queued < _BODY_LOW:
                    self.paused = False
                    self.call(set_reading, self.hc, True)
                more = bool(self.body) or not self.body_done
                if not more:
                    self.request_done = True
                return {"type": "http.request", "body": chunk, "more_body": more}
            if self.body_done and not self.request_done:
                self.request_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if self.hc.closed:
                return {"type": "http.disconnect"}
            if self.request_done and self.finished:
                return {"type": "http.disconnect"}
            self.body_waiter = asyncio.get_running_loop().create_future()
            await self.body_waiter
            self.body_waiter = None

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("ASGI: 'http.response.start' sent twice")
            status = message["status"]
            if type(status) is not int:
                raise TypeError(f"ASGI: status must be an int, got {status!r}")
            if not 200 <= status <= 599:
                raise RuntimeError(f"ASGI: status {status} is not a final status (200..599)")
            headers = list(message.get("headers", ()))
            # Checked before the response counts as started: an invalid one is the app's
            # error, answered with a 500. The common case (ASCII digits) inline.
            length = None
            for name, value in headers:
                if len(name) == 14 and name.lower() in (b"content-length", "content-length"):
                    length = int(value) if type(value) is bytes and value.isdigit() \
                        else _content_length(headers)
                    break
            self.length = length
            self.started = True
            self.status = status
            self.headers = headers
            # no_content(status, is_head), inline: status is 200..599 here
            self.no_body = self.is_head or status == 204 or status == 304
            if message.get("trailers"):
                self.trailers = _Trailers()
            return
        if kind != "http.response.body":
            self._send_extension(kind, message)
            return
        if not self.started:
            raise RuntimeError("ASGI: 'http.response.body' sent before 'http.response.start'")
        if self.complete:
            raise RuntimeError("ASGI: 'http.response.body' sent after the response completed")
        if self.hc.closed:
            raise _disconnected()
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        call = self.call
        length = self.length
        if not self.streaming:
            if not more_body and self.trailers is None:
                self.complete = True
                headers = self.headers
                # HEAD without content or length: none is made up (RFC 9110 section 8.6)
                head_only = self.is_head and length is None and not body
                if self.no_body:
                    if body and length is None and self.is_head:
                        headers = [*headers, (b"content-length", str(len(body)).encode())]
                    body = b""
                elif length is not None and length != len(body):
                    body = self._fit(body, length, True)
                if self.close or self.http10:
                    headers = self._connection_header(headers)
                if head_only:
                    call(write_head, self.hc, self.status, headers, True)
                    call(write_end, self.hc, False, self.close)
                else:
                    if type(body) is not bytes:
                        body = bytes(body)  # a bytearray or memoryview: the app may reuse it
                    call(write_response, self.hc, self.status, headers, body, self.close,
                         self.is_head)
                self.finished = True  # finish(), inline
                waiter = self.body_waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                if self.log and access_logger.isEnabledFor(logging.INFO):
                    self._log(len(body))
                return
            self.streaming = True
            headers = self.headers
            self.chunked = not self.no_body and length is None
            if self.chunked and self.http10:
                self.chunked = False  # HTTP/1.0 has no chunked coding: the close ends it
                self.close = True
            if self.chunked:
                headers = [*headers, _CHUNKED]
            if self.trailers is not None:
                # Only a chunked body can carry them, only to a client that said it
                # takes them (RFC 9110 section 6.5.1: TE: trailers).
                self.trailers.wire = self.chunked and _accepts_trailers(self.scope)
            if self.close or self.http10:
                headers = self._connection_header(headers)
            call(write_head, self.hc, self.status, headers, self.is_head)
            self.sent = 0
            if self.log is True:  # when the status goes out, as uvicorn: long streams too
                self._log()
        if body and not self.no_body:
            if length is not None:
                body = self._fit(body, length, not more_body)
                self.length = length - len(body)
            call(write_chunk, self.hc, bytes(body), self.chunked)
            self.unflushed += len(body)
            self.sent += len(body)
            if self.unflushed > _SEND_HIGH and more_body:
                await self._drain()
        elif not more_body and length and not self.no_body:
            self._fit(b"", length, True)
        if not more_body:
            if self.trailers is not None:
                self.trailers.body_done = True  # the end comes with http.response.trailers
                return
            self.complete = True
            call(write_end, self.hc, self.chunked, self.close)
            self.finish()

    def _send_extension(self, kind: str, message: dict[str, Any]) -> None:
        """The messages of the ASGI extensions declared in ``scope["extensions"]``."""
        if kind == "http.response.pathsend":
            self._pathsend(message)
        elif kind == "http.response.trailers":
            self._send_trailers(message)
        elif kind == "http.response.early_hint":
            self._early_hint(message)
        else:
            raise RuntimeError(f"ASGI: unexpected message type {kind!r} for an http scope")

    def _pathsend(self, message: dict[str, Any]) -> None:
        # ASGI extension "http.response.pathsend": the whole file at ``path`` is the body.
        if not self.started:
            raise RuntimeError("ASGI: 'http.response.pathsend' sent before "
                               "'http.response.start'")
        if self.complete or self.streaming:
            raise RuntimeError("ASGI: 'http.response.pathsend' sent after the body began")
        if self.hc.closed:
            raise _disconnected()
        path = os.fspath(message["path"])
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ValueError(f"ASGI: 'http.response.pathsend' path {path!r} is not a "
                                 "regular file")
            size = info.st_size
            headers = self.headers
            length = self.length
            if length is None:
                length = size
                headers = [*headers, (b"content-length", str(size).encode())]
            count = min(length, size)
            if count < length:
                logger.error("ASGI application's Content-Length %d exceeds the size of %r "
                             "(%d bytes): closing after it", length, path, size)
                self.close = True
            if self.no_body:
                count = 0
            if self.close or self.http10:
                headers = self._connection_header(headers)
        except BaseException:
            os.close(fd)
            raise
        self.complete = True
        self.streaming = True  # for the access log's byte count
        self.sent = count
        self.call(write_file, self.hc, self.status, headers, fd, count, self.close)
        if self.log is True:
            self._log()
        self.finish()

    def _send_trailers(self, message: dict[str, Any]) -> None:
        # ASGI extension "http.response.trailers", after the last http.response.body.
        trailers = self.trailers
        if trailers is None:
            raise RuntimeError("ASGI: 'http.response.trailers' without 'trailers': True in "
                               "'http.response.start'")
        if not trailers.body_done or self.complete:
            raise RuntimeError("ASGI: 'http.response.trailers' sent before the body ended or "
                               "after the response completed")
        if self.hc.closed:
            raise _disconnected()
        if trailers.wire:
            trailers.fields += _field_lines(message.get("headers", ()), "trailer")
        if message.get("more_trailers", False):
            return
        self.complete = True
        # Chunked: the last chunk, with the fields or (dropped) without.
        fields = (trailers.fields if trailers.wire else b"") if self.chunked else None
        self.call(write_trailers, self.hc, fields, self.close)
        self.finish()

    def _early_hint(self, message: dict[str, Any]) -> None:
        # ASGI extension "http.response.early_hint": 103 Early Hints (RFC 8297) with one
        # Link field per link, before the final response. HTTP/1.0 clients get none
        # (RFC 9110 section 15.2: no 1xx to them).
        if self.started:
            raise RuntimeError("ASGI: 'http.response.early_hint' sent after "
                               "'http.response.start'")
        if self.hc.closed:
            raise _disconnected()
        links = [(b"link", link) for link in message.get("links", ())]
        if links and not self.http10:
            self.call(write_raw, self.hc,
                      b"HTTP/1.1 103 Early Hints\r\n" + _field_lines(links, "link") + b"\r\n")

    def _fit(self, body: bytes, length: int, last: bool) -> bytes:
        """Keep the body within the app's Content-Length (RFC 9112 section 6.3): extra bytes
        are dropped; a short last piece ends the connection, so that the client does not
        wait for bytes that never come nor read the next response as body."""
        if len(body) > length:
            logger.error("ASGI application sent more than its Content-Length: truncated")
            return body[:length]
        if last and len(body) < length:
            logger.error("ASGI application sent less than its Content-Length: closing")
            self.close = True
        return body

    def _connection_header(self, headers: list[Any]) -> list[Any]:
        # RFC 9112 section 9.6 / 9.3: say when we close, and that an HTTP/1.0 keep-alive
        # request was honoured.
        for name, _ in headers:
            if len(name) == 10 and name.lower() in (b"connection", "connection"):
                return headers
        return [*headers, (b"connection", b"close" if self.close else b"keep-alive")]

    async def _drain(self) -> None:
        hc = self.hc
        if hc.closed:
            return
        waiter = hc.writable = asyncio.get_running_loop().create_future()
        self.call(want_writable, hc)
        await waiter
        self.unflushed = 0
        if hc.closed:  # the wait ended because the client left
            raise _disconnected()


def _content_length(headers: list[Any]) -> int | None:
    """The app's Content-Length as an int, None when absent; ValueError when invalid."""
    for name, value in headers:
        if len(name) == 14 and name.lower() in (b"content-length", "content-length"):
            try:
                return parse_content_length(value if isinstance(value, (bytes, str))
                                            else str(value))
            except ValueError as exc:
                raise ValueError(f"ASGI: {exc}") from None
    return None



class _Trailers:
    """http.response.trailers of one response (ASGI extension)."""

    __slots__ = ("body_done", "fields", "wire")

    def __init__(self) -> None:
        self.wire = False  # sent (chunked, TE: trailers) or dropped
        self.body_done = False  # the last http.response.body came
        self.fields = b""


def _accepts_trailers(scope: dict[str, Any]) -> bool:
    """The request's TE lists "trailers" (RFC 9110 section 10.1.4)."""
    for name, value in scope["headers"]:
        if name == b"te" and b"trailers" in [v.strip().split(b";")[0].strip()
                                             for v in value.lower().split(b",")]:
            return True
    return False


def _field_lines(fields: Any, what: str) -> bytes:
    """``Name: value\r\n`` lines of (name, value) pairs (bytes, or latin-1 str); ValueError
    naming ``what`` for a name that is not a token or CR/LF/NUL in a value (RFC 9110
    section 5)."""
    out = []
    for name, value in fields:
        raw_name = name.encode("latin-1") if isinstance(name, str) else bytes(name)
        raw_value = value.encode("latin-1") if isinstance(value, str) else bytes(value)
        if not raw_name or raw_name.strip(_TOKEN) or any(c in raw_value for c in b"\r\n\0"):
            raise ValueError(f"ASGI: invalid {what} field {name!r}: {value!r}")
        out.append(raw_name + b": " + raw_value + b"\r\n")
    return b"".join(out)


# RFC 9110 section 5.6.2: the characters of a token.
_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
