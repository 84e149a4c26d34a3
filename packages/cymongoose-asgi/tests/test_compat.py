"""cymongoose 0.2.5 calls run unchanged: ``ASGIServer(app, error_handler=None)``,
``start(url=...)``, ``stop()``, ``serve(app, url=...)``, by position and by name. New
parameters (``config``, ``mode``, server options) are keyword-only."""

from __future__ import annotations

import asyncio
import inspect
import signal
import socket
import subprocess
import sys
import textwrap
import time

import httpx
import pytest
from cymongoose.asgi import ASGIServer, serve
from cymongoose.serving.config import ServerConfig

pytestmark = pytest.mark.timeout(60)

POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD


async def hello_app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello 0.2.5"})


def positional_names(func) -> list[str]:
    params = inspect.signature(func).parameters.values()
    return [p.name for p in params if p.kind == POSITIONAL]


def test_signatures_keep_the_0_2_5_positions():
    assert positional_names(ASGIServer) == ["app", "error_handler"]
    assert positional_names(ASGIServer.start) == ["self", "url"]
    assert positional_names(ASGIServer.stop) == ["self"]
    assert positional_names(serve) == ["app", "url"]
    params = inspect.signature(ASGIServer).parameters
    assert params["error_handler"].default is None
    for name in ("config", "mode"):
        assert params[name].kind == inspect.Parameter.KEYWORD_ONLY
    assert inspect.signature(serve).parameters["config"].kind == inspect.Parameter.KEYWORD_ONLY


async def start_get_stop(server: ASGIServer, by_name: bool) -> str:
    url = "http://127.0.0.1:0"
    conn = await (server.start(url=url) if by_name else server.start(url))
    try:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{conn.local_addr[1]}/")
        return r.text
    finally:
        await server.stop()


@pytest.mark.parametrize("by_name", [False, True], ids=["positional", "keyword"])
def test_server_start_stop(by_name):
    errors: list[BaseException] = []
    if by_name:
        server = ASGIServer(app=hello_app, error_handler=errors.append)
    else:
        server = ASGIServer(hello_app, errors.append)
    assert asyncio.run(start_get_stop(server, by_name)) == "hello 0.2.5"
    assert errors == []


def test_new_parameters_are_keyword_only():
    config = ServerConfig(lifespan="off")
    server = ASGIServer(hello_app, None, config=config, mode="threaded")
    assert server.config is config and server.mode == "threaded"
    with pytest.raises(TypeError):
        ASGIServer(hello_app, None, config)  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"error_handler must be callable .*config= by keyword"):
        ASGIServer(hello_app, config)  # type: ignore[arg-type]


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVE_SCRIPT = """
import sys
from cymongoose.asgi import serve

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})

url = sys.argv[1]
serve(app, url=url) if sys.argv[2] == "keyword" else serve(app, url)
"""


@pytest.mark.parametrize("style", ["positional", "keyword"])
def test_serve_url(style, unused_port):
    url = f"http://127.0.0.1:{unused_port}"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SERVE_SCRIPT), url, style],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30  # a liveness guard, not a timing check
        while True:
            try:
                assert httpx.get(url + "/", timeout=2).text == "served"
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "serve() never listened"
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
