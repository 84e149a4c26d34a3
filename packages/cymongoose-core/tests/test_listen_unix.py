"""``Manager.listen(fd=)`` on a Unix socket; ``Connection.request_count``, ``request_limit``
and EV_REQUEST_LIMIT.

mongoose has no Unix socket URLs: the servers bind one in Python and hand its descriptor
over. What it accepts must be served like TCP connections, with empty addresses (mongoose
keeps only IP addresses). ``request_count`` is what the servers' max-requests limit reads.
"""

from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest
from cymongoose import EV_REQUEST_LIMIT, MG_EV_HTTP_MSG, Manager

WAIT_S = 10


class Loop:
    """A Manager polled by a thread; ``listener`` serves ``handler`` on ``fd``."""

    def __init__(self, fd: int, handler, url: str = "http://127.0.0.1:0") -> None:
        self.mgr = Manager()
        self.listener = self.mgr.listen(url, handler, fd=fd)
        self.listener.configure_http_server(max_header_bytes=4096)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.mgr.poll(10)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)
        self.mgr.close()


def addresses(conn, ev, data):
    """Answer every request with the connection's addresses as JSON."""
    if ev == MG_EV_HTTP_MSG:
        body = json.dumps({"remote": conn.remote_addr, "local": conn.local_addr,
                           "uri": data.uri})
        conn.reply(200, body, headers={"Content-Type": "application/json"})


@pytest.fixture
def unix_listener(tmp_path):
    path = str(tmp_path / "s.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(16)
    yield sock, path
    sock.close()


def test_serves_a_unix_socket_with_empty_addresses(unix_listener):
    sock, path = unix_listener
    loop = Loop(sock.fileno(), addresses)
    try:
        assert loop.listener.local_addr == ("", 0, False)
        with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=WAIT_S) as client:
            for i in range(3):  # one keep-alive connection
                body = client.get(f"http://localhost/n{i}").json()
                assert body == {"remote": ["", 0, False], "local": ["", 0, False],
                                "uri": f"/n{i}"}
        assert loop.listener.request_count == 3
    finally:
        loop.close()


def test_request_count_is_shared_and_skips_rejected_requests():
    sock = socket.create_server(("127.0.0.1", 0))
    seen = []

    def handler(conn, ev, data):
        addresses(conn, ev, data)
        if ev == MG_EV_HTTP_MSG:
            seen.append(conn.request_count)

    loop = Loop(sock.fileno(), handler)
    try:
        assert loop.listener.request_count == 0
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with httpx.Client(timeout=WAIT_S) as client:
            assert client.get(base + "/a").status_code == 200
            assert client.get(base + "/b", headers={"X-Big": "x" * 8000}).status_code == 431
        assert httpx.get(base + "/c", timeout=WAIT_S).status_code == 200
        assert seen == [1, 2]  # the accepted connections read the listener's count
        assert loop.listener.request_count == 2
    finally:
        loop.close()
        sock.close()


def test_listen_fd_rejects_a_unix_socket_that_is_not_listening(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp_path / "idle.sock"))
    with sock, Manager() as mgr:
        with pytest.raises(ValueError, match=f"fd {sock.fileno()} is not a listening"):
            mgr.listen("http://127.0.0.1:0", fd=sock.fileno())


def test_closed_connection_counts_nothing(unix_listener):
    sock, _ = unix_listener
    with Manager() as mgr:
        listener = mgr.listen("http://x:0", addresses, fd=sock.fileno())
        listener.close()
        mgr.poll(0)
        assert listener.request_count == 0 and listener.local_addr is None


def test_request_limit_event_reaches_the_listener_once():
    sock = socket.create_server(("127.0.0.1", 0))
    events = []

    def handler(conn, ev, data):
        if ev == EV_REQUEST_LIMIT:
            events.append(("limit", conn.is_listening, conn.request_count, data))
        elif ev == MG_EV_HTTP_MSG:
            events.append(("request", data.uri))
            addresses(conn, ev, data)

    loop = Loop(sock.fileno(), handler)
    try:
        loop.listener.request_limit = 2
        assert loop.listener.request_limit == 2
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with httpx.Client(timeout=WAIT_S) as client:
            for i in range(4):
                assert client.get(f"{base}/{i}").status_code == 200
    finally:
        loop.close()
        sock.close()
    # Once, on the listener, before the request that reaches the limit is dispatched.
    assert events == [("request", "/0"), ("limit", True, 2, None), ("request", "/1"),
                      ("request", "/2"), ("request", "/3")]


def test_request_limit_needs_a_configured_listener():
    sock = socket.create_server(("127.0.0.1", 0))
    with sock, Manager() as mgr:
        plain = mgr.listen("http://127.0.0.1:0", addresses, fd=sock.fileno())
        with pytest.raises(RuntimeError, match="configure_http_server"):
            plain.request_limit = 5
        assert plain.request_limit == 0
        plain.configure_http_server()
        with pytest.raises(ValueError, match="request_limit must be >= 0, got -1"):
            plain.request_limit = -1
        with pytest.raises(TypeError, match="request_limit must be an int"):
            plain.request_limit = "5"
