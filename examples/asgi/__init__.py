"""Plain ASGI 3 example applications (no framework), each served with

    python -m cymongoose.asgi examples.asgi.<module>:app --port 8000

from the repository root:

- `hello`: a class-based router: ``GET /`` text, ``GET /api`` JSON, ``GET /scope`` the scope.
- `bodies`: ``POST /json`` echoes a JSON body, ``POST /form`` parses a form body.
- `websocket_echo`: ``/ws`` echoes text (prefixed ``Echo: ``) and bytes.
- `chat`: a WebSocket chat room per ``/chat/<room>``, with an HTML client at ``/``.
- `middleware`: logging, ``x-process-time`` and bearer-token middleware around a small app.
- `sse`: Server-Sent Events at ``/sse`` with an HTML client at ``/``.
- `background`: ``POST /signup`` answers at once and "sends" an e-mail in the background.
"""
