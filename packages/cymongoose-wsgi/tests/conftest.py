from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from cymongoose.wsgi import WSGIServer

#: Every test runs in both modes, as ``threads``: the app in a pool of 4 threads ("pooled"),
#: and on the poll thread (0, "inline").
WSGI_MODES = {"pooled": 4, "inline": 0}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pooled_only(reason): the test needs an app that blocks (waits on another thread), "
        "which only the pooled mode serves; skipped in inline mode (threads=0)",
    )


@pytest.fixture(scope="module", params=list(WSGI_MODES.values()),
                ids=list(WSGI_MODES), autouse=True)
def threads(request: pytest.FixtureRequest) -> int:
    """The pool size a test passes to the server: 4 (pooled) or 0 (inline, threads=0).

    A test that needs a pool of N threads passes ``workers=threads and N``: N in pooled
    mode, 0 in inline mode. Autouse: every test of a module runs once per mode.
    """
    return request.param


@pytest.fixture(autouse=True)
def _skip_pooled_only(request: pytest.FixtureRequest, threads: int) -> None:
    marker = request.node.get_closest_marker("pooled_only")
    if marker is not None and threads == 0:
        pytest.skip(f"pooled mode only: {marker.args[0] if marker.args else marker.kwargs}")


@pytest.fixture
def serve_app(threads: int) -> Iterator[Callable[..., str]]:
    """serve_app(app, **server_kwargs) -> base URL; the server runs in a thread, with the
    mode's ``threads`` unless the test gives ``workers`` or ``threads`` itself."""
    running: list[tuple[WSGIServer, threading.Thread]] = []

    def start(app, **kwargs) -> str:
        if "workers" not in kwargs and "threads" not in kwargs:
            kwargs["threads"] = threads
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
