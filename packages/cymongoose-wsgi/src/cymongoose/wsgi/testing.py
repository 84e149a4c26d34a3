"""Run a `WSGIServer` in a background thread, for tests with blocking clients.

with ServerThread(app) as server:
    httpx.get(server.url + "/")
"""

from __future__ import annotations

import threading
from typing import Any

from .server import WSGIServer


class ServerThread:
    """Serve ``app`` with a :class:`WSGIServer` whose poll loop runs in a daemon thread.

    Args:
        app: the WSGI application.
        url: where to listen; port 0 (the default) picks a free port. With ``ssl_certfile``
            and ``ssl_keyfile`` the server speaks TLS and ``url`` is ``https://...``.
        poll_ms: the poll loop's wait per iteration (milliseconds).
        stop_timeout_s: how long ``__exit__`` waits for the server thread; it raises
            RuntimeError if the thread is still running after that.
        **kwargs: passed to :class:`WSGIServer` (``workers``, ``config`` fields, ...).

    Attributes (after ``__enter__``): ``url`` (``http(s)://host:port``), ``port``, ``server``.
    """

    def __init__(
        self,
        app: Any,
        url: str = "http://127.0.0.1:0",
        *,
        poll_ms: int = 20,
        stop_timeout_s: float = 60.0,
        **kwargs: Any,
    ) -> None:
        self.server = WSGIServer(app, **kwargs)
        self._listen_url = url
        self._poll_ms = poll_ms
        self._stop_timeout_s = stop_timeout_s
        self._thread = threading.Thread(
            target=self.server.run,
            kwargs={"poll_ms": poll_ms},
            name="wsgi-test-server",
            daemon=True,
        )
        self.url = ""
        self.port = 0

    def __enter__(self) -> ServerThread:
        try:
            conn = self.server.listen(self._listen_url)
        except BaseException:
            self.server.close()
            raise
        host, self.port = conn.local_addr[0], conn.local_addr[1]
        scheme = "https" if self.server.config.is_ssl else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Shut the server down gracefully and wait for its thread."""
        self.server.shutdown()
        self._thread.join(self._stop_timeout_s)
        if self._thread.is_alive():
            raise RuntimeError(f"the WSGI server did not stop within {self._stop_timeout_s} s")
