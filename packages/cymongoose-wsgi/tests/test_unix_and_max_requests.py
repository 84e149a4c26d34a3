"""`WSGIServer` on a Unix socket (``uds``, or an ``fd`` that is one) and with
``limit_max_requests`` or a retiring watchdog, in both modes. On a Unix socket the
environ is gunicorn's: ``REMOTE_ADDR`` ``""``, no ``REMOTE_PORT``."""

from __future__ import annotations

import json
import socket
import threading
from wsgiref.validate import validator

import httpx
import pytest
from cymongoose.serving.watchdog import Watchdog

from cymongoose.wsgi import WSGIServer

WAIT_S = 30


def addresses(environ, start_response):
    keys = ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT")
    body = json.dumps({k: environ.get(k, "absent") for k in keys}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def run(server: WSGIServer) -> threading.Thread:
    if not server._listeners:
        server.listen()
    thread = threading.Thread(target=server.run, kwargs={"poll_ms": 20}, daemon=True)
    thread.start()
    return thread


def stop(server: WSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    thread.join(WAIT_S)
    assert not thread.is_alive()


UNIX_ENVIRON = {"REMOTE_ADDR": "", "REMOTE_PORT": "absent", "SERVER_NAME": "localhost",
                "SERVER_PORT": "80"}


def test_uds_environ(tmp_path, threads):
    path = str(tmp_path / "app.sock")
    server = WSGIServer(validator(addresses), threads=threads, uds=path)
    thread = run(server)
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=WAIT_S) as c:
            bodies = [c.get("http://localhost/").json() for _ in range(3)]
    finally:
        stop(server, thread)
    assert server.unix_path == path
    assert bodies == [UNIX_ENVIRON] * 3


def test_unix_fd_environ_through_the_fast_path(tmp_path, threads):
    path = str(tmp_path / "fd.sock")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)
        sock.listen()
        server = WSGIServer(addresses, threads=threads, fd=sock.fileno())
        thread = run(server)
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=WAIT_S) as c:
            assert c.get("http://localhost/").json() == UNIX_ENVIRON
    finally:
        stop(server, thread)


def test_max_requests_stops_run(threads):
    server = WSGIServer(addresses, threads=threads, port=0, limit_max_requests=3)
    url = f"http://127.0.0.1:{server.listen().local_addr[1]}/"
    thread = run(server)
    with httpx.Client(timeout=WAIT_S) as c:
        for _ in range(3):
            assert c.get(url).status_code == 200
    thread.join(WAIT_S)
    assert not thread.is_alive(), "run() did not return after 3 requests"


def test_retiring_closes_keep_alive_between_requests_and_keeps_serving(threads):
    retired = threading.Event()
    dog = Watchdog(max_requests=2, on_retire=retired.set)
    server = WSGIServer(addresses, threads=threads, port=0, watchdog=dog)
    url = f"http://127.0.0.1:{server.listen().local_addr[1]}/"
    thread = run(server)
    try:
        with httpx.Client(timeout=WAIT_S) as c:
            first = c.get(url)
            second = c.get(url)  # the limit: acted on before it is answered
            assert retired.wait(WAIT_S)
            later = [c.get(url) for _ in range(3)]  # still served, one per connection
    finally:
        stop(server, thread)
    assert first.headers.get("connection") != "close"
    assert second.headers["connection"] == "close"
    assert all(r.status_code == 200 and r.headers["connection"] == "close" for r in later)


@pytest.mark.parametrize("bad", ["", "a\0b"])
def test_bad_uds_is_a_value_error(bad):
    with pytest.raises(ValueError, match="uds must be a file system path"):
        WSGIServer(addresses, uds=bad)
