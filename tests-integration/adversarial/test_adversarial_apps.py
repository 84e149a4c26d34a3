"""Broken applications behind both servers (issue 8): response splitting attempts and
exceptions before and after the response has started.

Every case ends with ``server.assert_serves()``: the server still answers a normal request.
"""

from __future__ import annotations

import json

import pytest
from rawhttp import RawConnection, get


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
