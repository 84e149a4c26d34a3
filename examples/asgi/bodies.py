"""Request bodies in plain ASGI: JSON and form-encoded.

- ``POST /json``: echoes ``{"received": <the JSON body>, "method", "path"}``; 400 with
  ``Invalid JSON`` when the body is not JSON.
- ``POST /form``: ``application/x-www-form-urlencoded`` parsed with `urllib.parse.parse_qs`
  into ``{"form_data": {name: [values...]}, "method", "path"}``.
- ``GET /``: a short text page; anything else -> 404.

The body arrives as ``http.request`` messages; `read_body` joins them until
``more_body`` is false.

Run: ``python -m cymongoose.asgi examples.asgi.bodies:app``
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from .hello import Receive, Scope, Send, send_response


async def read_body(receive: Receive) -> bytes:
    """The whole request body. Raises ConnectionError if the client disconnects first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected before the body was complete")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(send: Send, status: int, data: Any) -> None:
    await send_response(send, status, json.dumps(data).encode(), b"application/json")


async def parse_json_request(scope: Scope, receive: Receive, send: Send) -> None:
    body = await read_body(receive)
    try:
        data = json.loads(body.decode("utf-8")) if body else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        await send_response(send, 400, b"Invalid JSON")
        return
    await send_json(send, 200, {"received": data, "method": scope["method"],
                                "path": scope["path"]})


async def parse_form_request(scope: Scope, receive: Receive, send: Send) -> None:
    body = await read_body(receive)
    content_type = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
    form_data: dict[str, list[str]] = {}
    if content_type.startswith(b"application/x-www-form-urlencoded"):
        form_data = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    await send_json(send, 200, {"form_data": form_data, "method": scope["method"],
                                "path": scope["path"]})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return  # lifespan: nothing to set up; websocket: not served here
    route = (scope["method"], scope["path"])
    if route == ("POST", "/json"):
        await parse_json_request(scope, receive, send)
    elif route == ("POST", "/form"):
        await parse_form_request(scope, receive, send)
    elif route == ("GET", "/"):
        await send_response(send, 200, b"POST JSON to /json or a form to /form")
    else:
        await send_response(send, 404, b"Not Found")
