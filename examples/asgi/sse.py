"""Server-Sent Events in plain ASGI: a ``text/event-stream`` response sent in pieces with
``more_body=True``.

- ``GET /sse?count=N&interval=S``: a ``connected`` event, then ``N`` ``update`` events
  (``{"type": "update", "counter": i, "message": "Update #i", "timestamp": ...}``), one every
  ``S`` seconds (default: forever, every 1 second), then the response ends. The stream stops
  early when the client goes away: the server reports ``http.disconnect``, and ``send()``
  raises an ``OSError`` (ASGI spec 2.4), whichever the stream sees first.
- ``GET /stats``: ``{"started": n, "completed": n, "disconnected": n}`` over all streams.
- ``GET /``: an HTML page that shows the events (EventSource).

Run: ``python -m cymongoose.asgi examples.asgi.sse:app``
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qs

from .hello import Receive, Scope, Send, send_response

SSE_PAGE = """<!DOCTYPE html>
<html>
<head><title>Server-Sent Events</title></head>
<body>
<h1>Server-Sent Events Demo</h1>
<div id="messages"></div>
<script>
const eventSource = new EventSource('/sse');
const messages = document.getElementById('messages');
eventSource.onmessage = function(event) {
  const data = JSON.parse(event.data);
  const div = document.createElement('div');
  div.textContent = new Date(data.timestamp * 1000).toLocaleString() + ': '
    + (data.message || data.type);
  messages.appendChild(div);
};
</script>
</body>
</html>
"""

stats = {"started": 0, "completed": 0, "disconnected": 0}


def _event(data: dict[str, Any]) -> dict[str, Any]:
    body = f"data: {json.dumps(data)}\n\n".encode()
    return {"type": "http.response.body", "body": body, "more_body": True}


async def sse_handler(scope: Scope, receive: Receive, send: Send) -> None:
    query = parse_qs(scope["query_string"].decode("latin-1"))
    count = int(query.get("count", ["0"])[0])  # 0: forever
    interval_s = float(query.get("interval", ["1"])[0])
    disconnected = asyncio.Event()

    async def watch_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()

    watcher = asyncio.ensure_future(watch_disconnect())
    stats["started"] += 1
    try:
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache"),
                (b"access-control-allow-origin", b"*"),
            ],
        })
        await send(_event({"type": "connected", "timestamp": time.time()}))
        counter = 0
        while count == 0 or counter < count:
            try:
                await asyncio.wait_for(disconnected.wait(), interval_s)
            except asyncio.TimeoutError:
                pass
            if disconnected.is_set():
                stats["disconnected"] += 1
                return
            counter += 1
            await send(_event({"type": "update", "counter": counter,
                               "message": f"Update #{counter}", "timestamp": time.time()}))
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        stats["completed"] += 1
    except OSError:  # the client left while this stream was about to send
        stats["disconnected"] += 1
    finally:
        watcher.cancel()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/sse":
        await sse_handler(scope, receive, send)
    elif scope["path"] == "/stats":
        await send_response(send, 200, json.dumps(stats).encode(), b"application/json")
    elif scope["path"] == "/":
        await send_response(send, 200, SSE_PAGE.encode(), b"text/html; charset=utf-8")
    else:
        await send_response(send, 404, b"Not Found")
