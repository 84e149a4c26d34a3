"""Every example in examples/ runs, exactly as its docstring says.

Conventions (docs/guides/examples.md) that make an example runnable here:

- The module docstring has a line ``Run: ``<command>````, the command a reader types from
  the repository root (``python examples/core/http_server.py --port 8000`` or
  ``python -m cymongoose.asgi examples.asgi.hello:app``). The test runs that command with
  this interpreter and a free port (``--port N`` replaced, or appended).
- A server example is started, sent one ``GET /`` (which must not fail with a 5xx), then
  stopped with SIGTERM, on which it must exit with status 0 (graceful shutdown).
- An example that finishes by itself carries the comment ``# example: runs to completion``;
  it must exit with status 0.

Files are discovered (every ``examples/**/*.py`` except ``__init__.py``), so new examples
are covered without editing this test; one without a ``Run:`` line fails it.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RUNS_TO_COMPLETION = "# example: runs to completion"
START_TIMEOUT_S = 60  # a generous bound for imports on a loaded machine, not a measurement


def _examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*.py")
                  if p.name != "__init__.py" and "__pycache__" not in p.parts)


def _run_command(path: Path) -> list[str]:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    match = re.search(r"^Run:\s*``(.+?)``", doc, re.M)
    if not match:
        pytest.fail(f"{path.relative_to(ROOT)}: the docstring has no 'Run: ``command``' "
                    "line (see docs/guides/examples.md)")
    argv = shlex.split(match.group(1))
    if argv[0] not in ("python", "python3"):
        pytest.fail(f"{path.relative_to(ROOT)}: the Run: command must start with python")
    return [sys.executable, *argv[1:]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_port(argv: list[str], port: int) -> list[str]:
    argv = list(argv)
    if "--port" in argv:
        argv[argv.index("--port") + 1] = str(port)
    else:
        argv += ["--port", str(port)]
    return argv


def test_examples_are_found():
    names = {p.relative_to(EXAMPLES).as_posix() for p in _examples()}
    assert {"demo_app.py", "core/http_server.py", "wsgi/hello.py"} <= names


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_example_runs(path: Path):
    port = _free_port()
    argv = _with_port(_run_command(path), port)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if RUNS_TO_COMPLETION in path.read_text():
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        response = None
        deadline = time.monotonic() + START_TIMEOUT_S
        while response is None and proc.poll() is None and time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
            except httpx.TransportError:
                time.sleep(0.1)
        if response is None:
            proc.kill()
            out = proc.communicate()[0]
            pytest.fail(f"{' '.join(argv)} never answered (exit {proc.returncode}):\n{out}")
        assert response.status_code < 500, response.text
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
        assert proc.returncode == 0, f"exit {proc.returncode} after SIGTERM:\n{out}"
        assert "Traceback" not in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
