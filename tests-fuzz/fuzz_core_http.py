"""Fuzz target: the core's HTTP/1.1 server protocol (request parsing, bodies, WebSocket frames).

    python tests-fuzz/fuzz_core_http.py CORPUS_DIR... [libFuzzer flags, e.g. -max_total_time=60]

One long-lived ``Manager`` per process listens on loopback with
``Connection.configure_http_server`` (small limits, so that 400/413/431/501 and streamed
bodies are reached with small inputs). Each input is sent as raw bytes on a new loopback
connection and the manager is polled, on this thread, until the server has answered or
gone quiet. The handler touches every ``HttpMessage`` accessor, echoes streamed bodies'
sizes and upgrades ``Upgrade: websocket`` requests (so that the rest of the input is
parsed as WebSocket frames).

Fails (raises, so atheris reports the input) when:

- the server sends anything that does not start with an HTTP/1.1 status line;
- a handler raised (``error_handler``);
- afterwards, the server does not answer a normal request on another keep-alive
  connection within ``PROBE_POLLS`` polls (a hang, or the listener is gone);
- the process crashes (a memory error in C: the fuzzer dies, atheris reports it).

The C code is not coverage-instrumented (atheris sees the Python side only). To steer
the mutations anyway, what the server did (the status codes it answered, in order; the
events the handler saw) is turned into coverage with :func:`feedback.observe`; the seeds
(``corpus/core_http``) and the dictionary (``http.dict``) do the rest.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import atheris
import cymongoose
import feedback
from cymongoose import MG_EV_HTTP_MSG, MG_EV_WS_MSG, Manager

EV_HTTP_BODY = cymongoose.EV_HTTP_BODY
# Polls (1 ms each at most) to wait for the probe's answer before calling it a hang.
PROBE_POLLS = 20000
# Polls (no wait) without news after which a fuzz connection counts as answered or waiting.
QUIET_POLLS = 4
PROBE_REQUEST = b"GET /probe?x=1 HTTP/1.1\r\nHost: fuzz\r\n\r\n"
PROBE_BODY = b"probe-ok"


class HandlerError(Exception):
    """A Python handler raised while the server processed a fuzz input."""


class Server:
    """The long-lived server: one listener, polled by whoever calls :meth:`poll`."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.events: list[int] = []
        self.accessed: tuple[Any, ...] = ()
        self.mgr = Manager(self.handle, error_handler=self.errors.append)
        self.listener = self.mgr.listen("http://127.0.0.1:0", self.handle, http=True)
        self.listener.configure_http_server(
            max_header_count=20, max_header_bytes=2048, max_body_size=16384,
            stream_threshold=512, keep_alive_timeout_ms=600_000, header_timeout_ms=600_000,
            max_connections=64, ws_max_size=4096)
        self.port = self.listener.local_addr[1]
        self.probe: socket.socket | None = None
        self.body_sizes: dict[int, int] = {}

    def handle(self, conn: Any, ev: int, data: Any) -> None:
        self.events.append(ev)
        if ev == MG_EV_HTTP_MSG:
            msg: Any = data
            method, path, query, proto, headers, body = msg.parts()
            # Every accessor, as an adapter or a user would call them.
            self.accessed = (msg.method, msg.uri, msg.query, msg.proto, msg.headers(),
                             msg.header("host"), msg.header("content-length", ""),
                             msg.query_var("x"), msg.header_var("cookie", "a"), msg.status(),
                             msg.body_text)
            if path == b"/probe":
                conn.send_response(200, [(b"content-type", b"text/plain")], PROBE_BODY)
                return
            if (msg.header("upgrade", "") or "").lower() == "websocket":
                if msg.header("sec-websocket-key"):
                    conn.ws_upgrade(msg)
                    return
            if msg.more_body:
                self.body_sizes[conn.id] = len(body)
                return
            conn.send_response(200, [(b"x-method", method.encode("latin-1"))],
                               b"%d %d %d" % (len(headers), len(query), len(body)))
        elif ev == EV_HTTP_BODY:
            piece = bytes(data)
            if piece:
                self.body_sizes[conn.id] = self.body_sizes.get(conn.id, 0) + len(piece)
            else:
                size = self.body_sizes.pop(conn.id, 0)
                conn.send_response(200, [], b"streamed %d" % size)
        elif ev == MG_EV_WS_MSG:
            conn.ws_send(data.data, data.flags & 15)

    def check_errors(self) -> None:
        if self.errors:
            error, self.errors[:] = self.errors[0], []
            raise HandlerError(f"a handler raised: {error!r}") from error

    def probe_ok(self) -> None:
        """Send a normal request on the probe connection; raise if it is not answered."""
        for _attempt in range(2):
            if self.probe is None:
                self.probe = socket.create_connection(("127.0.0.1", self.port))
                self.probe.setblocking(False)
            try:
                self.probe.sendall(PROBE_REQUEST)
            except OSError:
                self.probe.close()
                self.probe = None
                continue
            got = b""
            for _ in range(PROBE_POLLS):
                self.mgr.poll(1)
                try:
                    chunk = self.probe.recv(65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    break  # closed (e.g. the 503 limit was hit earlier): reconnect once
                got += chunk
                if got.endswith(PROBE_BODY):
                    if not got.startswith(b"HTTP/1.1 200 "):
                        raise AssertionError(f"probe answered {got[:200]!r}")
                    return
            else:
                raise AssertionError(
                    f"no answer to a normal request after {PROBE_POLLS} polls: {got[:200]!r}")
            self.probe.close()
            self.probe = None
        raise AssertionError("the server closed two probe connections without answering")

    def send(self, data: bytes) -> bytes:
        """Send ``data`` on a new connection, poll until quiet; return what came back."""
        client = socket.create_connection(("127.0.0.1", self.port))
        client.setblocking(False)
        got = b""
        try:
            view = memoryview(data)
            quiet = 0
            closed = False
            while quiet < QUIET_POLLS and not closed:
                progress = False
                if view:
                    try:
                        sent = client.send(view)
                        view = view[sent:]
                        progress = True
                    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                        pass
                self.mgr.poll(0)
                while True:
                    try:
                        chunk = client.recv(65536)
                    except BlockingIOError:
                        break
                    except ConnectionResetError:
                        closed = True
                        break
                    if not chunk:
                        closed = True
                        break
                    got += chunk
                    progress = True
                quiet = 0 if progress else quiet + 1
        finally:
            client.close()
        self.mgr.poll(0)  # let the server see the close
        return got


SERVER: Server | None = None


def test_one_input(data: bytes) -> None:
    global SERVER
    if SERVER is None:
        SERVER = Server()
    SERVER.events.clear()
    got = SERVER.send(data)
    SERVER.check_errors()
    if got and not got.startswith(b"HTTP/1.1 "):
        raise AssertionError(f"answer does not start with a status line: {got[:200]!r}")
    feedback.observe("events", tuple(SERVER.events[:8]))
    feedback.observe("statuses", tuple(feedback.STATUS_LINE.findall(got)[:6]))
    feedback.observe("size", len(got).bit_length())
    SERVER.probe_ok()
    SERVER.check_errors()


def main() -> None:
    atheris.instrument_func(Server.handle)
    atheris.Setup(sys.argv, atheris.instrument_func(test_one_input))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
