from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from cymongoose.wsgi import WSGIServer


@pytest.fixture
def serve_app() -> Iterator[Callable[..., str]]:
    """serve_app(app, **server_kwargs) -> base URL; the server runs in a thread."""
    running: list[tuple[WSGIServer, threading.Thread]] = []

    def start(app, **kwargs) -> str:
        server = WSGIServer(app, **kwargs)
        listener = server.listen("http://127.0.0.1:0")
        port = listener.local_addr[1]
        thread = threading.Thread(target=server.run, kwargs={"poll_ms": 20}, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join(timeout=10)
        assert not thread.is_alive(), "server did not stop"
