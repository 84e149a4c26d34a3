"""`ASGIServer` on a Unix socket (``uds``, or an ``fd`` that is one) and with
``limit_max_requests`` (ASGI spec: no ``client`` on a Unix socket; ``server`` is
``(path, None)`` as uvicorn gives it)."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest
from cymongoose.asgi import ASGIServer

pytestmark = pytest.mark.timeout(60)


async def scope_app(scope, receive, send):
    body = json.dumps({"client": scope.get("client", "absent"), "server": scope["server"]})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


async def get_over(path: str, n: int = 1) -> list[dict]:
    transport = httpx.AsyncHTTPTransport(uds=path)
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        return [(await client.get("http://localhost/")).json() for _ in range(n)]


@pytest.mark.parametrize("mode", ["integrated", "threaded"])
def test_uds_scope_has_no_client(tmp_path, mode):
    path = str(tmp_path / "app.sock")

    async def main():
        server = ASGIServer(scope_app, uds=path, lifespan="off", mode=mode)
        await server.start()
        try:
            return await get_over(path, 2), server.unix_path
        finally:
            await server.stop()

    bodies, unix_path = asyncio.run(main())
    assert unix_path == path
    assert bodies == [{"client": None, "server": [path, None]}] * 2


def test_unix_fd_is_served(tmp_path):
    path = str(tmp_path / "fd.sock")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)
        sock.listen()

        async def main():
            server = ASGIServer(scope_app, fd=sock.fileno(), lifespan="off")
            await server.start()
            try:
                return await get_over(path)
            finally:
                await server.stop()

        assert asyncio.run(main()) == [{"client": None, "server": [path, None]}]


@pytest.mark.parametrize("mode", ["integrated", "threaded"])
def test_max_requests_asks_to_exit(mode):
    async def main():
        server = ASGIServer(scope_app, port=0, lifespan="off", mode=mode,
                            limit_max_requests=3)
        listener = await server.start()
        url = f"http://127.0.0.1:{listener.local_addr[1]}/"
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                for _ in range(2):
                    assert (await client.get(url)).status_code == 200
                assert not server.exit_requested.is_set()
                assert (await client.get(url)).status_code == 200
            await asyncio.wait_for(server.exit_requested.wait(), 10)
        finally:
            await server.stop()

    asyncio.run(main())
