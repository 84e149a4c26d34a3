"""Background work in plain ASGI: answer first, work afterwards.

`BackgroundTaskMiddleware` puts ``scope["background_tasks"]``, a function that starts a
coroutine as an asyncio Task, into every scope. ``POST /signup`` with ``{"email": ...}``
answers 201 at once and "sends" a welcome e-mail in the background (``EMAIL_DELAY_S``
seconds later it lands in the outbox); ``GET /outbox`` lists the e-mails sent so far.

Run: ``python -m cymongoose.asgi examples.asgi.background:app``
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

from .bodies import read_body, send_json
from .hello import Receive, Scope, Send, send_response

EMAIL_DELAY_S = 0.5  # stands for a slow mail server
outbox: list[dict[str, str]] = []


class BackgroundTaskMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.background_tasks: set[asyncio.Task[Any]] = set()  # strong refs until done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({**scope, "background_tasks": self.add_background_task}, receive, send)

    def add_background_task(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, **kwargs: Any
    ) -> None:
        task = asyncio.ensure_future(func(*args, **kwargs))
        self.background_tasks.add(task)
        task.add_done_callback(self.background_tasks.discard)


async def send_email(to_email: str, subject: str, body: str) -> None:
    await asyncio.sleep(EMAIL_DELAY_S)
    outbox.append({"to": to_email, "subject": subject, "body": body})


async def signup(scope: Scope, receive: Receive, send: Send) -> None:
    try:
        email = json.loads(await read_body(receive))["email"]
    except (ValueError, KeyError, TypeError):
        await send_response(send, 400, b'{"error": "send {\\"email\\": ...}"}',
                            b"application/json")
        return
    scope["background_tasks"](send_email, email, "Welcome!", "Thank you for signing up!")
    await send_json(send, 201, {"message": "User created successfully"})


async def routes(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    route = (scope["method"], scope["path"])
    if route == ("POST", "/signup"):
        await signup(scope, receive, send)
    elif route == ("GET", "/outbox"):
        await send_json(send, 200, outbox)
    elif route == ("GET", "/"):
        await send_response(send, 200, b"POST {\"email\": ...} to /signup, then GET /outbox")
    else:
        await send_response(send, 404, b"Not Found")


app = BackgroundTaskMiddleware(routes)
