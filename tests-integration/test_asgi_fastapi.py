"""FastAPI on cymongoose-asgi: routing, validation, bodies, keep-alive, concurrency."""

from __future__ import annotations

import asyncio

import httpx
import pytest

fastapi = pytest.importorskip("fastapi")
from cymongoose.asgi.testing import ServerThread  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def make_app():
    app = fastapi.FastAPI()

    @app.get("/")
    async def index():
        return {"message": "Hello from FastAPI on cymongoose!"}

    @app.get("/items/{item_id}")
    async def get_item(item_id: int, q: str = ""):
        return {"item_id": item_id, "q": q}

    @app.post("/upload")
    async def upload(request: fastapi.Request):
        body = await request.body()
        return {"size": len(body), "sha": __import__("hashlib").sha256(body).hexdigest()}

    @app.get("/sleep")
    async def sleep():
        await asyncio.sleep(0.05)
        return {"ok": True}

    return app


@pytest.fixture(scope="module")
def server():
    with ServerThread(make_app()) as srv:
        yield srv


def test_index_json(server):
    r = httpx.get(server.url + "/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"message": "Hello from FastAPI on cymongoose!"}


def test_path_and_query_params(server):
    r = httpx.get(server.url + "/items/42", params={"q": "héllo wörld"})
    assert r.json() == {"item_id": 42, "q": "héllo wörld"}
    assert httpx.get(server.url + "/items/7").json() == {"item_id": 7, "q": ""}


def test_404(server):
    r = httpx.get(server.url + "/nope")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


def test_422(server):
    r = httpx.get(server.url + "/items/not-a-number")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["path", "item_id"]


def test_large_post_body_intact(server):
    import hashlib
    import os

    body = os.urandom(2 * 1024 * 1024)
    r = httpx.post(server.url + "/upload", content=body, timeout=30)
    assert r.status_code == 200
    assert r.json() == {"size": len(body), "sha": hashlib.sha256(body).hexdigest()}


def test_keep_alive_50_sequential(server):
    client_addrs = set()
    with httpx.Client() as client:
        for i in range(50):
            r = client.get(server.url + f"/items/{i}")
            assert r.json() == {"item_id": i, "q": ""}
            client_addrs.add(r.extensions["network_stream"].get_extra_info("client_addr"))
    assert len(client_addrs) == 1  # one connection served all 50


def test_100_concurrent(server):
    async def fire():
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            return await asyncio.gather(*(client.get(server.url + "/sleep") for _ in range(100)))

    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [200] * 100
    assert all(r.json() == {"ok": True} for r in responses)
