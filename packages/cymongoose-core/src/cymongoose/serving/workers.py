"""``--workers N``: one listening socket, N server processes sharing it.

The parent binds the socket once, then starts N child processes (fresh interpreters, not
forks, so no thread or event-loop state is inherited) that each serve on the inherited
descriptor (``--fd``, i.e. ``ServerConfig.fd``); the kernel spreads accepted connections
over them. The parent forwards SIGINT/SIGTERM to the children, restarts a child that dies
while not stopping, and exits once every child has exited after a stop. A second signal
during a stop kills the children at once. gunicorn does the same with more features:
``gunicorn -k cymongoose.asgi.workers.ASGIWorker`` runs the same servers under it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from .config import ServerConfig
from .listen import ListenError, check_listen_fd

logger = logging.getLogger("cymongoose.workers")

# A child exiting with this status could not start at all (bad flags, app import error,
# TLS files; see cli.run_cli): restarting it would fail the same way, so the parent stops
# everything instead. argparse exits with it too.
EXIT_STARTUP_FAILED = 2
# More restarts than this within RESTART_WINDOW_S means a crash loop: give up.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 10.0
# After a stop, children get graceful_timeout_s plus this much before SIGKILL.
KILL_MARGIN_S = 5.0
LISTEN_BACKLOG = 2048


def bind_socket(config: ServerConfig) -> socket.socket:
    """Bind and listen on ``config.host``:``config.port`` with SO_REUSEADDR.

    With ``config.fd`` set, that already listening socket is used instead (checked by
    :func:`~cymongoose.serving.listen.check_listen_fd`). The socket is non-blocking (as the
    event loop needs) and inheritable by child processes. Raises
    :class:`~cymongoose.serving.listen.ListenError` (an OSError with the errno, naming the
    address) when the address cannot be bound, the errors of ``check_listen_fd`` for a
    bad ``fd``.
    """
    if config.fd is not None:
        check_listen_fd(config.fd)
        sock = socket.socket(fileno=config.fd)
        sock.setblocking(False)
        sock.set_inheritable(True)
        return sock
    try:
        infos = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ListenError(exc.errno, exc.strerror, config.url) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(exc.errno, exc.strerror, config.url) from exc
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the parent dies (Linux prctl)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        try:
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
        except (OSError, AttributeError):
            pass


class Supervisor:
    """Run ``config.workers`` server processes on one socket bound here.

    ``child_command(fd)`` returns the argv of one worker process serving on ``fd``
    (the CLI re-runs itself with ``--fd fd --workers 1``). :meth:`run` blocks until the
    children have stopped and returns the exit status for the parent.
    """

    def __init__(self, config: ServerConfig, child_command: Callable[[int], list[str]]) -> None:
        self.config = config
        self.child_command = child_command
        self.children: list[subprocess.Popen[bytes]] = []
        self._stop_signal: int | None = None
        self._signals_seen = 0
        self._restarts: list[float] = []

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals_seen += 1
        if self._stop_signal is None:
            self._stop_signal = signum

    def _spawn(self, fd: int) -> subprocess.Popen[bytes]:
        # Own process group: a terminal's Ctrl+C reaches only the parent, which forwards it
        # once (a child getting two SIGINTs would skip its graceful shutdown).
        group: dict[str, Any] = (
            {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
        )
        child = subprocess.Popen(self.child_command(fd), pass_fds=(fd,),
                                 preexec_fn=_die_with_parent, **group)
        logger.info("Started worker process [%d]", child.pid)
        return child

    def run(self) -> int:
        """Bind, start the workers, supervise them; returns 0 after a clean stop, 1 if
        workers keep crashing or one cannot start (exits with EXIT_STARTUP_FAILED).

        Raises what :func:`bind_socket` raises (ListenError, a bad ``fd``) before any
        worker is started.
        """
        sock = bind_socket(self.config)
        host, port = sock.getsockname()[:2]
        shown = ServerConfig(host=host, port=port, ssl_certfile=self.config.ssl_certfile,
                             ssl_keyfile=self.config.ssl_keyfile)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        status = 0
        try:
            logger.info("cymongoose running on %s (Press CTRL+C to quit)", shown.url)
            logger.info("Started parent process [%d]", os.getpid())
            fd = sock.fileno()
            self.children = [self._spawn(fd) for _ in range(self.config.workers)]
            status = self._supervise(fd)
            self._stop_children()
        finally:
            for child in self.children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            sock.close()
        logger.info("Stopping parent process [%d]", os.getpid())
        return status

    def _supervise(self, fd: int) -> int:
        """Restart children that die until a signal arrives; returns the exit status."""
        while self._stop_signal is None:
            time.sleep(0.1)
            for i, child in enumerate(self.children):
                code = child.poll()
                if code is None or self._stop_signal is not None:
                    continue
                if code == EXIT_STARTUP_FAILED:
                    # The worker has said why on stderr; the others would fail the same way.
                    logger.error("worker [%d] could not start (exit status %d); stopping",
                                 child.pid, code)
                    return 1
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S]
                if len(self._restarts) >= MAX_RESTARTS:
                    logger.error("workers keep dying (%d restarts in %.0f s); stopping",
                                 len(self._restarts), RESTART_WINDOW_S)
                    return 1
                self._restarts.append(now)
                logger.warning("worker [%d] died (exit status %d); restarting",
                               child.pid, code)
                self.children[i] = self._spawn(fd)
        return 0

    def _stop_children(self) -> None:
        """Forward the stop signal (SIGTERM if none) and wait; SIGKILL on a second signal or
        after ``graceful_timeout_s`` + KILL_MARGIN_S."""
        sig = self._stop_signal or signal.SIGTERM
        seen = self._signals_seen
        for child in self.children:
            if child.poll() is None:
                logger.info("Stopping worker process [%d]", child.pid)
                child.send_signal(sig)
        deadline = time.monotonic() + self.config.graceful_timeout_s + KILL_MARGIN_S
        while any(child.poll() is None for child in self.children):
            if self._signals_seen > seen or time.monotonic() > deadline:
                for child in self.children:
                    if child.poll() is None:
                        logger.warning("Killing worker process [%d]", child.pid)
                        child.kill()
            time.sleep(0.05)
