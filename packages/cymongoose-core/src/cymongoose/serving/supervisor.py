"""``--workers N``: the supervisor, one listening socket and N server processes on it.

Words, as in uvicorn: ``--workers`` (``ServerConfig.workers``) counts *server processes*
(uvicorn's "worker processes", the words of the log lines); the *supervisor* is the parent
process that starts and watches them; a WSGI server's *app threads* (``--threads``) run
inside each process; gunicorn's *worker class* (``-k cymongoose.asgi.workers.ASGIWorker``,
:mod:`cymongoose.serving.gunicorn`) is gunicorn's way to run the same servers.

The supervisor binds the socket once (TCP, or ``--uds``), then starts N server processes
(fresh interpreters, not forks, so no thread or event-loop state is inherited) that each
serve on the inherited descriptor (``--fd``, i.e. ``ServerConfig.fd``); the kernel spreads
accepted connections over them. It forwards SIGINT/SIGTERM to them, starts a new one when
one dies while not stopping, and exits once every process has exited after a stop. A
second signal during a stop kills them at once. SIGHUP (graceful reload), SIGTTIN and
SIGTTOU (one process more or fewer) are handled by
:class:`~cymongoose.serving.control.ControlSignals`.

Every server process gets the write end of a pipe of its own (``--supervisor-pipe``), on
which its :func:`process_watchdog` says when it accepts connections (:data:`MSG_READY`)
and when it has served its ``--limit-max-requests`` (:data:`MSG_RETIRE`; it keeps
serving then). The supervisor reads every pipe at each step of its loop
(:meth:`Supervisor._read_pipes`), the one place that does. A SIGHUP reload waits for the
new processes' MSG_READY. Max-requests recycling starts a replacement on MSG_RETIRE,
waits for that one's MSG_READY, then SIGTERMs the old one, which stops gracefully: no
moment without a process accepting, and the shared socket keeps the queued connections.
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
from .lifecycle import running, socket_url
from .listen import ListenError, bind_unix, check_listen_fd
from .watchdog import Watchdog, max_requests_with_jitter

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
# What a server process writes on its --supervisor-pipe (one byte each).
MSG_READY = b"R"
MSG_RETIRE = b"X"


def bind_socket(config: ServerConfig) -> socket.socket:
    """Bind and listen on ``config.host``:``config.port`` with SO_REUSEADDR and
    ``config.backlog``.

    With ``config.fd`` set, that already listening socket is used instead (checked by
    :func:`~cymongoose.serving.listen.check_listen_fd`); with ``config.uds``, that Unix
    socket is bound (:func:`~cymongoose.serving.listen.bind_unix`). The socket is
    non-blocking (as the event loop needs) and inheritable by the server processes. Raises
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
    if config.uds is not None:
        return bind_unix(config.uds, backlog=config.backlog)
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


def process_watchdog(config: ServerConfig, pipe_fd: int) -> Watchdog:
    """The :class:`~cymongoose.serving.watchdog.Watchdog` of a server process the
    supervisor started (``--supervisor-pipe pipe_fd``): it writes :data:`MSG_READY` on
    ``pipe_fd`` once the server accepts, and :data:`MSG_RETIRE` once it has received
    ``config.limit_max_requests`` (plus jitter) requests, then keeps serving until the
    supervisor's SIGTERM. Raises OSError when ``pipe_fd`` is not open."""
    os.set_inheritable(pipe_fd, False)  # not for the app's own child processes

    def say(message: bytes) -> None:
        try:
            os.write(pipe_fd, message)
        except OSError:
            pass  # the supervisor is gone; its death signal stops this process

    return Watchdog(max_requests=max_requests_with_jitter(config),
                    on_ready=lambda: say(MSG_READY), on_retire=lambda: say(MSG_RETIRE))


class Supervisor(ControlSignals):
    """Run ``config.workers`` server processes on one socket bound here.

    ``process_argv(fd)`` returns the argv of one server process serving on ``fd``
    (the CLI re-runs itself with ``--fd fd --workers 1``); the supervisor appends
    ``--supervisor-pipe N``, the pipe of :func:`process_watchdog`: each process must write
    :data:`MSG_READY` there once it accepts (the CLI's do, through that watchdog), or a
    SIGHUP reload and max-requests recycling wait for it in vain. :meth:`run` blocks until
    the server processes have stopped and returns the supervisor's exit status. SIGHUP,
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
        # What the pipes say (see _read_pipes): pid -> read end of its pipe; pids that said
        # MSG_READY; pids that said MSG_RETIRE, not yet acted on. Max-requests recycling
        # (see _recycle): retiring pid -> pid of its replacement; retired pids (SIGTERMed).
        self._pipes: dict[int, int] = {}
        self._ready: set[int] = set()
        self._retire_asked: set[int] = set()
        self._successors: dict[int, int] = {}
        self._retired: set[int] = set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals_seen += 1
        if self._stop_signal is None:
            self._stop_signal = signum

    def _spawn(self, fd: int) -> subprocess.Popen[bytes]:
        """Start one server process on ``fd`` with the write end of its own pipe
        (``--supervisor-pipe``, see :func:`process_watchdog`); the read end, kept in
        ``self._pipes``, is closed once by :meth:`_process_gone`."""
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        argv = [*self.process_argv(fd), "--supervisor-pipe", str(write_end)]
        try:
            process = start_process(argv, (fd, write_end))
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._pipes[process.pid] = read_end
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
        where = socket_url(sock, "https" if self.config.is_ssl else "http")
        previous: dict[int, Any] = {sig: signal.signal(sig, self._on_signal)
                                    for sig in (signal.SIGINT, signal.SIGTERM)}
        previous.update(self._install_control_signals())
        status = 0
        try:
            running(logger, where)
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
            for read_end in self._pipes.values():
                os.close(read_end)
            self._pipes.clear()
            sock.close()
        logger.info("Stopping parent process [%d]", os.getpid())
        return status

    def _supervise(self, fd: int) -> int:
        """Start a new server process for each that dies, until a signal arrives; returns the
        exit status."""
        while self._stop_signal is None:
            time.sleep(0.1)
            self._read_pipes()
            self._control_step(fd)
            self._recycle(fd)
            for process in list(self.processes):
                code = process.poll()
                if code is None or self._stop_signal is not None:
                    continue
                if self._forget_retired(process):
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
                replacement = self._spawn(fd)
                self.processes[self.processes.index(process)] = replacement
                self._replaced(process.pid, replacement.pid)
        return 0

    # -- the pipes, and max-requests recycling ---------------------------------------------

    def _read_pipes(self) -> None:
        """Read what every server process (serving, starting or stopping) wrote on its pipe
        since the last step: MSG_READY adds its pid to ``_ready`` (a reload and
        :meth:`_recycle` wait for it), MSG_RETIRE to ``_retire_asked``."""
        for process in self._all_processes():
            read_end = self._pipes.get(process.pid)
            if read_end is None:
                continue
            try:
                said = os.read(read_end, 256)  # one byte per message, two at most
            except BlockingIOError:
                continue
            if MSG_READY in said:
                self._ready.add(process.pid)
            if MSG_RETIRE in said:
                self._retire_asked.add(process.pid)

    def _recycle(self, fd: int) -> None:
        """Start a replacement for each server process that has served its max requests
        (MSG_RETIRE), and SIGTERM the retiring process once its replacement accepts
        connections (MSG_READY): the socket always has a process accepting on it. (A new
        process of a reload that asks waits until the reload makes it a serving one.)"""
        for process in list(self.processes):
            if process.pid in self._retire_asked:
                self._retire_asked.discard(process.pid)
                logger.info("Worker process [%d] served its max requests; starting its "
                            "replacement", process.pid)
                replacement = self._spawn(fd)
                self.processes.append(replacement)
                self._successors[process.pid] = replacement.pid
        for old_pid, new_pid in list(self._successors.items()):
            if new_pid not in self._ready:
                continue
            del self._successors[old_pid]
            self._retired.add(old_pid)
            for process in self.processes:
                if process.pid == old_pid and process.poll() is None:
                    logger.info("Stopping worker process [%d] (replaced by [%d])",
                                old_pid, new_pid)
                    process.send_signal(signal.SIGTERM)

    def _forget_retired(self, process: subprocess.Popen[bytes]) -> bool:
        """``process`` has exited: if it was retired (or retiring, its replacement on the
        way), drop it and return True; False for a death to handle."""
        if process.pid not in self._retired and process.pid not in self._successors:
            return False
        self.processes.remove(process)
        self._process_gone(process.pid)
        return True

    def _process_gone(self, pid: int) -> None:
        """Server process ``pid`` has exited (retired, died, or stopped by SIGHUP or
        SIGTTOU): close its pipe (once: the pid is forgotten) and forget what it said."""
        read_end = self._pipes.pop(pid, None)
        if read_end is not None:
            os.close(read_end)
        self._ready.discard(pid)
        self._retire_asked.discard(pid)
        self._retired.discard(pid)
        self._successors.pop(pid, None)

    def _replaced(self, dead_pid: int, new_pid: int) -> None:
        """Server process ``dead_pid`` died and ``new_pid`` took its place, also as the
        replacement a retiring process waits for."""
        self._process_gone(dead_pid)
        for old_pid, waited in self._successors.items():
            if waited == dead_pid:
                self._successors[old_pid] = new_pid

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
