"""The core's PEP 3333 helpers: HttpMessage.wsgi_environ, Connection.send_wsgi_response
and send_wsgi_head."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from cymongoose import MG_EV_HTTP_MSG

pytestmark = pytest.mark.timeout(30)

BASE = {"SCRIPT_NAME": "/app", "wsgi.version": (1, 0), "SERVER_NAME": "test"}


def environ_handler(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        env = data.wsgi_environ(BASE)
        body = json.dumps({k: v for k, v in env.items() if isinstance(v, str)}).encode()
        conn.send_wsgi_response("200 OK", [("Content-Type", "application/json")], [body])


def test_environ_keys(serve):
    srv = serve(environ_handler, http_server={})
    r = httpx.post(srv.url + "/app/caf%C3%A9/x?q=1&r=%20", content=b"abc",
                   headers=[("X-A", "1"), ("X-A", "2"), ("Cookie", "a=1"),
                            ("X_Forwarded_For", "spoof"), ("Content-Type", "text/plain")])
    env = r.json()
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == "/app"
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9/x"  # UTF-8 bytes as latin-1 code points
    assert env["QUERY_STRING"] == "q=1&r=%20"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "3"
    assert env["HTTP_X_A"] == "1, 2"
    assert env["HTTP_COOKIE"] == "a=1"
    assert "HTTP_X_FORWARDED_FOR" not in env and "HTTP_CONTENT_TYPE" not in env
    assert env["SERVER_NAME"] == "test"


def test_environ_absolute_form_and_unmatched_script_name(serve):
    srv = serve(environ_handler, http_server={})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET http://example.com/other/p HTTP/1.1\r\nHost: example.com\r\n\r\n")
        data = s.recv(65536)
    env = json.loads(data.partition(b"\r\n\r\n")[2])
    assert env["PATH_INFO"] == "/other/p"
    assert env["SCRIPT_NAME"] == "/app"


def test_send_wsgi_response_adds_length_and_close(serve):
    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.send_wsgi_response("201 Created", [("X-Y", "z")], [b"ab", b"cd"], close=True)

    srv = serve(handler, http_server={})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data == (b"HTTP/1.1 201 Created\r\nX-Y: z\r\nContent-Length: 4\r\n"
                    b"Connection: close\r\n\r\nabcd")


def test_send_wsgi_head_chunked(serve):
    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.send_wsgi_head("200 OK", [("Content-Type", "text/plain")], chunked=True)
            conn.http_chunk(b"hello ")
            conn.http_chunk(b"world")
            conn.http_chunk(b"")
            conn.finish_response()

    srv = serve(handler, http_server={})
    with httpx.Client() as client:
        assert client.get(srv.url + "/").text == "hello world"
        assert client.get(srv.url + "/").text == "hello world"  # keep-alive continues


@pytest.mark.parametrize("status,headers", [("200 OK\r\nX: y", []), ("200 OK", [("A", "b\nc")])])
def test_send_wsgi_response_refuses_crlf(serve, status, headers):
    errors = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            try:
                conn.send_wsgi_response(status, headers, b"x")
            except ValueError as exc:
                errors.append(exc)
                conn.send_wsgi_response("500 Internal Server Error", [], b"")

    srv = serve(handler, http_server={})
    assert httpx.get(srv.url + "/").status_code == 500
    assert errors


def test_send_file_range_and_pipelining(serve, tmp_path):
    data = bytes(range(256)) * 12000  # ~3 MiB
    path = tmp_path / "blob"
    path.write_bytes(data)

    def handler(conn, ev, msg):
        if ev == MG_EV_HTTP_MSG:
            if msg.uri == "/file":
                conn.send_wsgi_head("200 OK", [("Content-Length", str(len(data) - 10))])
                with open(path, "rb") as f:
                    conn.send_file(f.fileno(), 10, len(data) - 10)  # closed right away
            else:
                conn.send_wsgi_response("200 OK", [], b"next")

    srv = serve(handler, http_server={})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:
        s.sendall(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while not got.endswith(b"next"):
            chunk = s.recv(1 << 20)
            assert chunk
            got += chunk
    head, _, rest = got.partition(b"\r\n\r\n")
    assert rest[: len(data) - 10] == data[10:]
    assert rest[len(data) - 10:].startswith(b"HTTP/1.1 200 OK")


def test_send_file_needs_a_server_connection(serve):
    errors = []

    def handler(conn, ev, msg):
        if ev == MG_EV_HTTP_MSG:
            try:
                conn.send_file(0, 0, 1)
            except RuntimeError as exc:
                errors.append(exc)
            conn.send_wsgi_response("200 OK", [], b"ok")

    srv = serve(handler)  # plain mongoose HTTP, no configure_http_server
    assert httpx.get(srv.url + "/").text == "ok"
    assert errors


def test_environ_keeps_an_invalid_escape_and_decodes_the_rest(serve):
    srv = serve(environ_handler, http_server={})
    env = httpx.get(srv.url + "/app/caf%C3%A9/%zz").json()
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9/%zz"


def test_wsgi_headers_go_out_as_latin1(serve):
    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            try:
                conn.send_wsgi_response("200 OK", [("X-Snow", "\u2603")], b"")
            except ValueError:
                conn.send_wsgi_response("200 OK", [("X-Name", "caf\u00e9")], b"ok")

    srv = serve(handler, http_server={})
    r = httpx.get(srv.url + "/")
    assert r.text == "ok"
    assert (b"X-Name", b"caf\xe9") in r.headers.raw


@pytest.mark.parametrize("name", ["", "Bad Name", "X:Y", "caf\u00e9"])
def test_header_name_must_be_a_token(serve, name):
    refused = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            try:
                conn.send_response(200, [(name, "v")], b"x")
            except ValueError:
                refused.append(name)
                conn.send_response(500, [], b"")

    srv = serve(handler, http_server={})
    assert httpx.get(srv.url + "/").status_code == 500
    assert refused == [name]
