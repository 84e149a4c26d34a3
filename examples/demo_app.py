"""The demo: the ASGI seed's FastAPI routes plus the WebSocket chat room, on cymongoose.

Run ``nox -s demo`` (or the command below) and open http://127.0.0.1:8000/chat in two
browser tabs.

Run: ``python examples/demo_app.py --port 8000``
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict

from cymongoose.asgi import serve
from fastapi import FastAPI

api = FastAPI()


@api.get("/")
async def index():
    return {"message": "Hello from FastAPI on cymongoose!"}


@api.get("/items/{item_id}")
async def get_item(item_id: int, q: str = ""):
    return {"item_id": item_id, "q": q}


CHAT_PAGE = """<!DOCTYPE html>
<html>
<head><title>WebSocket Chat</title></head>
<body>
<h1>cymongoose chat: room1</h1>
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


class ChatRooms:
    """The chat room of the ASGI fundamentals seed: join, chat, typing, leave."""

    def __init__(self):
        self.rooms: dict[str, set] = defaultdict(set)

    async def broadcast(self, room: str, message: dict, exclude=None) -> None:
        text = json.dumps(message)
        for peer in list(self.rooms[room]):
            if peer is exclude:
                continue
            try:
                await peer({"type": "websocket.send", "text": text})
            except Exception:
                self.rooms[room].discard(peer)

    async def __call__(self, scope, receive, send) -> None:
        room = scope["path"].rsplit("/", 1)[-1]
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        user = id(send)
        self.rooms[room].add(send)
        await self.broadcast(room, {"type": "user_joined", "message": f"User {user} joined",
                                    "room": room, "user_count": len(self.rooms[room])})
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                try:
                    data = json.loads(message.get("text") or "")
                except json.JSONDecodeError:
                    await send({"type": "websocket.send", "text": '{"error": "Invalid JSON"}'})
                    continue
                if data.get("type") == "chat":
                    await self.broadcast(room, {
                        "type": "chat", "message": data.get("message", ""), "user": user,
                        "room": room, "timestamp": asyncio.get_running_loop().time()})
                elif data.get("type") == "typing":
                    await self.broadcast(room, {"type": "typing", "user": user, "room": room},
                                         exclude=send)
        finally:
            self.rooms[room].discard(send)
            await self.broadcast(room, {"type": "user_left", "message": f"User {user} left",
                                        "room": room, "user_count": len(self.rooms[room])})


chat = ChatRooms()


async def app(scope, receive, send):
    """Route /chat (page) and /chat/<room> (WebSocket) to the chat; the rest to FastAPI."""
    if scope["type"] == "websocket" and scope["path"].startswith("/chat/"):
        await chat(scope, receive, send)
    elif scope["type"] == "http" and scope["path"] == "/chat":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")]})
        await send({"type": "http.response.body", "body": CHAT_PAGE.encode()})
    else:
        await api(scope, receive, send)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    print(f"cymongoose demo on http://{args.host}:{args.port}  (chat: /chat)", flush=True)
    serve(app, f"http://{args.host}:{args.port}")
