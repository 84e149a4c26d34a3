"""Run an `ASGIServer` in a background thread, for tests with blocking clients.

with ServerThread(app) as server:
    httpx.get(server.url + "/")
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from .server import ASGIServer


class ServerThread:
    """Serve ``app`` on its own asyncio loop in a daemon thread.

    Args:
        app: the ASGI application.
        url: where to listen; port 0 (the default) picks a free port.
        start_timeout_s: how long ``__enter__`` waits for startup before TimeoutError.
        **kwargs: passed to `ASGIServer`.

    Attributes (after ``__enter__``): ``url`` (``http://host:port``), ``port``, ``server``.
    """

    def __init__(
        self,
        app: Any,
        url: str = "http://127.0.0.1:0",
        *,
        start_timeout_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        self.server = ASGIServer(app, **kwargs)
        self._listen_url = url
        self._start_timeout_s = start_timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="asgi-test-server", daemon=True
        )
        self.url = ""
        self.port = 0

    def __enter__(self) -> ServerThread:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.server.start(self._listen_url), self._loop)
        try:
            conn = future.result(self._start_timeout_s)
        except BaseException:
            self._shutdown_loop()
            raise
        host, self.port = conn.local_addr[0], conn.local_addr[1]
        self.url = f"http://{host}:{self.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        future = asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop)
        try:
            future.result(30)
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
