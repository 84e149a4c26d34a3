"""The remaining WSGI apps of the repository under ``wsgiref.validate`` (warnings as errors):
the adversarial suite's plain WSGI app and examples/wsgi/hello.py. (The Flask, Django, Bottle
and Falcon apps are validated in their own test modules.)"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import warnings
from pathlib import Path
from wsgiref.validate import validator

import httpx
import pytest
from adversarial.conftest import Tracker, make_wsgi_app
from cymongoose.wsgi.testing import ServerThread
from wsgi_modes import wsgi_threads  # noqa: F401  (each test: pooled and inline)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for examples.wsgi.hello

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def strict():
    """Warnings (wsgiref.validate's included) become exceptions, in every thread."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_adversarial_app_under_validator(strict, threads):
    tracker = Tracker()
    body = bytes(range(256)) * 3000
    with ServerThread(validator(make_wsgi_app(tracker)), threads=threads, access_log=False) as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            r = client.post("/echo", content=body)
            assert r.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}

            def chunked():
                yield body[:100_000]
                yield body[100_000:]

            r = client.post("/echo", content=chunked())
            assert r.json()["length"] == len(body)

            r = client.get("/headers", headers={"X-One": "1"})
            names = [name for name, _ in r.json()["headers"]]
            assert "HTTP_X_ONE" in names

            r = client.get("/big", params={"n": 3 * 65536 + 5})
            assert r.content == b"x" * (3 * 65536 + 5)

            r = client.get("/some/where")
            assert r.status_code == 200
            assert bytes.fromhex(r.json()["path"]) == b"/some/where"
    assert tracker.wait("closed", "/big")


def test_example_hello_app_under_validator(strict, threads):
    from examples.wsgi.hello import app

    with ServerThread(validator(app), workers=threads and 2, access_log=False) as srv:
        with httpx.Client(base_url=srv.url) as client:
            assert client.get("/").text == "Hello from cymongoose-wsgi\n"
            env = client.get("/environ", params={"q": "1"}).text
            assert "QUERY_STRING=q=1\n" in env
            assert "REQUEST_METHOD=GET\n" in env
            assert client.post("/upper", content=b"shout").text == "SHOUT"
            assert client.head("/").content == b""


def test_http10_and_pipelining_under_validator(strict, threads):
    """Raw HTTP/1.0 and pipelined requests through the validator: environ and framing."""

    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length)
        body = json.dumps(
            {"path": environ["PATH_INFO"], "proto": environ["SERVER_PROTOCOL"], "n": len(data)}
        ).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    with ServerThread(validator(app), workers=threads and 2, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(
                b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /c HTTP/1.0\r\n\r\n"
            )
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    bodies = [json.loads(part.split(b"\r\n\r\n", 1)[1]) for part in data.split(b"HTTP/1.1 200")[1:]]
    assert bodies == [
        {"path": "/a", "proto": "HTTP/1.1", "n": 3},
        {"path": "/b", "proto": "HTTP/1.1", "n": 0},
        {"path": "/c", "proto": "HTTP/1.0", "n": 0},
    ]
