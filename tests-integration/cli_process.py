"""A server command line run as a subprocess, its log read as it comes (for the tests of
``--reload``, the supervisor's signals and ``--backlog``).

The apps are written by the tests into their ``tmp_path`` (so that they can be edited):
:func:`write_app` writes an ASGI or WSGI app answering ``<body> <pid>``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

ASGI_APP = '''
import os
BODY = {body!r}

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]}})
    await send({{"type": "http.response.body",
                "body": f"{{BODY}} {{os.getpid()}}".encode()}})
'''

WSGI_APP = '''
import os
BODY = {body!r}

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{{BODY}} {{os.getpid()}}".encode()]
'''


def write_app(path: Path, server: str, body: str) -> None:
    """Write an app of ``server`` ("asgi"/"wsgi") answering ``f"{body} {pid}"`` to ``path``."""
    path.write_text((ASGI_APP if server == "asgi" else WSGI_APP).format(body=body))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> set[int]:
    """The pids of ``pid``'s live child processes, from /proc (zombies left out)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdecimal():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry))
    return found


def wait_until(predicate, timeout_s: float, what, interval_s: float = 0.05):
    """Poll ``predicate`` until it returns something true (returned); fail after
    ``timeout_s`` saying ``what`` (a str, or a callable giving one then) was awaited."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what() if callable(what) else what}")
        time.sleep(interval_s)


class Server:
    """``python -m cymongoose.<server> <args> --port <free port>`` in ``cwd``."""

    def __init__(self, server: str, *args: str, cwd: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", f"cymongoose.{server}", *args,
                "--port", str(self.port), "--no-access-log"]
        # Bytecode caching on, as users have it (the reload tests depend on it).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def find(self, pattern: str) -> list[re.Match[str]]:
        """Every match of ``pattern`` in the log so far, one per line."""
        regex = re.compile(pattern)
        return [m for line in list(self.lines) if (m := regex.search(line))]

    def wait_log(self, pattern: str, count: int = 1, timeout_s: float = 60) -> list[re.Match]:
        """Wait until ``pattern`` matched ``count`` log lines; returns the matches."""
        return wait_until(lambda: (m := self.find(pattern)) and len(m) >= count and m,
                          timeout_s,
                          lambda: f"{count} log line(s) matching {pattern!r}:\n{self.log}")

    def get(self, timeout_s: float = 30) -> str:
        """GET / on a connection of its own; the body."""
        r = httpx.get(self.base + "/", headers={"Connection": "close"}, timeout=timeout_s)
        r.raise_for_status()
        return r.text

    def wait_body(self, prefix: str, timeout_s: float) -> str:
        """Poll GET / until the body starts with ``prefix``; returns it."""
        def answered() -> str | None:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log}")
            try:
                body = self.get(timeout_s=max(1.0, timeout_s))
            except httpx.TransportError:
                return None
            return body if body.startswith(prefix) else None
        return wait_until(answered, timeout_s,
                          lambda: f"a body starting {prefix!r}:\n{self.log}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"server did not stop on signal {sig}:\n{self.log}")
        self._reader.join(timeout=10)
        return code


# Registered as "server_cli"; the function has another name so that a test's
# `server_cli` argument does not shadow the import (ruff F811).
@pytest.fixture(name="server_cli")
def server_cli_fixture():
    """``server_cli(server, *args, cwd=...)`` starts a :class:`Server`; all are killed
    at the end of the test.

        from cli_process import server_cli_fixture  # noqa: F401  (fixture: server_cli)
    """
    started: list[Server] = []

    def start(server: str, *args: str, cwd: Path) -> Server:
        served = Server(server, *args, cwd=cwd)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()
