"""Requests start eagerly (cymongoose.asgi.eager): what an app must still see whether it
finishes in its first step or suspends, on asyncio's loop and on uvloop, in integrated
and threaded mode."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import time

import httpx
import pytest
from cymongoose.asgi.testing import ServerThread

pytestmark = pytest.mark.timeout(60)

request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var",
                                                                  default="unset")


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request):
    """The event loop ServerThread gets (through the loop policy)."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        old = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        yield "uvloop"
        asyncio.set_event_loop_policy(old)
    else:
        yield "asyncio"


MODES = ["auto", "threaded"]


async def _pause(scope):
    # "?suspend" in the query: the app waits on the loop (a real suspension) here.
    if b"suspend" in scope["query_string"]:
        await asyncio.sleep(0.005)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/start-then-suspend":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await asyncio.sleep(0.005)
        await send({"type": "http.response.body", "body": b"after the pause"})
    elif path == "/raise-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await _pause(scope)
        raise RuntimeError("app failure after start")
    elif path == "/raise-mid-body":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        await _pause(scope)
        raise RuntimeError("app failure mid-body")
    elif path == "/no-response":
        await _pause(scope)
    elif path == "/contextvar":
        before = request_var.get()
        request_var.set(scope["query_string"].decode())
        task = asyncio.current_task()
        await _pause(scope)
        same_task = asyncio.current_task() is task and task is not None
        body = f"{before} {request_var.get()} {same_task}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    elif path == "/contextvar-then-block":
        request_var.set("blocker")
        await asyncio.sleep(0.005)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"blocked"})
        # Block the loop after the write: the next request is read by the poll that
        # flushes this write, a callback scheduled from this request's context.
        time.sleep(0.2)
    elif path == "/scope":
        body = repr((scope["client"][0], scope["server"][0], scope["scheme"],
                     scope["root_path"], sorted(scope["extensions"]), scope["state"]))
        for key in list(scope):  # what the app does to its scope stays with it
            scope[key] = "changed"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body.encode()})
    elif path == "/cancel-self-then-return":
        asyncio.current_task().cancel()  # never awaits after it: the request completes
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"returned"})
    elif path == "/cancel-self":
        asyncio.current_task().cancel()
        await asyncio.sleep(0)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"not cancelled"})
    else:
        await _pause(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("mode", MODES)
def test_app_suspending_after_the_start_message(loop_kind, mode):
    with ServerThread(app, mode=mode) as server, httpx.Client() as client:
        for _ in range(3):
            r = client.get(server.url + "/start-then-suspend")
            assert (r.status_code, r.text) == (200, "after the pause")
            assert r.headers["content-type"] == "text/plain"
            assert client.get(server.url + "/").text == "ok"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("query", ["", "suspend"])
def test_app_raising_after_the_start_message_is_500(loop_kind, mode, query, caplog):
    with caplog.at_level(logging.ERROR, logger="cymongoose.asgi"):
        with ServerThread(app, mode=mode) as server, httpx.Client() as client:
            r = client.get(f"{server.url}/raise-after-start?{query}")
            assert (r.status_code, r.text) == (500, "Internal Server Error")
            assert client.get(server.url + "/").text == "ok"
    assert any("app failure after start" in (rec.exc_text or "") for rec in caplog.records)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("query", ["", "suspend"])
def test_app_raising_mid_body_ends_the_connection(loop_kind, mode, query, caplog):
    """Part of the body is on the wire: the connection closes after it, never a 500
    or a complete-looking response."""
    with caplog.at_level(logging.CRITICAL, logger="cymongoose.asgi"):
        with ServerThread(app, mode=mode) as server:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(f"GET /raise-mid-body?{query} HTTP/1.1\r\nHost: x\r\n\r\n"
                             .encode())
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            assert data.startswith(b"HTTP/1.1 200 ")
            assert b"part" in data
            assert not data.endswith(b"0\r\n\r\n")  # no last chunk: the body is cut
            assert httpx.get(server.url + "/").text == "ok"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("query", ["", "suspend"])
def test_app_returning_without_a_response_is_500(loop_kind, mode, query, caplog):
    with caplog.at_level(logging.ERROR, logger="cymongoose.asgi"):
        with ServerThread(app, mode=mode) as server, httpx.Client() as client:
            r = client.get(f"{server.url}/no-response?{query}")
            assert (r.status_code, r.text) == (500, "Internal Server Error")
            assert client.get(server.url + "/").text == "ok"
    assert any("without starting a response" in rec.getMessage() for rec in caplog.records)


@pytest.mark.parametrize("mode", MODES)
def test_contextvar_set_before_the_first_await_stays_with_its_request(loop_kind, mode):
    """A value set in the first step is seen after a suspension, in the same Task; the
    next request on the connection starts from a fresh context (a Task's semantics)."""
    with ServerThread(app, mode=mode) as server, httpx.Client() as client:
        for query in ("suspend", "a", "suspend", "b"):
            r = client.get(f"{server.url}/contextvar?{query}")
            assert r.text == f"unset {query} True"


@pytest.mark.parametrize("mode", MODES)
def test_request_polled_by_another_requests_flush_starts_in_a_fresh_context(loop_kind,
                                                                            mode):
    with ServerThread(app, mode=mode) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as first, \
                socket.create_connection(("127.0.0.1", server.port), timeout=10) as second:
            first.sendall(b"GET /contextvar-then-block HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.1)  # the first app is blocking the loop now
            second.sendall(b"GET /contextvar?second HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _body(first) == b"blocked"
            assert _body(second) == b"unset second True"


def _body(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return body


@pytest.mark.parametrize("mode", MODES)
def test_app_cancelling_its_own_task_gets_cancelled_at_its_next_await(loop_kind, mode,
                                                                       caplog):
    with caplog.at_level(logging.CRITICAL, logger="cymongoose.asgi"):
        with ServerThread(app, mode=mode) as server:
            with httpx.Client() as client:
                r = client.get(server.url + "/cancel-self")
                assert (r.status_code, r.text) == (500, "Internal Server Error")
            with httpx.Client() as client:
                for path in ("/", "/?suspend", "/contextvar?x"):
                    assert client.get(server.url + path).status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_a_cancel_left_pending_by_one_request_reaches_no_other(loop_kind, mode):
    with ServerThread(app, mode=mode) as server, httpx.Client() as client:
        for _ in range(3):
            assert client.get(server.url + "/cancel-self-then-return").text == "returned"
            r = client.get(server.url + "/?suspend")
            assert (r.status_code, r.text) == (200, "ok")


@pytest.mark.parametrize("mode", MODES)
def test_mixed_eager_and_suspending_requests_on_many_connections(loop_kind, mode):
    """No request starts in the context of another: a poll can run in a callback that a
    request scheduled (its write's flush), and a Task would copy that context."""
    async def run(url):
        async with httpx.AsyncClient() as client:
            out = []
            for _ in range(4):
                out += await asyncio.gather(*(client.get(url + p) for p in paths))
            return out

    paths = [f"/contextvar?{'suspend' if i % 3 else f'x{i}'}" for i in range(60)]
    with ServerThread(app, mode=mode) as server:
        responses = asyncio.run(run(server.url))
    paths *= 4
    for r, path in zip(responses, paths, strict=True):
        assert r.text == f"unset {path.split('?')[1]} True"


def test_an_app_changing_its_scope_leaves_the_next_ones_alone():
    with ServerThread(app) as server, httpx.Client() as client:
        first = client.get(server.url + "/scope").text
        with httpx.Client() as other:
            assert other.get(server.url + "/scope").text == first
        assert client.get(server.url + "/scope").text == first
    assert first == repr(("127.0.0.1", "127.0.0.1", "http", "", [
        "http.response.early_hint", "http.response.pathsend", "http.response.trailers"], {}))
