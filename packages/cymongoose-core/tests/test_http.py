"""HTTP server behaviour over real loopback sockets."""

from __future__ import annotations

import hashlib
import os
import socket

import httpx
import pytest
from cymongoose import MG_EV_HTTP_MSG


def http_server(serve, respond):
    """Start a server calling ``respond(conn, msg)`` for each HTTP request."""

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            respond(conn, data)

    return serve(handler)


def raw_exchange(port, request: bytes, until: bytes | None = None, n_responses: int = 1) -> bytes:
    """Send raw bytes, read back until ``until`` or ``n_responses`` complete responses."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        buf = b""
        while True:
            if until is not None and until in buf:
                return buf
            if until is None and _complete_responses(buf) >= n_responses:
                return buf
            chunk = s.recv(65536)
            if not chunk:
                return buf
            buf += chunk


def _complete_responses(buf: bytes) -> int:
    count = 0
    while b"\r\n\r\n" in buf:
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(rest) < length:
            break
        buf = rest[length:]
        count += 1
    return count


def test_reply_status_body_headers(serve):
    srv = http_server(serve, lambda c, m: c.reply(201, b"created", {"X-Foo": "bar"}))
    r = httpx.get(srv.url + "/")
    assert r.status_code == 201
    assert r.content == b"created"
    assert r.headers["x-foo"] == "bar"
    assert r.headers.get_list("content-type") == ["text/plain"]
    assert r.headers["content-length"] == "7"
    assert srv.errors == []


def test_reply_defaults_and_str_body(serve):
    srv = http_server(serve, lambda c, m: c.reply(200, "héllo"))
    r = httpx.get(srv.url + "/")
    assert r.status_code == 200
    assert r.content == "héllo".encode()
    assert r.headers["content-type"] == "text/plain"


def test_reply_content_type_not_duplicated(serve):
    srv = http_server(serve, lambda c, m: c.reply(200, b"<p>", {"content-TYPE": "text/html"}))
    r = httpx.get(srv.url + "/")
    assert r.headers.get_list("content-type") == ["text/html"]


def test_reply_no_body(serve):
    srv = http_server(serve, lambda c, m: c.reply(204))
    r = httpx.get(srv.url + "/")
    assert r.status_code == 204
    assert r.content == b""


def test_reply_json(serve):
    srv = http_server(serve, lambda c, m: c.reply_json({"a": [1, 2], "b": "é"}, 202))
    r = httpx.get(srv.url + "/")
    assert r.status_code == 202
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"a": [1, 2], "b": "é"}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Bad": "a\r\nInjected: 1"},
        {"X-Bad": "a\nInjected: 1"},
        {"X-Bad": "a\rInjected: 1"},
        {"X-Bad\r\nInjected": "1"},
        {b"X-Bad": b"a\r\nInjected: 1"},
    ],
)
def test_reply_crlf_in_header_raises(serve, headers):
    raised = []

    def respond(c, m):
        try:
            c.reply(200, b"smuggled", headers)
        except ValueError as exc:
            raised.append(exc)
        c.reply(200, b"clean")

    srv = http_server(serve, respond)
    r = httpx.get(srv.url + "/")
    assert len(raised) == 1
    assert r.content == b"clean"
    assert "injected" not in r.headers
    # Nothing of the rejected response reached the wire: the connection is still in sync.
    raw = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"Injected" not in raw and b"smuggled" not in raw


def test_send_response(serve):
    def respond(c, m):
        if m.uri == "/explicit":
            c.send_response(200, [("Content-Length", "2"), ("X-A", "1")], b"ok")
        else:
            c.send_response(202, [("X-A", "1"), (b"X-A", b"2"), ("Content-Type", "a/b")], b"body")

    srv = http_server(serve, respond)
    with httpx.Client() as client:
        r = client.get(srv.url + "/")
        assert r.status_code == 202
        assert r.reason_phrase == "Accepted"
        assert r.content == b"body"
        assert r.headers.get_list("x-a") == ["1", "2"]
        assert r.headers.get_list("content-length") == ["4"]
        assert r.headers["content-type"] == "a/b"
        r = client.get(srv.url + "/explicit")
        assert r.content == b"ok"
        assert r.headers.get_list("content-length") == ["2"]


def test_send_response_rejects_bad_input(serve):
    raised = []

    def respond(c, m):
        for args in ((200, [("X", "a\nb")]), (200, [("X\r", "a")]), (42, []), (1000, [])):
            try:
                c.send_response(*args)
            except ValueError as exc:
                raised.append(exc)
        c.send_response(200, [], b"fine")

    srv = http_server(serve, respond)
    r = httpx.get(srv.url + "/")
    assert r.content == b"fine"
    assert len(raised) == 4


def test_send_response_checks_every_byte_of_every_value(serve):
    """CR, LF and NUL are refused wherever they sit in a value of 1 to 24 bytes (the check
    goes a word at a time, the last word overlapping), before and after clean values of
    the same length went out; a name accepted before lets no non-token name through; the
    bytes next to the refused ones (tab, 0x0e, 0x7f, 0xff) go out as they are."""
    refused, written = [], []
    name = "X-V"  # one object throughout: accepted once, then remembered

    def respond(c, m):
        for n in range(1, 25):
            c.send_response_head(200, [(name, "v" * n)])  # clean: goes out
            for k in range(n):
                for bad in ("\r", "\n", "\0"):
                    value = "v" * k + bad + "v" * (n - k - 1)
                    try:
                        c.send_response_head(200, [(name, value)])
                    except ValueError:
                        refused.append(value)
                    else:
                        written.append(value)
        for bad_name in ("X V", "X:V", "", "X\r"):
            try:
                c.send_response_head(200, [(name, "1"), (bad_name, "1")])
            except ValueError:
                refused.append(bad_name)
            else:
                written.append(bad_name)
        c.send_response(200, [(name, "\t\x0e\x7f\xff" * 5)], b"fine")

    srv = http_server(serve, respond)
    raw = raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", until=b"fine")
    assert written == []
    assert len(refused) == 3 * sum(range(1, 25)) + 4
    heads = raw.split(b"\r\n\r\n")
    assert [h.split(b"\r\n")[1] for h in heads[:24]] == [
        b"X-V: " + b"v" * n for n in range(1, 25)]
    assert b"\r\nX-V: " + b"\t\x0e\x7f\xff" * 5 + b"\r\n" in raw
    assert raw.endswith(b"\r\n\r\nfine")


def test_keep_alive_50_requests(serve):
    conn_ids = []

    def respond(c, m):
        conn_ids.append(c.id)
        c.reply(200, m.uri)

    srv = http_server(serve, respond)
    with httpx.Client() as client:
        for i in range(50):
            r = client.get(f"{srv.url}/req/{i}")
            assert r.status_code == 200
            assert r.text == f"/req/{i}"
            assert r.http_version == "HTTP/1.1"
    assert len(conn_ids) == 50
    assert len(set(conn_ids)) == 1


def test_pipelined_requests(serve):
    srv = http_server(serve, lambda c, m: c.reply(200, m.uri))
    req = b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(3))
    raw = raw_exchange(srv.port, req, n_responses=3)
    assert raw.count(b"HTTP/1.1 200 OK") == 3
    assert raw.index(b"\r\n\r\n/0") < raw.index(b"\r\n\r\n/1") < raw.index(b"\r\n\r\n/2")


def chunked_respond(c, m):
    if m.uri == "/chunked":
        c.send_response_head(
            200, [("Transfer-Encoding", "chunked"), ("Content-Type", "text/plain")]
        )
        c.http_chunk("hello ")
        c.http_chunk(b"world")
        c.http_chunk(b"")
    else:
        c.reply(200, b"after")


def test_chunked_response(serve):
    conn_ids = []

    def respond(c, m):
        conn_ids.append(c.id)
        chunked_respond(c, m)

    srv = http_server(serve, respond)
    with httpx.Client() as client:
        r = client.get(srv.url + "/chunked")
        assert r.status_code == 200
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.content == b"hello world"
        # The connection is reusable once the terminating chunk is sent.
        r = client.get(srv.url + "/next")
        assert r.content == b"after"
    assert len(set(conn_ids)) == 1


def test_chunked_wire_format(serve):
    srv = http_server(serve, chunked_respond)
    raw = raw_exchange(srv.port, b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n", until=b"0\r\n\r\n")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length" not in head.lower()
    assert body == b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"


def test_http_message_fields(serve):
    seen = {}

    def respond(c, m):
        seen.update(
            bool=bool(m),
            method=m.method,
            uri=m.uri,
            query=m.query,
            proto=m.proto,
            custom=m.header("X-Custom"),
            custom_lower=m.header("x-custom"),
            custom_upper=m.header("X-CUSTOM"),
            missing=m.header("X-Missing"),
            missing_default=m.header("X-Missing", "dflt"),
            headers=m.headers(),
            body=m.body_bytes,
            body_text=m.body_text,
            parts=m.parts(),
            status=m.status(),
        )
        c.reply(200, b"ok")

    srv = http_server(serve, respond)
    req = (
        b"POST /path/x?a=1&b=two HTTP/1.1\r\n"
        b"Host: example\r\n"
        b"X-Custom: Value\r\n"
        b"X-Dup: 1\r\n"
        b"X-Dup: 2\r\n"
        b"Content-Length: 7\r\n"
        b"\r\n"
        b"payload"
    )
    raw = raw_exchange(srv.port, req)
    assert raw.startswith(b"HTTP/1.1 200")
    assert seen["bool"] is True
    assert seen["method"] == "POST"
    assert seen["uri"] == "/path/x"
    assert seen["query"] == "a=1&b=two"
    assert seen["proto"] == "HTTP/1.1"
    assert seen["custom"] == seen["custom_lower"] == seen["custom_upper"] == "Value"
    assert seen["missing"] is None
    assert seen["missing_default"] == "dflt"
    assert seen["headers"] == [
        ("Host", "example"),
        ("X-Custom", "Value"),
        ("X-Dup", "1"),
        ("X-Dup", "2"),
        ("Content-Length", "7"),
    ]
    assert seen["body"] == b"payload"
    assert seen["body_text"] == "payload"
    assert seen["status"] is None
    assert seen["parts"] == (
        "POST",
        b"/path/x",
        b"a=1&b=two",
        "HTTP/1.1",
        [
            (b"host", b"example"),
            (b"x-custom", b"Value"),
            (b"x-dup", b"1"),
            (b"x-dup", b"2"),
            (b"content-length", b"7"),
        ],
        b"payload",
    )


def test_large_request_body(serve):
    seen = {}

    def respond(c, m):
        body = m.body_bytes
        seen["len"] = len(body)
        c.reply(200, hashlib.sha256(body).hexdigest())

    srv = http_server(serve, respond)
    payload = os.urandom(1 << 20)
    r = httpx.post(srv.url + "/upload", content=payload)
    assert r.text == hashlib.sha256(payload).hexdigest()
    assert seen["len"] == len(payload)


def test_message_invalid_after_handler(serve):
    kept = []

    def respond(c, m):
        kept.append(m)
        c.reply(200, b"ok")

    srv = http_server(serve, respond)
    assert httpx.get(srv.url + "/x?y=1", headers={"X-A": "b"}).status_code == 200
    [m] = kept
    assert not m
    assert "invalid" in repr(m)
    # As cymongoose 0.2.5: empty values, never the freed request.
    assert (m.method, m.uri, m.query, m.proto) == ("", "", "", "")
    assert (m.body_bytes, m.body_text) == (b"", "")
    assert m.header("X-A") is None and m.header("X-A", "dflt") == "dflt"
    assert m.headers() == []
    assert m.query_var("y") is None and m.header_var("X-A", "b") is None
    assert m.status() is None
    # The extensions beyond 0.2.x raise.
    for touch in (lambda: m.parts(), lambda: m.more_body, lambda: m.wsgi_environ({})):
        with pytest.raises(RuntimeError, match="after its event handler"):
            touch()


def test_stale_message_refused_by_connection_methods(serve, tmp_path):
    kept, errors = [], []

    def respond(c, m):
        if kept:
            for call in (lambda: c.serve_file(kept[0], str(tmp_path)),
                         lambda: c.serve_dir(kept[0], str(tmp_path)),
                         lambda: c.ws_upgrade(kept[0]),
                         lambda: c.ws_upgrade(None)):
                try:
                    call()
                except ValueError as exc:
                    errors.append(str(exc))
        kept.append(m)
        c.reply(200, b"ok")

    srv = http_server(serve, respond)
    with httpx.Client() as client:
        assert client.get(srv.url + "/a").text == "ok"
        assert client.get(srv.url + "/b").text == "ok"
    assert errors == ["HttpMessage is not valid for this event"] * 4


def test_handler_exception_goes_to_error_handler(serve):
    def respond(c, m):
        c.reply(200, m.uri)
        if m.uri == "/boom":
            raise ZeroDivisionError("boom")

    srv = http_server(serve, respond)
    with httpx.Client() as client:
        assert client.get(srv.url + "/boom").text == "/boom"
        for i in range(3):
            assert client.get(f"{srv.url}/ok{i}").text == f"/ok{i}"
    assert httpx.get(srv.url + "/fresh").text == "/fresh"
    assert len(srv.errors) == 1
    assert isinstance(srv.errors[0], ZeroDivisionError)


def test_handler_exception_without_reply_keeps_loop(serve):
    def respond(c, m):
        if m.uri == "/boom":
            raise KeyError("no reply")
        c.reply(200, b"ok")

    srv = http_server(serve, respond)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(srv.url + "/boom", timeout=0.3)
    assert httpx.get(srv.url + "/").text == "ok"
    assert [type(e) for e in srv.errors] == [KeyError]


def test_poll_reentry_from_handler_raises(serve):
    results = []

    def respond(c, m):
        c.reply(200, b"ok")
        if m.uri == "/poll":
            srv.mgr.poll(0)
        elif m.uri == "/close":
            srv.mgr.close()
        else:
            try:
                srv.mgr.poll(0)
            except RuntimeError as exc:
                results.append(exc)

    srv = http_server(serve, respond)
    assert httpx.get(srv.url + "/poll").text == "ok"
    assert httpx.get(srv.url + "/close").text == "ok"
    assert httpx.get(srv.url + "/catch").text == "ok"
    assert [type(e) for e in srv.errors] == [RuntimeError, RuntimeError]
    assert "not reentrant" in str(srv.errors[0])
    assert "Cannot close Manager while poll() is active" in str(srv.errors[1])
    assert len(results) == 1
    assert not srv.mgr.closed


def test_same_connection_object_for_every_event(serve):
    from cymongoose import MG_EV_ACCEPT, MG_EV_CLOSE

    seen = []

    def handler(c, ev, data):
        if ev in (MG_EV_ACCEPT, MG_EV_HTTP_MSG, MG_EV_CLOSE):
            seen.append((ev, c))
        if ev == MG_EV_HTTP_MSG:
            c.userdata = "tag"
            c.reply(200, b"ok")

    srv = serve(handler)
    with httpx.Client() as client:
        client.get(srv.url + "/")
        client.get(srv.url + "/")
    # wait for the close event
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(ev == MG_EV_CLOSE for ev, _ in seen):
        time.sleep(0.01)
    evs = [ev for ev, _ in seen]
    assert evs == [MG_EV_ACCEPT, MG_EV_HTTP_MSG, MG_EV_HTTP_MSG, MG_EV_CLOSE]
    conns = {id(c) for _, c in seen}
    assert len(conns) == 1
    c = seen[0][1]
    assert c.userdata == "tag"
    assert c.is_closing
    with pytest.raises(RuntimeError):
        c.send(b"x")
