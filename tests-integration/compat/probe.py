"""Probe of the cymongoose 0.2.x API, run unchanged under cymongoose 0.2.5 and under ours.

``python probe.py [module:qualname ...]`` prints one JSON object:

- ``"signatures"``: ``{target: [[name, kind, default repr or null], ...] or null}`` for
  every target of SIGNATURES plus those given on the command line (null: no signature);
- ``"public"``: the public callables each module offers (to check SIGNATURES is complete);
- ``"cases"``: ``{name: {"level": ..., "value": ...} or {"level": ..., "raises": type,
  "message": str}}``, where ``level`` says how test_compat_025.py compares a case:
  ``"exact"`` (same value, or same exception type and message) or ``"accepted"`` (the
  call is accepted or refused alike: a 0.2.x call by keyword or by position).

The cases are the situations of the spec (shared/spec/core-api.md) where 0.2.5's behaviour
is the contract. Output is deterministic: no ports, ids or addresses.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import socket
import sys
import tempfile
import time

import cymongoose as cm

# Every 0.2.x public signature of the spec (core and AsyncManager).
SIGNATURES = [f"cymongoose:{n}" for n in (
    "json_get json_get_num json_get_bool json_get_long json_get_str url_encode url_port "
    "url_host url_user url_pass url_uri url_is_ssl match http_var http_parse_multipart md5 "
    "sha1 sha256 hmac_sha256 base64_encode base64_decode crc32 millis random_bytes "
    "random_str log_set log_get event_name "
    "Manager.poll Manager.run Manager.listen Manager.connect Manager.ws_connect "
    "Manager.mqtt_connect Manager.mqtt_listen Manager.sntp_connect Manager.wakeup "
    "Manager.timer_add Manager.close Timer.cancel Rpc.add Rpc.process RpcReq.ok RpcReq.err "
    "HttpMessage.header HttpMessage.headers HttpMessage.query_var HttpMessage.header_var "
    "HttpMessage.status MqttMessage.properties "
    "Connection.set_handler Connection.send Connection.recv_data Connection.send_data "
    "Connection.reply Connection.reply_json Connection.http_chunk Connection.http_sse "
    "Connection.serve_dir Connection.serve_file Connection.ws_upgrade Connection.ws_send "
    "Connection.mqtt_pub Connection.mqtt_sub Connection.mqtt_unsub Connection.mqtt_ping "
    "Connection.mqtt_pong Connection.mqtt_disconnect Connection.sntp_request "
    "Connection.resolve Connection.resolve_cancel Connection.http_basic_auth "
    "Connection.tls_init Connection.tls_free Connection.error Connection.close "
    "Connection.drain").split()] + [f"cymongoose.aio:AsyncManager{m}" for m in (
        "", ".listen", ".connect", ".mqtt_connect", ".mqtt_listen", ".sntp_connect",
        ".wakeup", ".timer_add", ".schedule")]

CASES: dict = {}  # name -> (level, function)


def case(name: str, level: str = "exact"):
    def register(fn):
        CASES[name] = (level, fn)
        return fn
    return register


def _plain(value):
    """A JSON-able, deterministic image of ``value``."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return f"<{type(value).__name__}>"


def _outcome(level, fn) -> dict:
    try:
        return {"level": level, "value": _plain(fn())}
    except Exception as exc:  # noqa: BLE001 (the outcome is what we record)
        message = re.sub(r":\d{2,5}\b", ":<port>", str(exc))
        return {"level": level, "raises": type(exc).__name__, "message": message}


def _until(mgr, predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("probe scenario timed out")
        mgr.poll(5)


def _table(obj, calls: dict) -> dict:
    """``{label: outcome}`` of each ``calls[label](obj)``."""
    return {label: _outcome("exact", lambda f=f: f(obj)) for label, f in calls.items()}


# -- calls by keyword name and by position (0.2.x signatures) ----------------------------

_UTIL_CALLS = {
    "json_get": (('{"a":[1]}', "$.a[0]"), {"data": '{"a":[1]}', "path": "$.a[0]"}),
    "json_get_num": (('{"a":1.5}', "$.a", 0.0), {"data": '{"a":1.5}', "path": "$.a",
                                                  "default": 0.0}),
    "json_get_bool": (('{"a":true}', "$.a", None), {"data": '{"a":true}', "path": "$.a",
                                                     "default": None}),
    "json_get_long": (('{"a":7}', "$.a", 0), {"data": '{"a":7}', "path": "$.a", "default": 0}),
    "json_get_str": (('{"a":"x"}', "$.a"), {"data": '{"a":"x"}', "path": "$.a"}),
    "url_encode": (("a b",), {"data": "a b"}),
    "url_port": (("http://h:81/",), {"url": "http://h:81/"}),
    "url_host": (("http://u:p@h:81/x",), {"url": "http://u:p@h:81/x"}),
    "url_user": (("http://u:p@h:81/x",), {"url": "http://u:p@h:81/x"}),
    "url_pass": (("http://u:p@h:81/x",), {"url": "http://u:p@h:81/x"}),
    "url_uri": (("http://h/x?y",), {"url": "http://h/x?y"}),
    "url_is_ssl": (("https://h/",), {"url": "https://h/"}),
    "match": (("/a/b", "/a/*"), {"s": "/a/b", "pattern": "/a/*"}),
    "http_var": ((b"a=1&b=2", "b"), {"buf": b"a=1&b=2", "name": "b"}),
    "http_parse_multipart": ((b"", 0), {"body": b"", "offset": 0}),
    "md5": ((b"x",), {"data": b"x"}),
    "sha1": ((b"x",), {"data": b"x"}),
    "sha256": ((b"x",), {"data": b"x"}),
    "hmac_sha256": ((b"k", b"x"), {"key": b"k", "data": b"x"}),
    "base64_encode": ((b"abc",), {"data": b"abc"}),
    "base64_decode": (("YWJj",), {"data": "YWJj"}),
    "crc32": ((b"x", 0), {"data": b"x", "initial": 0}),
    "random_bytes": ((4,), {"length": 4}),
    "random_str": ((4,), {"length": 4}),
    "log_set": ((cm.MG_LL_NONE,), {"level": cm.MG_LL_NONE}),
    "event_name": ((cm.MG_EV_READ,), {"ev": cm.MG_EV_READ}),
}
for _name, (_args, _kwargs) in _UTIL_CALLS.items():
    case(f"call:{_name}(positional)", "accepted")(
        lambda n=_name, a=_args: getattr(cm, n)(*a))
    case(f"call:{_name}(keywords)", "accepted")(
        lambda n=_name, k=_kwargs: getattr(cm, n)(**k))


@case("call:Manager and TlsOpts constructors", "accepted")
def _constructors():
    Manager, TlsOpts = cm.Manager, cm.TlsOpts
    Manager(None, False, None).close()
    Manager(handler=None, enable_wakeup=True, error_handler=print).close()
    TlsOpts(None, None, None, None, True)
    TlsOpts(ca=None, cert=None, key=None, name="x", skip_verification=False)


@case("call:Manager methods by keyword", "accepted")
def _manager_keywords():
    with cm.Manager(enable_wakeup=True) as mgr:
        lst = mgr.listen(url="tcp://127.0.0.1:0", handler=None, http=False)
        mgr.connect(url="tcp://127.0.0.1:1", handler=None, http=False)
        mgr.ws_connect(url="ws://127.0.0.1:1/", handler=None)
        mgr.mqtt_connect(url="mqtt://127.0.0.1:1", handler=None, client_id="c",
                         username="u", password="p", clean_session=True, keepalive=30)
        mgr.mqtt_listen(url="mqtt://127.0.0.1:0", handler=None)
        mgr.sntp_connect(url="udp://127.0.0.1:1", handler=None)
        mgr.timer_add(milliseconds=5, callback=lambda: None, repeat=False, run_now=False)
        mgr.wakeup(connection_id=lst.id, data=b"x")
        mgr.poll(timeout_ms=0)


@case("call:Manager methods by position", "accepted")
def _manager_positional():
    with cm.Manager(None, True) as mgr:
        lst = mgr.listen("tcp://127.0.0.1:0", None)
        mgr.connect("tcp://127.0.0.1:1", None)
        mgr.ws_connect("ws://127.0.0.1:1/", None)
        mgr.mqtt_connect("mqtt://127.0.0.1:1", None, "c", "u", "p", True, 30)
        mgr.mqtt_listen("mqtt://127.0.0.1:0", None)
        mgr.sntp_connect("udp://127.0.0.1:1", None)
        mgr.timer_add(5, lambda: None).cancel()
        mgr.wakeup(lst.id, b"x")
        mgr.poll(0)


@case("call:Rpc by keyword and position", "accepted")
def _rpc():
    rpc = cm.Rpc()
    rpc.add(method="ok", handler=lambda req: req.ok(result_json="1"))
    rpc.add("err", lambda req: req.err(code=-1, message="no"))
    rpc.add("err2", lambda req: req.err(-1, "no"))
    return [rpc.process(frame='{"id":1,"method":"ok"}'), rpc.process('{"id":2,"method":"err"}'),
            rpc.process('{"id":3,"method":"err2"}'), sorted(rpc.methods)]


# -- inside an HTTP handler: Connection methods, message views ---------------------------

def _serve_http(respond, request: bytes = b"GET /p?x=1 HTTP/1.1\r\nHost: h\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n\r\n"):
    """Run ``respond(conn, msg)`` on one real request; return (its result, msg), or raise
    what it raised."""
    out = []

    def handler(conn, ev, data):
        if ev == cm.MG_EV_HTTP_MSG and not out:
            try:
                out.append((respond(conn, data), data, None))
            except Exception as exc:  # noqa: BLE001 (raised again by _serve_http)
                out.append((None, data, exc))
            conn.drain()

    with cm.Manager(handler) as mgr:
        port = mgr.listen("http://127.0.0.1:0").local_addr[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(request)
            _until(mgr, lambda: out)
    result, msg, error = out[0]
    if error is not None:
        raise error
    return result, msg


_WS_REQUEST = (b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def _connection_calls_by_keyword(conn, msg):
    with tempfile.TemporaryDirectory() as root:
        conn.set_handler(handler=None)
        conn.recv_data(length=-1)
        conn.send_data(length=-1)
        conn.send(data=b"")
        conn.http_basic_auth(username="u", password="p")
        conn.serve_file(message=msg, path=root + "/missing", extra_headers="", mime_types="")
        conn.serve_dir(message=msg, root_dir=root, extra_headers="", mime_types="",
                       page404="")
        conn.reply(status_code=200, body=b"", headers={"X-A": "1"})
        conn.reply_json(data={}, status_code=200, headers=None)
        conn.http_chunk(data=b"")
        conn.http_sse(event_type="e", data="d")
        conn.error(message="probe")


def _connection_calls_by_position(conn, msg):
    with tempfile.TemporaryDirectory() as root:
        conn.set_handler(None)
        conn.recv_data(-1)
        conn.send_data(-1)
        conn.send(b"")
        conn.http_basic_auth("u", "p")
        conn.serve_file(msg, root + "/missing", "", "")
        conn.serve_dir(msg, root, "", "", "")
        conn.reply(200, b"", {"X-A": "1"})
        conn.reply_json({}, 200, None)
        conn.http_chunk(b"")
        conn.http_sse("e", "d")
        conn.error("probe")


@case("call:Connection.resolve by keyword and position", "accepted")
def _resolve_calls():
    # On client connections outside any handler (inside one: another test's concern).
    with cm.Manager() as mgr:
        mgr.connect("tcp://127.0.0.1:1").resolve(url="tcp://127.0.0.1:2")
        mgr.connect("tcp://127.0.0.1:1").resolve("tcp://127.0.0.1:2")


case("call:Connection methods by keyword", "accepted")(
    lambda: _serve_http(_connection_calls_by_keyword)[0])
case("call:Connection methods by position", "accepted")(
    lambda: _serve_http(_connection_calls_by_position)[0])
case("call:ws_upgrade/ws_send by keyword", "accepted")(lambda: _serve_http(
    lambda c, m: (c.ws_upgrade(message=m, extra_headers={"X-A": "1"}),
                  c.ws_send(data="x", op=cm.WEBSOCKET_OP_TEXT)) and None, _WS_REQUEST)[0])
case("call:ws_upgrade/ws_send by position", "accepted")(lambda: _serve_http(
    lambda c, m: (c.ws_upgrade(m, None), c.ws_send(b"x", cm.WEBSOCKET_OP_BINARY)) and None,
    _WS_REQUEST)[0])
case("call:HttpMessage methods by keyword and position", "accepted")(lambda: _serve_http(
    lambda c, m: [m.header(name="Host", default=None), m.header("Nope", "d"),
                  m.query_var(name="x"), m.query_var("x"), m.status(), m.headers(),
                  m.header_var(header_name="Content-Type", var_name="charset"),
                  m.header_var("Content-Type", "charset")])[0])

# reply()/reply_json()/ws_upgrade(): CR, LF or NUL in a str header name or value.
_BAD_HEADERS = {"value CR": {"X-A": "a\rb"}, "value LF": {"X-A": "a\nb"},
                "value NUL": {"X-A": "a\0b"}, "name CR": {"X\rA": "v"},
                "name LF": {"X\nA": "v"}, "name NUL": {"X\0A": "v"}}
for _label, _headers in _BAD_HEADERS.items():
    case(f"reply() header {_label}")(lambda h=_headers: _serve_http(
        lambda c, m: c.reply(200, b"x", h))[0])
    case(f"reply_json() header {_label}")(lambda h=_headers: _serve_http(
        lambda c, m: c.reply_json({"a": 1}, 200, h))[0])
    case(f"ws_upgrade() header {_label}")(lambda h=_headers: _serve_http(
        lambda c, m: c.ws_upgrade(m, h), _WS_REQUEST)[0])

_HTTP_MESSAGE_VIEWS = {
    "bool": bool, "method": lambda m: m.method, "uri": lambda m: m.uri,
    "query": lambda m: m.query, "proto": lambda m: m.proto, "body_bytes": lambda m: m.body_bytes,
    "body_text": lambda m: m.body_text, "header": lambda m: m.header("Host"),
    "header default": lambda m: m.header("Nope", "dflt"), "headers": lambda m: m.headers(),
    "query_var": lambda m: m.query_var("x"),
    "header_var": lambda m: m.header_var("Content-Type", "charset"),
    "status": lambda m: m.status(),
}


@case("HttpMessage accessors after its handler returned")
def _stale_http():
    _, msg = _serve_http(lambda c, m: c.reply(200, b"ok"))
    return _table(msg, _HTTP_MESSAGE_VIEWS)


@case("stale or None HttpMessage given to Connection methods")
def _stale_http_to_methods():
    _, stale = _serve_http(lambda c, m: c.reply(200, b"ok"))
    calls = {"serve_dir": lambda c: c.serve_dir(stale, "/nonexistent"),
             "serve_file": lambda c: c.serve_file(stale, "/nonexistent"),
             "ws_upgrade": lambda c: c.ws_upgrade(stale),
             "ws_upgrade(None)": lambda c: c.ws_upgrade(None)}
    return _serve_http(lambda c, m: _table(c, calls))[0]


# -- WebSocket and MQTT message views after their handler ---------------------------------

@case("WsMessage accessors after its handler returned")
def _stale_ws():
    kept = []

    def server(conn, ev, data):
        if ev == cm.MG_EV_HTTP_MSG:
            conn.ws_upgrade(data)
        elif ev == cm.MG_EV_WS_MSG:
            kept.append(data)

    def client(conn, ev, data):
        if ev == cm.MG_EV_WS_OPEN:
            conn.ws_send("hello")

    with cm.Manager(server) as mgr:
        port = mgr.listen("http://127.0.0.1:0").local_addr[1]
        mgr.ws_connect(f"ws://127.0.0.1:{port}/ws", client)
        _until(mgr, lambda: kept)
    return _table(kept[0], {"data": lambda m: m.data, "text": lambda m: m.text,
                            "flags": lambda m: m.flags, "bool": bool})


@case("MqttMessage accessors after its handler returned")
def _stale_mqtt():
    kept = []

    def broker(conn, ev, data):
        if ev == cm.MG_EV_MQTT_CMD:
            kept.append(data)

    with cm.Manager() as mgr:
        port = mgr.mqtt_listen("mqtt://127.0.0.1:0", broker).local_addr[1]
        mgr.mqtt_connect(f"mqtt://127.0.0.1:{port}", None, client_id="probe")
        _until(mgr, lambda: kept)
    return _table(kept[0], {n: (lambda m, n=n: getattr(m, n)) for n in
                            ("topic", "data", "text", "id", "cmd", "qos", "ack")}
                  | {"properties": lambda m: m.properties(), "bool": bool})


# -- a closed Connection, a closed Manager ------------------------------------------------

_CONNECTION_STATE = ["id", "local_addr", "remote_addr", "is_listening", "is_closing",
                     "is_client", "is_tls", "is_udp", "is_websocket", "is_readable",
                     "is_writable", "is_full", "is_draining", "recv_len", "send_len",
                     "recv_size", "send_size", "userdata"]
_CONNECTION_CALLS = {
    "send": lambda c: c.send(b"x"), "recv_data": lambda c: c.recv_data(),
    "send_data": lambda c: c.send_data(), "reply": lambda c: c.reply(200, b"x"),
    "reply_json": lambda c: c.reply_json({"a": 1}), "http_chunk": lambda c: c.http_chunk(b"x"),
    "http_sse": lambda c: c.http_sse("e", "d"), "ws_send": lambda c: c.ws_send(b"x"),
    "mqtt_pub": lambda c: c.mqtt_pub("t", "m"), "mqtt_sub": lambda c: c.mqtt_sub("t"),
    "mqtt_unsub": lambda c: c.mqtt_unsub("t"), "mqtt_ping": lambda c: c.mqtt_ping(),
    "mqtt_pong": lambda c: c.mqtt_pong(), "mqtt_disconnect": lambda c: c.mqtt_disconnect(),
    "sntp_request": lambda c: c.sntp_request(), "resolve": lambda c: c.resolve("tcp://h:1"),
    "resolve_cancel": lambda c: c.resolve_cancel(),
    "http_basic_auth": lambda c: c.http_basic_auth("u", "p"),
    "tls_init": lambda c: c.tls_init(cm.TlsOpts()), "tls_free": lambda c: c.tls_free(),
    "error": lambda c: c.error("boom"), "set_handler": lambda c: c.set_handler(None),
    "close": lambda c: c.close(), "drain": lambda c: c.drain(),
}


@case("Connection after its MG_EV_CLOSE")
def _closed_connection():
    closed = []
    with cm.Manager() as mgr:
        port = mgr.listen("tcp://127.0.0.1:0").local_addr[1]
        conn = mgr.connect(f"tcp://127.0.0.1:{port}",
                           lambda c, ev, d: ev == cm.MG_EV_CLOSE and closed.append(c))
        conn.userdata = "kept"
        _until(mgr, lambda: conn.is_writable or conn.is_closing)
        conn.close()
        _until(mgr, lambda: closed)
        return _table(conn, {n: (lambda c, n=n: getattr(c, n)) for n in _CONNECTION_STATE}
                      | _CONNECTION_CALLS)


@case("listener Connection after Manager.close()")
def _listener_after_manager_close():
    mgr = cm.Manager()
    listener = mgr.listen("http://127.0.0.1:0")
    mgr.close()
    return _table(listener, {n: (lambda c, n=n: getattr(c, n)) for n in _CONNECTION_STATE}
                  | _CONNECTION_CALLS)


@case("Manager after close()")
def _closed_manager():
    mgr = cm.Manager(enable_wakeup=True)
    wakeup_id = mgr.wakeup_id
    mgr.close()
    return _table(mgr, {"poll": lambda m: m.poll(0), "run": lambda m: m.run(1),
                        "wakeup": lambda m: m.wakeup(wakeup_id, b"x"),
                        "timer_add": lambda m: m.timer_add(10, lambda: None),
                        "close again": lambda m: m.close(), "connections": lambda m: m.connections,
                        "wakeup_id is the same": lambda m: m.wakeup_id == wakeup_id})


@case("Manager.poll()/close()/run() from inside poll()")
def _reentrant():
    seen = {}

    def tick():
        seen.update(_table(mgr, {"poll": lambda m: m.poll(0), "close": lambda m: m.close(),
                                 "run": lambda m: m.run(1)}))

    with cm.Manager() as mgr:
        mgr.timer_add(1, tick, run_now=True)
        _until(mgr, lambda: seen)
    return seen


# -- URLs mongoose refuses -------------------------------------------------------------

@case("listen/connect on URLs that cannot work")
def _bad_urls():
    with socket.socket() as busy, cm.Manager() as mgr:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        in_use = f"127.0.0.1:{busy.getsockname()[1]}"
        return _table(mgr, {
            "listen port in use": lambda m: m.listen(f"http://{in_use}"),
            "listen tcp port in use": lambda m: m.listen(f"tcp://{in_use}"),
            "listen bad address": lambda m: m.listen("http://256.1.1.1:0"),
            "listen unresolvable host": lambda m: m.listen("tcp://no-such-host.invalid:0"),
            "listen http=True without port": lambda m: m.listen("http://", http=True),
            "mqtt_listen port in use": lambda m: m.mqtt_listen(f"mqtt://{in_use}"),
            "connect empty": lambda m: m.connect(""),
            "ws_connect empty": lambda m: m.ws_connect(""),
            "mqtt_connect empty": lambda m: m.mqtt_connect(""),
            "sntp_connect empty": lambda m: m.sntp_connect(""),
        })


# -- MG_EV_READ and recv_data() ------------------------------------------------------------

def _reads(url: str, udp: bool = False):
    """What a server handler sees on two MG_EV_READs (b"hello", then b" world")."""
    reads = []

    def handler(conn, ev, data):
        if ev == cm.MG_EV_READ:
            # data itself is not compared: 0.2.5 passes None, the spec the bytes received.
            reads.append([_plain(conn.recv_data()), _plain(conn.recv_data()),
                          conn.recv_len, _plain(conn.recv_data(2))])

    with cm.Manager(handler) as mgr:
        port = mgr.listen(url).local_addr[1]
        kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as client:
            client.connect(("127.0.0.1", port))
            client.send(b"hello")
            _until(mgr, lambda: reads)
            client.send(b" world")
            _until(mgr, lambda: len(reads) >= 2)
    return reads[:2]


case("MG_EV_READ on a TCP server connection")(lambda: _reads("tcp://127.0.0.1:0"))
case("MG_EV_READ on a UDP listener")(lambda: _reads("udp://127.0.0.1:0", udp=True))


@case("MG_EV_READ on a TCP client connection")
def _client_reads():
    reads = []

    def server(conn, ev, data):
        if ev == cm.MG_EV_ACCEPT:
            conn.send(b"greeting")

    def client(conn, ev, data):
        if ev == cm.MG_EV_READ:
            reads.append([_plain(conn.recv_data()), conn.recv_len])

    with cm.Manager() as mgr:
        port = mgr.listen("tcp://127.0.0.1:0", server).local_addr[1]
        mgr.connect(f"tcp://127.0.0.1:{port}", client)
        _until(mgr, lambda: reads)
    return reads[0]


@case("MG_EV_READ on an HTTP connection")
def _http_reads():
    reads = []

    def handler(conn, ev, data):
        if ev == cm.MG_EV_READ:
            reads.append([_plain(data), conn.recv_len])
        elif ev == cm.MG_EV_HTTP_MSG:
            conn.reply(200, b"")

    with cm.Manager(handler) as mgr:
        port = mgr.listen("http://127.0.0.1:0").local_addr[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            _until(mgr, lambda: reads)
    return reads[0]


# -- url_encode ----------------------------------------------------------------------------

case("url_encode of each code point 1..0x7ff")(
    lambda: [cm.url_encode(chr(c)) for c in range(1, 0x800)])
case("url_encode of short and long strings")(lambda: [cm.url_encode(s) for s in (
    "", " ", "@", "é", "a b", "ab@", " a", "a/b?c=d&e", "~._-", "€uro", "x" * 10000,
    "".join(chr(c) for c in range(1, 0x800)) * 3)])


# -- AsyncManager before start and after close -------------------------------------------

_ASYNC_CALLS = {
    "listen": lambda am: am.listen("tcp://127.0.0.1:0"),
    "connect": lambda am: am.connect("tcp://127.0.0.1:1"),
    "mqtt_connect": lambda am: am.mqtt_connect("mqtt://127.0.0.1:1", client_id="x"),
    "mqtt_listen": lambda am: am.mqtt_listen("mqtt://127.0.0.1:0"),
    "sntp_connect": lambda am: am.sntp_connect("udp://127.0.0.1:1"),
    "wakeup": lambda am: am.wakeup(1, b"x"), "timer_add": lambda am: am.timer_add(10, print),
    "schedule": lambda am: am.schedule(print), "manager": lambda am: type(am.manager),
    "running": lambda am: am.running,
}


@case("AsyncManager before start and after close")
def _async_manager():
    am = cm.AsyncManager()
    before = _table(am, _ASYNC_CALLS)

    async def run():
        async with am:
            return am.running

    return {"before": before, "running inside": asyncio.run(run()),
            "after": _table(am, _ASYNC_CALLS)}


@case("AsyncManager by keyword and by position", "accepted")
def _async_calls():
    async def run():
        async with cm.AsyncManager(handler=None, poll_interval=20, error_handler=None,
                                   shutdown_timeout=5) as am:
            lst = am.listen(url="tcp://127.0.0.1:0", handler=None, http=False)
            am.connect("tcp://127.0.0.1:1", None, http=False)
            am.mqtt_listen(url="mqtt://127.0.0.1:0", handler=None)
            am.mqtt_connect("mqtt://127.0.0.1:1", client_id="x", keepalive=30)
            am.sntp_connect(url="udp://127.0.0.1:1", handler=None)
            am.timer_add(ms=5, callback=print, repeat=False, run_now=False).cancel()
            am.wakeup(connection_id=lst.id, data=b"x")
            am.schedule(coro_or_callback=lambda: None)
        async with cm.AsyncManager(None, 20, None, 5):
            pass

    asyncio.run(run())


# -- the top-level package -----------------------------------------------------------------

@case("top-level namespace")
def _namespace():
    namespace: dict = {}
    exec("from cymongoose import *", namespace)
    return {"__all__": sorted(cm.__all__), "cymongoose.aio": cm.aio.__name__,
            "star import brings AsyncManager": "AsyncManager" in namespace,
            "AsyncManager is cymongoose.aio.AsyncManager": cm.AsyncManager is cm.aio.AsyncManager}


# -- signatures ----------------------------------------------------------------------------

def _signature(target: str):
    module, _, qualname = target.partition(":")
    obj = __import__(module, fromlist=["_"])
    for part in qualname.split("."):
        obj = getattr(obj, part)
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name, None if p.default is p.empty else repr(p.default)]
            for p in sig.parameters.values() if p.name != "self"]


def _public(module: str) -> list:
    mod = __import__(module, fromlist=["_"])
    names = []
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if inspect.isclass(obj):
            names += [f"{name}.{m}" for m, v in vars(obj).items()
                      if not m.startswith("_") and callable(v)]
        elif callable(obj):
            names.append(name)
    return sorted(f"{module}:{n}" for n in names)


def main(extra_targets: list) -> None:
    cm.log_set(cm.MG_LL_NONE)
    report = {
        "signatures": {t: _signature(t) for t in SIGNATURES + extra_targets},
        "public": _public("cymongoose"),
        "cases": {name: _outcome(level, fn) for name, (level, fn) in CASES.items()},
    }
    json.dump(report, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
