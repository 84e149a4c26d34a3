"""Issue 20 acceptance: REDbot (pip ``redbot``, "lint for HTTP") finds nothing in our
responses that it does not also find in gunicorn's (the Flask app) or uvicorn's (the
FastAPI app) for the same app: a Flask JSON route, a Flask stream, a FastAPI JSON route,
a Starlette static file and 404s. Each server runs as its own command line process."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

APPS = Path(__file__).parent / "apps"
WAIT_S = 60.0  # failure bound for a server to start, never a measured duration
# Notes whose presence depends on when the request fell within a second (the age that a
# Date cached per second implies), not on the response.
TIMING_NOTES = {"CURRENT_AGE"}

missing = [m for m in ("redbot", "uvicorn", "gunicorn") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(
    bool(missing), reason=f"needs {', '.join(missing)} (pip install redbot uvicorn gunicorn)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serving(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """``{name: port}`` for ours and theirs, each serving its app from tests-integration/apps."""
    static = tmp_path_factory.mktemp("redbot")
    (static / "style.css").write_text("body { color: #333; }\n" * 20)
    env = os.environ | {"REDBOT_STATIC_DIR": str(static), "PYTHONPATH": str(APPS)}
    py = sys.executable
    commands = {
        "cymongoose-wsgi": [py, "-m", "cymongoose.wsgi", "redbot_apps:flask_app",
                            "--no-access-log", "--port"],
        "gunicorn": [py, "-m", "gunicorn", "redbot_apps:flask_app", "--bind"],
        "cymongoose-asgi": [py, "-m", "cymongoose.asgi", "redbot_apps:fastapi_app",
                            "--no-access-log", "--port"],
        "uvicorn": [py, "-m", "uvicorn", "redbot_apps:fastapi_app", "--no-access-log",
                    "--port"],
    }
    ports, procs = {}, []
    try:
        for name, cmd in commands.items():
            port = ports[name] = _free_port()
            arg = f"127.0.0.1:{port}" if name == "gunicorn" else str(port)
            procs.append(subprocess.Popen([*cmd, arg], cwd=APPS, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + WAIT_S
        while not all(_serving(p) for p in ports.values()):
            assert time.monotonic() < deadline, f"servers did not start: {ports}"
            assert all(p.poll() is None for p in procs), "a server exited at start"
            time.sleep(0.1)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def redbot_notes(url: str) -> dict[str, str]:
    """REDbot's notes on ``url``: note id -> level (GOOD, INFO, WARN, BAD)."""
    out = subprocess.run([sys.executable, "-m", "redbot.cli", "-o", "har", url],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    (entry,) = json.loads(out)["log"]["entries"]
    return {note["note_id"]: note["level"] for note in entry["_red_messages"]}


@pytest.mark.parametrize(("ours", "theirs", "path"), [
    ("cymongoose-wsgi", "gunicorn", "/json"),
    ("cymongoose-wsgi", "gunicorn", "/stream"),
    ("cymongoose-wsgi", "gunicorn", "/missing"),
    ("cymongoose-asgi", "uvicorn", "/json"),
    ("cymongoose-asgi", "uvicorn", "/static/style.css"),
    ("cymongoose-asgi", "uvicorn", "/missing"),
])
def test_redbot_finds_nothing_theirs_does_not(servers, ours, theirs, path):
    mine = redbot_notes(f"http://127.0.0.1:{servers[ours]}{path}")
    reference = redbot_notes(f"http://127.0.0.1:{servers[theirs]}{path}")
    extra = {note: level for note, level in mine.items()
             if note not in reference and note not in TIMING_NOTES}
    assert extra == {}, f"{ours} {path}: {extra} (theirs: {reference})"
    assert "DATE_CORRECT" in mine  # RFC 9110 section 6.6.1: a Date, and a right one
