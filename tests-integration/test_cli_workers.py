"""The command lines, ``--workers`` and the gunicorn worker classes, as users run them.

Each server runs in a subprocess on a free port and is checked with httpx: the ASGI CLI
serves a FastAPI app, the WSGI CLI a Flask app (tests-integration/apps/cli_*.py), both
also with ``--workers 2``, and gunicorn runs each app with our worker classes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trustme

APPS = Path(__file__).parent / "apps"
ASGI_APP, WSGI_APP = "cli_fastapi_app:app", "cli_flask_app:app"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class Served:
    """A server subprocess; ``get``/``post`` talk to it, ``stop`` SIGTERMs it."""

    def __init__(self, argv: list[str], scheme: str = "http", verify: object = True) -> None:
        self.port = free_port()
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.verify = verify
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.proc = subprocess.Popen(argv, cwd=APPS, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out = self.err = ""

    def wait_ready(self) -> Served:
        """Retry until the server answers (it is starting up); fail if it exits."""
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.err}")
            try:
                httpx.get(self.base + "/info", timeout=5, verify=self.verify)
                return self
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"server never answered:\n{self.err}")
                time.sleep(0.2)

    def get(self, path: str = "/info", **kwargs) -> httpx.Response:
        return httpx.get(self.base + path, timeout=30, verify=self.verify, **kwargs)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.out, self.err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.out, self.err = self.proc.communicate()
            pytest.fail(f"server did not stop on signal {sig}:\n{self.err}")
        return self.proc.returncode


@pytest.fixture
def serve():
    started: list[Served] = []

    def start(*argv: str, scheme: str = "http", verify: object = True) -> Served:
        served = Served(list(argv), scheme, verify)
        started.append(served)
        return served.wait_ready()

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.communicate()


def cli(server: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"cymongoose.{server}", *args, "--port", "{port}"]


def script(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(path).exists(), f"console script {name} is not installed"
    return path


# -- the CLIs --------------------------------------------------------------------------


def test_asgi_cli_serves_fastapi(serve):
    served = serve(*cli("asgi", ASGI_APP))
    r = served.get()
    assert r.status_code == 200
    assert r.json()["server"] == "fastapi" and r.json()["pid"] == served.proc.pid
    assert served.get("/nope").status_code == 404
    r = httpx.post(served.base + "/echo", content=b"x" * 100_000, timeout=30)
    assert r.json() == {"size": 100_000}
    assert served.stop() == 0
    assert '"GET /info HTTP/1.1" 200' in served.out
    assert '"GET /nope HTTP/1.1" 404' in served.out


def test_wsgi_cli_serves_flask(serve):
    served = serve(*cli("wsgi", WSGI_APP, "--threads", "4"))
    r = served.get()
    assert r.status_code == 200
    assert r.json()["server"] == "flask" and r.json()["pid"] == served.proc.pid
    r = httpx.post(served.base + "/echo", content=b"x" * 100_000, timeout=30)
    assert r.json() == {"size": 100_000}
    assert served.stop() == 0
    assert '"GET /info HTTP/1.1" 200' in served.out


@pytest.mark.parametrize(("name", "app"), [("cymongoose-asgi", "cli_fastapi_app:create_app"),
                                           ("cymongoose-wsgi", "cli_flask_app:app")])
def test_console_scripts(serve, name, app):
    factory = ["--factory"] if "create_app" in app else []
    served = serve(script(name), app, *factory, "--port", "{port}", "--no-access-log")
    assert served.get().status_code == 200
    assert served.stop() == 0
    assert "/info" not in served.out  # --no-access-log


@pytest.mark.parametrize("server", ["asgi", "wsgi"])
def test_root_path_and_proxy_headers_flags(serve, server):
    app = ASGI_APP if server == "asgi" else WSGI_APP
    served = serve(*cli(server, app, "--root-path", "/api"))
    body = served.get(headers={"X-Forwarded-For": "203.0.113.9",
                               "X-Forwarded-Proto": "https"}).json()
    assert body["root_path"] == "/api"
    # 127.0.0.1 is trusted by default: the proxy headers apply.
    assert (body["client"], body["scheme"]) == ("203.0.113.9", "https")
    served.stop()

    served = serve(*cli(server, app, "--no-proxy-headers"))
    body = served.get(headers={"X-Forwarded-For": "203.0.113.9"}).json()
    assert body["client"] == "127.0.0.1" and body["scheme"] == "http"


@pytest.mark.parametrize("server", ["asgi", "wsgi"])
def test_untrusted_proxy_headers_are_ignored(serve, server):
    app = ASGI_APP if server == "asgi" else WSGI_APP
    served = serve(*cli(server, app, "--forwarded-allow-ips", "10.9.9.9"))
    body = served.get(headers={"X-Forwarded-For": "203.0.113.9"}).json()
    assert body["client"] == "127.0.0.1"


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("server", ["asgi", "wsgi"])
def test_cli_bad_app_exits_1(server, workers):
    proc = subprocess.run([sys.executable, "-m", f"cymongoose.{server}", "no_such_mod:app",
                           "--port", str(free_port()), "--workers", workers],
                          cwd=APPS, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "no_such_mod" in proc.stderr


@pytest.mark.parametrize("server", ["asgi", "wsgi"])
def test_cli_bad_flag_value_exits_2(server):
    proc = subprocess.run([sys.executable, "-m", f"cymongoose.{server}", "m:app",
                           "--limit-request-fields", "1000"],
                          cwd=APPS, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "max_header_count" in proc.stderr


@pytest.mark.parametrize("server", ["asgi", "wsgi"])
def test_cli_serves_https_from_cert_and_key(serve, server, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    app = ASGI_APP if server == "asgi" else WSGI_APP
    served = serve(*cli(server, app, "--ssl-certfile", str(tmp_path / "cert.pem"),
                        "--ssl-keyfile", str(tmp_path / "key.pem")),
                   scheme="https", verify=client_ctx)
    body = served.get().json()
    assert body["scheme"] == "https"


# -- --workers ---------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["asgi", "wsgi"])
def test_workers_2_serve_and_sigterm_stops_all(serve, server):
    app = ASGI_APP if server == "asgi" else WSGI_APP
    served = serve(*cli(server, app, "--workers", "2", "--no-access-log"))
    pids = set()
    for _ in range(40):
        # A new connection each time, so that either process may accept it.
        r = served.get(headers={"Connection": "close"})
        assert r.status_code == 200
        pids.add(r.json()["pid"])
    assert served.proc.pid not in pids and 1 <= len(pids) <= 2
    assert served.stop() == 0
    assert all(gone(pid) for pid in pids)
    # One start-up line per process, from the process itself.
    assert served.err.count("Started server process") == 2


# -- gunicorn ----------------------------------------------------------------------------


def gunicorn(worker: str, app: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-k", worker, "-b", "127.0.0.1:{port}",
            "--graceful-timeout", "10", *args, app]


@pytest.mark.parametrize(
    ("worker", "app", "framework"),
    [("cymongoose.asgi.workers.ASGIWorker", ASGI_APP, "fastapi"),
     ("cymongoose.wsgi.workers.WSGIWorker", WSGI_APP, "flask")],
)
def test_gunicorn_worker_serves(serve, worker, app, framework):
    served = serve(*gunicorn(worker, app, "--workers", "2", "--access-logfile", "-"))
    pids = set()
    for _ in range(20):
        r = served.get(headers={"Connection": "close"})
        assert r.status_code == 200 and r.json()["server"] == framework
        pids.add(r.json()["pid"])
    assert served.proc.pid not in pids  # served by gunicorn's worker processes
    r = httpx.post(served.base + "/echo", content=b"y" * 200_000, timeout=30)
    assert r.json() == {"size": 200_000}
    assert served.stop() == 0
    assert all(gone(pid) for pid in pids)
    assert '"GET /info HTTP/1.1" 200' in served.out
