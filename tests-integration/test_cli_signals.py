"""The ``--workers`` supervisor's signals (SIGHUP, SIGTTIN, SIGTTOU) and ``--backlog``,
on both command lines.

Server processes are counted as the supervisor's children in /proc; the backlog is read
from ``ss``, which shows a listening socket's backlog in its Send-Q column.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from cli_process import (  # noqa: F401
    children,
    free_port,
    server_cli_fixture,
    wait_until,
    write_app,
)

SERVERS = ["asgi", "wsgi"]


def start_workers(server_cli, tmp_path, server, workers=2, *args):
    write_app(tmp_path / "app.py", server, "v1")
    served = server_cli(server, "app:app", "--workers", str(workers), *args, cwd=tmp_path)
    # Every process has imported the app: the tests edit it next.
    served.wait_log(r"Application startup complete", count=workers)
    served.wait_body("v1", timeout_s=60)
    pids = wait_until(lambda: (c := children(served.proc.pid)) and len(c) == workers and c,
                      30, f"{workers} server processes")
    return served, pids


class Client(threading.Thread):
    """GET / in a loop, each on a new connection, until stopped; keeps bodies and errors."""

    def __init__(self, served) -> None:
        super().__init__(daemon=True)
        self.served = served
        self.bodies: list[str] = []
        self.errors: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.bodies.append(self.served.get())
            except httpx.HTTPError as exc:
                self.errors.append(repr(exc))

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=60)


@pytest.mark.parametrize("server", SERVERS)
def test_signal_hup_reloads_the_app_with_no_failed_request(server_cli, tmp_path, server):
    served, old = start_workers(server_cli, tmp_path, server)
    client = Client(served)
    client.start()
    try:
        wait_until(lambda: len(client.bodies) >= 20, 30, "20 answers before the reload")
        # Of another length: v1's cached bytecode cannot pass for it, whatever the mtime.
        write_app(tmp_path / "app.py", server, "v2-new")
        served.proc.send_signal(signal.SIGHUP)
        match = served.wait_log(r"Reload: new worker processes \[(\d+), (\d+)\] listening")
        new = {int(pid) for pid in match[0].groups()}
        for pid in old:
            served.wait_log(rf"Worker process \[{pid}\] stopped \(exit status 0\)")
        seen = len(client.bodies)
        wait_until(lambda: len(client.bodies) >= seen + 20, 30, "20 answers after it")
    finally:
        client.stop()
    assert client.errors == []
    assert "Received SIGHUP" in served.log
    assert {b.split()[0] for b in client.bodies} == {"v1", "v2-new"}
    assert {int(b.split()[1]) for b in client.bodies[seen:]} <= new
    assert all(b.startswith("v2-new") for b in client.bodies[seen:])
    assert children(served.proc.pid) == new and not new & old
    assert served.stop() == 0


class KeepAliveClient(Client):
    """GET / in a loop on one keep-alive connection pool (as a busy client has it)."""

    def run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self.done.is_set():
                try:
                    response = http.get(self.served.base + "/")
                    response.raise_for_status()
                    self.bodies.append(response.text)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))


@pytest.mark.parametrize("server", SERVERS)
def test_signal_hup_fails_no_request_on_keep_alive_connections(server_cli, tmp_path, server):
    # The stopping processes answer each request already sent and close only connections
    # idle for a moment: no request goes into a connection that closes.
    served, _ = start_workers(server_cli, tmp_path, server)
    clients = [KeepAliveClient(served) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        for reload in range(1, 6):
            seen = sum(len(c.bodies) for c in clients)
            served.proc.send_signal(signal.SIGHUP)
            served.wait_log(r"Reload: new worker processes \[\d+, \d+\] listening",
                            count=reload)
            wait_until(lambda seen=seen: sum(len(c.bodies) for c in clients) >= seen + 50, 30,
                       "50 answers after the reload")
    finally:
        for client in clients:
            client.stop()
    assert [e for c in clients for e in c.errors] == []
    assert served.stop() == 0


@pytest.mark.parametrize("server", SERVERS)
def test_signal_hup_with_a_broken_app_keeps_the_old_processes(server_cli, tmp_path, server):
    served, old = start_workers(server_cli, tmp_path, server)
    (tmp_path / "app.py").write_text("BODY = 'v2\n")  # a syntax error
    served.proc.send_signal(signal.SIGHUP)
    served.wait_log(r"Reload failed: new worker process \[\d+\] exited \(exit status 1\) "
                    r"before it listened; the old worker processes go on serving")
    wait_until(lambda: children(served.proc.pid) == old, 30,
               lambda: f"the new processes gone:\n{served.log}")
    assert served.get().startswith("v1")
    # A later SIGHUP, the app fixed, reloads.
    write_app(tmp_path / "app.py", server, "v3-fixed")  # another length, as above
    served.proc.send_signal(signal.SIGHUP)
    served.wait_log(r"Reload: new worker processes")
    served.wait_body("v3-fixed", timeout_s=30)
    assert served.stop() == 0


@pytest.mark.parametrize("server", SERVERS)
def test_signal_ttin_and_ttou_add_and_remove_a_process(server_cli, tmp_path, server):
    served, pids = start_workers(server_cli, tmp_path, server)
    supervisor = served.proc.pid

    def count(n):
        return wait_until(lambda: (c := children(supervisor)) and len(c) == n and c,
                          30, lambda: f"{n} server processes:\n{served.log}")

    served.proc.send_signal(signal.SIGTTIN)
    served.wait_log(r"Received SIGTTIN: adding a worker process \(now 3\)")
    assert len(count(3) - pids) == 1
    # One at a time: a signal sent while the same one is pending is merged into it.
    for left in (2, 1):
        served.proc.send_signal(signal.SIGTTOU)
        served.wait_log(rf"Received SIGTTOU: removing worker process \[\d+\] \(now {left}\)")
        count(left)
    served.proc.send_signal(signal.SIGTTOU)
    served.wait_log(r"Received SIGTTOU: one worker process left; keeping it")
    assert len(count(1)) == 1
    assert served.get().startswith("v1")
    assert served.stop() == 0


def listen_backlog(port: int) -> int:
    """The backlog of the socket listening on ``port``: ``ss`` shows it as Send-Q."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    lines = out.splitlines()
    assert len(lines) == 1, out
    return int(lines[0].split()[2])


def somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read the "
                    "backlog of a listening socket")
@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("server", SERVERS)
def test_backlog_is_the_listening_sockets(server_cli, tmp_path, server, workers):
    write_app(tmp_path / "app.py", server, "v1")
    served = server_cli(server, "app:app", "--workers", workers, "--backlog", "77",
                        cwd=tmp_path)
    served.wait_body("v1", timeout_s=60)
    assert listen_backlog(served.port) == 77
    served.stop()
    served = server_cli(server, "app:app", "--workers", workers, cwd=tmp_path)
    served.wait_body("v1", timeout_s=60)
    assert listen_backlog(served.port) == min(2048, somaxconn())  # the default


@pytest.mark.parametrize("value", ["0", "65536"])
@pytest.mark.parametrize("server", SERVERS)
def test_backlog_out_of_range_exits_2(server, value):
    proc = subprocess.run([sys.executable, "-m", f"cymongoose.{server}", "m:app",
                           "--backlog", value, "--port", str(free_port())],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"backlog must be in 1..65535, got {value}" in proc.stderr
