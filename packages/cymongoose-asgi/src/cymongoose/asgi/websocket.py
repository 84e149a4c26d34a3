"""ASGI WebSocket protocol (ASGI spec "HTTP & WebSocket", version 2.3).

mongoose's `HttpMessage` dies when the handler returns, so the upgrade is completed eagerly
on the poll thread (`Connection.ws_upgrade`) before the app sees ``websocket.connect``.
Consequences: ``websocket.accept`` only records that the app accepted (its ``subprotocol``
and ``headers`` cannot reach the already-sent 101 response), and a close before accept
becomes a close frame (code 1008 unless the app gave one) instead of an HTTP 403.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cymongoose.aio import AsyncManager

logger = logging.getLogger("cymongoose.asgi")

OP_TEXT = 1
OP_BINARY = 2
OP_CLOSE = 8


class WebSocketConnection:
    """One upgraded connection; ``conn`` is touched only on the poll thread."""

    def __init__(self, am: AsyncManager, conn: Any, scope: dict[str, Any]) -> None:
        self.am = am
        self.conn = conn
        self.scope = scope
        self.closed = False  # poll thread: MG_EV_CLOSE seen
        self.close_code = 1006  # poll thread: from the client's close frame, if any
        self.accepted = False
        self.close_sent = False
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.queue.put_nowait({"type": "websocket.connect"})

    # -- poll thread -------------------------------------------------------------------

    def _send_frame(self, data: bytes | str, op: int) -> None:
        if not self.closed:
            self.conn.ws_send(data, op)

    def _send_close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        payload = struct.pack("!H", code) + reason.encode("utf-8")[:123]
        self.conn.ws_send(payload, OP_CLOSE)
        self.conn.drain()

    # -- asyncio thread ----------------------------------------------------------------

    async def run(self, app: Any) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            logger.error("exception in ASGI application (websocket)", exc_info=exc)
            self._close(1011, "")
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            self._close(1000, "")

    def _close(self, code: int, reason: str) -> None:
        if not self.close_sent:
            self.close_sent = True
            self.am.call_in_poll_thread(self._send_close, code, reason)

    async def receive(self) -> dict[str, Any]:
        message = await self.queue.get()
        if message["type"] == "websocket.disconnect":
            self.queue.put_nowait(message)  # every later receive() sees it too
        return message

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted = True
        elif kind == "websocket.send":
            if self.close_sent or self.closed:
                return  # spec 2.3: sends after close are ignored
            text = message.get("text")
            if text is not None:
                self.am.call_in_poll_thread(self._send_frame, text.encode("utf-8"), OP_TEXT)
            else:
                data = message.get("bytes")
                if data is None:
                    raise RuntimeError("ASGI: 'websocket.send' needs 'text' or 'bytes'")
                self.am.call_in_poll_thread(self._send_frame, bytes(data), OP_BINARY)
        elif kind == "websocket.close":
            code = message.get("code") or (1000 if self.accepted else 1008)
            self._close(int(code), message.get("reason") or "")
        else:
            raise RuntimeError(f"ASGI: unexpected message type {kind!r} for a websocket scope")

    def on_disconnect(self, code: int) -> None:
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code})
