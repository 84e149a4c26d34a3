"""A class-based ASGI application with a route table (plain ASGI 3, no framework).

Routes: ``GET /`` -> ``Hello World`` (text/plain), ``GET /api`` -> a JSON message,
``GET /scope`` -> the request's scope as JSON; anything else -> 404. WebSocket connections
to unknown paths are closed (an HTTP 403 before the handshake, per the ASGI spec).

The app raises ValueError for scope types it does not know, ``lifespan`` included: the
server is expected to notice that the app does not support lifespan and carry on.

Run: ``python -m cymongoose.asgi examples.asgi.hello:app``
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_response(
    send: Send, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8"
) -> None:
    """Send a complete response: ``http.response.start`` then one ``http.response.body``."""
    await send(
        {"type": "http.response.start", "status": status,
         "headers": [(b"content-type", content_type)]}
    )
    await send({"type": "http.response.body", "body": body})


class ASGIApplication:
    """Dispatch ``http`` requests on ``(method, path)`` and ``websocket`` ones on ``path``."""

    def __init__(self) -> None:
        self.http_routes: dict[tuple[str, str], Handler] = {}
        self.websocket_routes: dict[str, Handler] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle_http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.handle_websocket(scope, receive, send)
        else:
            raise ValueError(f"Unknown scope type: {scope['type']}")

    async def handle_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.http_routes.get((scope["method"], scope["path"]))
        if handler is None:
            await send_response(send, 404, b"Not Found")
        else:
            await handler(scope, receive, send)

    async def handle_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.websocket_routes.get(scope["path"])
        if handler is None:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})
        else:
            await handler(scope, receive, send)

    def add_http_route(self, method: str, path: str, handler: Handler) -> None:
        self.http_routes[(method, path)] = handler

    def add_websocket_route(self, path: str, handler: Handler) -> None:
        self.websocket_routes[path] = handler


async def home(scope: Scope, receive: Receive, send: Send) -> None:
    await send_response(send, 200, b"Hello World")


async def api(scope: Scope, receive: Receive, send: Send) -> None:
    await send_response(send, 200, b'{"message": "API Response"}', b"application/json")


async def debug_scope(scope: Scope, receive: Receive, send: Send) -> None:
    """The scope as JSON; header names and values are decoded as latin-1."""
    info = {
        "type": scope["type"],
        "method": scope["method"],
        "path": scope["path"],
        "query_string": scope.get("query_string", b"").decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "server": scope.get("server"),
        "client": scope.get("client"),
        "asgi": scope.get("asgi"),
    }
    await send_response(send, 200, json.dumps(info, indent=2).encode(), b"application/json")


app = ASGIApplication()
app.add_http_route("GET", "/", home)
app.add_http_route("GET", "/api", api)
app.add_http_route("GET", "/scope", debug_scope)
