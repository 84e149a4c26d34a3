"""ASGI HTTP protocol (ASGI spec "HTTP & WebSocket", version 2.3).

Objects here live on two threads, and each attribute is owned by one of them:

- `HttpConnection.conn` (the mongoose Connection) is touched only on the poll thread; the
  asyncio thread hands writes over with `AsyncManager.call_in_poll_thread`, which batches
  many writes behind one wakeup.
- `RequestCycle` (one request/response) runs on the asyncio thread.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cymongoose.aio import AsyncManager

logger = logging.getLogger("cymongoose.asgi")

_ERROR_500_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]
_ERROR_500_BODY = b"Internal Server Error"


class HttpConnection:
    """One keep-alive TCP connection: requests are answered one after another, in order."""

    __slots__ = ("closed", "conn", "current", "requests", "runner")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.closed = False  # written by the poll thread on MG_EV_CLOSE
        self.requests: collections.deque[RequestCycle] = collections.deque()
        self.current: RequestCycle | None = None
        self.runner: asyncio.Task[None] | None = None


# -- writers: run on the poll thread ----------------------------------------------------


def _format_head(status: int, headers: list[tuple[Any, Any]]) -> bytes:
    """Status line and headers, for cores without ``send_response_head``."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1")]
    for name, value in headers:
        name = name.encode("latin-1") if isinstance(name, str) else bytes(name)
        value = value.encode("latin-1") if isinstance(value, str) else bytes(value)
        lines.append(name + b": " + value + b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def _has_header(headers: list[tuple[Any, Any]], name: bytes) -> bool:
    for key, _ in headers:
        key = key.encode("latin-1") if isinstance(key, str) else bytes(key)
        if key.lower() == name:
            return True
    return False


def write_response(
    hc: HttpConnection,
    status: int,
    headers: list[tuple[Any, Any]],
    body: bytes,
    close: bool,
) -> None:
    if hc.closed:
        return
    conn = hc.conn
    send_response = getattr(conn, "send_response", None)
    if send_response is not None:
        send_response(status, headers, body)
    else:
        if not _has_header(headers, b"content-length"):
            headers = [*headers, (b"content-length", str(len(body)).encode())]
        conn.send(_format_head(status, headers) + body)
    if close:
        conn.drain()


def write_head(hc: HttpConnection, status: int, headers: list[tuple[Any, Any]]) -> None:
    if hc.closed:
        return
    conn = hc.conn
    send_head = getattr(conn, "send_response_head", None)
    if send_head is not None:
        send_head(status, headers)
    else:
        conn.send(_format_head(status, headers))


def write_chunk(hc: HttpConnection, data: bytes, chunked: bool) -> None:
    if hc.closed or not data:
        return
    if chunked:
        hc.conn.http_chunk(data)
    else:
        hc.conn.send(data)


def write_end(hc: HttpConnection, chunked: bool, close: bool) -> None:
    if hc.closed:
        return
    if chunked:
        hc.conn.http_chunk(b"")
    if close:
        hc.conn.drain()


def close_connection(hc: HttpConnection) -> None:
    if not hc.closed:
        hc.conn.close()


# -- the request/response cycle: runs on the asyncio thread ------------------------------


class RequestCycle:
    """One ASGI ``http`` call: ``receive`` gives the whole body once, then waits for
    ``http.disconnect`` (sent when the response is complete or the client went away)."""

    __slots__ = (
        "am",
        "body",
        "body_sent",
        "chunked",
        "complete",
        "done",
        "hc",
        "headers",
        "is_head",
        "keep_alive",
        "scope",
        "started",
        "status",
        "streaming",
    )

    def __init__(
        self,
        am: AsyncManager,
        hc: HttpConnection,
        scope: dict[str, Any],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self.am = am
        self.hc = hc
        self.scope = scope
        self.body = body
        self.keep_alive = keep_alive
        self.is_head = scope["method"] == "HEAD"
        self.body_sent = False
        self.started = False
        self.complete = False
        self.status = 200
        self.headers: list[tuple[Any, Any]] = []
        self.streaming = False
        self.chunked = False
        self.done = asyncio.Event()

    async def run(self, app: Any) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            logger.error("exception in ASGI application", exc_info=exc)
            self._fail()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if not self.complete:
                if self.started:
                    logger.error("ASGI application returned without completing the response")
                else:
                    logger.error("ASGI application returned without starting a response")
                self._fail()
        finally:
            self.done.set()

    def _fail(self) -> None:
        if self.hc.closed or self.complete:
            return
        if not self.started:
            self.am.call_in_poll_thread(
                write_response,
                self.hc,
                500,
                _ERROR_500_HEADERS,
                _ERROR_500_BODY,
                not self.keep_alive,
            )
        else:
            # Part of the response is on the wire: closing is the only honest signal.
            self.am.call_in_poll_thread(close_connection, self.hc)
        self.complete = True

    async def receive(self) -> dict[str, Any]:
        if not self.body_sent and not self.hc.closed:
            self.body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("ASGI: 'http.response.start' sent twice")
            self.started = True
            self.status = int(message["status"])
            self.headers = [(k, v) for k, v in message.get("headers", ())]
            return
        if kind != "http.response.body":
            raise RuntimeError(f"ASGI: unexpected message type {kind!r} for an http scope")
        if not self.started:
            raise RuntimeError("ASGI: 'http.response.body' sent before 'http.response.start'")
        if self.complete:
            raise RuntimeError("ASGI: 'http.response.body' sent after the response completed")
        if self.hc.closed:
            return  # spec 2.3: messages after a disconnect are ignored
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        if self.is_head:
            body = b""
        am = self.am
        close = not self.keep_alive
        if not self.streaming:
            if not more_body:
                self.complete = True
                am.call_in_poll_thread(
                    write_response,
                    self.hc,
                    self.status,
                    self.headers,
                    bytes(body),
                    close,
                )
                self.done.set()
                return
            self.streaming = True
            self.chunked = not self.is_head and not _has_header(self.headers, b"content-length")
            headers = self.headers
            if self.chunked:
                headers = [*headers, (b"transfer-encoding", b"chunked")]
            am.call_in_poll_thread(write_head, self.hc, self.status, headers)
        if body:
            am.call_in_poll_thread(write_chunk, self.hc, bytes(body), self.chunked)
        if not more_body:
            self.complete = True
            am.call_in_poll_thread(write_end, self.hc, self.chunked, close)
            self.done.set()
