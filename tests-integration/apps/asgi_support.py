"""Helpers shared by the tests-integration/test_asgi_*.py modules."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so that ``examples.asgi.<module>`` imports, as from the CLI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], what: str, deadline_s: float = 60.0) -> Any:
    """Poll ``predicate`` until it returns something truthy, which is returned.

    A liveness guard, not a timing check: ``deadline_s`` is far beyond what the work needs,
    and running out of it fails the test with ``what`` in the message.
    """
    end = time.monotonic() + deadline_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@contextmanager
def cli_server(
    app_spec: str, *extra: str, cwd: Path = ROOT
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``python -m cymongoose.asgi <app_spec> --port <free>`` from ``cwd``; yield
    ``(url, process)`` once it answers ``GET /``; terminate it (if still running) after."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cymongoose.asgi", app_spec, "--port", str(port), *extra],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                raise AssertionError(f"server exited with {proc.returncode}:\n{out}")
            try:
                httpx.get(url + "/", timeout=5)
                return True
            except httpx.TransportError:
                return False

        wait_for(up, f"{app_spec} to listen on port {port}")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def raw_request(port: int, request: bytes, *, timeout_s: float = 10.0) -> bytes:
    """Send ``request`` bytes on a fresh connection; return everything read until the
    server closes (send ``Connection: close``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(request)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def split_response(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, [(lower-cased name, value)...], body) of one HTTP/1.x response with a
    Content-Length (or read-until-close) body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return status, headers, body
