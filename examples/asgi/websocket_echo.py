"""A WebSocket echo server in plain ASGI.

``/ws``: text frames come back prefixed with ``Echo: ``, binary frames come back as they
are. Sending the text ``close`` makes the server close with code 1000 and reason ``bye``.
``GET /`` answers with a short text page.

Run: ``python -m cymongoose.asgi examples.asgi.websocket_echo:app``
"""

from __future__ import annotations

from .hello import Receive, Scope, Send, send_response


async def websocket_handler(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == "close":
            await send({"type": "websocket.close", "code": 1000, "reason": "bye"})
            return
        if text is not None:
            await send({"type": "websocket.send", "text": f"Echo: {text}"})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        if scope["path"] == "/ws":
            await websocket_handler(scope, receive, send)
        else:
            await receive()
            await send({"type": "websocket.close", "code": 1008})  # 403 before accept
    elif scope["type"] == "http":
        if scope["path"] == "/":
            await send_response(send, 200, b"WebSocket echo at /ws")
        else:
            await send_response(send, 404, b"Not Found")
