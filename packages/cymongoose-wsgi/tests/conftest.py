from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from cymongoose.wsgi import WSGIServer

#: Every server test runs in both modes: the app in a thread pool, and on the poll thread.
WSGI_MODES = ("pooled", "inline")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pooled_only(reason): the test needs an app that blocks (waits on another thread), "
        "which only the pooled mode serves; skipped in inline mode (threads=0)",
    )


@pytest.fixture(scope="module", params=WSGI_MODES, autouse=True)
def wsgi_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """Mode "pooled" (pool size as the test asks) or "inline" (every WSGIServer: threads=0)."""
    if request.param == "pooled":
        yield "pooled"
        return
    original = WSGIServer.__init__

    def inline_init(self, app, workers=None, *args, threads=None, **kwargs):
        original(self, app, None, *args, threads=0, **kwargs)  # the pool size asked is ignored

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(WSGIServer, "__init__", inline_init)
        yield "inline"


@pytest.fixture(autouse=True)
def _skip_pooled_only(request: pytest.FixtureRequest, wsgi_mode: str) -> None:
    marker = request.node.get_closest_marker("pooled_only")
    if marker is not None and wsgi_mode == "inline":
        pytest.skip(f"pooled mode only: {marker.args[0] if marker.args else marker.kwargs}")


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
