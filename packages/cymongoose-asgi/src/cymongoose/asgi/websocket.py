"""ASGI WebSocket protocol (ASGI spec "HTTP & WebSocket", version 2.4; RFC 6455).

Everything of a WebSocket connection lives here: the opening handshake's checks
(`open_websocket`), the frames the core hands over (`WebSocketConnection.on_message`,
`on_control`), keep-alive pings, close codes, and the app's ``receive``/``send``. The
server only dispatches the core's events to it.

The upgrade request reaches the app as ``websocket.connect``; the 101 response is written
only when the app sends ``websocket.accept`` (`Connection.ws_accept`, with the chosen
``subprotocol`` and ``headers``). A ``websocket.close`` before that is answered with HTTP
403, an exception with 500; or the app answers with an HTTP response of its own (ASGI
extension "websocket.http.response": ``websocket.http.response.start``, then
``websocket.http.response.body`` messages with ``more_body``; any status, headers and
body), after which the connection closes. Messages above ``ws_max_size`` are refused by
the core (close 1009; a compressed one once inflated past it), pings are sent every
``ws_ping_interval_s`` by the server. The client's permessage-deflate offer (RFC 7692) is
agreed when ``ws_per_message_deflate`` is on; the core then inflates and deflates. The
client's close code and reason reach ``websocket.disconnect``. Once the connection is
closed, ``websocket.send`` and ``websocket.accept`` raise `ClientDisconnected` (an
OSError); ``websocket.close`` is then a no-op.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
import time
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from cymongoose.serving.httprules import no_content

from .http import ClientDisconnected, _content_length, caused_by_disconnect, log_response

if TYPE_CHECKING:
    from cymongoose.aio import AsyncManager
    from cymongoose.serving.accesslog import AccessLogFormat

logger = logging.getLogger("cymongoose.asgi")

OP_TEXT = 1
OP_BINARY = 2
OP_CLOSE = 8
OP_PING = 9
OP_PONG = 10
_SEND_HIGH = 1 << 20
_SEND_LOW = 1 << 16
_REJECT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
_CLOSE_HEADERS = [(b"connection", b"close")]


def open_websocket(
    am: AsyncManager,
    call_soon: Callable[..., Any],
    conn: Any,
    scope: dict[str, Any],
    headers: list[Any],
    log: bool | AccessLogFormat = False,
    per_message_deflate: bool = False,
) -> WebSocketConnection | None:
    """Poll thread: check an upgrade request (RFC 6455 section 4.2.1) and make ``scope``
    (the request's HTTP scope) a ``websocket`` scope.

    Returns the `WebSocketConnection`, or None after answering a bad handshake: 426
    naming the version we speak for another ``Sec-WebSocket-Version`` (section 4.4), 400
    for none, for HTTP/1.0 or for a key that is not 16 base64-encoded bytes; the
    connection then closes. ``call_soon`` hands a call to the asyncio thread.

    The access log (``log``: False, True for the default line, or a gunicorn format) gets
    one line per session: the handshake's status (101, or the refusal's), when it is
    answered; with a gunicorn format an accepted session's line comes when it closes,
    with its duration.

    ``per_message_deflate``: agree to the client's permessage-deflate offer (RFC 7692)
    when the app accepts; the core then inflates and deflates the messages.
    """
    key = version = b""
    protocols: list[str] = []
    extensions: list[bytes] = []
    for name, value in headers:
        if name == b"sec-websocket-key":
            key = value
        elif name == b"sec-websocket-version":
            version = value
        elif name == b"sec-websocket-protocol":
            protocols.extend(p.strip() for p in value.decode("latin-1").split(","))
        elif name == b"sec-websocket-extensions":
            extensions.append(value)
    if version.strip() != b"13":
        if version:
            conn.send_response(426, [(b"sec-websocket-version", b"13"), *_CLOSE_HEADERS],
                               b"Upgrade Required")
            log_response(log, scope, "GET", 426)
        else:
            conn.send_response(400, _CLOSE_HEADERS, b"Bad WebSocket version")
            log_response(log, scope, "GET", 400)
        conn.drain()
        return None
    if scope["http_version"] != "1.1" or not _valid_key(key):
        conn.send_response(400, _CLOSE_HEADERS, b"Bad WebSocket handshake")
        log_response(log, scope, "GET", 400)
        conn.drain()
        return None
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    scope["subprotocols"] = [p for p in protocols if p]
    ws = WebSocketConnection(am, call_soon, conn, scope, key.decode("latin-1"), log)
    if per_message_deflate and extensions:
        ws.deflate_offer = b", ".join(extensions)
    return ws


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except ValueError:
        return False


class WebSocketConnection:
    """One WebSocket request/connection; ``conn`` is touched only on the poll thread.

    ``am`` takes writes to the poll thread, ``call_soon`` takes calls to the asyncio
    thread (the app's messages).
    """

    def __init__(self, am: AsyncManager, call_soon: Callable[..., Any], conn: Any,
                 scope: dict[str, Any], key: str, log: bool | AccessLogFormat = False) -> None:
        self.am = am
        self.log = log
        self.arrived = perf_counter()
        self.accept_headers: list[Any] = []
        self.call_soon = call_soon
        self.conn = conn
        self.scope = scope
        self.key = key
        self.closed = False  # poll thread: MG_EV_CLOSE seen
        self.close_code = 1006  # poll thread: from the client's close frame, if any
        self.close_reason = ""  # poll thread: that frame's reason
        self.deflate_offer: bytes | None = None  # the client's Sec-WebSocket-Extensions
        self.upgraded = False  # poll thread: the 101 response is written
        self.ping_sent_at = 0.0  # poll thread: monotonic time of an unanswered ping
        self.last_ping_at = 0.0
        self.accepted = False
        self.close_sent = False
        self.denial: _Denial | None = None  # the app's own HTTP response, once started
        self.unflushed = 0
        self.writable: asyncio.Future[None] | None = None
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.queue.put_nowait({"type": "websocket.connect"})

    # -- poll thread -------------------------------------------------------------------

    def on_message(self, data: Any) -> None:
        """MG_EV_WS_MSG: a whole data message (the core joins fragments and refuses those
        above ``ws_max_size``) goes to the app as ``websocket.receive``. Text that is not
        UTF-8 closes with 1007 (RFC 6455 section 8.1)."""
        op = data.flags & 15
        if op == OP_TEXT:
            try:
                text = data.data.decode("utf-8")
            except UnicodeDecodeError:
                self.close_code = 1007
                self._send_close(1007, "invalid UTF-8")
                return
            message = {"type": "websocket.receive", "text": text}
        elif op == OP_BINARY:
            message = {"type": "websocket.receive", "bytes": data.data}
        else:
            return
        self.call_soon(self.queue.put_nowait, message)

    def on_control(self, data: Any) -> None:
        """MG_EV_WS_CTL: keep the client's close code (1005 when its close frame has none,
        RFC 6455 section 7.1.5) and reason for ``websocket.disconnect``; a pong answers
        our ping. The core has refused a reason that is not UTF-8 (close 1007) and a
        1-byte payload (1002): what arrives here is the code the connection closes with."""
        op = data.flags & 15
        if op == OP_CLOSE:
            payload = data.data
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.close_reason = payload[2:].decode("utf-8", "replace")
        elif op == OP_PONG:
            self.ping_sent_at = 0.0

    def keepalive(self, now: float, interval_s: float, timeout_s: float | None) -> None:
        """RFC 6455 section 5.5.2 keep-alive, called by the server's timer at monotonic time
        ``now``: ping every ``interval_s`` seconds; no pong within ``timeout_s`` (None:
        wait forever) closes with 1011."""
        if not self.upgraded or self.closed:
            return
        if self.ping_sent_at:
            if timeout_s and now - self.ping_sent_at >= timeout_s:
                self._send_close(1011, "keepalive ping timeout")
        elif now - self.last_ping_at >= interval_s:
            self.ping_sent_at = self.last_ping_at = now
            self._send_frame(b"", OP_PING)

    def _accept(self, headers: list[tuple[Any, Any]]) -> None:
        if self.closed:
            return
        offer = self.deflate_offer
        if offer is not None and any(
                bytes(n).lower() == b"sec-websocket-extensions" for n, _ in headers):
            offer = None  # the app answered the offer itself
        try:
            self.conn.ws_accept(self.key, headers, deflate_offer=offer)
            self.upgraded = True
            self.last_ping_at = time.monotonic()
        except (ValueError, TypeError) as exc:
            logger.error("invalid websocket.accept from ASGI application: %s", exc)
            self._reject(500)
            return
        self.accept_headers = headers
        if self.log is True:  # a gunicorn format logs the session when it ends
            log_response(True, self.scope, "GET", 101)

    def _reject(self, status: int) -> None:
        if not self.closed:
            body = b"Forbidden" if status == 403 else b"Internal Server Error"
            self.conn.send_response(status, _REJECT_HEADERS, body)
            self.conn.drain()
            log_response(self.log, self.scope, "GET", status, _REJECT_HEADERS, len(body),
                         self.arrived)

    def _deny_part(self, denial: _Denial, body: bytes, last: bool) -> None:
        # websocket.http.response, poll thread: a body in one part goes out as one
        # response; else the head with the first part and, without a Content-Length from
        # the app, the chunked coding. The connection closes after the last part.
        if self.closed or denial.failed:
            return
        conn = self.conn
        if not denial.head_sent:
            denial.head_sent = True
            denial.chunked = denial.unsized and not last
            headers = denial.headers
            try:
                if last:
                    conn.send_response(denial.status, headers, body)
                    conn.drain()
                    return
                if denial.chunked:
                    headers = [*headers, (b"transfer-encoding", b"chunked")]
                conn.send_response_head(denial.status, headers)
            except (ValueError, TypeError) as exc:
                logger.error("invalid websocket.http.response from ASGI application: %s", exc)
                denial.failed = True
                self._reject(500)
                return
        if body:
            if denial.chunked:
                conn.http_chunk(body)
            else:
                conn.send(body)
        if last:
            if denial.chunked:
                conn.http_chunk(b"")
            conn.finish_response()
            conn.drain()

    def _send_frame(self, data: bytes, op: int) -> None:
        if not self.closed:
            self.conn.ws_send(data, op)

    def _send_close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        payload = struct.pack("!H", code) + reason.encode("utf-8")[:123]
        self.conn.ws_send(payload, OP_CLOSE)
        self.conn.drain()

    def shutdown(self) -> None:
        """Server stopping: close with 1012 (service restart, as uvicorn); the app gets
        ``websocket.disconnect`` with that code once the connection is closed."""
        if self.upgraded and not self.closed:
            self.close_code = 1012
            self._send_close(1012, "")

    def _want_writable(self) -> None:
        if not self.closed:
            self.conn.notify_writable(_SEND_LOW)

    # -- asyncio thread ----------------------------------------------------------------

    async def run(self, app: Any) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            self._close(1012, "")  # graceful shutdown ran out of time
            raise
        except BaseException as exc:
            if self.closed and caused_by_disconnect(exc):
                logger.debug("ASGI application ended: its WebSocket client disconnected")
            else:
                logger.error("exception in ASGI application (websocket)", exc_info=exc)
            if self.accepted:
                self._close(1011, "")
            elif self.denial is not None:
                self._end_denial()
            elif not self.close_sent:
                self.close_sent = True
                self.am.call_in_poll_thread(self._reject, 500)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if self.denial is not None and not self.denial.done:
                logger.error("ASGI application returned without completing its "
                             "websocket.http.response")
                self._end_denial()
            self._close(1000, "")

    def _end_denial(self) -> None:
        # The app failed or returned during its websocket.http.response: a 500 if none of
        # it was written yet, else the connection ends after what was sent.
        denial = self.denial
        assert denial is not None
        if denial.done:
            return
        denial.done = True
        if denial.parts:
            self.am.call_in_poll_thread(_drain, self)
        else:
            self.am.call_in_poll_thread(self._reject, 500)

    def _close(self, code: int, reason: str) -> None:
        if self.close_sent:
            return
        self.close_sent = True
        if self.accepted:
            self.am.call_in_poll_thread(self._send_close, code, reason)
        else:
            self.am.call_in_poll_thread(self._reject, 403)

    async def receive(self) -> dict[str, Any]:
        message = await self.queue.get()
        if message["type"] == "websocket.disconnect":
            self.queue.put_nowait(message)  # every later receive() sees it too
        return message

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            if not self.accepted:
                raise RuntimeError("ASGI: 'websocket.send' before 'websocket.accept'")
            if self.closed:
                raise ClientDisconnected("ASGI send(): the WebSocket client has disconnected")
            if self.close_sent:
                return  # the app closed: frames it sends until the close completes are dropped
            text = message.get("text")
            if text is not None:
                data = text.encode("utf-8")
                op = OP_TEXT
            else:
                raw = message.get("bytes")
                if raw is None:
                    raise RuntimeError("ASGI: 'websocket.send' needs 'text' or 'bytes'")
                data = bytes(raw)
                op = OP_BINARY
            self.am.call_in_poll_thread(self._send_frame, data, op)
            self.unflushed += len(data)
            if self.unflushed > _SEND_HIGH:
                self.writable = asyncio.get_running_loop().create_future()
                self.am.call_in_poll_thread(self._want_writable)
                await self.writable
                self.unflushed = 0
                if self.closed:  # the wait ended because the client left
                    raise ClientDisconnected(
                        "ASGI send(): the WebSocket client has disconnected")
        elif kind == "websocket.accept":
            if self.accepted or self.close_sent:
                raise RuntimeError("ASGI: 'websocket.accept' sent twice or after close")
            if self.closed:
                raise ClientDisconnected("ASGI send(): the WebSocket client has disconnected")
            self.accepted = True
            headers = list(message.get("headers") or ())
            subprotocol = message.get("subprotocol")
            if subprotocol:
                headers.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
            self.am.call_in_poll_thread(self._accept, headers)
        elif kind == "websocket.close":
            if self.denial is not None:
                raise RuntimeError("ASGI: 'websocket.close' after 'websocket.http.response.start'")
            code = message.get("code") or 1000
            self._close(int(code), message.get("reason") or "")
        elif kind == "websocket.http.response.start":
            if self.accepted or self.close_sent:
                raise RuntimeError("ASGI: 'websocket.http.response.start' after "
                                   "'websocket.accept' or 'websocket.close', or sent twice")
            status = message["status"]
            if type(status) is not int or not 200 <= status <= 599:
                raise RuntimeError(f"ASGI: websocket.http.response status must be an int "
                                   f"in 200..599, got {status!r}")
            headers = list(message.get("headers") or ())
            length = _content_length(headers)  # ValueError for an invalid one
            self.close_sent = True  # no accept or close from now on
            self.denial = _Denial(status, headers, length is None and not no_content(status))
        elif kind == "websocket.http.response.body":
            denial = self.denial
            if denial is None or denial.done:
                raise RuntimeError("ASGI: 'websocket.http.response.body' before "
                                   "'websocket.http.response.start' or after the last one")
            if self.closed:
                raise ClientDisconnected("ASGI send(): the WebSocket client has disconnected")
            body = bytes(message.get("body", b""))
            last = not message.get("more_body", False)
            if no_content(denial.status):
                body = b""
            denial.parts += 1
            denial.length += len(body)
            if last:
                denial.done = True
                log_response(self.log, self.scope, "GET", denial.status, denial.headers,
                             denial.length, self.arrived)
            self.am.call_in_poll_thread(self._deny_part, denial, body, last)
        else:
            raise RuntimeError(f"ASGI: unexpected message type {kind!r} for a websocket scope")

    def on_disconnect(self, code: int, reason: str = "") -> None:
        if self.upgraded:
            logger.debug("WebSocket %s closed (code %d) after %.3f s", self.scope["path"],
                         code, perf_counter() - self.arrived)
            if self.log and self.log is not True:
                log_response(self.log, self.scope, "GET", 101, self.accept_headers, 0,
                             self.arrived)
        waiter = self.writable
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})

    def on_writable(self) -> None:
        waiter = self.writable
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _drain(ws: WebSocketConnection) -> None:
    if not ws.closed:
        ws.conn.drain()


class _Denial:
    """The app's HTTP response to a WebSocket request (ASGI extension
    "websocket.http.response"); ``unsized``: the app gave no Content-Length and the
    status has content, so a body in several parts is framed by the chunked coding."""

    __slots__ = ("chunked", "done", "failed", "head_sent", "headers", "length", "parts",
                 "status", "unsized")

    def __init__(self, status: int, headers: list[Any], unsized: bool) -> None:
        self.status = status
        self.headers = [*headers, *_CLOSE_HEADERS]
        self.unsized = unsized
        self.done = False  # the last body part was sent (asyncio thread)
        self.parts = 0  # body messages sent (asyncio thread)
        self.length = 0
        self.head_sent = False  # poll thread
        self.chunked = False  # poll thread
        self.failed = False  # poll thread: the core refused the head
