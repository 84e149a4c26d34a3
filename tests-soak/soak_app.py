"""The applications the soak test serves: the same routes as ASGI (``asgi``) and WSGI (``wsgi``).

Every response carries the request's ``x-id`` header back, so that the load generator can
match it to the request it sent and compare the body with what it expects:

- ``GET /small`` -> ``hello``
- ``GET /bytes/<n>`` -> the first ``n`` bytes of :data:`PATTERN`, in one piece
- ``GET /stream/<n>`` -> the same, in 64 KiB pieces (ASGI ``more_body``, WSGI generator),
  so the server sends it chunked
- ``POST /upload`` -> ``ok:<n>`` when the body is exactly the first ``n`` bytes of
  :data:`PATTERN` (any ``n``, Content-Length or chunked), else status 400 ``bad:<n>``
- WebSocket ``/ws`` (ASGI only) -> every message echoed, text as text, bytes as bytes

:data:`PATTERN` is made of 8-byte blocks that spell their own offset (``"%07x\\n"``), so a
lost, repeated or reordered piece anywhere in a body is a mismatch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MAX_PATTERN_BYTES = 8 << 20
PATTERN = b"".join(b"%07x\n" % (offset % (1 << 28)) for offset in range(0, MAX_PATTERN_BYTES, 8))
PIECE_BYTES = 64 << 10


def _route(method: str, path: str) -> tuple[str, int]:
    """Return ``(kind, size)`` for a request; kind ``"missing"`` for an unknown route."""
    if method in ("GET", "HEAD"):
        if path == "/small":
            return "small", 5
        for prefix, kind in (("/bytes/", "bytes"), ("/stream/", "stream")):
            if path.startswith(prefix) and path[len(prefix):].isdigit():
                size = int(path[len(prefix):])
                if size <= MAX_PATTERN_BYTES:
                    return kind, size
    elif method == "POST" and path == "/upload":
        return "upload", 0
    return "missing", 0


def _verdict(received: int, matches: bool) -> tuple[int, bytes]:
    if matches:
        return 200, b"ok:%d" % received
    return 400, b"bad:%d" % received


# -- ASGI -------------------------------------------------------------------------------


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI 3 application (HTTP and WebSocket; lifespan is accepted and ignored)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await _asgi_websocket(receive, send)
        return
    request_id = b"0"
    for name, value in scope["headers"]:
        if name == b"x-id":
            request_id = value
    kind, size = _route(scope["method"], scope["path"])
    headers = [(b"content-type", b"application/octet-stream"), (b"x-id", request_id)]
    if kind == "upload":
        received = 0
        matches = True
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if body:
                end = received + len(body)
                matches = matches and PATTERN[received:end] == body
                received = end
        status, body = _verdict(received, matches)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif kind == "stream":
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for start in range(0, size, PIECE_BYTES):
            piece = PATTERN[start:min(size, start + PIECE_BYTES)]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        status = 404 if kind == "missing" else 200
        body = b"hello" if kind == "small" else PATTERN[:size] if status == 200 else b"missing"
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _asgi_websocket(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            return  # websocket.disconnect


# -- WSGI -------------------------------------------------------------------------------


def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
    """PEP 3333 application with the same HTTP routes as :func:`asgi`."""
    request_id = environ.get("HTTP_X_ID", "0")
    kind, size = _route(environ["REQUEST_METHOD"], environ["PATH_INFO"])
    headers = [("Content-Type", "application/octet-stream"), ("x-id", request_id)]
    if kind == "upload":
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        received = 0
        matches = True
        remaining = int(length) if length else -1
        while remaining != 0:
            piece = stream.read(PIECE_BYTES if remaining < 0 else min(remaining, PIECE_BYTES))
            if not piece:
                break
            end = received + len(piece)
            matches = matches and PATTERN[received:end] == piece
            received = end
            if remaining > 0:
                remaining -= len(piece)
        matches = matches and remaining <= 0
        status, body = _verdict(received, matches)
        start_response("200 OK" if status == 200 else "400 Bad Request", headers)
        return [body]
    if kind == "stream":
        start_response("200 OK", headers)
        return _pieces(size)
    if kind == "missing":
        start_response("404 Not Found", headers)
        return [b"missing"]
    start_response("200 OK", headers)
    return [b"hello" if kind == "small" else PATTERN[:size]]


def _pieces(size: int) -> Iterator[bytes]:
    for start in range(0, size, PIECE_BYTES):
        yield PATTERN[start:min(size, start + PIECE_BYTES)]
