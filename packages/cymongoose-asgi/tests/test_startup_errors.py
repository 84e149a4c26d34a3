"""What `ASGIServer.start` raises when it cannot start: a port in use, TLS files that
cannot be read, an ``fd`` that is not a listening socket, a ``uds`` path in use. The
app's lifespan startup has run by then, so its shutdown runs too."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest
from cymongoose.asgi import ASGIServer
from cymongoose.serving.listen import ListenError

pytestmark = pytest.mark.timeout(60)


def lifespan_app(events):
    async def app(scope, receive, send):
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            events.append(message["type"])
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    return app


@pytest.fixture
def taken_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_port_in_use_raises_listen_error_after_lifespan_shutdown(taken_port, caplog):
    events = []

    async def main():
        server = ASGIServer(lifespan_app(events), port=taken_port)
        with pytest.raises(ListenError) as info:
            await server.start()
        return info.value

    exc = asyncio.run(main())
    assert exc.errno == errno.EADDRINUSE and isinstance(exc, RuntimeError)
    assert f"http://127.0.0.1:{taken_port}" in str(exc)
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_missing_certificate_names_the_setting_before_startup(tmp_path):
    events = []

    async def main():
        server = ASGIServer(lifespan_app(events), ssl_certfile=str(tmp_path / "c.pem"),
                            ssl_keyfile=str(tmp_path / "k.pem"))
        with pytest.raises(FileNotFoundError, match=r"\(ssl_certfile\)"):
            await server.start("http://127.0.0.1:0")

    asyncio.run(main())
    assert events == []  # the app was not started for nothing


def test_uds_where_a_server_listens_raises_listen_error_after_lifespan_shutdown(tmp_path):
    path = str(tmp_path / "s.sock")
    events = []
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(path)
        live.listen()

        async def main():
            server = ASGIServer(lifespan_app(events), uds=path)
            with pytest.raises(ListenError, match="a server is listening") as info:
                await server.start()
            assert info.value.errno == errno.EADDRINUSE

        asyncio.run(main())
    assert events == ["lifespan.startup", "lifespan.shutdown"]
