"""A Quart app: JSON routes, a WebSocket echo, and startup/shutdown hooks (which Quart
runs from the ASGI lifespan protocol)."""

from __future__ import annotations

from typing import Any

from quart import Quart, jsonify, request, websocket


def make_app() -> Quart:
    app = Quart(__name__)
    lifecycle: list[str] = []

    @app.before_serving
    async def startup() -> None:
        lifecycle.append("started")

    @app.after_serving
    async def shutdown() -> None:
        lifecycle.append("stopped")

    app.config["LIFECYCLE"] = lifecycle  # for the test to look at after the server stops

    @app.get("/hello/<name>")
    async def hello(name: str) -> Any:
        return jsonify({"hello": name, "times": int(request.args.get("times", "1")),
                        "lifecycle": lifecycle})

    @app.post("/echo")
    async def echo() -> Any:
        data = await request.get_json()
        return jsonify({"received": data, "mimetype": request.mimetype})

    @app.websocket("/ws")
    async def ws() -> None:
        while True:
            data = await websocket.receive()
            if isinstance(data, bytes):
                await websocket.send(data)
            else:
                await websocket.send(f"Echo: {data}")

    return app
