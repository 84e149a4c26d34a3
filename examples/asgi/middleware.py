"""ASGI middleware: wrappers that see every scope, message and response of the app inside.

- `LoggingMiddleware` logs ``HTTP <method> <path> <status> <seconds>`` per request and
  WebSocket opens/closes, to the ``examples.asgi.middleware`` logger.
- `ProcessTimeMiddleware` adds an ``x-process-time`` response header (seconds, as text).
- `BearerAuthMiddleware` guards some paths: HTTP needs ``Authorization: Bearer <token>``
  (else 401 JSON), a WebSocket needs ``?token=<token>`` (else closed before the handshake,
  which the server answers with HTTP 403). The user found for the token goes into
  ``scope["user"]``.

Served app: ``GET /`` (public), ``GET /private`` (needs a token; says who you are),
``/ws/private`` (WebSocket, needs a token; greets you and closes). The demo token is
``secret-token`` for user ``alice``.

Run: ``python -m cymongoose.asgi examples.asgi.middleware:app``
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from .hello import Receive, Scope, Send, send_response

logger = logging.getLogger(__name__)


class LoggingMiddleware:
    def __init__(self, app: Any, logger: logging.Logger = logger) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            start = time.perf_counter()
            status: list[int] = []

            async def logging_send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])
                await send(message)

            await self.app(scope, receive, logging_send)
            self.logger.info("HTTP %s %s %s %.3fs", scope["method"], scope["path"],
                             status[0] if status else None, time.perf_counter() - start)
        elif scope["type"] == "websocket":
            self.logger.info("WebSocket connection to %s", scope["path"])
            await self.app(scope, receive, send)
            self.logger.info("WebSocket closed %s", scope["path"])
        else:
            await self.app(scope, receive, send)


class ProcessTimeMiddleware:
    """Adds ``x-process-time: <seconds>`` (time until the response started) to HTTP responses."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timing_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                elapsed = f"{time.perf_counter() - start:.6f}".encode()
                headers = [*message.get("headers", []), (b"x-process-time", elapsed)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timing_send)


class BearerAuthMiddleware:
    def __init__(self, app: Any, tokens: dict[str, str], protected_paths: set[str]) -> None:
        self.app = app
        self.tokens = tokens  # token -> user name
        self.protected_paths = protected_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] not in self.protected_paths:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            token = ""
            for name, value in scope["headers"]:
                if name == b"authorization" and value.startswith(b"Bearer "):
                    token = value[7:].decode("latin-1")
        else:
            query = parse_qs(scope["query_string"].decode("latin-1"))
            token = query.get("token", [""])[0]
        user = self.tokens.get(token)
        if user is not None:
            await self.app({**scope, "user": user}, receive, send)
        elif scope["type"] == "http":
            await send_response(send, 401, b'{"error": "Unauthorized"}', b"application/json")
        else:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})


async def inner_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        if scope["path"] == "/":
            await send_response(send, 200, b"Hello from behind three middlewares")
        elif scope["path"] == "/private":
            body = json.dumps({"user": scope["user"]}).encode()
            await send_response(send, 200, body, b"application/json")
        else:
            await send_response(send, 404, b"Not Found")
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        if scope["path"] == "/ws/private":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": f"hello {scope['user']}"})
            await send({"type": "websocket.close", "code": 1000})
        else:
            await send({"type": "websocket.close", "code": 1008})


app = LoggingMiddleware(
    ProcessTimeMiddleware(
        BearerAuthMiddleware(inner_app, tokens={"secret-token": "alice"},
                             protected_paths={"/private", "/ws/private"})
    )
)
