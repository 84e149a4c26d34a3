"""A raw ASGI app that answers with its own scope, as JSON.

HTTP: the body is the scope. WebSocket: accepts (choosing the first offered subprotocol),
sends the scope as one text frame and closes with 1000. Lifespan: startup puts
``greeting = "hello"`` into the lifespan state (when the server provides one), so requests
show it in ``scope["state"]``.

Bytes become ``{"bytes": <latin-1 text>}`` and tuples become lists, so the test sees
which values were bytes.
"""

from __future__ import annotations

import json
from typing import Any


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return {"repr": repr(value)}


def scope_json(scope: dict[str, Any]) -> bytes:
    return json.dumps(jsonable(scope)).encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if "state" in scope:
                    scope["state"]["greeting"] = "hello"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        more_body = True
        while more_body:  # drain the request body
            message = await receive()
            more_body = message.get("more_body", False)
        body = scope_json(scope)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if scope.get("subprotocols"):
            accept["subprotocol"] = scope["subprotocols"][0]
        await send(accept)
        await send({"type": "websocket.send", "text": scope_json(scope).decode()})
        await send({"type": "websocket.close", "code": 1000})
