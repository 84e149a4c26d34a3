"""Raw ASGI callable (no framework): the same routes as raw_wsgi.py, core_app.py and hello.c.

GET / -> 13-byte plain text; GET /big -> 1 MiB; POST /echo -> the request body;
WebSocket /ws -> every message echoed back.
"""

HELLO = b"Hello, World!"
BIG = b"x" * (1024 * 1024)
TEXT = [(b"content-type", b"text/plain")]
BINARY = [(b"content-type", b"application/octet-stream")]


async def _respond(send, body, headers):
    await send({"type": "http.response.start", "status": 200,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _websocket_echo(receive, send):
    while True:
        event = await receive()
        kind = event["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            if event.get("text") is not None:
                await send({"type": "websocket.send", "text": event["text"]})
            else:
                await send({"type": "websocket.send", "bytes": event.get("bytes") or b""})
        else:
            return


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if kind == "websocket":
        await _websocket_echo(receive, send)
        return
    path = scope["path"]
    if path == "/echo":
        chunks = []
        while True:
            event = await receive()
            chunks.append(event.get("body", b""))
            if not event.get("more_body"):
                break
        await _respond(send, b"".join(chunks), BINARY)
    elif path == "/big":
        await _respond(send, BIG, BINARY)
    else:
        await _respond(send, HELLO, TEXT)
