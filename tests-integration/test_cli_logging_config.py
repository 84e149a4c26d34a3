"""Logging and configuration of both command lines, as users run them: ``--log-config``
(JSON, YAML, INI), ``CYMONGOOSE_<FLAG>`` variables, ``--env-file``, ``--version``,
``--access-log-format``, the access log of the answers the servers make themselves
(413, 431, 503, WebSocket handshakes), the start-up lines of every mode and of
``serve()`` called from a script.

Each server is a subprocess on a free port; stdout (access log) and stderr (server log)
are read after it stops.
"""

from __future__ import annotations

import asyncio
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

SERVERS = ["asgi", "wsgi"]

APPS = {
    "asgi": '''
import os

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].replace("lifespan.", "")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] == "websocket":
        await receive()
        if scope["path"] == "/deny":
            await send({"type": "websocket.close"})
            return
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": message.get("text") or ""})
        await send({"type": "websocket.close"})
        return
    while (await receive()).get("more_body"):
        pass
    body = os.environ.get("GREETING", "hello").encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"x-out", b"yes")]})
    await send({"type": "http.response.body", "body": body})
''',
    "wsgi": '''
import os

def app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Out", "yes")])
    return [os.environ.get("GREETING", "hello").encode()]
''',
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``python -m cymongoose.<server> logapp:app ...`` in ``cwd``; ``stop()`` returns
    (status, stdout, stderr)."""

    def __init__(self, server: str, cwd: Path, *args: str, port: int | None = None,
                 env: dict[str, str] | None = None, host: str = "127.0.0.1",
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.port = port or free_port()
        self.base = f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"
        argv = [sys.executable, "-m", f"cymongoose.{server}", *args]
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, pass_fds=pass_fds,
                                     env={**os.environ, **(env or {})})
        self._watch()

    def _watch(self) -> None:
        # stderr is read as it comes, so that a test can wait for a line.
        self.err_lines: list[str] = []
        self._reader = threading.Thread(target=self._read_err, daemon=True)
        self._reader.start()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.err_lines.append(line)

    def wait_for(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + 60
        while sum(text in line for line in self.err_lines) < count:
            assert time.monotonic() < deadline, "".join(self.err_lines)
            time.sleep(0.05)

    def ready(self) -> Server:
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                status, out, err = self.stop()
                pytest.fail(f"server exited with {status}:\n{err}")
            try:
                httpx.get(self.base + "/ready", timeout=5)
                return self
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"server never answered:\n{self.stop()[2]}")
                time.sleep(0.2)

    def exited(self) -> tuple[int, str, str]:
        """For a server that must refuse to start: wait for it to exit by itself."""
        out = self.proc.stdout.read()
        self.proc.wait(timeout=60)
        self._reader.join(timeout=60)
        return self.proc.returncode, out, "".join(self.err_lines)

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        killer = threading.Timer(60, self.proc.kill)  # a server that does not stop
        killer.start()
        try:
            return self.exited()
        finally:
            killer.cancel()


@pytest.fixture
def app_dir(tmp_path):
    def make(server: str) -> Path:
        (tmp_path / "logapp.py").write_text(APPS[server])
        return tmp_path
    return make


@pytest.fixture
def run(app_dir):
    started: list[Server] = []

    def start(server: str, *args: str, ready: bool = True, **kwargs) -> Server:
        cwd = app_dir(server)
        port = kwargs.pop("port", None)
        if port is None and "--fd" not in args:  # else the port comes another way
            port = free_port()
            args = (*args, "--port", str(port))
        srv = Server(server, cwd, "logapp:app", *args, port=port, **kwargs)
        started.append(srv)
        return srv.ready() if ready else srv

    yield start
    for srv in started:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.communicate()


# -- --log-config ----------------------------------------------------------------------

LOG_CONFIGS = {
    "json": """{"version": 1,
 "formatters": {"f": {"format": "JSONLOG %(name)s %(message)s"}},
 "handlers": {"file": {"class": "logging.FileHandler", "filename": "FILE",
                       "formatter": "f"}},
 "loggers": {"cymongoose": {"handlers": ["file"], "level": "INFO"},
             "cymongoose.access": {"handlers": ["file"], "level": "INFO"}}}""",
    "yaml": """version: 1
formatters: {f: {format: "YAMLLOG %(name)s %(message)s"}}
handlers: {file: {class: logging.FileHandler, filename: FILE, formatter: f}}
loggers:
  cymongoose: {handlers: [file], level: INFO}
  cymongoose.access: {handlers: [file], level: INFO}
""",
    "ini": """[loggers]
keys=root,cym,access
[handlers]
keys=file
[formatters]
keys=f
[logger_root]
handlers=
[logger_cym]
level=INFO
handlers=file
propagate=0
qualname=cymongoose
[logger_access]
level=INFO
handlers=file
propagate=0
qualname=cymongoose.access
[handler_file]
class=FileHandler
args=('FILE', 'a')
formatter=f
[formatter_f]
format=INILOG %(name)s %(message)s
""",
}


@pytest.mark.parametrize("kind", list(LOG_CONFIGS))
@pytest.mark.parametrize("server", SERVERS)
def test_log_config_routes_our_loggers_to_a_file(run, tmp_path, server, kind):
    if kind == "yaml":
        pytest.importorskip("yaml")
    target = tmp_path / "server.log"
    config = tmp_path / f"logging.{kind}"
    config.write_text(LOG_CONFIGS[kind].replace("FILE", str(target)))
    srv = run(server, "--log-config", str(config))
    assert httpx.get(srv.base + "/x?y=1").text == "hello"
    status, out, err = srv.stop()
    assert status == 0
    tag = f"{kind.upper()}LOG"
    text = target.read_text()
    assert f"{tag} cymongoose.{server} Started server process [{srv.proc.pid}]" in text
    assert f"{tag} cymongoose.{server} Application startup complete." in text
    assert re.search(rf'{tag} cymongoose\.access 127\.0\.0\.1:\d+ - "GET /x\?y=1 HTTP/1\.1" '
                     r"200\n", text), text
    # Routed away from the terminal.
    assert "Started server process" not in err and "GET /x" not in out


def test_log_config_missing_file_names_the_flag(run):
    srv = run("asgi", "--log-config", "nope.json", ready=False)
    status, _, err = srv.exited()
    assert status == 2 and "error: --log-config: no such file: 'nope.json'" in err


# -- CYMONGOOSE_<FLAG>, --env-file, --version ---------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
def test_env_var_sets_a_flag_and_the_command_line_beats_it(run, server):
    port = free_port()
    srv = run(server, env={"CYMONGOOSE_PORT": str(port), "CYMONGOOSE_ACCESS_LOG": "false"},
              port=port)
    assert httpx.get(srv.base + "/").text == "hello"
    status, out, err = srv.stop()
    assert status == 0 and f"running on http://127.0.0.1:{port} " in err
    assert out == ""  # CYMONGOOSE_ACCESS_LOG=false
    # --port and --access-log on the command line win over both variables.
    srv = run(server, "--access-log", env={"CYMONGOOSE_PORT": "1",
                                           "CYMONGOOSE_ACCESS_LOG": "false"})
    assert httpx.get(srv.base + "/").text == "hello"
    status, out, _ = srv.stop()
    assert status == 0 and '"GET / HTTP/1.1" 200' in out


@pytest.mark.parametrize(("env", "said"), [
    ({"CYMONGOOSE_PORT": "eighty"},
     "error: environment variable CYMONGOOSE_PORT: invalid int value: 'eighty'"),
    ({"CYMONGOOSE_PROXY_HEADERS": "perhaps"},
     "error: environment variable CYMONGOOSE_PROXY_HEADERS: expected true or false"),
    ({"CYMONGOOSE_WORKERS": "0"},
     "workers must be >= 1, got 0 (from the environment variable CYMONGOOSE_WORKERS)"),
])
@pytest.mark.parametrize("server", SERVERS)
def test_env_var_bad_value_exits_2_naming_the_variable(run, server, env, said):
    srv = run(server, env=env, ready=False, port=1)  # the port must come from the env
    status, _, err = srv.exited()
    assert status == 2 and said in err, err


@pytest.mark.parametrize("server", SERVERS)
def test_env_file_is_loaded_before_the_app(run, tmp_path, server):
    pytest.importorskip("dotenv")
    port = free_port()
    env_file = tmp_path / "prod.env"
    env_file.write_text(f"CYMONGOOSE_PORT={port}\nGREETING=from the env file\n")
    srv = run(server, "--env-file", str(env_file), port=port)
    # The app read GREETING at request time, the server its port from the file.
    assert httpx.get(srv.base + "/").text == "from the env file"
    assert srv.stop()[0] == 0


def test_env_file_missing_names_the_flag(run):
    srv = run("wsgi", "--env-file", "missing.env", ready=False)
    status, _, err = srv.exited()
    assert status == 2 and "error: --env-file: no such file: 'missing.env'" in err


@pytest.mark.parametrize("server", SERVERS)
def test_version(server):
    out = subprocess.run([sys.executable, "-m", f"cymongoose.{server}", "--version"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert re.fullmatch(rf"cymongoose-{server} \d+\.\d+\.\d+\S* \(cymongoose-core \d+\.\d+"
                        r"\.\d+\S*, mongoose 7\.23, \w+ \d+\.\d+\.\d+\S* on \w+\)\n", out), out


# -- the access log --------------------------------------------------------------------


@pytest.mark.parametrize(("server", "mode"), [("asgi", ""), ("wsgi", ""),
                                             ("wsgi", "--threads=0")])
def test_access_log_format_atoms_with_a_real_request(run, server, mode):
    fmt = ('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" m=%(m)s U=%(U)s '
           'q=%(q)s H=%(H)s D=%(D)s L=%(L)s p=%(p)s in=%({x-in}i)s out=%({x-out}o)s')
    srv = run(server, "--access-log-format", fmt, *([mode] if mode else []))
    r = httpx.get(srv.base + "/a%20b?c=1", auth=("bob", "pw"),
                  headers={"User-Agent": "probe/1", "Referer": "http://r/", "X-In": "v"})
    assert r.text == "hello"
    status, out, _ = srv.stop()
    assert status == 0
    line = [x for x in out.splitlines() if "/a%20b" in x][0]
    pid = srv.proc.pid
    assert re.fullmatch(
        r'127\.0\.0\.1 - bob \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
        r'"GET /a%20b\?c=1 HTTP/1\.1" 200 5 "http://r/" "probe/1" m=GET U=/a b q=c=1 '
        rf"H=HTTP/1\.1 D=\d+ L=\d+\.\d{{6}} p=<{pid}> in=v out=yes", line), line


def _raw(port: int, data: bytes) -> bytes:
    # A 503 while the server has yet to see the close of an earlier connection (the
    # readiness probe's) counts it against --limit-concurrency 1: try again.
    deadline = time.monotonic() + 30
    while True:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(data)
            answer = sock.recv(200)
        if not answer.startswith(b"HTTP/1.1 503 ") or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


@pytest.mark.parametrize("server", SERVERS)
def test_access_log_has_413_431_and_503(run, server):
    srv = run(server, "--limit-request-body", "10", "--limit-request-fields", "5",
              "--limit-concurrency", "1")
    port = srv.port
    assert _raw(port, b"POST /up?big=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"
                ).startswith(b"HTTP/1.1 413 ")
    many = b"".join(b"X-%d: v\r\n" % i for i in range(10))
    assert _raw(port, b"GET /many HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n"
                ).startswith(b"HTTP/1.1 431 ")
    deadline = time.monotonic() + 30
    while True:  # the one connection allowed, once the earlier ones are seen closed
        held = socket.create_connection(("127.0.0.1", port), timeout=30)
        held.sendall(b"GET /held HTTP/1.1\r\nHost: a\r\n\r\n")
        if held.recv(200).startswith(b"HTTP/1.1 200 "):
            break
        held.close()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with held:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as over:
            over.sendall(b"GET /over HTTP/1.1\r\nHost: a\r\n\r\n")
            assert over.recv(200).startswith(b"HTTP/1.1 503 ")
    status, out, _ = srv.stop()
    assert status == 0
    assert re.search(r'127\.0\.0\.1:\d+ - "POST /up\?big=1 HTTP/1\.1" 413 ', out), out
    assert re.search(r'127\.0\.0\.1:\d+ - "GET /many HTTP/1\.1" 431 Request Header Fields',
                     out), out
    # The 503 is sent as the connection is accepted, before its request arrives.
    assert re.search(r'127\.0\.0\.1:\d+ - "-" 503 Service Unavailable', out), out


def test_access_log_has_websocket_sessions(run):
    websockets = pytest.importorskip("websockets.asyncio.client")

    async def session(base: str) -> str:
        async with websockets.connect(base.replace("http", "ws") + "/chat?room=1") as ws:
            await ws.send("hi")
            echoed = await ws.recv()
        try:
            async with websockets.connect(base.replace("http", "ws") + "/deny"):
                pass
        except Exception as exc:  # the handshake is refused with HTTP 403
            assert "403" in str(exc)
        return echoed

    srv = run("asgi")
    assert asyncio.run(session(srv.base)) == "hi"
    status, out, _ = srv.stop()
    assert status == 0
    assert re.search(r'127\.0\.0\.1:\d+ - "GET /chat\?room=1 HTTP/1\.1" 101 Switching '
                     r"Protocols", out), out
    assert re.search(r'127\.0\.0\.1:\d+ - "GET /deny HTTP/1\.1" 403 Forbidden', out), out


def test_access_log_format_has_the_websocket_session_time(run):
    websockets = pytest.importorskip("websockets.asyncio.client")

    async def session(base: str) -> None:
        async with websockets.connect(base.replace("http", "ws") + "/chat") as ws:
            await ws.send("hi")
            await ws.recv()

    srv = run("asgi", "--access-log-format", '"%(r)s" %(s)s %(L)s')
    asyncio.run(session(srv.base))
    status, out, _ = srv.stop()
    assert re.search(r'^"GET /chat HTTP/1\.1" 101 \d+\.\d{6}$', out, re.M), out


# -- start-up lines --------------------------------------------------------------------

STARTUP = ["Started server process [", "Application startup complete.",
           "cymongoose running on http://127.0.0.1:", "Shutting down",
           "Finished server process ["]


@pytest.mark.parametrize("mode", ["single", "workers", "fd"])
@pytest.mark.parametrize("server", SERVERS)
def test_startup_log_lines_are_the_same_in_every_mode(run, server, mode):
    if mode == "fd":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            srv = run(server, "--fd", str(sock.fileno()), port=sock.getsockname()[1],
                      pass_fds=(sock.fileno(),))
    else:
        srv = run(server, *(("--workers", "2") if mode == "workers" else ()))
    processes = 2 if mode == "workers" else 1
    srv.wait_for("Application startup complete.", processes)
    status, _, err = srv.stop()
    assert status == 0
    for line in STARTUP:
        assert line in err, err
    assert err.count("cymongoose running on") == 1, err  # from whoever bound the socket
    assert err.count("Started server process [") == processes, err
    assert err.count("Application startup complete.") == processes, err
    if mode != "workers":
        # The address line after the app started, as uvicorn prints them.
        assert err.index("Application startup complete.") < err.index("running on") \
            or mode == "fd"


SCRIPT = """
import sys
from cymongoose.{server} import serve
from logapp import app

serve(app, port=int(sys.argv[1]))
"""


@pytest.mark.parametrize("server", SERVERS)
def test_serve_from_a_script_logs_the_startup_lines(app_dir, server):
    """``python main.py`` with ``serve(app)`` prints what the CLI prints."""
    cwd = app_dir(server)
    (cwd / "main.py").write_text(SCRIPT.format(server=server))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "main.py", str(port)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    srv = Server.__new__(Server)
    srv.proc, srv.port, srv.base = proc, port, f"http://127.0.0.1:{port}"
    srv._watch()
    srv.ready()
    status, out, err = srv.stop()
    assert status == 0, err
    for line in STARTUP:
        assert f"INFO:     {line}" in err, err
    assert re.search(r'^INFO:     127\.0\.0\.1:\d+ - "GET /ready HTTP/1\.1" 200 OK$', out,
                     re.M), out


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1)")
@pytest.mark.parametrize("server", SERVERS)
def test_ipv6_url_is_logged_in_brackets(run, server):
    port = free_port()
    srv = run(server, "--host", "::1", "--port", str(port), port=port, host="::1")
    status, _, err = srv.stop()
    assert status == 0 and f"cymongoose running on http://[::1]:{port} " in err, err
