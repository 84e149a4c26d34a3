"""A Starlette app: WebSocket echo (text, bytes, close codes both ways) and a Server-Sent
Events stream fed by ``POST /publish``.

`make_app` returns a fresh app and its `Record` of server-side observations.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


@dataclass
class Record:
    ws_disconnect_codes: list[int] = field(default_factory=list)
    sse_streams_ended: list[str] = field(default_factory=list)  # "complete" | "cancelled"
    subscribers: list[asyncio.Queue[str | None]] = field(default_factory=list)


def make_app() -> tuple[Starlette, Record]:
    record = Record()

    async def echo(websocket: WebSocket) -> None:
        """Text comes back as ``Echo: <text>``, bytes reversed; ``close <code> <reason>``
        makes the server close with that code and reason."""
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    record.ws_disconnect_codes.append(message["code"])
                    return
                text = message.get("text")
                if text is not None and text.startswith("close "):
                    _, code, reason = text.split(" ", 2)
                    await websocket.close(int(code), reason)
                    return
                if text is not None:
                    await websocket.send_text(f"Echo: {text}")
                else:
                    await websocket.send_bytes(message["bytes"][::-1])
        except WebSocketDisconnect as exc:
            record.ws_disconnect_codes.append(exc.code)

    async def negotiated(websocket: WebSocket) -> None:
        """Accepts with the last subprotocol offered and an extra response header, then
        reports what it chose."""
        offered = websocket.scope.get("subprotocols", [])
        chosen = offered[-1] if offered else None
        await websocket.accept(subprotocol=chosen, headers=[(b"x-room", b"blue")])
        await websocket.send_json({"offered": offered, "chosen": chosen})
        await websocket.close()

    async def ws_record(request: Request) -> JSONResponse:
        return JSONResponse({"disconnect_codes": record.ws_disconnect_codes,
                             "sse_streams_ended": record.sse_streams_ended,
                             "subscribers": len(record.subscribers)})

    async def events(request: Request) -> StreamingResponse:
        """One event per published message; ``end`` finishes the stream."""
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        record.subscribers.append(queue)

        async def stream():
            # Ended by the client going away: cancelled (http.disconnect, ASGI spec < 2.4)
            # or closed at a yield (send raised OSError, spec 2.4).
            completed = False
            try:
                yield "event: hello\ndata: connected\n\n"
                while (data := await queue.get()) is not None:
                    yield f"id: {data['id']}\ndata: {json.dumps(data)}\n\n"
                completed = True
            finally:
                record.subscribers.remove(queue)
                record.sse_streams_ended.append("complete" if completed else "cancelled")

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache"})

    async def publish(request: Request) -> JSONResponse:
        data = await request.json()
        for queue in record.subscribers:
            queue.put_nowait(None if data.get("end") else data)
        return JSONResponse({"delivered_to": len(record.subscribers)})

    app = Starlette(routes=[
        WebSocketRoute("/ws", echo),
        WebSocketRoute("/ws-negotiated", negotiated),
        Route("/record", ws_record),
        Route("/events", events),
        Route("/publish", publish, methods=["POST"]),
    ])
    return app, record
