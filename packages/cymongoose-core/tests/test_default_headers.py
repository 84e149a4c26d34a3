"""configure_http_server(date_header=, default_headers=): the response heads every send_*
method writes (fast and general paths) and the errors answered in C carry Date (RFC 9110
section 6.6.1) and the default headers, unless the response has its own field."""

from __future__ import annotations

import socket
import time
from email.utils import parsedate_to_datetime

import pytest
from cymongoose import MG_EV_HTTP_MSG, Manager

WAIT_S = 10  # failure bound, never a measured duration
DEFAULTS = [("Server", "cymongoose"), (b"X-Frame-Options", b"DENY")]


class Text(str):
    """A str subclass: not what the emitter reads as it is (the general path's)."""


def handler(conn, ev, data):
    if ev != MG_EV_HTTP_MSG:
        return
    uri = data.uri
    if uri == "/own":
        conn.send_response(200, [(b"date", b"Sun, 06 Nov 1994 08:49:37 GMT"),
                                 ("SERVER", "mine")], b"own")
    elif uri == "/general":  # a tuple of headers: not the fast path's list
        conn.send_response(200, ((b"Content-Type", b"text/plain"),), b"general")
    elif uri == "/wsgi":
        conn.send_wsgi_response("200 OK", [("Content-Type", "text/plain")], b"wsgi")
    elif uri == "/wsgi-general":
        conn.send_wsgi_response("200 OK", [(Text("Content-Type"), "text/plain")], b"wsgi")
    elif uri == "/head":
        conn.send_wsgi_head("200 OK", [("Content-Type", "text/plain")], chunked=True)
        conn.http_chunk(b"streamed")
        conn.http_chunk(b"")
        conn.finish_response()
    else:
        conn.send_response(200, [], b"plain")


def exchange(port: int, request: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as sock:
        sock.sendall(request)
        raw = b""
        while b"\r\n\r\n" not in raw:
            data = sock.recv(65536)
            if not data:
                break
            raw += data
    lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    fields = [tuple(line.split(b": ", 1)) for line in lines[1:]]
    return int(lines[0].split()[1]), [(k.lower(), v) for k, v in fields]


def values(fields, name: bytes) -> list[bytes]:
    return [v for k, v in fields if k == name]


@pytest.fixture
def port(serve):
    def start(**defaults):
        srv = serve(handler, http_server=defaults)
        return srv.port
    return start


@pytest.mark.parametrize("path", ["/", "/general", "/wsgi", "/wsgi-general", "/head"])
def test_every_send_path_has_date_and_defaults(port, path):
    p = port(date_header=True, default_headers=DEFAULTS)
    status, fields = exchange(p, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 200
    (date,) = values(fields, b"date")
    assert len(date) == 29 and date.endswith(b" GMT")
    assert abs(parsedate_to_datetime(date.decode()).timestamp() - time.time()) < 3600
    assert values(fields, b"server") == [b"cymongoose"]
    assert values(fields, b"x-frame-options") == [b"DENY"]


def test_the_responses_own_fields_win(port):
    p = port(date_header=True, default_headers=DEFAULTS)
    _, fields = exchange(p, b"GET /own HTTP/1.1\r\nHost: x\r\n\r\n")
    assert values(fields, b"date") == [b"Sun, 06 Nov 1994 08:49:37 GMT"]
    assert values(fields, b"server") == [b"mine"]
    assert values(fields, b"x-frame-options") == [b"DENY"]


def test_errors_answered_in_c_have_them(port):
    p = port(date_header=True, default_headers=DEFAULTS)
    status, fields = exchange(p, b"GET / HTTP/1.1\r\n\r\n")  # no Host
    assert status == 400
    assert len(values(fields, b"date")) == 1
    assert values(fields, b"server") == [b"cymongoose"]


def test_off_by_default(port):
    _, fields = exchange(port(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert values(fields, b"date") == values(fields, b"server") == []


@pytest.mark.parametrize(("value", "error", "said"), [
    ([("Bad Name", "x")], ValueError, "not a token"),
    ([("X-A", "a\r\nInjected: 1")], ValueError, "CR, LF or NUL"),
    (["X-A: 1"], TypeError, "pairs"),
    ([(f"X-{i}", "1") for i in range(17)], ValueError, "at most 16"),
])
def test_bad_default_headers_refused(value, error, said):
    with Manager() as mgr:
        listener = mgr.listen("http://127.0.0.1:0")
        with pytest.raises(error, match=said):
            listener.configure_http_server(default_headers=value)
