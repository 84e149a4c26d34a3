"""Bare ASGI app for the gunicorn, Unix socket and max-requests tests (test_operations.py).

``/``: JSON with the process id and the scope's ``client`` and ``server``; ``/stuck``
blocks the event loop (``time.sleep``), as a buggy app does.
"""

import json
import os
import time


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/stuck":
        time.sleep(120)
    body = json.dumps({"pid": os.getpid(), "client": scope.get("client", "absent"),
                       "server": scope.get("server")}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
