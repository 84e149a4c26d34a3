"""Hostile request heads and bodies against both servers (issue 8).

Every case ends with ``server.assert_serves()``: the server still answers a normal request.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import httpx
import pytest
from rawhttp import RawConnection, get, request

MAX_BODY = 8 * 1024 * 1024  # conftest.LIMITS["max_body_size"]


def assert_rejected(server, data: bytes, status: int) -> None:
    """``data`` is refused with ``status``, the connection is closed, the app never ran."""
    with RawConnection(server.port) as c:
        c.send(data)
        resp = c.response()
        assert resp is not None, "no response before the close"
        assert resp.status == status
        assert resp.header("connection") == "close"
        assert c.closed_by_server()
    assert server.tracker.marks == []
    server.assert_serves()


# ---------------------------------------------------------------- malformed heads

@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTX/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
        b"GET\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost a\r\n\r\n",
        b"GET / HTTP/1.1\r\n: empty-name\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\x7f\x01\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on plain HTTP
    ],
    ids=["bad-version", "extra-token", "no-target", "no-colon", "empty-name",
         "space-before-colon", "obs-fold", "bare-cr", "nul", "control", "status-line", "tls"],
)
def test_malformed_request_400(server, data):
    assert_rejected(server, data, 400)


@pytest.mark.parametrize(
    "data, status",
    [
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nX: y\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: evil\r\n\r\n", 400),
        (b"G<T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ],
    ids=["http2-preface", "http3", "no-host", "two-hosts", "method-not-token"],
)
def test_request_line_and_host_refused(server, data, status):
    # RFC 9110 section 15.6.6 (505); RFC 9112 section 3.2 (exactly one Host in HTTP/1.1).
    assert_rejected(server, data, status)


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nContent-Length: 7\r\n",
        b"Content-Length: 5, 5\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: +5\r\n",
        b"Content-Length: 5x\r\n",
        b"Content-Length: 184467440737095516160\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    ],
    ids=["cl-te", "te-cl", "dup-cl", "conflicting-cl", "cl-list", "negative", "plus", "junk",
         "overflow", "dup-te"],
)
def test_ambiguous_framing_400_no_smuggling(server, framing):
    # The smuggled request behind the body must never reach the app.
    data = (b"POST /first HTTP/1.1\r\nHost: a\r\n" + framing + b"\r\n"
            b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
    assert_rejected(server, data, 400)


@pytest.mark.parametrize("coding", [b"gzip", b"chunked, gzip", b"gzip, chunked", b"xchunked"])
def test_unknown_transfer_coding_501(server, coding):
    assert_rejected(server, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + coding
                    + b"\r\n\r\n0\r\n\r\n", 501)


def test_too_many_headers_431(server):
    extra = "".join(f"X-H{i}: v\r\n" for i in range(25))  # limit: 20
    assert_rejected(server, get("/many", headers=extra), 431)


def test_header_count_within_limit_served(server):
    extra = "".join(f"X-H{i}: v\r\n" for i in range(15))
    assert request(server.port, get("/fifteen", headers=extra)).status == 200


@pytest.mark.parametrize("size", [9000, 100_000])
def test_oversized_header_line_431(server, size):
    assert_rejected(server, get("/big-header", headers=f"X-Big: {'b' * size}\r\n"), 431)


def test_oversized_unterminated_head_431(server):
    # A head that never ends is cut off at max_header_bytes, not buffered forever.
    assert_rejected(server, b"GET /" + b"a" * 20_000, 431)


def test_body_beyond_limit_413(server):
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)
    assert_rejected(server, head + b"x" * 65536, 413)


def test_chunked_body_beyond_limit_413(server):
    # No length up front: the server stops reading at the limit; the app has not answered
    # yet, so the client gets 413 (RFC 9110 section 15.5.14) and the connection closes.
    with RawConnection(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"100000\r\n" + b"z" * 0x100000 + b"\r\n"
        for _ in range(MAX_BODY // 0x100000 + 2):
            if not c.send(piece):
                break
        c.send(b"0\r\n\r\n")
        resp = c.response()
        assert resp is not None and resp.status == 413
        assert c.closed_by_server()
    server.assert_serves()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_large_body_within_limit_intact(server, chunked):
    body = os.urandom(MAX_BODY)
    if chunked:
        content = (body[i:i + 300_001] for i in range(0, len(body), 300_001))
    else:
        content = body
    r = httpx.post(server.url + "/echo", content=content, timeout=30)
    assert r.status_code == 200
    assert r.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    server.assert_serves()


def test_chunked_body_with_extensions_and_trailers(server):
    data = (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n")
    resp = request(server.port, data)
    assert resp.status == 200
    assert json.loads(resp.body)["sha256"] == hashlib.sha256(b"Wikipedia").hexdigest()
    server.assert_serves()


@pytest.mark.parametrize("bad", [b"zz\r\n", b"5\r\nhelloXX", b"5\nhello\r\n"],
                         ids=["not-hex", "no-crlf", "bare-lf"])
def test_malformed_chunked_body_closes(server, bad):
    with RawConnection(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + bad)
        resp = c.response()
        assert resp is None or resp.status >= 400
        assert c.closed_by_server()
    server.assert_serves()


# ---------------------------------------------------------------- paths

@pytest.mark.parametrize("target", [b"/\xff\xfe", b"/caf\xc3\xa9", b"/a?q=th\xc3\xa9"],
                         ids=["non-utf8", "utf8", "utf8-query"])
def test_non_ascii_raw_target_400(server, target):
    # RFC 9112 section 3.2: the request-target is ASCII; other bytes are percent-encoded.
    # Raw ones, UTF-8 or not, get 400 (as gunicorn answers) and the server goes on.
    assert_rejected(server, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n", 400)


def test_percent_encoded_non_utf8_path_arrives(server):
    resp = request(server.port, get("/%FF%FEx"))
    assert resp.status == 200
    info = json.loads(resp.body)
    if server.family == "wsgi":  # PEP 3333: PATH_INFO holds the bytes, latin-1 decoded
        assert info["path"] == b"/\xff\xfex".hex()
    else:  # ASGI: raw_path is the target as sent
        assert info["raw_path"] == b"/%FF%FEx".hex()
    server.assert_serves()


def test_utf8_path_decoded(server):
    resp = request(server.port, b"GET /caf%C3%A9 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert resp.status == 200
    assert json.loads(resp.body)["path"] == "/café".encode().hex()
    server.assert_serves()


# ---------------------------------------------------------------- header values and names

@pytest.mark.parametrize("name", [b"X_Forwarded_For", b"X-Forwarded_For", b"x_forwarded_for"])
def test_underscore_header_cannot_pose_as_proxy_header(server, name):
    # The servers trust X-Forwarded-For from 127.0.0.1 (the default forwarded_allow_ips);
    # a look-alike spelled with "_" must not be taken for it (WSGI: HTTP_X_FORWARDED_FOR).
    resp = request(server.port, get("/headers", headers=name.decode() + ": 6.6.6.6\r\n"))
    got = json.loads(resp.body)
    assert resp.status == 200
    assert got["client"] == "127.0.0.1"
    assert [n for n, _ in got["headers"]
            if n.lower() in ("x-forwarded-for", "http_x_forwarded_for")] == []


def test_trusted_forwarded_for_still_applies(server):
    resp = request(server.port, get("/headers", headers="X-Forwarded-For: 10.1.2.3\r\n"))
    assert json.loads(resp.body)["client"] == "10.1.2.3"


def test_obs_text_header_value_passed_through(server):
    # RFC 9110 section 5.5: obs-text (0x80-0xFF) is allowed in field values; the app gets
    # the bytes (ASGI) or their latin-1 decoding (WSGI, PEP 3333), never a crash.
    resp = request(server.port, get("/headers", headers="X-Latin: caf\xe9\r\n"))
    assert resp.status == 200
    values = {n.lower(): v for n, v in json.loads(resp.body)["headers"]}
    assert values.get("x-latin", values.get("http_x_latin")) == b"caf\xe9".hex()
    server.assert_serves()


# ---------------------------------------------------------------- Expect, HTTP/1.0

def test_expect_100_continue(server):
    body = os.urandom(100_000)
    with RawConnection(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % len(body))
        interim = c.response(interim=True)
        assert interim.status == 100
        c.send(body)
        resp = c.response()
    assert resp.status == 200
    assert json.loads(resp.body)["sha256"] == hashlib.sha256(body).hexdigest()
    server.assert_serves()


def test_expect_100_continue_refused_body_413_without_100(server):
    with RawConnection(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % (MAX_BODY + 1))
        assert c.response(interim=True).status == 413
    server.assert_serves()


def test_expect_100_continue_ignored_in_http10(server):
    # RFC 9110 section 10.1.1: an HTTP/1.0 client would read "100 Continue" as its response.
    with RawConnection(server.port) as c:
        c.send(b"POST /echo HTTP/1.0\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n01234")
        time.sleep(0.2)  # a wrong interim response would be on its way by now
        c.send(b"56789")
        resp = c.response(interim=True)
    assert resp.status == 200
    assert json.loads(resp.body)["length"] == 10
    server.assert_serves()


def test_http10_without_keep_alive_closes(server):
    with RawConnection(server.port) as c:
        c.send(get("/one", version="1.0"))
        resp = c.response()
        assert resp.status == 200
        assert json.loads(resp.body)["version"] == "1.0"
        assert c.closed_by_server()
    server.assert_serves()


def test_http10_keep_alive_kept(server):
    with RawConnection(server.port) as c:
        for i in range(3):
            c.send(get(f"/ka{i}", version="1.0", headers="Connection: keep-alive\r\n"))
            resp = c.response()
            assert resp.status == 200
            assert (resp.header("connection") or "").lower() == "keep-alive"
            assert json.loads(resp.body)["path"] == f"/ka{i}".encode().hex()
    server.assert_serves()


def test_http11_connection_close_honoured(server):
    with RawConnection(server.port) as c:
        c.send(get("/bye", headers="Connection: close\r\n"))
        assert c.response().status == 200
        assert c.closed_by_server()
    server.assert_serves()


def test_max_connections_503(start_server):
    server = start_server(max_connections=3)
    held = [RawConnection(server.port) for _ in range(3)]
    try:
        for c in held:  # each accepted and served
            c.send(get("/held"))
            assert c.response().status == 200
        with RawConnection(server.port) as extra:
            extra.send(get("/extra"))
            resp = extra.response()
            assert resp is not None and resp.status == 503
            assert extra.closed_by_server()
        held[0].send(get("/still"))
        assert held[0].response().status == 200
    finally:
        for c in held:
            c.close()
    assert server.tracker.count("start", "/extra") == 0
