"""SIGHUP, SIGTTIN and SIGTTOU for the ``--workers`` supervisor, as gunicorn has them.

- **SIGHUP**, graceful reload: as many new server processes as are running start (fresh
  interpreters, so the app and its modules are imported anew); once every new one accepts
  connections (its watchdog says so on its ``--supervisor-pipe``, which the supervisor
  reads: :func:`~cymongoose.serving.supervisor.process_watchdog`), the old ones get
  SIGTERM and finish their requests while the new ones accept. A new one that exits
  first, or is not listening within READY_TIMEOUT_S, abandons the reload: the new ones
  are stopped and the old ones go on serving.
- **SIGTTIN**: one server process more.
- **SIGTTOU**: one fewer (the oldest gets SIGTERM and stops gracefully), never fewer
  than one.

The handlers only queue the signal; the supervisor's loop acts on it
(:meth:`ControlSignals._control_step`). Signals that arrive during a reload wait until it
is over. A server process stopping after a reload or SIGTTOU is not replaced, and is
waited for (killed after ``graceful_timeout_s`` + ``kill_margin_s``) like the others.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from .config import ServerConfig

logger = logging.getLogger("cymongoose.supervisor")

CONTROL_SIGNALS = (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)
# New server processes of a reload that do not listen by then are given up on.
READY_TIMEOUT_S = 60.0


class ControlSignals:
    """The SIGHUP/SIGTTIN/SIGTTOU half of :class:`~cymongoose.serving.supervisor.Supervisor`
    (mixed into it): acts on ``self.processes`` with ``self._spawn(fd)``; a process is
    listening once its pid is in ``self._ready`` (the supervisor reads the pipes)."""

    config: ServerConfig
    processes: list[subprocess.Popen[bytes]]
    _spawn: Callable[[int], subprocess.Popen[bytes]]
    _ready: set[int]  # pids of the server processes that said they accept connections
    kill_margin_s: float  # a stopping process is killed after graceful_timeout_s + this

    def _init_control(self) -> None:
        self._control_queue: list[int] = []
        # Server processes stopping for good (after a reload or SIGTTOU) -> kill deadline.
        self._retiring: dict[subprocess.Popen[bytes], float] = {}
        self._starting: list[subprocess.Popen[bytes]] = []  # a reload's new processes
        self._reload_deadline = 0.0

    def _install_control_signals(self) -> dict[int, Any]:
        """Install the handlers; returns the previous ones, for ``signal.signal``."""
        return {sig: signal.signal(sig, self._on_control_signal) for sig in CONTROL_SIGNALS}

    def _on_control_signal(self, signum: int, frame: FrameType | None) -> None:
        self._control_queue.append(signum)

    def _all_processes(self) -> list[subprocess.Popen[bytes]]:
        """Every server process still to wait for: serving, starting and stopping ones."""
        return [*self.processes, *self._starting, *self._retiring]

    def _control_step(self, fd: int) -> None:
        """Called by the supervisor's loop: reap stopping processes, move a reload on, then
        act on the queued signals (each logged)."""
        self._reap_retiring()
        if self._starting:
            self._check_reload()
        while self._control_queue and not self._starting:
            signum = self._control_queue.pop(0)
            if signum == signal.SIGHUP:
                self._start_reload(fd)
            elif signum == signal.SIGTTIN:
                self._add_process(fd)
            else:
                self._remove_process()

    def _end_control(self) -> None:
        """On stop: a reload's new processes become ordinary ones, to be stopped with them."""
        self.processes.extend(self._starting)
        self._starting = []

    def _process_gone(self, pid: int) -> None:
        """Server process ``pid``, stopped here, has exited (the Supervisor frees what it
        kept for it)."""

    def _retire(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            logger.info("Stopping worker process [%d]", process.pid)
            process.terminate()
        self._retiring[process] = (time.monotonic() + self.config.graceful_timeout_s
                                   + self.kill_margin_s)

    def _reap_retiring(self) -> None:
        now = time.monotonic()
        for process, deadline in list(self._retiring.items()):
            code = process.poll()
            if code is not None:
                logger.info("Worker process [%d] stopped (exit status %d)", process.pid, code)
                del self._retiring[process]
                self._process_gone(process.pid)
            elif now > deadline:
                logger.warning("Killing worker process [%d]", process.pid)
                process.kill()

    def _add_process(self, fd: int) -> None:
        logger.info("Received SIGTTIN: adding a worker process (now %d)",
                    len(self.processes) + 1)
        self.processes.append(self._spawn(fd))

    def _remove_process(self) -> None:
        if len(self.processes) <= 1:
            logger.info("Received SIGTTOU: one worker process left; keeping it")
            return
        process = self.processes.pop(0)  # the oldest
        logger.info("Received SIGTTOU: removing worker process [%d] (now %d)",
                    process.pid, len(self.processes))
        self._retire(process)

    def _start_reload(self, fd: int) -> None:
        count = len(self.processes)
        logger.info("Received SIGHUP: reloading: starting %d new worker process(es)", count)
        for _ in range(count):
            self._starting.append(self._spawn(fd))
        self._reload_deadline = time.monotonic() + READY_TIMEOUT_S

    def _check_reload(self) -> None:
        """All new processes listen: retire the old ones. One has exited, or the deadline
        passed: retire the new ones instead."""
        for new in self._starting:
            code = new.poll()
            if new.pid not in self._ready and code is not None:
                self._abandon_reload(f"new worker process [{new.pid}] exited "
                                     f"(exit status {code}) before it listened")
                return
        if all(new.pid in self._ready for new in self._starting):
            old, self.processes = self.processes, self._starting
            self._starting = []
            logger.info("Reload: new worker processes %s listening; stopping the old ones",
                        [p.pid for p in self.processes])
            for process in old:
                self._retire(process)
        elif time.monotonic() > self._reload_deadline:
            self._abandon_reload(f"new worker processes not listening after "
                                 f"{READY_TIMEOUT_S:.0f} s")

    def _abandon_reload(self, why: str) -> None:
        logger.error("Reload failed: %s; the old worker processes go on serving", why)
        starting, self._starting = self._starting, []
        for new in starting:
            self._retire(new)
