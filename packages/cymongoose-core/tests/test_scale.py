"""Many idle connections: quiet server connections (patches/0001-quiet-connections.patch).

Server connections whose handler does not see loop-iteration events (``io_events``
False) are visited by the poll loop only when they have I/O or work pending, or after
Python touched them. These tests hold a few hundred idle keep-alive connections and
WebSockets open and check that everything a user can see still happens: responses
and closes made outside a handler, pipelined requests after a deferred response,
keep-alive timeouts, ``Manager.close()``, MG_EV_POLL for connections that asked for it,
and that an idle connection gives its I/O buffers back.
"""

from __future__ import annotations

import base64
import os
import socket
import time

import pytest
from cymongoose import (
    MG_EV_CLOSE,
    MG_EV_HTTP_MSG,
    MG_EV_POLL,
    MG_EV_WS_MSG,
    WEBSOCKET_OP_TEXT,
    Manager,
)

IDLE = 300
REQUEST = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


class Server:
    """A Manager polled by the test thread itself, so every call is made between polls."""

    def __init__(self, handler, configured: bool, **http_server):
        self.errors: list[BaseException] = []
        self.closed: list[int] = []
        self.user = handler

        def on_event(conn, ev, data):
            if ev == MG_EV_CLOSE:
                self.closed.append(conn.id)
            self.user(conn, ev, data)

        self.mgr = Manager(on_event, error_handler=self.errors.append)
        self.listener = self.mgr.listen("http://127.0.0.1:0")
        self.listener.io_events = False
        if configured:
            self.listener.configure_http_server(**http_server)
        self.port = self.listener.local_addr[1]

    def pump(self, until, timeout_s: float = 20.0) -> None:
        """Poll until ``until()`` is true; fail (a liveness bound, not a timing check)."""
        deadline = time.monotonic() + timeout_s
        while not until():
            assert time.monotonic() < deadline, "server made no progress"
            self.mgr.poll(5)
        assert not self.errors, self.errors

    def client(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setblocking(False)
        return s

    def clients(self, n: int) -> list[Reader]:
        """``n`` connected clients; accepted in batches that fit the listen backlog."""
        out = []
        for i in range(n):
            if i and i % 64 == 0:
                for _ in range(80):  # mongoose accepts one connection per poll
                    self.mgr.poll(0)
            out.append(Reader(self.client()))
        return out

    def close(self):
        if not self.mgr.closed:
            self.mgr.close()


class Reader:
    """Accumulates what a non-blocking client socket received; ``eof`` once closed."""

    def __init__(self, sock: socket.socket):
        self.sock, self.data, self.eof = sock, b"", False

    def poll(self) -> bytes:
        while not self.eof:
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.data += chunk
        return self.data


def responses(data: bytes) -> int:
    return data.count(b"HTTP/1.1 200")


@pytest.fixture(params=["configured", "plain"])
def configured(request):
    """Both server flavours: configure_http_server() (the core's protocol) and mongoose's."""
    return request.param == "configured"


def open_idle(server: Server, n: int = IDLE) -> list[Reader]:
    """``n`` keep-alive connections that each made one request and got its answer."""
    readers = server.clients(n)
    for r in readers:
        r.sock.sendall(REQUEST)
    server.pump(lambda: all(responses(r.poll()) == 1 for r in readers))
    return readers


def hello(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        conn.reply(200, b"hi")


def test_requests_are_answered_with_many_idle_connections(configured):
    server = Server(hello, configured)
    try:
        idle = open_idle(server)
        active = Reader(server.client())
        for n in range(1, 6):
            active.sock.sendall(REQUEST)
            server.pump(lambda n=n: responses(active.poll()) == n)
        assert not any(r.poll() != r.data or r.eof for r in idle)
    finally:
        server.close()


def test_response_written_outside_the_handler_reaches_an_idle_connection(configured):
    waiting = []

    def deferred(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            waiting.append(conn)  # answered later, from outside any handler

    server = Server(deferred, configured)
    try:
        idle = server.clients(IDLE)
        for r in idle:
            r.sock.sendall(REQUEST)
        server.pump(lambda: len(waiting) == IDLE)
        for _ in range(3):
            server.mgr.poll(5)  # every connection is idle now, waiting for its answer
        for conn in waiting[::2]:
            conn.reply(200, b"late")
        server.pump(lambda: all(responses(r.poll()) == 1 for r in idle[::2]))
        assert not any(r.poll() for r in idle[1::2])
    finally:
        server.close()


def test_response_from_a_timer_reaches_an_idle_connection(configured):
    waiting = []

    def deferred(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            waiting.append(conn)

    server = Server(deferred, configured)
    try:
        readers = server.clients(50)
        for r in readers:
            r.sock.sendall(REQUEST)
        server.pump(lambda: len(waiting) == 50)
        server.mgr.timer_add(20, lambda: [c.reply(200, b"t") for c in waiting])
        server.pump(lambda: all(responses(r.poll()) == 1 for r in readers))
    finally:
        server.close()


def test_pipelined_request_is_served_after_a_deferred_response(configured):
    waiting = []

    def deferred(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            waiting.append(conn)

    server = Server(deferred, configured)
    try:
        others = server.clients(100)
        for r in others:
            r.sock.sendall(REQUEST)
        server.pump(lambda: len(waiting) == 100)
        waiting.clear()
        pipelined = Reader(server.client())
        pipelined.sock.sendall(REQUEST + REQUEST)
        server.pump(lambda: len(waiting) == 1)
        for _ in range(3):
            server.mgr.poll(5)
        waiting.pop().reply(200, b"first")
        server.pump(lambda: len(waiting) == 1)  # the second request reached the handler
        waiting.pop().reply(200, b"second")
        server.pump(lambda: responses(pipelined.poll()) == 2)
        assert pipelined.data.index(b"first") < pipelined.data.index(b"second")
    finally:
        server.close()


def test_close_called_between_polls_closes_an_idle_connection(configured):
    conns = {}

    def remember(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conns[conn.remote_addr[1]] = conn
            conn.reply(200, b"hi")

    server = Server(remember, configured)
    try:
        idle = open_idle(server, 100)
        for _ in range(3):
            server.mgr.poll(5)
        victim = idle[17]
        conns[victim.sock.getsockname()[1]].close()
        server.pump(lambda: victim.poll() is not None and victim.eof)
        assert not any(r.eof for r in idle if r is not victim)
    finally:
        server.close()


def test_keep_alive_timeout_closes_idle_connections():
    server = Server(hello, True, keep_alive_timeout_ms=200)
    try:
        idle = open_idle(server, 100)
        server.pump(lambda: all(r.poll() is not None and r.eof for r in idle))
        assert len(server.closed) == 100
    finally:
        server.close()


def test_manager_close_closes_every_idle_connection(configured):
    server = Server(hello, configured)
    idle = open_idle(server)
    for _ in range(3):
        server.mgr.poll(5)
    listener_id = server.listener.id
    server.mgr.close()
    assert len(set(server.closed) - {listener_id}) == IDLE
    deadline = time.monotonic() + 20
    while not all(r.poll() is not None and r.eof for r in idle):
        assert time.monotonic() < deadline, "clients never saw the close"
        time.sleep(0.01)


def test_idle_connection_gives_its_buffers_back():
    # The core's keep-alive sweep frees the buffers of a connection idle for a second
    # (not right after each response: freeing zeroes them, a cost per request).
    conns = []

    def remember(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conns.append(conn)
            conn.reply(200, b"x" * 20000)

    server = Server(remember, True)
    try:
        [reader] = open_idle(server, 1)
        assert len(reader.data) > 20000
        server.pump(lambda: conns[0].send_len == 0)
        server.mgr.poll(5)
        assert conns[0].send_size > 0  # kept while the connection may be busy again
        server.pump(lambda: (conns[0].recv_size, conns[0].send_size) == (0, 0))
        reader.sock.sendall(REQUEST)  # and it serves the next request as before
        server.pump(lambda: responses(reader.poll()) == 2)
    finally:
        server.close()


def test_io_events_connections_get_mg_ev_poll_every_iteration():
    polls: dict[int, int] = {}

    def counting(conn, ev, data):
        if ev == MG_EV_POLL:
            polls[conn.id] = polls.get(conn.id, 0) + 1
        elif ev == MG_EV_HTTP_MSG:
            conn.reply(200, b"hi")

    quiet = Server(hello, True)
    loud = quiet.mgr.listen("http://127.0.0.1:0", counting)  # io_events True (default)
    try:
        open_idle(quiet)
        loud_clients = []
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", loud.local_addr[1]), timeout=10)
            s.sendall(REQUEST)
            s.setblocking(False)
            loud_clients.append(Reader(s))
        quiet.pump(lambda: all(responses(r.poll()) == 1 for r in loud_clients))
        for _ in range(3):
            quiet.mgr.poll(0)
        polls.clear()
        for _ in range(10):
            quiet.mgr.poll(0)
        # the loud listener and its three accepted connections: one MG_EV_POLL per poll()
        assert sorted(polls.values()) == [10, 10, 10, 10]
    finally:
        quiet.close()


def _ws_upgrade_request() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def _masked_text_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


def test_idle_websockets_receive_pushes_and_echo(configured):
    sockets = []

    def ws(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.ws_upgrade(data)
            sockets.append(conn)
        elif ev == MG_EV_WS_MSG:
            conn.ws_send(b"echo:" + data.data, WEBSOCKET_OP_TEXT)

    server = Server(ws, configured)
    try:
        clients = server.clients(IDLE)
        for r in clients:
            r.sock.sendall(_ws_upgrade_request())
        server.pump(lambda: all(b"101 Switching" in r.poll() for r in clients))
        for _ in range(3):
            server.mgr.poll(5)
        for r in clients:
            r.data = b""
        sockets[42].ws_send(b"push", WEBSOCKET_OP_TEXT)  # from outside any handler
        server.pump(lambda: clients[42].poll().endswith(b"push"))
        clients[7].sock.sendall(_masked_text_frame(b"ping"))
        server.pump(lambda: clients[7].poll().endswith(b"echo:ping"))
        assert all(not r.poll() for i, r in enumerate(clients) if i not in (7, 42))
    finally:
        server.close()
