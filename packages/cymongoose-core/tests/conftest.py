"""Fixtures: a Manager whose poll loop runs in a background thread."""

from __future__ import annotations

import logging
import threading

import pytest
from cymongoose import Manager


class LoopServer:
    """A Manager listening on an ephemeral loopback port, polled by a thread.

    ``errors`` collects every exception routed to the manager's error_handler.
    ``http_server``: keyword arguments for ``Connection.configure_http_server`` on the
    listener (the core's HTTP/1.1 server protocol), applied before polling starts.
    ``fd``: listen on this already listening socket (``Manager.listen(fd=...)``).
    ``consume_reads``: ``Connection.consume_reads`` of the listener (raw TCP/UDP).
    """

    def __init__(
        self,
        handler,
        url="http://127.0.0.1:0",
        *,
        enable_wakeup=False,
        http=None,
        http_server=None,
        fd=None,
        consume_reads=False,
    ):
        self.errors: list[BaseException] = []
        self.mgr = Manager(enable_wakeup=enable_wakeup, error_handler=self.errors.append)
        if fd is None:
            self.listener = self.mgr.listen(url, handler, http=http)
        else:
            self.listener = self.mgr.listen(url, handler, http=http, fd=fd)
        if http_server is not None:
            self.listener.configure_http_server(**http_server)
        self.listener.consume_reads = consume_reads
        self.port = self.listener.local_addr[1]
        assert self.port != 0
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.loop_exc: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mg-poll", daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while not self._stop.is_set():
                self.mgr.poll(10)
        except BaseException as exc:  # surfaced at teardown
            self.loop_exc = exc

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "poll thread did not stop"
        self.mgr.close()
        if self.loop_exc is not None:
            raise self.loop_exc


@pytest.fixture
def serve():
    """Factory: ``serve(handler, url=..., enable_wakeup=..., http=..., http_server=...,
    fd=..., consume_reads=...) -> LoopServer``."""
    servers: list[LoopServer] = []

    def start(handler, url="http://127.0.0.1:0", **kw):
        srv = LoopServer(handler, url, **kw)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture
def restore_loggers():
    """Put the ``cymongoose`` and access loggers back as they were (the serving tests'
    logging set-up changes their handlers, level, propagation and disabled flag)."""
    names = ["cymongoose", "cymongoose.access"]
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level,
                 logging.getLogger(n).propagate, logging.getLogger(n).disabled) for n in names}
    yield
    for n, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(n)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled
