"""``--reload``: restart the server whenever a watched file changes (for development).

The *reloader* (the process the command started) binds the socket once, so the port
stays open across restarts, and runs the server in a child process serving on it
(``--fd``, as a ``--workers`` process does). It watches ``--reload-dir`` directories
(default: the current one) with the ``watchfiles`` package, an optional dependency
(``pip install 'cymongoose-asgi[reload]'``). When files it watches
change it logs ``WatchFiles detected changes in 'app.py'. Reloading...``, stops the child
gracefully (SIGTERM, as a stop) and starts a fresh interpreter, which imports the app
anew. A child that cannot start (a syntax error in the app) prints its traceback and
exits; the reloader goes on watching and starts it again on the next change.
SIGINT/SIGTERM stop the child, then the reloader; a second one kills the child at once.

Which files count (:meth:`ReloadConfig.watches`), as in uvicorn: those matching an
include pattern (``*.py``, plus ``--reload-include``) unless they, or a directory between
them and the watched directory, match an exclude pattern (DEFAULT_EXCLUDES plus
``--reload-exclude``); a pattern given to ``--reload-include`` is no longer excluded, and a
file named outright by one (``--reload-include .env``) is never excluded by its name.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import PurePath
from types import FrameType, ModuleType
from typing import Any

from .config import ServerConfig
from .lifecycle import running, socket_url
from .supervisor import KILL_MARGIN_S, bind_socket, start_process

logger = logging.getLogger("cymongoose.reload")

DEFAULT_INCLUDES = ("*.py",)
#: Hidden files and directories (``.git``, ``.venv``, editors' ``.app.py.swp``), compiled
#: Python, vim swap files, and ``~`` backups.
DEFAULT_EXCLUDES = (".*", "*.py[cod]", "*.sw?", "~*", "*~")
# How often the reloader looks at its child while no file changes (watchfiles' timeout);
# also how long after the watcher is set up the first child starts.
CHILD_CHECK_MS = 100


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class ReloadConfig:
    """What ``--reload`` watches: absolute directories and the effective glob patterns.

    Build it with :meth:`from_flags`, which adds the defaults and checks the values.
    """

    dirs: tuple[str, ...]
    includes: tuple[str, ...] = DEFAULT_INCLUDES
    excludes: tuple[str, ...] = DEFAULT_EXCLUDES

    @classmethod
    def from_flags(cls, dirs: Sequence[str] | None = None,
                   includes: Sequence[str] | None = None,
                   excludes: Sequence[str] | None = None) -> ReloadConfig:
        """The config of ``--reload-dir`` (default: the current directory),
        ``--reload-include`` and ``--reload-exclude`` values (added to the defaults).

        Raises ValueError naming the flag for a directory that does not exist or a
        pattern that is empty; TypeError for values that are not str.
        """
        for flag, values in (("--reload-dir", dirs), ("--reload-include", includes),
                             ("--reload-exclude", excludes)):
            for value in values or ():
                if not isinstance(value, str):
                    raise TypeError(f"{flag} takes a str, got {value!r}")
                if not value.strip():
                    raise ValueError(f"{flag} must not be empty, got {value!r}")
        for path in dirs or ():
            if not os.path.isdir(path):
                raise ValueError(f"--reload-dir {path!r} is not a directory")
        include = _dedupe((*DEFAULT_INCLUDES, *(includes or ())))
        exclude = _dedupe(p for p in (*DEFAULT_EXCLUDES, *(excludes or ()))
                          if p not in include)
        watched = _dedupe(os.path.abspath(d) for d in (dirs or [os.getcwd()]))
        return cls(watched, include, exclude)

    def watches(self, path: str) -> bool:
        """Whether a change of the file ``path`` (absolute, under one of ``dirs``) means a
        reload; see the module docstring for the rules."""
        pure = PurePath(path)
        if not any(pure.match(pattern) for pattern in self.includes):
            return False
        roots = [d for d in self.dirs if pure.is_relative_to(d)]
        rel = pure.relative_to(max(roots, key=len)) if roots else PurePath(pure.name)
        for pattern in self.excludes:
            if any(fnmatch(part, pattern) for part in rel.parts[:-1]):
                return False  # an excluded directory
        if pure.name in self.includes:
            return True  # named outright
        return not any(rel.match(pattern) for pattern in self.excludes)


def import_watchfiles(prog: str) -> ModuleType:
    """``watchfiles``, or ImportError saying how to install it (``pip install
    'prog[reload]'``)."""
    try:
        import watchfiles
    except ImportError:
        raise ImportError(f"--reload needs the watchfiles package: "
                          f"pip install '{prog}[reload]'") from None
    module: ModuleType = watchfiles
    return module


def _shown(paths: Iterable[str]) -> str:
    """``'app.py', 'pkg/views.py'``: relative to the current directory when under it."""
    cwd = os.getcwd()
    shown = sorted(os.path.relpath(p, cwd) if PurePath(p).is_relative_to(cwd) else p
                   for p in paths)
    return ", ".join(repr(p) for p in shown)


class Reloader:
    """Serve ``process_argv(fd)`` in a child process, restarted when watched files change.

    ``config`` gives the socket (bound here by
    :func:`~cymongoose.serving.supervisor.bind_socket`) and ``graceful_timeout_s``;
    ``reload`` what is watched; ``prog`` names the command in the install hint. :meth:`run`
    blocks until SIGINT/SIGTERM and returns the exit status (0).
    """

    def __init__(self, config: ServerConfig, reload: ReloadConfig,
                 process_argv: Callable[[int], list[str]], prog: str) -> None:
        self.config = config
        self.reload = reload
        self.process_argv = process_argv
        self.prog = prog
        self.child: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._stop_signal: int | None = None
        self._signals_seen = 0
        self._child_reported = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals_seen += 1
        if self._stop_signal is None:
            self._stop_signal = signum
        self._stop.set()

    def run(self) -> int:
        """Bind, start the child, restart it on changes until a signal; returns 0.

        Raises ImportError (with the ``pip install`` hint) without watchfiles, and what
        ``bind_socket`` raises, before any child is started.
        """
        watchfiles = import_watchfiles(self.prog)
        sock = bind_socket(self.config)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            logger.info("Will watch for changes in these directories: %s",
                        list(self.reload.dirs))
            running(logger, socket_url(sock, "https" if self.config.is_ssl else "http"))
            logger.info("Started reloader process [%d] using WatchFiles", os.getpid())
            fd = sock.fileno()
            for changes in watchfiles.watch(
                    *self.reload.dirs, watch_filter=self._watch_filter,
                    stop_event=self._stop, rust_timeout=CHILD_CHECK_MS,
                    yield_on_timeout=True, raise_interrupt=False):
                if self._stop.is_set():
                    break
                if self.child is None:
                    # Only now: the watcher is set up, so no change to the files the
                    # child imports goes unseen.
                    self._start_child(fd)
                elif changes:
                    logger.warning("WatchFiles detected changes in %s. Reloading...",
                                   _shown({path for _, path in changes}))
                    self._stop_child(signal.SIGTERM)
                    if not self._stop.is_set():
                        self._start_child(fd)
                else:
                    self._report_exited_child()
            self._stop_child(self._stop_signal or signal.SIGTERM)
        finally:
            if self.child is not None and self.child.poll() is None:
                self.child.kill()
                self.child.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            sock.close()
        logger.info("Stopping reloader process [%d]", os.getpid())
        return 0

    def _watch_filter(self, change: Any, path: str) -> bool:
        return self.reload.watches(path)

    def _start_child(self, fd: int) -> None:
        # No .pyc written: an edit within the same second that keeps the file's size would
        # otherwise be hidden by the cached bytecode of the previous version.
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        self.child = start_process(self.process_argv(fd), (fd,), env)
        self._child_reported = False
        # Debug only: the process itself logs "Started server process [pid]".
        logger.debug("Started server process [%d]", self.child.pid)

    def _report_exited_child(self) -> None:
        if self.child is None or self._child_reported:
            return
        code = self.child.poll()
        if code is not None:
            self._child_reported = True
            logger.error("Server process [%d] exited (exit status %d); waiting for file "
                         "changes to start it again", self.child.pid, code)

    def _stop_child(self, sig: int) -> None:
        """Send ``sig`` and wait; SIGKILL on another signal or after ``graceful_timeout_s``
        + KILL_MARGIN_S."""
        child = self.child
        if child is None or child.poll() is not None:
            return
        seen = self._signals_seen
        logger.info("Stopping server process [%d]", child.pid)
        child.send_signal(sig)
        deadline = time.monotonic() + self.config.graceful_timeout_s + KILL_MARGIN_S
        while child.poll() is None:
            if self._signals_seen > seen or time.monotonic() > deadline:
                logger.warning("Killing server process [%d]", child.pid)
                child.kill()
                child.wait()
            time.sleep(0.02)
