"""A WebSocket chat room in plain ASGI: every client of ``/chat/<room>`` sees the room's
messages.

Clients send JSON text frames: ``{"type": "chat", "message": "..."}`` (broadcast to the
whole room, sender included) or ``{"type": "typing"}`` (broadcast to the others). The
server sends JSON text frames: ``user_joined`` / ``user_left`` (with ``user_count``),
``chat`` (with ``message``, ``user``, ``room``, ``timestamp``), ``typing``, or
``{"error": "Invalid JSON"}`` to the sender of a frame that is not JSON.
``GET /`` serves an HTML client for room ``room1``.

Run: ``python -m cymongoose.asgi examples.asgi.chat:app`` and open http://127.0.0.1:8000/
in two browser tabs.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

from .hello import Receive, Scope, Send, send_response

CHAT_PAGE = """<!DOCTYPE html>
<html>
<head><title>WebSocket Chat</title></head>
<body>
<div id="messages"></div>
<input type="text" id="messageInput" placeholder="Type message...">
<button onclick="sendMessage()">Send</button>
<script>
const ws = new WebSocket('ws://' + location.host + '/chat/room1');
const messages = document.getElementById('messages');
ws.onmessage = function(event) {
  const div = document.createElement('div');
  div.textContent = event.data;
  messages.appendChild(div);
};
function sendMessage() {
  const input = document.getElementById('messageInput');
  ws.send(JSON.stringify({type: 'chat', message: input.value}));
  input.value = '';
}
document.getElementById('messageInput').addEventListener('keypress', function(e) {
  if (e.key === 'Enter') { sendMessage(); }
});
</script>
</body>
</html>
"""


class WebSocketChatApp:
    """Rooms of connected clients, each client known by its ``send`` callable."""

    def __init__(self) -> None:
        self.connections: defaultdict[str, set[Send]] = defaultdict(set)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.handle_websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self.handle_http(scope, receive, send)

    async def handle_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        path = scope["path"]
        if path.startswith("/chat/") and len(path) > len("/chat/"):
            await self.chat_handler(receive, send, path.split("/")[-1])
        else:
            await send({"type": "websocket.close", "code": 1008})

    async def chat_handler(self, receive: Receive, send: Send, room_id: str) -> None:
        await send({"type": "websocket.accept"})
        user = id(send)
        room = self.connections[room_id]
        room.add(send)
        await self.broadcast(room_id, {
            "type": "user_joined", "message": f"User {user} joined the room",
            "room": room_id, "user_count": len(room),
        })
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    continue
                try:
                    data = json.loads(text)
                except json.JSONDecodeError:
                    await send({"type": "websocket.send",
                                "text": json.dumps({"error": "Invalid JSON"})})
                    continue
                await self.handle_chat_message(data, room_id, send)
        finally:
            room.discard(send)
            await self.broadcast(room_id, {
                "type": "user_left", "message": f"User {user} left the room",
                "room": room_id, "user_count": len(room),
            })

    async def handle_chat_message(self, data: Any, room_id: str, sender: Send) -> None:
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "chat":
            await self.broadcast(room_id, {
                "type": "chat", "message": data.get("message", ""), "user": id(sender),
                "room": room_id, "timestamp": asyncio.get_running_loop().time(),
            })
        elif kind == "typing":
            await self.broadcast(room_id, {"type": "typing", "user": id(sender),
                                           "room": room_id}, exclude=sender)

    async def broadcast(self, room_id: str, message: dict[str, Any],
                        exclude: Send | None = None) -> None:
        """Send ``message`` as JSON to everyone in the room but ``exclude``; a client whose
        send fails is dropped from the room."""
        text = json.dumps(message)
        for client in list(self.connections[room_id]):
            if client is exclude:
                continue
            try:
                await client({"type": "websocket.send", "text": text})
            except Exception:
                self.connections[room_id].discard(client)

    async def handle_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/":
            await send_response(send, 200, CHAT_PAGE.encode(), b"text/html; charset=utf-8")
        else:
            await send_response(send, 404, b"Not Found")


app = WebSocketChatApp()
