"""``--workers N``: the supervisor, one listening socket and N server processes on it.

Words, as in uvicorn: ``--workers`` (``ServerConfig.workers``) counts *server processes*
(uvicorn's "worker processes", the words of the log lines); the *supervisor* is the parent
process that starts and watches them; a WSGI server's *app threads* (``--threads``) run
inside each process; gunicorn's *worker class* (``-k cymongoose.asgi.workers.ASGIWorker``,
:mod:`cymongoose.serving.gunicorn`) is gunicorn's way to run the same servers.

The supervisor binds the socket once, then starts N server processes (fresh interpreters,
not forks, so no thread or event-loop state is inherited) that each serve on the inherited
descriptor (``--fd``, i.e. ``ServerConfig.fd``); the kernel spreads accepted connections
over them. It forwards SIGINT/SIGTERM to them, starts a new one when one dies while not
stopping, and exits once every process has exited after a stop. A second signal during a
stop kills them at once. SIGHUP (graceful reload), SIGTTIN and SIGTTOU (one process more
or fewer) are handled by :class:`~cymongoose.serving.control.ControlSignals`.
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
from .control import ControlSignals
from .lifecycle import running
from .listen import READY_FD_ENV, ListenError, check_listen_fd

logger = logging.getLogger("cymongoose.supervisor")

# A server process exiting with this status could not start at all (bad flags, app
# import error, TLS files; see cli.run_cli): starting it again would fail the same way, so
# the supervisor stops everything instead. argparse exits with it too.
EXIT_STARTUP_FAILED = 2
# More restarts than this within RESTART_WINDOW_S means a crash loop: give up.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 10.0
# After a stop, server processes get graceful_timeout_s plus this much before SIGKILL.
KILL_MARGIN_S = 5.0


def bind_socket(config: ServerConfig) -> socket.socket:
    """Bind and listen on ``config.host``:``config.port`` with SO_REUSEADDR and
    ``config.backlog``.

    With ``config.fd`` set, that already listening socket is used instead (checked by
    :func:`~cymongoose.serving.listen.check_listen_fd`). The socket is non-blocking (as the
    event loop needs) and inheritable by the server processes. Raises
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
        sock.listen(config.backlog)
    except OSError as exc:
        sock.close()
        raise ListenError(exc.errno, exc.strerror, config.url) from exc
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _die_with_supervisor() -> None:
    """In a server process before exec: get SIGTERM if the supervisor dies (Linux prctl)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        try:
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
        except (OSError, AttributeError):
            pass


def start_process(argv: list[str], pass_fds: tuple[int, ...],
                  env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server process: ``argv`` with the descriptors ``pass_fds`` (and ``env``,
    default ours), in a process group of its own, SIGTERMed if we die (Linux)."""
    # Own process group: a terminal's Ctrl+C reaches only the supervisor, which
    # forwards it once (a server process getting two SIGINTs would skip its graceful
    # shutdown).
    group: dict[str, Any] = (
        {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
    )
    return subprocess.Popen(argv, pass_fds=pass_fds, env=env,
                            preexec_fn=_die_with_supervisor, **group)


class Supervisor(ControlSignals):
    """Run ``config.workers`` server processes on one socket bound here.

    ``process_argv(fd)`` returns the argv of one server process serving on ``fd``
    (the CLI re-runs itself with ``--fd fd --workers 1``). :meth:`run` blocks until the
    server processes have stopped and returns the supervisor's exit status. SIGHUP,
    SIGTTIN and SIGTTOU change the processes while it runs (:class:`ControlSignals`).
    """

    kill_margin_s = KILL_MARGIN_S

    def __init__(self, config: ServerConfig, process_argv: Callable[[int], list[str]]) -> None:
        self.config = config
        self.process_argv = process_argv
        self.processes: list[subprocess.Popen[bytes]] = []
        self._stop_signal: int | None = None
        self._signals_seen = 0
        self._restarts: list[float] = []
        self._init_control()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals_seen += 1
        if self._stop_signal is None:
            self._stop_signal = signum

    def _spawn(self, fd: int, ready_fd: int | None = None) -> subprocess.Popen[bytes]:
        """Start one server process on ``fd``; with ``ready_fd`` (a pipe's write end) it
        also gets that and $CYMONGOOSE_READY_FD, and writes there once it listens."""
        if ready_fd is None:
            process = start_process(self.process_argv(fd), (fd,))
        else:
            process = start_process(self.process_argv(fd), (fd, ready_fd),
                                    {**os.environ, READY_FD_ENV: str(ready_fd)})
        # Debug only: the process itself logs "Started server process [pid]".
        logger.debug("Started worker process [%d]", process.pid)
        return process

    def run(self) -> int:
        """Bind, start the server processes, watch them; returns 0 after a clean stop, 1
        if they keep crashing or one cannot start (exits with EXIT_STARTUP_FAILED).

        Raises what :func:`bind_socket` raises (ListenError, a bad ``fd``) before any
        server process is started.
        """
        sock = bind_socket(self.config)
        host, port = sock.getsockname()[:2]
        shown = ServerConfig(host=host, port=port, ssl_certfile=self.config.ssl_certfile,
                             ssl_keyfile=self.config.ssl_keyfile)
        previous: dict[int, Any] = {sig: signal.signal(sig, self._on_signal)
                                    for sig in (signal.SIGINT, signal.SIGTERM)}
        previous.update(self._install_control_signals())
        status = 0
        try:
            running(logger, shown.url)
            logger.info("Started parent process [%d]", os.getpid())
            fd = sock.fileno()
            self.processes = [self._spawn(fd) for _ in range(self.config.workers)]
            status = self._supervise(fd)
            self._end_control()
            self._stop_processes()
        finally:
            for process in self._all_processes():
                if process.poll() is None:
                    process.kill()
                    process.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            sock.close()
        logger.info("Stopping parent process [%d]", os.getpid())
        return status

    def _supervise(self, fd: int) -> int:
        """Start a new server process for each that dies, until a signal arrives; returns the
        exit status."""
        while self._stop_signal is None:
            time.sleep(0.1)
            self._control_step(fd)
            for i, process in enumerate(self.processes):
                code = process.poll()
                if code is None or self._stop_signal is not None:
                    continue
                if code == EXIT_STARTUP_FAILED:
                    # The process has said why on stderr; the others would fail the same way.
                    logger.error("worker [%d] could not start (exit status %d); stopping",
                                 process.pid, code)
                    return 1
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S]
                if len(self._restarts) >= MAX_RESTARTS:
                    logger.error("workers keep dying (%d restarts in %.0f s); stopping",
                                 len(self._restarts), RESTART_WINDOW_S)
                    return 1
                self._restarts.append(now)
                logger.warning("worker [%d] died (exit status %d); restarting",
                               process.pid, code)
                self.processes[i] = self._spawn(fd)
        return 0

    def _stop_processes(self) -> None:
        """Forward the stop signal (SIGTERM if none) and wait; SIGKILL on a second signal or
        after ``graceful_timeout_s`` + KILL_MARGIN_S."""
        sig = self._stop_signal or signal.SIGTERM
        seen = self._signals_seen
        for process in self.processes:
            if process.poll() is None:
                logger.info("Stopping worker process [%d]", process.pid)
                process.send_signal(sig)
        deadline = time.monotonic() + self.config.graceful_timeout_s + KILL_MARGIN_S
        # With those stopping after a reload or SIGTTOU, already signalled.
        while any(process.poll() is None for process in self._all_processes()):
            if self._signals_seen > seen or time.monotonic() > deadline:
                for process in self._all_processes():
                    if process.poll() is None:
                        logger.warning("Killing worker process [%d]", process.pid)
                        process.kill()
            time.sleep(0.05)
