"""A FastAPI app exercising what a real API uses: JSON models, forms, big uploads,
streaming responses, background tasks and dependencies with ``yield``.

`make_app` returns a fresh app and its `Record` (what happened on the server side, for the
test to inspect through ``GET /record`` or directly).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

from fastapi import BackgroundTasks, Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

STREAM_CHUNKS = 1000


@dataclass
class Record:
    events: list[str] = field(default_factory=list)
    release: asyncio.Event | None = None  # created on the server's loop
    body_messages: list[int] = field(default_factory=list)  # sizes of http.request bodies
    produced: int = 0  # bytes handed to the server by /big-stream so far


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []
    meta: dict[str, Any] = {}


def make_app() -> tuple[FastAPI, Record]:
    app = FastAPI()
    record = Record()

    def release_event() -> asyncio.Event:
        if record.release is None:
            record.release = asyncio.Event()
        return record.release

    @app.post("/items")
    async def create_item(item: Item) -> dict[str, Any]:
        return {"item": item.model_dump(), "total": round(item.price * 1.2, 2)}

    @app.post("/form")
    async def form(name: str = Form(), count: int = Form(), tags: list[str] = Form([])):
        return {"name": name, "count": count, "tags": tags}

    @app.post("/form-file")
    async def form_file(title: str = Form(), doc: UploadFile = File()):
        data = await doc.read()
        return {"title": title, "filename": doc.filename,
                "content_type": doc.content_type, "text": data.decode()}

    @app.post("/upload")
    async def upload(file: UploadFile = File()):
        digest = hashlib.sha256()
        size = 0
        while chunk := await file.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        return {"filename": file.filename, "size": size, "sha256": digest.hexdigest()}

    @app.put("/raw")
    async def raw(request: Request):
        """Hash the body as it streams in; note each http.request message's size."""
        digest = hashlib.sha256()
        sizes = []
        async for chunk in request.stream():
            digest.update(chunk)
            if chunk:
                sizes.append(len(chunk))
        record.body_messages = sizes
        return {"size": sum(sizes), "sha256": digest.hexdigest(), "messages": len(sizes),
                "largest": max(sizes, default=0)}

    @app.put("/raw-watch")
    async def raw_watch(request: Request):
        """Like /raw, but records whether the body ended or the client went away."""
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
        except ClientDisconnect:
            record.events.append(f"upload aborted after {received > 0} data")
            raise
        record.events.append("upload complete")
        return {"size": received}

    @app.get("/stream")
    async def stream():
        async def numbers():
            for i in range(STREAM_CHUNKS):
                yield f"chunk {i:05d}\n".encode()
                if i % 100 == 0:
                    await asyncio.sleep(0)

        return StreamingResponse(numbers(), media_type="text/plain")

    @app.get("/stream-gated")
    async def stream_gated():
        """First chunk at once; the second only after ``POST /release``."""
        event = release_event()
        event.clear()

        async def parts():
            yield b"first\n"
            await event.wait()
            yield b"second\n"

        return StreamingResponse(parts(), media_type="text/plain")

    @app.get("/big-stream")
    async def big_stream(mib: int = 128):
        """``mib`` MiB of a repeated 1 MiB block; ``record.produced`` counts what the
        generator has handed to the server so far."""
        block = bytes(range(256)) * 4096
        record.produced = 0

        async def blocks():
            for _ in range(mib):
                yield block
                record.produced += len(block)

        return StreamingResponse(blocks(), media_type="application/octet-stream")

    @app.get("/produced")
    async def produced():
        return {"produced": record.produced}

    @app.post("/release")
    async def release():
        release_event().set()
        return {"released": True}

    @app.post("/bg")
    async def background(background_tasks: BackgroundTasks):
        """Answers at once; the task waits for ``POST /release`` and then records."""
        event = release_event()
        event.clear()

        async def task() -> None:
            record.events.append("task started")
            await event.wait()
            record.events.append("task done")

        background_tasks.add_task(task)
        record.events.append("endpoint returned")
        return {"queued": True}

    async def get_session():
        session_id = len(record.events)
        record.events.append(f"session {session_id} open")
        try:
            yield {"id": session_id}
        finally:
            record.events.append(f"session {session_id} closed")

    def get_user(session: dict = Depends(get_session)) -> dict[str, Any]:
        return {"name": "alice", "session": session["id"]}

    @app.get("/me")
    async def me(user: dict = Depends(get_user), session: dict = Depends(get_session)):
        # get_session is cached per request: both see the same session.
        record.events.append(f"handler saw session {session['id']}")
        return {"user": user, "session": session["id"]}

    @app.get("/record")
    async def get_record():
        return {"events": record.events}

    return app, record
