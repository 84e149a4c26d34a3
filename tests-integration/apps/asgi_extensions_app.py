"""A Starlette app using the ASGI extensions, behind a recorder of the messages it sends.

- ``/files/{name}``: Starlette's ``FileResponse`` (``http.response.pathsend`` when the
  server declares it); ``/hints``: ``Request.send_early_hints`` then "ok";
  ``/ws-deny``: ``WebSocket.send_denial_response`` with a 401 and a body;
- raw ASGI routes: ``/raw/extensions`` (the scope's extension names as JSON; a WebSocket
  there is accepted and sends them), ``/raw/trailers`` (a chunked body with trailers),
  ``/raw/pathsend?path=..&length=..`` (pathsend with the Content-Length given),
  ``/raw/ws-deny-parts`` (a WebSocket denial with its body in three parts),
  ``/raw/bad?hint|dir|trailers`` (extension messages with bad input),
  ``/raw/tls`` (the scope's "tls" extension as JSON), ``/raw/stats`` (open fds of
  this process, bytes queued on the server's connections).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


def make_app(files: Path) -> tuple[Any, dict[str, list[str]]]:
    """The app, and path -> message types it sent (the last request of each path)."""
    sent: dict[str, list[str]] = {}
    server: dict[str, Any] = {}

    async def file(request: Request) -> FileResponse:
        return FileResponse(files / request.path_params["name"])

    async def hints(request: Request) -> PlainTextResponse:
        await request.send_early_hints("</style.css>; rel=preload; as=style",
                                       "</app.js>; rel=preload; as=script")
        return PlainTextResponse("ok")

    async def ws_deny(websocket: WebSocket) -> None:
        await websocket.send_denial_response(
            PlainTextResponse("go away", status_code=401, headers={"x-reason": "token"}))

    starlette = Starlette(routes=[
        Route("/files/{name}", file), Route("/hints", hints),
        WebSocketRoute("/ws-deny", ws_deny),
    ])

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await starlette(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/raw/"):
            await RAW[path](scope, receive, send, server)
            return
        types = sent[path] = []

        async def recording_send(message: dict[str, Any]) -> None:
            types.append(message["type"])
            await send(message)

        await starlette(scope, receive, recording_send)

    app.server = server  # type: ignore[attr-defined]  # the test puts the ASGIServer here
    return app, sent


async def _answer(send: Any, body: bytes, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def raw_extensions(scope: dict[str, Any], receive: Any, send: Any, _server: Any) -> None:
    names = json.dumps(sorted(scope.get("extensions", {}))).encode()
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": names})
        await send({"type": "websocket.close"})
        return
    await _answer(send, names)


async def raw_tls(scope: dict[str, Any], receive: Any, send: Any, _server: Any) -> None:
    await _answer(send, json.dumps(scope["extensions"].get("tls")).encode())


async def raw_trailers(scope: dict[str, Any], receive: Any, send: Any, _server: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum")]})
    await send({"type": "http.response.body", "body": b"part one, ", "more_body": True})
    await send({"type": "http.response.body", "body": b"part two"})
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")],
                "more_trailers": True})
    await send({"type": "http.response.trailers", "headers": [(b"x-count", b"2")]})


async def raw_pathsend(scope: dict[str, Any], receive: Any, send: Any, _server: Any) -> None:
    query = parse_qs(scope["query_string"].decode())
    headers = [(b"content-type", b"application/octet-stream")]
    if "length" in query:
        headers.append((b"content-length", query["length"][0].encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.pathsend", "path": query["path"][0]})


async def raw_ws_deny_parts(scope: dict[str, Any], receive: Any, send: Any,
                            _server: Any) -> None:
    await receive()
    await send({"type": "websocket.http.response.start", "status": 429,
                "headers": [(b"retry-after", b"7"), (b"content-type", b"text/plain")]})
    for part, more in ((b"slow ", True), (b"down ", True), (b"please", False)):
        await send({"type": "websocket.http.response.body", "body": part, "more_body": more})


async def raw_bad(scope: dict[str, Any], receive: Any, send: Any, _server: Any) -> None:
    # Extension messages with bad input; the server refuses each with a clear error.
    what = scope["query_string"].decode()
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.http.response.start", "status": 101, "headers": []})
    elif what == "hint":
        await send({"type": "http.response.early_hint", "links": [b"</a>\r\nX-Evil: 1"]})
    elif what == "dir":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": "/"})
    elif what == "trailers":  # trailers never announced
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})
        await send({"type": "http.response.trailers", "headers": []})


async def raw_stats(scope: dict[str, Any], receive: Any, send: Any, server: Any) -> None:
    # Where the manager may be touched: the poll thread, or under its lock (threaded mode).
    queued = server["asgi"]._am.run_locked(
        lambda manager: max((c.send_len for c in manager.connections), default=0))
    fds = len(os.listdir("/proc/self/fd"))
    await _answer(send, json.dumps({"fds": fds, "queued": queued}).encode())


RAW = {"/raw/extensions": raw_extensions, "/raw/tls": raw_tls, "/raw/trailers": raw_trailers,
       "/raw/pathsend": raw_pathsend, "/raw/ws-deny-parts": raw_ws_deny_parts,
       "/raw/stats": raw_stats, "/raw/bad": raw_bad}
