"""Issue 20, the HTTP items, on both servers (WSGI in both modes): the default response
headers (Date, Server, ``headers``), SERVER_SOFTWARE, HEAD without an invented
Content-Length, and WSGI blocks that reach the client as they are yielded."""

from __future__ import annotations

import socket
import threading
import time
from email.utils import parsedate_to_datetime

import h11
import httpx
import pytest
from cli_process import (
    server_cli_fixture,  # noqa: F401  (fixture: server_cli)
    write_app,
)
from cymongoose.asgi.testing import ServerThread as AsgiThread
from cymongoose.wsgi.testing import ServerThread as WsgiThread
from flask import Flask, Response
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route
from wsgi_modes import wsgi_threads  # noqa: F401  (each test: pooled and inline)

WAIT_S = 10.0  # failure bound of every wait, never a measured duration
STEPS: dict[str, threading.Event] = {}  # lockstep: the client's "got block i" signals


def _step(token: str, i: int) -> threading.Event:
    return STEPS.setdefault(f"{token}/{i}", threading.Event())


def lockstep(token: str, n: int, failures: list[str]):
    """Yield ``n`` one-byte blocks; before each next one, wait until the client has
    received the last (a server holding a block back stalls here, and it is recorded)."""
    for i in range(n):
        yield b"x"
        if not _step(token, i).wait(WAIT_S):
            failures.append(f"block {i} did not reach the client before the next was asked")
            return


def wsgi_app(failures: list[str]):
    flask = Flask(__name__)

    @flask.route("/flask-stream")
    def flask_stream():
        return Response((b"part%d" % i for i in range(3)), mimetype="text/plain")

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/own":
            start_response("200 OK", [("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                                      ("Server", "app/1"), ("Content-Type", "text/plain")])
            return [b"own"]
        if path == "/stream":  # no length: chunked for GET; HEAD must not invent one
            start_response("200 OK", [("Content-Type", "text/plain")])
            return (b"block%d" % i for i in range(3))
        if path == "/env":
            body = environ["wsgi.input"].read()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [repr((environ.get("SERVER_SOFTWARE"), environ.get("CONTENT_LENGTH"),
                          environ.get("wsgi.input_terminated"), len(body))).encode()]
        if path.startswith("/lockstep/"):
            token = path.rsplit("/", 1)[1]
            headers = [("Content-Type", "text/plain")]
            if environ["QUERY_STRING"] == "length":
                headers.append(("Content-Length", "10"))
            start_response("200 OK", headers)
            return lockstep(token, 10, failures)
        if path.startswith("/flask"):
            return flask(environ, start_response)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/starlette-stream":
        return await _starlette(scope, receive, send)
    head = scope["method"] == "HEAD"
    headers = [(b"content-type", b"text/plain")]
    if path == "/own":
        headers += [(b"date", b"Sun, 06 Nov 1994 08:49:37 GMT"), (b"server", b"app/1")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if path == "/stream":
        for i in range(3):
            await send({"type": "http.response.body", "body": b"" if head else b"block%d" % i,
                        "more_body": True})
        await send({"type": "http.response.body"})
    elif path == "/head-aware":  # HEAD: no body, no length, as a HEAD-aware app answers
        await send({"type": "http.response.body", "body": b"" if head else b"ok"})
    else:
        await send({"type": "http.response.body", "body": b"own" if path == "/own" else b"ok"})


async def _starlette_stream(request):
    async def parts():
        for i in range(3):
            yield b"part%d" % i
    return StreamingResponse(parts(), media_type="text/plain")


_starlette = Starlette(routes=[Route("/starlette-stream", _starlette_stream,
                                     methods=["GET", "HEAD"])])


@pytest.fixture(scope="module")
def failures():
    return []


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def kind(request, threads):
    if request.param == "asgi" and threads:
        pytest.skip("the ASGI server has no WSGI mode: run once")
    return request.param


def serve(kind, threads, failures, **config):
    if kind == "asgi":
        return AsgiThread(asgi_app, access_log=False, lifespan="off", **config)
    return WsgiThread(wsgi_app(failures), workers=threads, access_log=False, **config)


@pytest.fixture(scope="module")
def server(kind, threads, failures):
    with serve(kind, threads, failures, headers=["X-Served-By: test", "Cache-Control: no-store"]
               ) as srv:
        yield srv


def exchange(port: int, method: str, target: str, body: bytes | None = None,
             chunked: bool = False) -> tuple[h11.Response, bytes]:
    """One request with h11 (strict framing): the response and its body. Keep-alive, no
    Connection header: what the WSGI fast path answers in C."""
    conn = h11.Connection(h11.CLIENT)
    headers = [("Host", "x")]
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    elif body is not None:
        headers.append(("Content-Length", str(len(body))))
    data = conn.send(h11.Request(method=method, target=target, headers=headers))
    if body is not None:
        data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as sock:
        sock.sendall(data)
        response, content = None, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                assert response is not None
                return response, content


def fields(response: h11.Response, name: str) -> list[str]:
    return [v.decode("latin-1") for k, v in response.headers if k == name.encode()]


# -- Date, Server, default headers -------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/stream", "/nothing-special"])
def test_date_and_server_on_every_response(server, path):
    response, _ = exchange(server.port, "GET", path)
    assert response.status_code == 200
    (date,) = fields(response, "date")
    # RFC 9110 section 5.6.7: IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT"
    assert len(date) == 29 and date.endswith(" GMT"), date
    assert abs(time.time() - parsedate_to_datetime(date).timestamp()) < 3600
    assert fields(response, "server") == ["cymongoose"]
    assert fields(response, "x-served-by") == ["test"]
    assert fields(response, "cache-control") == ["no-store"]


def test_app_date_and_server_win(server):
    response, body = exchange(server.port, "GET", "/own")
    assert body == b"own"
    assert fields(response, "date") == ["Sun, 06 Nov 1994 08:49:37 GMT"]
    assert fields(response, "server") == ["app/1"]
    assert fields(response, "x-served-by") == ["test"]


def test_error_answered_by_the_server_has_date(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # no Host: 400 from the core
        raw = b""
        while data := sock.recv(65536):
            raw += data
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert head[0] == b"HTTP/1.1 400 Bad Request"
    assert sum(line.lower().startswith(b"date: ") for line in head) == 1
    assert b"Server: cymongoose" in head


def test_headers_off(kind, threads, failures):
    with serve(kind, threads, failures, server_header=False, date_header=False) as srv:
        for path in ("/", "/stream"):
            response, _ = exchange(srv.port, "GET", path)
            assert fields(response, "date") == fields(response, "server") == []
        response, _ = exchange(srv.port, "GET", "/own")  # the app's own still go out
        assert fields(response, "server") == ["app/1"]


def test_header_option_replaces_server(kind, threads, failures):
    with serve(kind, threads, failures, headers=[("Server", "edge")]) as srv:
        response, _ = exchange(srv.port, "GET", "/")
        assert fields(response, "server") == ["edge"]
        assert len(fields(response, "date")) == 1


@pytest.mark.parametrize("server_kind", ["asgi", "wsgi"])
def test_cli_flags(server_cli, tmp_path, threads, server_kind):
    if threads:
        pytest.skip("the command line's own mode: run once")
    write_app(tmp_path / "app.py", server_kind, "hello")
    served = server_cli(server_kind, "app:app", "--no-server-header", "--header",
                        "X-Frame-Options:DENY", "--header", "X-Team: web", cwd=tmp_path)
    served.wait_body("hello", WAIT_S * 6)
    r = httpx.get(served.base + "/")
    assert "server" not in r.headers
    assert (r.headers["x-frame-options"], r.headers["x-team"]) == ("DENY", "web")
    assert len(r.headers.get_list("date")) == 1
    assert served.stop() == 0
    served = server_cli(server_kind, "app:app", "--no-date-header", cwd=tmp_path)
    served.wait_body("hello", WAIT_S * 6)
    r = httpx.get(served.base + "/")
    assert "date" not in r.headers and r.headers["server"] == "cymongoose"


def test_server_software_in_environ(kind, server):
    if kind == "asgi":
        pytest.skip("a WSGI environ key")
    r = httpx.get(server.url + "/env")
    software = eval(r.text)[0]  # noqa: S307 (our own repr of a tuple)
    assert software.startswith("cymongoose-wsgi/")


# -- HEAD ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/stream", "/flask-stream", "/starlette-stream",
                                  "/head-aware"])
def test_head_never_invents_content_length(kind, server, path):
    if (path == "/flask-stream" and kind == "asgi") or (
            path in ("/starlette-stream", "/head-aware") and kind == "wsgi"):
        pytest.skip("an app of the other server")
    get, body = exchange(server.port, "GET", path)
    assert fields(get, "content-length") == [] or path == "/head-aware"
    head, content = exchange(server.port, "HEAD", path)
    assert head.status_code == 200 and content == b""
    # RFC 9110 section 8.6/9.3.2: only the app's own length, or none (GET has none)
    assert fields(head, "content-length") == []
    assert fields(head, "transfer-encoding") == []


# -- WSGI streaming ----------------------------------------------------------------------

@pytest.mark.parametrize("query", ["length", "chunked"])
def test_each_block_reaches_the_client_before_the_next_is_asked(
        kind, server, failures, query):
    if kind == "asgi":
        pytest.skip("WSGI iteration")
    token = f"{server.port}-{query}"
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) as sock:
        sock.sendall(f"GET /lockstep/{token}?{query} HTTP/1.1\r\nHost: x\r\n"
                     f"Connection: close\r\n\r\n".encode())
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
        got = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(65536)
                if not data:
                    break
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                assert (fields(event, "content-length") == ["10"]) == (query == "length")
            elif isinstance(event, h11.Data):
                for _ in event.data:
                    _step(token, got).set()
                    got += 1
            elif isinstance(event, h11.EndOfMessage):
                break
    assert got == 10
    assert failures == []


@pytest.mark.parametrize("size", [100, 300_000])
def test_chunked_request_body_has_no_invented_content_length(kind, server, size):
    if kind == "asgi":
        pytest.skip("a WSGI environ key")
    _, body = exchange(server.port, "POST", "/env", b"a" * size, chunked=True)
    software, length, terminated, read = eval(body)  # noqa: S307 (our own repr)
    assert (length, terminated, read) == (None, True, size)
