"""A newcomer's mistakes on the command line get one clear line and exit status 1.

Each mistake is made with the real CLI (``python -m cymongoose.asgi`` / ``.wsgi``) in a
subprocess: a port already in use, an app module or attribute that does not exist,
``--loop uvloop`` without uvloop, a certificate that is missing or unreadable, an ``--fd``
that is not a listening TCP socket. The process must exit with 1, print no traceback and
say what is wrong on exactly one line of stderr (``cymongoose-asgi: error: ...``); log
lines at INFO level (lifespan, start-up) may come before it.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SERVERS = ["asgi", "wsgi"]

APPS = textwrap.dedent(
    """
    import sys

    async def asgi(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    print("lifespan shutdown ran", flush=True)
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    def wsgi(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]
    """
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "newcomer_app.py").write_text(APPS)
    return tmp_path


def run_cli(server: str, app_dir: Path, *args: str, pass_fds: tuple[int, ...] = (),
            prelude: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m cymongoose.<server> newcomer_app:<server> *args``; ``prelude`` runs first
    in the same interpreter."""
    if prelude:
        argv = [sys.executable, "-c", f"{prelude}\nimport runpy\n"
                f"runpy.run_module('cymongoose.{server}', run_name='__main__')"]
    else:
        argv = [sys.executable, "-m", f"cymongoose.{server}"]
    if not args or args[0].startswith("-"):
        args = (f"newcomer_app:{server}", *args)
    return subprocess.run([*argv, *args], cwd=app_dir, capture_output=True, text=True,
                          timeout=120, pass_fds=pass_fds)


def error_line(proc: subprocess.CompletedProcess[str], server: str) -> str:
    """The one line naming the problem; fails unless the process exited 1 without a
    traceback and with exactly one such line."""
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("INFO:")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"cymongoose-{server}: error: "), proc.stderr
    return lines[0]


@pytest.fixture
def taken_port():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    yield holder.getsockname()[1]
    holder.close()


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("server", SERVERS)
def test_port_in_use(server, app_dir, taken_port, workers):
    proc = run_cli(server, app_dir, "--port", str(taken_port), "--workers", workers)
    line = error_line(proc, server)
    assert f"[Errno {errno.EADDRINUSE}] {os.strerror(errno.EADDRINUSE)}" in line
    assert f"127.0.0.1:{taken_port}" in line


def test_port_in_use_asgi_runs_lifespan_shutdown_and_logs_no_lifespan_error(
        app_dir, taken_port):
    proc = run_cli("asgi", app_dir, "--port", str(taken_port), "--lifespan", "on")
    error_line(proc, "asgi")
    assert "lifespan shutdown ran" in proc.stdout
    assert "exception in ASGI lifespan" not in proc.stderr
    assert "CancelledError" not in proc.stderr


@pytest.mark.parametrize("server", SERVERS)
def test_missing_module(server, app_dir):
    proc = run_cli(server, app_dir, "no_such_module_xyz:app", "--port", "0")
    line = error_line(proc, server)
    assert "'no_such_module_xyz:app'" in line and "No module named 'no_such_module_xyz'" in line


@pytest.mark.parametrize("server", SERVERS)
def test_missing_module_with_workers_stops_at_once(server, app_dir):
    # Each worker process says why it cannot start; the parent stops them all instead of
    # restarting them, and exits with 1 as well.
    proc = run_cli(server, app_dir, "no_such_module_xyz:app", "--workers", "2", "--port", "0")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "restarting" not in proc.stderr
    said = {line for line in proc.stderr.splitlines()
            if line.startswith(f"cymongoose-{server}: error: ")}
    assert len(said) == 1, proc.stderr
    assert "No module named 'no_such_module_xyz'" in said.pop()


@pytest.mark.parametrize("server", SERVERS)
def test_missing_app_attribute(server, app_dir):
    proc = run_cli(server, app_dir, "newcomer_app:no_such_app", "--port", "0")
    line = error_line(proc, server)
    assert "'no_such_app'" in line and "'newcomer_app'" in line


@pytest.mark.parametrize("server", SERVERS)
def test_malformed_app_spec(server, app_dir):
    line = error_line(run_cli(server, app_dir, "newcomer_app", "--port", "0"), server)
    assert "module:attribute" in line


def test_loop_uvloop_without_uvloop(app_dir):
    # None in sys.modules makes "import uvloop" fail as if it were not installed.
    proc = run_cli("asgi", app_dir, "--loop", "uvloop", "--port", "0",
                   prelude="import sys; sys.modules['uvloop'] = None")
    line = error_line(proc, "asgi")
    assert "uvloop" in line and "pip install uvloop" in line


@pytest.mark.parametrize("server", SERVERS)
def test_missing_certificate_file(server, app_dir):
    proc = run_cli(server, app_dir, "--port", "0", "--ssl-certfile", "missing-cert.pem",
                   "--ssl-keyfile", "missing-key.pem")
    line = error_line(proc, server)
    assert f"[Errno {errno.ENOENT}]" in line
    assert "ssl_certfile" in line and "'missing-cert.pem'" in line


@pytest.mark.parametrize("server", SERVERS)
def test_unreadable_key_file(server, app_dir):
    (app_dir / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (app_dir / "key-dir").mkdir()  # a directory cannot be read as a file, even by root
    proc = run_cli(server, app_dir, "--port", "0", "--ssl-certfile", "cert.pem",
                   "--ssl-keyfile", "key-dir")
    line = error_line(proc, server)
    assert f"[Errno {errno.EISDIR}]" in line
    assert "ssl_keyfile" in line and "'key-dir'" in line


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("server", SERVERS)
def test_fd_of_a_unix_socket_not_listening(server, app_dir, tmp_path, workers):
    # A listening one is served (test_operations.py).
    with socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(tmp_path / "s.sock"))
        fd = unix.fileno()
        proc = run_cli(server, app_dir, "--fd", str(fd), "--workers", workers,
                       pass_fds=(fd,))
    line = error_line(proc, server)
    assert f"fd {fd} is a Unix socket that is not listening" in line


@pytest.mark.parametrize("server", SERVERS)
def test_fd_of_a_tcp_socket_not_listening(server, app_dir):
    with socket.socket() as tcp:
        tcp.bind(("127.0.0.1", 0))
        fd = tcp.fileno()
        proc = run_cli(server, app_dir, "--fd", str(fd), pass_fds=(fd,))
    assert f"fd {fd} is a TCP socket that is not listening" in error_line(proc, server)


@pytest.mark.parametrize("server", SERVERS)
def test_fd_not_open(server, app_dir):
    line = error_line(run_cli(server, app_dir, "--fd", "987"), server)
    assert f"[Errno {errno.EBADF}]" in line and "fd 987 is not open" in line


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize(("flag", "value"), [("--work", "2"), ("--ws", "websockets"),
                                             ("--time", "3")])
def test_flags_must_be_given_in_full(server, app_dir, flag, value):
    proc = run_cli(server, app_dir, flag, value)
    assert proc.returncode == 2, proc.stderr
    assert f"unrecognized arguments: {flag} {value}" in proc.stderr
    assert "ambiguous" not in proc.stderr and "Traceback" not in proc.stderr
