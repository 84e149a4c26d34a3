"""Operations, as users of gunicorn and uvicorn run them: gunicorn's ``--reload``,
``-b unix:``, ``--max-requests`` and ``--timeout`` with our worker classes; ``--uds``
and a Unix ``--fd`` on both servers; ``--limit-max-requests`` in one process and under
``--workers`` (recycled with zero failed requests).

Real processes, real gunicorn, httpx (``HTTPTransport(uds=...)`` for Unix sockets). The
apps are tests-integration/apps/ops_asgi.py and ops_wsgi.py: they answer their pid.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

APPS = Path(__file__).parent / "apps"
SERVERS = ["asgi", "wsgi"]
APP = {"asgi": "ops_asgi:app", "wsgi": "ops_wsgi:app"}
WORKER = {"asgi": "cymongoose.asgi.workers.ASGIWorker",
          "wsgi": "cymongoose.wsgi.workers.WSGIWorker"}
WAIT_S = 60  # bound on waiting for a process; never asserted as a duration

needs_gunicorn = pytest.mark.skipif(importlib.util.find_spec("gunicorn") is None,
                                    reason="gunicorn is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """A server process whose output goes to a file (``log()`` reads it)."""

    def __init__(self, argv: list[str], tmp: Path, *, cwd: Path = APPS,
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.out_path = tmp / f"out-{len(list(tmp.glob('out-*')))}.log"
        self.out = self.out_path.open("w")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self.out, stderr=subprocess.STDOUT,
                                     text=True, pass_fds=pass_fds)

    def log(self) -> str:
        return self.out_path.read_text()

    def wait_for_log(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + WAIT_S
        while self.log().count(text) < count:
            assert time.monotonic() < deadline, f"never logged {text!r}:\n{self.log()}"
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.log()}"
            time.sleep(0.1)

    def wait_exit(self) -> int:
        try:
            return self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"did not exit:\n{self.log()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.wait_exit()
        self.out.close()
        return code


@pytest.fixture
def run(tmp_path):
    procs: list[Proc] = []

    def start(*argv: str, **kwargs) -> Proc:
        proc = Proc(list(argv), tmp_path, **kwargs)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()
        proc.out.close()


def client(uds: str | None = None) -> httpx.Client:
    transport = httpx.HTTPTransport(uds=uds) if uds else None
    return httpx.Client(transport=transport, timeout=30)


def wait_ready(proc: Proc, url: str, uds: str | None = None) -> dict:
    """The first answer of the server at ``url`` (retried while it starts)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        assert proc.proc.poll() is None, f"exited {proc.proc.returncode}:\n{proc.log()}"
        try:
            with client(uds) as c:
                return c.get(url).json()
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"never answered:\n{proc.log()}"
            time.sleep(0.2)


def cli(server: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"cymongoose.{server}", APP[server], *args]


def gunicorn(server: str, bind: str, *args: str, app: str | None = None) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-k", WORKER[server], "-b", bind,
            "--graceful-timeout", "10", *args, app or APP[server]]


def short_socket_path(tmp_path: Path, name: str) -> str:
    # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    path = Path("/tmp") / f"cym-{os.getpid()}-{tmp_path.name[-20:]}-{name}"
    path.unlink(missing_ok=True)
    return str(path)


@pytest.fixture
def sock_path(tmp_path):
    path = short_socket_path(tmp_path, "s.sock")
    yield path
    Path(path).unlink(missing_ok=True)


# -- gunicorn ----------------------------------------------------------------------------


@needs_gunicorn
@pytest.mark.parametrize("server", SERVERS)
def test_gunicorn_unix_bind(run, server, sock_path):
    proc = run(*gunicorn(server, f"unix:{sock_path}", "-w", "2"))
    first = wait_ready(proc, "http://localhost/", sock_path)
    with client(sock_path) as c:
        bodies = [c.get("http://localhost/", headers={"Connection": "close"}).json()
                  for _ in range(10)]
    assert proc.stop() == 0
    if server == "asgi":
        # ASGI spec: no client address on a Unix socket; server as uvicorn gives it.
        assert first["client"] is None and first["server"] == [sock_path, None]
    else:
        assert (first["REMOTE_ADDR"], first["REMOTE_PORT"]) == ("", "absent")
    assert all(body["pid"] != proc.proc.pid for body in bodies)
    assert "exited with code 255" not in proc.log()  # the old failure: respawned forever


@needs_gunicorn
@pytest.mark.parametrize("server", SERVERS)
def test_gunicorn_max_requests_recycles_workers(run, server):
    port = free_port()
    proc = run(*gunicorn(server, f"127.0.0.1:{port}", "-w", "1", "--max-requests", "50",
                         "--max-requests-jitter", "5"))
    url = f"http://127.0.0.1:{port}/"
    pids = [wait_ready(proc, url)["pid"]]
    deadline = time.monotonic() + WAIT_S
    with client() as c:
        while len(set(pids)) < 3 and time.monotonic() < deadline:
            r = c.get(url)  # keep-alive: the retiring worker closes it between requests
            assert r.status_code == 200
            pids.append(r.json()["pid"])
    assert proc.stop() == 0
    assert len(set(pids)) >= 3, f"workers were not replaced after --max-requests:\n{proc.log()}"
    assert pids.count(pids[0]) >= 50
    assert "Maximum request limit" in proc.log()


@needs_gunicorn
@pytest.mark.parametrize("server", SERVERS)
def test_gunicorn_hup_replaces_workers_gracefully(run, server):
    port = free_port()
    proc = run(*gunicorn(server, f"127.0.0.1:{port}", "-w", "2"))
    url = f"http://127.0.0.1:{port}/"
    wait_ready(proc, url)
    with client() as c:
        before = {c.get(url, headers={"Connection": "close"}).json()["pid"] for _ in range(20)}
        proc.proc.send_signal(signal.SIGHUP)  # new workers, then TERM to the old ones
        proc.wait_for_log("Worker exiting", count=2)
        after = {c.get(url, headers={"Connection": "close"}).json()["pid"] for _ in range(20)}
    assert proc.stop() == 0
    assert before and after and not before & after


@needs_gunicorn
@pytest.mark.parametrize("server", SERVERS)
def test_gunicorn_timeout_kills_a_stuck_loop(run, server):
    port = free_port()
    # WSGI: --threads 0 runs the app on the event loop, which /stuck then blocks.
    extra = ["--threads", "0"] if server == "wsgi" else []
    proc = run(*gunicorn(server, f"127.0.0.1:{port}", "-w", "1", "--timeout", "2", *extra))
    url = f"http://127.0.0.1:{port}/"
    before = wait_ready(proc, url)["pid"]
    with client() as c:
        try:
            c.get(url + "stuck")  # answered 500 or cut when the worker is killed
        except httpx.TransportError:
            pass
    proc.wait_for_log("WORKER TIMEOUT")
    after = wait_ready(proc, url)["pid"]
    assert after != before
    assert proc.stop() == 0


@needs_gunicorn
@pytest.mark.parametrize("server", SERVERS)
def test_gunicorn_reload_serves_the_edited_app(run, server, tmp_path):
    source = {
        "asgi": (
            "async def app(scope, receive, send):\n"
            "    if scope['type'] != 'http':\n"
            "        return\n"
            "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
            "    await send({'type': 'http.response.body', 'body': b'VERSION'})\n"),
        "wsgi": (
            "def app(environ, start_response):\n"
            "    start_response('200 OK', [])\n"
            "    return [b'VERSION']\n"),
    }[server]
    module = tmp_path / "reloaded_app.py"
    module.write_text(source.replace("VERSION", "one"))
    port = free_port()
    argv = gunicorn(server, f"127.0.0.1:{port}", "-w", "1", "--reload",
                    app="reloaded_app:app")
    proc = run(*argv, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            assert httpx.get(url, timeout=30).text == "one"
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, proc.log()
            time.sleep(0.2)
    time.sleep(1.1)  # a new mtime even on file systems with 1 s resolution
    module.write_text(source.replace("VERSION", "two"))
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            if httpx.get(url, timeout=30).text == "two":
                break
        except httpx.TransportError:
            pass  # between the old worker and the new one
        assert time.monotonic() < deadline, f"still the old app:\n{proc.log()}"
        time.sleep(0.2)
    assert "Worker reloading" in proc.log()
    assert proc.stop() == 0


# -- --uds and --fd ----------------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
def test_uds_serves_and_replaces_a_stale_socket(run, server, sock_path):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)  # left behind by a server that is gone: nobody listens
    stale.close()
    proc = run(*cli(server, "--uds", sock_path))
    body = wait_ready(proc, "http://localhost/", sock_path)
    assert os.stat(sock_path).st_mode & 0o777 == 0o666
    if server == "asgi":
        assert body["client"] is None and body["server"] == [sock_path, None]
    else:
        assert body["REMOTE_ADDR"] == "" and body["REMOTE_PORT"] == "absent"
        assert body["SERVER_NAME"] == "localhost"
    assert f"unix socket {sock_path}" in proc.log()

    # A second server on the same path is refused, and the first keeps serving.
    second = subprocess.run(cli(server, "--uds", sock_path), cwd=APPS, capture_output=True,
                            text=True, timeout=WAIT_S)
    assert second.returncode == 1
    assert "a server is listening on this socket" in second.stderr
    assert "Traceback" not in second.stderr
    with client(sock_path) as c:
        assert c.get("http://localhost/").json()["pid"] == body["pid"]
    assert proc.stop() == 0


@pytest.mark.parametrize("server", SERVERS)
def test_uds_refuses_a_path_that_is_not_a_socket(server, tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("keep me")
    proc = subprocess.run(cli(server, "--uds", str(path)), cwd=APPS, capture_output=True,
                          text=True, timeout=WAIT_S)
    assert proc.returncode == 1
    assert "is a regular file, not a socket" in proc.stderr
    assert path.read_text() == "keep me"


@pytest.mark.parametrize("server", SERVERS)
def test_uds_under_workers(run, server, sock_path):
    proc = run(*cli(server, "--uds", sock_path, "--workers", "2", "--no-access-log"))
    wait_ready(proc, "http://localhost/", sock_path)
    with client(sock_path) as c:
        pids = {c.get("http://localhost/", headers={"Connection": "close"}).json()["pid"]
                for _ in range(20)}
    assert proc.proc.pid not in pids
    assert f"unix socket {sock_path}" in proc.log()
    assert proc.stop() == 0


@pytest.mark.parametrize("server", SERVERS)
def test_unix_fd_is_served(run, server, sock_path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(sock_path)
    sock.listen(16)
    try:
        proc = run(*cli(server, "--fd", str(sock.fileno())), pass_fds=(sock.fileno(),))
        body = wait_ready(proc, "http://localhost/", sock_path)
    finally:
        sock.close()
    assert body["pid"] == proc.proc.pid
    if server == "asgi":
        assert body["client"] is None and body["server"] == [sock_path, None]
    assert proc.stop() == 0


# -- --limit-max-requests ----------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
def test_max_requests_single_process_exits(run, server):
    port = free_port()
    proc = run(*cli(server, "--port", str(port), "--limit-max-requests", "5"))
    url = f"http://127.0.0.1:{port}/"
    wait_ready(proc, url)  # request 1
    with client() as c:
        for _ in range(4):
            assert c.get(url).status_code == 200
    assert proc.wait_exit() == 0
    assert "Maximum request limit of 5 reached" in proc.log()


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep_alive", "new_connections"])
def test_max_requests_workers_recycle_without_failures(run, server, keep_alive):
    port = free_port()
    proc = run(*cli(server, "--port", str(port), "--workers", "2", "--no-access-log",
                    "--limit-max-requests", "40", "--limit-max-requests-jitter", "10"))
    url = f"http://127.0.0.1:{port}/"
    wait_ready(proc, url)
    failures: list[str] = []
    pids: list[int] = []
    headers = {} if keep_alive else {"Connection": "close"}
    done = threading.Event()

    def loop() -> None:
        with client() as c:
            while not done.is_set():
                try:
                    r = c.get(url, headers=headers)
                    if r.status_code != 200:
                        failures.append(f"status {r.status_code}")
                    else:
                        pids.append(r.json()["pid"])
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    clients = [threading.Thread(target=loop) for _ in range(2)]
    for thread in clients:
        thread.start()
    # Until processes that retire after 40..50 requests have been replaced a few times.
    deadline = time.monotonic() + WAIT_S
    while len(set(pids)) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    done.set()
    for thread in clients:
        thread.join()
    log = proc.log()
    assert proc.stop() == 0
    assert failures == [], log
    assert len(set(pids)) >= 5, log
    assert "served its max requests" in log
    assert "died" not in log
