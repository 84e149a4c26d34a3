"""Broken applications behind both servers (issue 8): response splitting attempts and
exceptions before and after the response has started.

Every case ends with ``server.assert_serves()``: the server still answers a normal request.
"""

from __future__ import annotations

import json

import pytest
from rawhttp import RawConnection, get, request


def test_header_with_crlf_never_emitted(server):
    with RawConnection(server.port) as c:
        c.send(get("/crlf"))
        resp = c.response()
        rest = bytes(c.buf)
    assert resp is not None
    assert resp.status == 500
    assert b"Injected" not in resp.raw_head + resp.body + rest
    assert resp.header("injected") is None
    server.assert_serves()


@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep-alive", "close"])
def test_app_raises_before_response_500(server, keep_alive):
    with RawConnection(server.port) as c:
        c.send(get("/raise-before", headers="" if keep_alive else "Connection: close\r\n"))
        resp = c.response()
        assert resp is not None and resp.status == 500
        assert b"Traceback" not in resp.body and b"RuntimeError" not in resp.body
    server.assert_serves()


def test_app_raises_after_response_started(server):
    # The head is out: the only honest signal left is to end the connection without
    # completing the body, so the client cannot take the truncated body for a whole one.
    with RawConnection(server.port) as c:
        c.send(get("/raise-after") + get("/after-raise"))
        resp = c.response()
        assert resp is not None and resp.status == 200
        assert not resp.complete
        assert c.closed_by_server()
    assert server.tracker.count("start", "/after-raise") == 0
    server.assert_serves()


def test_connection_reused_after_app_error(server):
    with RawConnection(server.port) as c:
        c.send(get("/raise-before"))
        first = c.response()
        if first.header("connection") != "close":
            c.send(get("/next"))
            assert c.response().status == 200
    server.assert_serves()


def test_app_body_shorter_than_content_length(server):
    # The client must not wait for bytes that never come, nor read the next response as
    # the missing body: the server ends the connection.
    with RawConnection(server.port) as c:
        c.send(get("/cl-short") + get("/next"))
        resp = c.response()
        assert resp is not None and resp.status == 200
        assert not resp.complete
        assert c.closed_by_server()
    server.assert_serves()


def test_app_body_longer_than_content_length_never_desyncs(server):
    # Bytes past the declared length must never reach the client as a response of their
    # own (response splitting): truncated to Content-Length, or the connection ends.
    with RawConnection(server.port) as c:
        c.send(get("/cl-long") + get("/next"))
        first = c.response()
        assert first is not None and first.status == 200
        assert first.body == b"01234567890123456789"
        second = c.response()
    assert second is None or second.header("x-fake") is None
    if second is not None:
        assert json.loads(second.body)["path"] == b"/next".hex()
    server.assert_serves()


@pytest.mark.parametrize("code", [204, 304, 100, 101])
def test_body_for_status_without_body_never_sent(server, code):
    # RFC 9110 sections 15.3.5, 15.4.5: no content. Whatever the app writes must not reach
    # the client, where it would be read as the next response. 1xx are not final: 500.
    with RawConnection(server.port) as c:
        c.send(get(f"/status?code={code}") + get("/next"))
        first = c.response()
        second = c.response()
    assert first is not None
    assert first.status == (code if code >= 200 else 500)
    assert b"X-Fake" not in first.raw_head + first.body
    assert second is None or second.header("x-fake") is None
    server.assert_serves()


def test_head_response_has_no_body(server):
    with RawConnection(server.port) as c:
        c.send(b"HEAD /info HTTP/1.1\r\nHost: a\r\n\r\n" + get("/next"))
        head = c.response(head=True)
        nxt = c.response()
    assert head.status == 200
    assert nxt is not None and json.loads(nxt.body)["path"] == b"/next".hex()
    server.assert_serves()


@pytest.mark.parametrize("path", ["/no-response", "/double-start"])
def test_protocol_misuse_by_app(server, path):
    # No response at all: 500 (ASGI spec; PEP 3333). A second start is refused: the client
    # gets at most one response head (a 500, the first head, or just the close).
    with RawConnection(server.port) as c:
        c.send(get(path, headers="Connection: close\r\n"))
        resp = c.response()
        assert c.closed_by_server(), "bytes after the response"
    if path == "/no-response":
        assert resp is not None and resp.status == 500
    else:
        assert resp is None or b"HTTP/1." not in resp.body
    server.assert_serves()


def test_wsgi_str_body_500(start_server, kind):
    if not kind.startswith("wsgi"):
        pytest.skip("WSGI only: an iterable of str instead of bytes")
    server = start_server()
    resp = request(server.port, get("/str-body"))
    assert resp.status == 500
    assert b"not bytes" not in resp.body
    server.assert_serves()


def test_asgi_body_after_final_message_never_sent(start_server, kind):
    if not kind.startswith("asgi"):
        pytest.skip("ASGI only: a body message after more_body=False")
    server = start_server()
    with RawConnection(server.port) as c:
        c.send(get("/after-complete") + get("/next"))
        first = c.response()
        second = c.response()
    assert first.status == 200 and first.body == b"done"
    assert second is None or second.header("x-fake") is None
    server.assert_serves()
