"""Every public Connection and Manager member, called from inside the handler of every
event type a loopback peer can cause, and on connections and managers after close.

Each call must end in a value or an ordinary exception (never a crash, a hang or an
AddressSanitizer report: run this module under ``nox -s asan -- -k every_event``), and
the loop must keep serving: every case ends with a fresh HTTP round trip on the same
manager. The matrix is built from ``dir(Connection)`` and ``dir(Manager)``, so a new
public member fails here until it has an argument recipe below.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import struct
import time

import cymongoose as m
import pytest
from cymongoose import Connection, HttpMessage, Manager, TlsOpts

# --- argument recipes: member name -> call(x), x a Call (conn, data, msg, mgr, ...) ---

CONNECTION_RECIPES = {
    "close": lambda x: x.conn.close(),
    "configure_http_server": lambda x: x.conn.configure_http_server(),
    "consume_reads": lambda x: setattr(x.conn, "consume_reads", not x.conn.consume_reads),
    "drain": lambda x: x.conn.drain(),
    "error": lambda x: x.conn.error("probe error"),
    "finish_response": lambda x: x.conn.finish_response(),
    "flush": lambda x: x.conn.flush(),
    "handler": lambda x: setattr(x.conn, "handler", x.conn.handler),
    "http_basic_auth": lambda x: x.conn.http_basic_auth("user", "pass"),
    "http_chunk": lambda x: x.conn.http_chunk(b"chunk"),
    "http_sse": lambda x: x.conn.http_sse("tick", b"data"),
    "id": lambda x: x.conn.id,
    "io_events": lambda x: setattr(x.conn, "io_events", x.conn.io_events),
    "is_client": lambda x: x.conn.is_client,
    "is_closing": lambda x: x.conn.is_closing,
    "is_draining": lambda x: x.conn.is_draining,
    "is_full": lambda x: x.conn.is_full,
    "is_listening": lambda x: x.conn.is_listening,
    "is_readable": lambda x: x.conn.is_readable,
    "is_tls": lambda x: x.conn.is_tls,
    "is_udp": lambda x: x.conn.is_udp,
    "is_websocket": lambda x: x.conn.is_websocket,
    "is_writable": lambda x: x.conn.is_writable,
    "local_addr": lambda x: x.conn.local_addr,
    "more_body": lambda x: x.conn.more_body,
    "request_count": lambda x: x.conn.request_count,
    "request_limit": lambda x: setattr(x.conn, "request_limit", x.conn.request_limit + 1),
    "mqtt_disconnect": lambda x: x.conn.mqtt_disconnect(),
    "mqtt_ping": lambda x: x.conn.mqtt_ping(),
    "mqtt_pong": lambda x: x.conn.mqtt_pong(),
    "mqtt_pub": lambda x: x.conn.mqtt_pub("t/probe", b"payload", 1),
    "mqtt_send_header": lambda x: x.conn.mqtt_send_header(m.MQTT_CMD_PINGREQ, 0, 0),
    "mqtt_sub": lambda x: x.conn.mqtt_sub("t/#", 1),
    "mqtt_unsub": lambda x: x.conn.mqtt_unsub("t/#"),
    "notify_writable": lambda x: x.conn.notify_writable(0),
    "pause_reading": lambda x: x.conn.pause_reading(),
    "recv_data": lambda x: x.conn.recv_data(),
    "refused": lambda x: x.conn.refused,
    "ws_extensions": lambda x: x.conn.ws_extensions,
    "recv_len": lambda x: x.conn.recv_len,
    "recv_size": lambda x: x.conn.recv_size,
    "remote_addr": lambda x: x.conn.remote_addr,
    "reply": lambda x: x.conn.reply(200, b"probe", {"X-Probe": "1"}),
    "reply_json": lambda x: x.conn.reply_json({"probe": 1}),
    # An IP literal: a reconnect to the control server, never a DNS query off the host.
    "resolve": lambda x: x.conn.resolve(x.control_tcp_url),
    "resolve_cancel": lambda x: x.conn.resolve_cancel(),
    "resume_reading": lambda x: x.conn.resume_reading(),
    "send": lambda x: x.conn.send(b"probe"),
    "send_data": lambda x: x.conn.send_data(),
    "send_file": lambda x: x.conn.send_file(x.fd, 0, 5),
    "send_len": lambda x: x.conn.send_len,
    "send_response": lambda x: x.conn.send_response(200, [("X-Probe", "1")], b"probe"),
    "send_response_head": lambda x: x.conn.send_response_head(200, [("X-Probe", "1")]),
    "send_size": lambda x: x.conn.send_size,
    "send_wsgi_head": lambda x: x.conn.send_wsgi_head("200 OK", [("X-Probe", "1")]),
    "send_wsgi_response": lambda x: x.conn.send_wsgi_response("200 OK", [], b"probe"),
    "serve_dir": lambda x: x.conn.serve_dir(x.msg, x.root),
    "serve_file": lambda x: x.conn.serve_file(x.msg, os.path.join(x.root, "index.html")),
    "set_handler": lambda x: x.conn.set_handler(x.conn.handler),
    "sntp_request": lambda x: x.conn.sntp_request(),
    "tls_free": lambda x: x.conn.tls_free(),
    "tls_info": lambda x: x.conn.tls_info(),
    "tls_init": lambda x: x.conn.tls_init(x.tls),
    "userdata": lambda x: setattr(x.conn, "userdata", {"probe": x.conn.userdata}),
    "ws_accept": lambda x: x.conn.ws_accept("dGhlIHNhbXBsZSBub25jZQ=="),
    "ws_send": lambda x: x.conn.ws_send(b"probe", m.WEBSOCKET_OP_BINARY),
    "ws_upgrade": lambda x: x.conn.ws_upgrade(x.msg, {"X-Probe": "1"}),
}


def _run_briefly(x):
    # run() polls until a signal: a timer sends SIGINT, but only while run() runs.
    running = []
    try:
        x.mgr.timer_add(20, lambda: running and signal.raise_signal(signal.SIGINT), repeat=True)
    except RuntimeError:
        pass
    running.append(1)
    try:
        return x.mgr.run(1)
    finally:
        running.clear()


MANAGER_RECIPES = {
    "close": lambda x: x.mgr.close(),
    "closed": lambda x: x.mgr.closed,
    "connect": lambda x: x.mgr.connect(x.control_tcp_url),
    "connections": lambda x: x.mgr.connections,
    "epoll_fd": lambda x: x.mgr.epoll_fd,
    "handler": lambda x: x.mgr.handler,
    "listen": lambda x: x.mgr.listen("tcp://127.0.0.1:0"),
    "mqtt_connect": lambda x: x.mgr.mqtt_connect(x.control_tcp_url.replace("tcp", "mqtt")),
    "mqtt_listen": lambda x: x.mgr.mqtt_listen("mqtt://127.0.0.1:0"),
    "poll": lambda x: x.mgr.poll(0),
    "run": _run_briefly,
    "sntp_connect": lambda x: x.mgr.sntp_connect(x.control_tcp_url.replace("tcp", "udp")),
    "timer_add": lambda x: x.mgr.timer_add(1, lambda: None),
    "wakeup": lambda x: x.mgr.wakeup(x.conn.id, b"probe"),
    "wakeup_id": lambda x: x.mgr.wakeup_id,
    "ws_connect": lambda x: x.mgr.ws_connect(x.control_tcp_url.replace("tcp", "ws")),
}
# The manager is not re-entrant: from inside a handler these raise RuntimeError.
NOT_FROM_A_HANDLER = {"poll", "run", "close"}


def _public(cls):
    return sorted(n for n in dir(cls) if not n.startswith("_"))


# --- scenes: one manager, a control HTTP server, the peers of one context ---------


class Call:
    """What a recipe gets: the connection and event data, plus helpers for arguments."""

    def __init__(self, scene, conn, data):
        self.conn, self.data, self.mgr = conn, data, scene.mgr
        self.msg = data if isinstance(data, HttpMessage) else scene.stale_msg
        self.control_tcp_url = f"tcp://127.0.0.1:{scene.control_port}"
        self.root, self.fd, self.tls = scene.root, scene.fd, scene.tls


class Scene:
    """One case: a manager with a control server; ``probe`` handlers call ``action``."""

    def __init__(self, event, action, env, in_handler=True):
        self.event, self.action = event, action
        self.root, self.fd, self.tls, self.stale_msg = env
        self.errors: list[BaseException] = []
        self.sockets: list[socket.socket] = []
        self.fired = False
        self.in_handler = in_handler
        self.outcome: tuple | None = None
        self.mgr = self._manager()

    def _manager(self):
        mgr = Manager(enable_wakeup=True, error_handler=self.errors.append)
        self.control = mgr.listen("http://127.0.0.1:0", _answer_ok)
        self.control_port = self.control.local_addr[1]
        return mgr

    def fire(self, conn, data):
        """Call the member once; record ("value", v) or ("raised", exc)."""
        self.fired = True
        try:
            self.outcome = ("value", self.action(Call(self, conn, data)))
        except BaseException as exc:  # judged by the test: must be an Exception
            self.outcome = ("raised", exc)

    def probe(self, inner=None, where=lambda c: True):
        """A handler that fires on the scene's event (first time, where ``where(conn)``),
        then runs the peer's own behaviour ``inner``."""

        def handler(c, ev, data):
            if ev == self.event and not self.fired and self.in_handler and where(c):
                self.fire(c, data)
            if inner is not None:
                inner(c, ev, data)

        return handler

    def run_until(self, cond, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.mgr.poll(1)

    def finish(self):
        """Let the call's effects play out, close the scene's peers, then check that the
        loop still serves a new connection (on a new manager if this one was closed)."""
        if not self.mgr.closed:
            for _ in range(5):
                self.mgr.poll(1)
            for c in self.mgr.connections:
                if c is not self.control:
                    c.close()
            self.run_until(lambda: self.mgr.connections == (self.control,), "peers to close")
        if self.mgr.closed:
            assert self.mgr.connections == (), "a connection outlived Manager.close()"
            self.mgr = self._manager()
        _round_trip(self)
        self.mgr.close()

    def cleanup(self):
        self.mgr.close()
        for s in self.sockets:
            s.close()


def _answer_ok(c, ev, data):
    if ev == m.MG_EV_HTTP_MSG:
        c.reply(200, b"ok")


def _round_trip(scene):
    got = []

    def client(c, ev, data):
        if ev == m.MG_EV_CONNECT:
            c.send(b"GET /control HTTP/1.1\r\nHost: t\r\n\r\n")
        elif ev == m.MG_EV_HTTP_MSG:
            got.append((data.status(), data.body_bytes))
            c.close()

    scene.mgr.connect(f"http://127.0.0.1:{scene.control_port}", client)
    scene.run_until(lambda: got, "the control round trip")
    assert got == [(200, b"ok")]


# Peer behaviours.
def _greet(c, ev, data):  # a TCP server that speaks first
    if ev == m.MG_EV_ACCEPT:
        c.send(b"hello")


def _ping(c, ev, data):  # a TCP client that speaks first
    if ev == m.MG_EV_CONNECT:
        c.send(b"ping")


def _get(c, ev, data):  # an HTTP client
    if ev == m.MG_EV_CONNECT:
        c.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")


def _http_server(c, ev, data):
    if ev == m.MG_EV_HTTP_MSG and not c.is_closing:
        c.reply(200, b"body")


def _ws_server(c, ev, data):
    if ev == m.MG_EV_HTTP_MSG and not c.is_closing:
        c.ws_upgrade(data)
    elif ev == m.MG_EV_WS_MSG and not c.is_closing:
        c.ws_send(data.data, m.WEBSOCKET_OP_TEXT)


def _ws_client(c, ev, data):
    if ev == m.MG_EV_WS_OPEN and not c.is_closing:
        c.ws_send(b"", m.WEBSOCKET_OP_PING)
        c.ws_send(b"hi", m.WEBSOCKET_OP_TEXT)


def _mqtt_broker(c, ev, msg):
    # Just enough MQTT 3.1.1: CONNACK, and a SUBACK followed by one message on the topic.
    if ev != m.MG_EV_MQTT_CMD or c.is_closing:
        return
    if msg.cmd == m.MQTT_CMD_CONNECT:
        c.mqtt_send_header(m.MQTT_CMD_CONNACK, 0, 2)
        c.send(b"\x00\x00")
    elif msg.cmd == m.MQTT_CMD_SUBSCRIBE:
        dgram = msg.dgram
        i = 1
        while dgram[i] & 0x80:
            i += 1
        pid = dgram[i + 1 : i + 3]
        c.mqtt_send_header(m.MQTT_CMD_SUBACK, 0, 3)
        c.send(pid + b"\x00")
        c.mqtt_pub("t/probe", b"message")


def _mqtt_client(c, ev, data):
    if ev == m.MG_EV_MQTT_OPEN and not c.is_closing:
        c.mqtt_sub("t/probe", 0)


def _sntp_server(c, ev, data):
    if ev == m.MG_EV_READ:
        req = data or c.recv_data()
        now = int(time.time()) + 2208988800  # NTP era 0 starts in 1900
        resp = bytearray(48)
        resp[0], resp[1] = (4 << 3) | 4, 1  # version 4, mode 4 (server); stratum 1
        resp[24:32] = req[40:48]
        resp[32:48] = struct.pack(">IIII", now, 0, now, 0)
        c.send(bytes(resp))


def _tls_server(tls):
    def handler(c, ev, data):
        if ev == m.MG_EV_ACCEPT:
            c.tls_init(tls)

    return handler


def _tls_client(tls):
    def handler(c, ev, data):
        if ev == m.MG_EV_CONNECT and not c.is_closing:
            c.tls_init(tls)

    return handler


def _listen(s, scheme, handler):
    return s.mgr.listen(f"{scheme}://127.0.0.1:0", handler).local_addr[1]


def _is_listener(c):
    return c.is_listening


def _is_accepted(c):
    return not c.is_listening


# Contexts: name -> (event, setup(scene)). A setup creates the peers; the probe fires on
# the event. "-in-close" fires on the CLOSE events that Manager.close() delivers.
def _connect(s, scheme, port, handler):
    opener = s.mgr.ws_connect if scheme == "ws" else s.mgr.connect
    return opener(f"{scheme}://127.0.0.1:{port}/x", handler)


def _client(scheme, inner, server=_greet):
    def setup(s):
        _connect(s, scheme, _listen(s, scheme, server), s.probe(inner))

    return setup


def _server(scheme, inner, client, where=_is_accepted):
    def setup(s):
        _connect(s, scheme, _listen(s, scheme, s.probe(inner, where)), client)

    return setup


def _mqtt_setup(s):
    port = s.mgr.mqtt_listen("mqtt://127.0.0.1:0", _mqtt_broker).local_addr[1]
    s.mgr.mqtt_connect(f"mqtt://127.0.0.1:{port}", s.probe(_mqtt_client), client_id="probe")


def _mqtt_broker_setup(s):
    port = s.mgr.mqtt_listen("mqtt://127.0.0.1:0", s.probe(_mqtt_broker, _is_accepted))
    port = port.local_addr[1]
    s.mgr.mqtt_connect(f"mqtt://127.0.0.1:{port}", _mqtt_client, client_id="probe")


def _http_srv_setup(body=b""):
    # The core's HTTP/1.1 server; a body sent after "100 Continue" arrives in EV_HTTP_BODY.
    head = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n" % len(body)

    def client(c, ev, data):
        if ev == m.MG_EV_CONNECT:
            c.send(head + b"Expect: 100-continue\r\n\r\n" if body else head + b"\r\n")
        elif ev == m.MG_EV_READ and body and c.userdata is None and not c.is_closing:
            c.userdata = c.send(body)

    def setup(s):
        lst = s.mgr.listen("http://127.0.0.1:0", s.probe(_http_server, _is_accepted))
        lst.configure_http_server(stream_threshold=4)
        s.mgr.connect(f"tcp://127.0.0.1:{lst.local_addr[1]}", client)

    return setup


def _writable_setup(s):
    def inner(c, ev, data):
        if ev == m.MG_EV_HTTP_MSG and not c.is_closing:
            c.notify_writable(0)

    lst = s.mgr.listen("http://127.0.0.1:0", s.probe(inner, _is_accepted))
    lst.configure_http_server()
    s.mgr.connect(f"http://127.0.0.1:{lst.local_addr[1]}", _get)


def _ws_accept_setup(s):
    # The core's HTTP/1.1 server, upgraded with ws_accept() as the ASGI server does.
    def inner(c, ev, data):
        if ev == m.MG_EV_HTTP_MSG and not c.is_closing:
            c.ws_accept(data.header("Sec-WebSocket-Key"))

    lst = s.mgr.listen("http://127.0.0.1:0", s.probe(inner, _is_accepted))
    lst.configure_http_server(ws_max_size=1024)
    s.mgr.ws_connect(f"ws://127.0.0.1:{lst.local_addr[1]}/x", _ws_client)


def _udp_client_setup(s):
    port = _listen(s, "udp", None)
    s.mgr.connect(f"udp://127.0.0.1:{port}", s.probe())


def _udp_listener_setup(s):
    port = _listen(s, "udp", s.probe())
    s.mgr.connect(f"udp://127.0.0.1:{port}", _ping)


def _close_client_setup(s):
    port = _listen(s, "tcp", None)
    s.mgr.connect(f"tcp://127.0.0.1:{port}", s.probe(
        lambda c, ev, d: ev == m.MG_EV_CONNECT and c.close()))


def _close_accepted_setup(s):
    port = _listen(s, "tcp", s.probe(None, _is_accepted))
    s.mgr.connect(f"tcp://127.0.0.1:{port}",
                  lambda c, ev, d: ev == m.MG_EV_CONNECT and c.close())


def _close_httpserver_setup(s):
    # A connection of the core's HTTP/1.1 server whose client leaves after the answer.
    lst = s.mgr.listen("http://127.0.0.1:0", s.probe(_http_server, _is_accepted))
    lst.configure_http_server()
    s.mgr.connect(f"http://127.0.0.1:{lst.local_addr[1]}",
                  lambda c, ev, d: _get(c, ev, d) or (ev == m.MG_EV_HTTP_MSG and c.close()))


def _refused_setup(s):
    sock = socket.socket()  # bound, never listening: connections are refused
    sock.bind(("127.0.0.1", 0))
    s.sockets.append(sock)
    s.mgr.connect(f"tcp://127.0.0.1:{sock.getsockname()[1]}", s.probe())


def _bad_request_setup(s):
    port = _listen(s, "http", s.probe(None, _is_accepted))
    bad = b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"
    s.mgr.connect(f"tcp://127.0.0.1:{port}", lambda c, ev, d: ev == m.MG_EV_CONNECT and c.send(bad))


def _wakeup_setup(s):
    port = _listen(s, "tcp", None)
    conn = s.mgr.connect(f"tcp://127.0.0.1:{port}", s.probe())
    assert s.mgr.wakeup(conn.id, b"wake")


def _sntp_setup(s):
    port = _listen(s, "udp", _sntp_server)
    c = s.mgr.sntp_connect(f"udp://127.0.0.1:{port}", s.probe())
    c.sntp_request()


def _tls_setup(s):
    if s.tls is None:
        pytest.skip("cryptography is not installed")
    port = _listen(s, "tcp", _tls_server(s.tls))
    s.mgr.connect(f"tcp://127.0.0.1:{port}", s.probe(_tls_client(s.tls)))


def _connected_pair(s):
    port = _listen(s, "tcp", _greet)
    conn = s.mgr.connect(f"tcp://127.0.0.1:{port}", _ping)
    s.run_until(lambda: len(s.mgr.connections) == 4, "the connection")
    return conn


def _in_close_setup(s):
    # The probe fires on the first CLOSE event that Manager.close() delivers.
    port = _listen(s, "tcp", s.probe())
    s.mgr.connect(f"tcp://127.0.0.1:{port}", _ping)
    s.run_until(lambda: len(s.mgr.connections) == 4, "the connection")
    s.mgr.close()


def _after_close_setup(s):
    conn = _connected_pair(s)
    conn.close()
    s.run_until(lambda: conn not in s.mgr.connections, "MG_EV_CLOSE")
    s.fire(conn, None)


def _after_manager_close_setup(s):
    conn = _connected_pair(s)
    s.mgr.close()
    s.fire(conn, None)


CONTEXTS = {
    "OPEN-client": (m.MG_EV_OPEN, _client("tcp", _ping)),
    "OPEN-listener": (m.MG_EV_OPEN, _server("tcp", None, _ping, _is_listener)),
    "OPEN-accepted": (m.MG_EV_OPEN, _server("tcp", None, _ping)),
    "RESOLVE-client": (m.MG_EV_RESOLVE, _client("tcp", _ping)),
    "CONNECT-client": (m.MG_EV_CONNECT, _client("tcp", _ping)),
    "CONNECT-udp": (m.MG_EV_CONNECT, _udp_client_setup),
    "ACCEPT-accepted": (m.MG_EV_ACCEPT, _server("tcp", _greet, _ping)),
    "TLS_HS-client": (m.MG_EV_TLS_HS, _tls_setup),
    "READ-accepted": (m.MG_EV_READ, _server("tcp", None, _ping)),
    "READ-client": (m.MG_EV_READ, _client("tcp", None)),
    "READ-udp-listener": (m.MG_EV_READ, _udp_listener_setup),
    "WRITE-client": (m.MG_EV_WRITE, _client("tcp", _ping)),
    "POLL-client": (m.MG_EV_POLL, _client("tcp", _ping)),
    "POLL-listener": (m.MG_EV_POLL, _server("tcp", None, _ping, _is_listener)),
    "POLL-http-listener": (m.MG_EV_POLL, _server("http", None, _get, _is_listener)),
    "HTTP_HDRS-server": (m.MG_EV_HTTP_HDRS, _server("http", _http_server, _get)),
    "HTTP_MSG-server": (m.MG_EV_HTTP_MSG, _server("http", _http_server, _get)),
    "HTTP_MSG-client": (m.MG_EV_HTTP_MSG, _client("http", _get, _http_server)),
    "HTTP_MSG-httpserver": (m.MG_EV_HTTP_MSG, _http_srv_setup()),
    "HTTP_BODY-httpserver": (m.EV_HTTP_BODY, _http_srv_setup(b"x" * 64)),
    "WRITABLE-httpserver": (m.EV_WRITABLE, _writable_setup),
    "WS_OPEN-server": (m.MG_EV_WS_OPEN, _server("ws", _ws_server, _ws_client)),
    "WS_OPEN-client": (m.MG_EV_WS_OPEN, _client("ws", _ws_client, _ws_server)),
    "WS_MSG-server": (m.MG_EV_WS_MSG, _server("ws", _ws_server, _ws_client)),
    "WS_MSG-client": (m.MG_EV_WS_MSG, _client("ws", _ws_client, _ws_server)),
    "WS_CTL-server": (m.MG_EV_WS_CTL, _server("ws", _ws_server, _ws_client)),
    "WS_MSG-httpserver": (m.MG_EV_WS_MSG, _ws_accept_setup),
    "MQTT_OPEN-client": (m.MG_EV_MQTT_OPEN, _mqtt_setup),
    "MQTT_CMD-client": (m.MG_EV_MQTT_CMD, _mqtt_setup),
    "MQTT_CMD-broker": (m.MG_EV_MQTT_CMD, _mqtt_broker_setup),
    "MQTT_MSG-client": (m.MG_EV_MQTT_MSG, _mqtt_setup),
    "CLOSE-client": (m.MG_EV_CLOSE, _close_client_setup),
    "CLOSE-accepted": (m.MG_EV_CLOSE, _close_accepted_setup),
    "CLOSE-httpserver": (m.MG_EV_CLOSE, _close_httpserver_setup),
    "CLOSE-in-manager-close": (m.MG_EV_CLOSE, _in_close_setup),
    "ERROR-client": (m.MG_EV_ERROR, _refused_setup),
    "ERROR-server": (m.MG_EV_ERROR, _bad_request_setup),
    "WAKEUP-client": (m.MG_EV_WAKEUP, _wakeup_setup),
    "SNTP_TIME-client": (m.MG_EV_SNTP_TIME, _sntp_setup),
    "after-close": (None, _after_close_setup),
    "after-manager-close": (None, _after_manager_close_setup),
}


# --- fixtures and tests ---------------------------------------------------------------


def _pem_pair():
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return None
    key = ec.generate_private_key(ec.SECP256R1())  # mongoose's built-in TLS: EC keys
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return TlsOpts(cert=cert.public_bytes(pem), skip_verification=True, key=key.private_bytes(
        pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))


def _stale_message():
    kept = []
    with Manager() as mgr:
        port = mgr.listen("http://127.0.0.1:0", _http_server).local_addr[1]
        mgr.connect(f"http://127.0.0.1:{port}",
                    lambda c, ev, d: _get(c, ev, d) or (ev == m.MG_EV_HTTP_MSG and kept.append(d)))
        deadline = time.monotonic() + 10
        while not kept and time.monotonic() < deadline:
            mgr.poll(1)
    assert kept and not kept[0], "no invalidated HttpMessage"
    return kept[0]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "index.html").write_bytes(b"<p>static</p>\n")
    fd = os.open(root / "index.html", os.O_RDONLY)
    yield str(root), fd, _pem_pair(), _stale_message()
    os.close(fd)


def _check(context, member, recipes, env):
    if member not in recipes:
        table = "CONNECTION_RECIPES" if recipes is CONNECTION_RECIPES else "MANAGER_RECIPES"
        pytest.fail(f"{member} has no argument recipe in {table}: add one")
    event, setup = CONTEXTS[context]
    scene = Scene(event, recipes[member], env, in_handler=event is not None)
    try:
        setup(scene)
        scene.run_until(lambda: scene.fired, f"{context} to call {member}")
        scene.finish()
    finally:
        scene.cleanup()
    kind, value = scene.outcome
    if kind == "raised":
        assert isinstance(value, Exception), f"{member} raised {value!r}"
    for exc in scene.errors:  # what the peers' own handlers raised afterwards
        assert isinstance(exc, Exception), repr(exc)
    return kind, value


@pytest.mark.parametrize("member", _public(Connection))
@pytest.mark.parametrize("context", CONTEXTS)
def test_connection_member(context, member, env):
    _check(context, member, CONNECTION_RECIPES, env)


@pytest.mark.parametrize("member", _public(Manager))
@pytest.mark.parametrize("context", CONTEXTS)
def test_manager_member(context, member, env):
    kind, value = _check(context, member, MANAGER_RECIPES, env)
    if member in NOT_FROM_A_HANDLER and CONTEXTS[context][0] is not None:
        assert kind == "raised" and isinstance(value, RuntimeError), (kind, value)


def test_every_recipe_names_a_public_member():
    assert set(CONNECTION_RECIPES) <= set(_public(Connection))
    assert set(MANAGER_RECIPES) <= set(_public(Manager))


# --- what the calls that used to crash do now -----------------------------------------


def _run(mgr, cond, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        mgr.poll(1)


def test_resolve_reconnects_and_closes_the_old_socket():
    events = {"a": [], "b": [], "client": []}

    def server(name):
        return lambda c, ev, d: ev in (m.MG_EV_ACCEPT, m.MG_EV_CLOSE) and events[name].append(ev)

    with Manager() as mgr:
        port_a = mgr.listen("tcp://127.0.0.1:0", server("a")).local_addr[1]
        port_b = mgr.listen("tcp://127.0.0.1:0", server("b")).local_addr[1]

        def client(c, ev, data):
            if ev == m.MG_EV_CONNECT:
                events["client"].append(c.remote_addr[1])
                if len(events["client"]) == 1:
                    c.resolve(f"tcp://127.0.0.1:{port_b}")

        conn = mgr.connect(f"tcp://127.0.0.1:{port_a}", client)
        _run(mgr, lambda: events["client"] == [port_a, port_b], "the reconnect")
        # The first socket is closed, not left open (and in epoll) behind the connection.
        _run(mgr, lambda: events["a"] == [m.MG_EV_ACCEPT, m.MG_EV_CLOSE], "A's side to close")
        conn.close()
        _run(mgr, lambda: events["b"] == [m.MG_EV_ACCEPT, m.MG_EV_CLOSE], "B's side to close")
        for _ in range(10):  # these polls crashed when the first socket stayed in epoll
            mgr.poll(1)
        assert events["a"] == [m.MG_EV_ACCEPT, m.MG_EV_CLOSE]


def test_resolve_refuses_where_mongoose_would_lose_a_socket():
    raised = {}

    def record(where):
        def handler(c, ev, data):
            name = f"{where}:{m.event_name(ev)}"
            if ev in (m.MG_EV_OPEN, m.MG_EV_ACCEPT, m.MG_EV_CLOSE) and name not in raised:
                try:
                    c.resolve("tcp://127.0.0.1:9")
                    raised[name] = None
                except RuntimeError as exc:
                    raised[name] = str(exc)

        return handler

    with Manager() as mgr:
        port = mgr.listen("tcp://127.0.0.1:0", record("server")).local_addr[1]
        conn = mgr.connect(f"tcp://127.0.0.1:{port}", record("client"))
        _run(mgr, lambda: "server:MG_EV_ACCEPT" in raised, "the connection")
        conn.close()
        _run(mgr, lambda: "client:MG_EV_CLOSE" in raised, "the close")
    assert "MG_EV_OPEN" in raised["client:MG_EV_OPEN"]
    assert "client connection" in raised["server:MG_EV_OPEN"]  # the listener
    assert "client connection" in raised["server:MG_EV_ACCEPT"]
    assert "closing" in raised["client:MG_EV_CLOSE"]


def test_tls_free_closes_the_connection_and_tls_init_once(env):
    tls = env[2]
    if tls is None:
        pytest.skip("cryptography is not installed")
    got = []

    def server(c, ev, data):
        if ev == m.MG_EV_ACCEPT:
            c.tls_init(tls)

    def client(c, ev, data):
        if ev == m.MG_EV_CONNECT:
            c.tls_init(tls)
        elif ev == m.MG_EV_TLS_HS:
            with pytest.raises(RuntimeError, match="already"):
                c.tls_init(tls)
            c.tls_free()  # freed the state mongoose's handshake code still used
            got.append(c.is_closing)
        elif ev == m.MG_EV_CLOSE:
            got.append("closed")

    with Manager() as mgr:
        port = mgr.listen("tcp://127.0.0.1:0", server).local_addr[1]
        mgr.connect(f"tcp://127.0.0.1:{port}", client)
        _run(mgr, lambda: "closed" in got, "the close")
        plain = mgr.connect(f"tcp://127.0.0.1:{port}")
        plain.tls_free()  # no TLS state: nothing to do
        assert not plain.is_closing
    assert got == [True, "closed"]
