"""The HTTP and WebSocket connection scope as an ASGI app sees it (ASGI spec "HTTP &
WebSocket" 2.4, "Lifespan" 2.0 state), checked with httpx, websockets and raw sockets."""

from __future__ import annotations

import json
import socket
import ssl

import httpx
import pytest
from apps.asgi_scope import app
from apps.asgi_support import split_response
from cymongoose.asgi.testing import ServerThread
from websockets.sync.client import connect

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server():
    with ServerThread(app) as srv:
        yield srv


def raw_scope(port: int, request: bytes) -> tuple[dict, tuple[str, int]]:
    """Send ``request`` on a new socket; return (the scope, the socket's own address)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        client_addr = s.getsockname()
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status, _, body = split_response(data)
    assert status == 200, data
    return json.loads(body), client_addr


def test_basic_http_scope(server):
    r = httpx.get(server.url + "/some/path", params={"x": "1", "y": "two"})
    assert r.status_code == 200
    scope = r.json()
    assert scope["type"] == "http"
    # 2.4: send() on a closed connection raises an OSError subclass.
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/some/path"
    assert scope["raw_path"] == {"bytes": "/some/path"}
    assert scope["query_string"] == {"bytes": "x=1&y=two"}
    assert scope["root_path"] == ""
    assert scope["server"] == ["127.0.0.1", server.port]
    host, port = scope["client"]
    assert host == "127.0.0.1" and isinstance(port, int) and port > 0
    for name, value in scope["headers"]:
        assert set(name) == {"bytes"} and set(value) == {"bytes"}


def test_path_percent_decoded_raw_path_and_query_kept(server):
    scope, _ = raw_scope(
        server.port,
        b"GET /caf%C3%A9/a%2Fb%20c?q=caf%C3%A9&r=a+b HTTP/1.1\r\n"
        b"Host: localhost\r\nConnection: close\r\n\r\n",
    )
    assert scope["path"] == "/café/a/b c"
    assert scope["raw_path"] == {"bytes": "/caf%C3%A9/a%2Fb%20c"}
    assert scope["query_string"] == {"bytes": "q=caf%C3%A9&r=a+b"}


def test_path_decoded_once_and_slashes_kept(server):
    scope, _ = raw_scope(
        server.port, b"GET //a//b/100%25%3Fx HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert scope["path"] == "//a//b/100%?x"
    assert scope["raw_path"] == {"bytes": "//a//b/100%25%3Fx"}
    assert scope["query_string"] == {"bytes": ""}


def test_raw_utf8_bytes_in_target(server):
    # Not percent-encoded on the wire (RFC 9112 wants ASCII; some clients do it anyway): a
    # server may refuse with 400 (uvicorn does) or serve it, keeping the bytes in raw_path
    # and query_string and UTF-8-decoding path; never a 5xx or mangled bytes.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall("GET /café?q=thé HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                  .encode())
        raw = b""
        while data := s.recv(65536):
            raw += data
    status, _, body = split_response(raw)
    assert status in (200, 400), raw
    if status == 200:
        scope = json.loads(body)
        assert scope["path"] == "/café"
        assert scope["raw_path"] == {"bytes": "/café".encode().decode("latin-1")}
        assert scope["query_string"] == {"bytes": "q=thé".encode().decode("latin-1")}


def test_header_value_bytes_kept_exactly(server):
    scope, _ = raw_scope(
        server.port,
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Latin1: caf\xe9\r\nX-Utf8: caf\xc3\xa9\r\n"
        b"X-Spaces: a  b\r\nConnection: close\r\n\r\n",
    )
    headers = dict((n["bytes"], v["bytes"]) for n, v in scope["headers"])
    assert headers["x-latin1"].encode("latin-1") == b"caf\xe9"
    assert headers["x-utf8"].encode("latin-1") == b"caf\xc3\xa9"
    assert headers["x-spaces"] == "a  b"


def test_path_with_non_ascii_via_httpx(server):
    r = httpx.get(server.url + "/café")  # httpx percent-encodes it
    assert r.json()["path"] == "/café"
    assert r.json()["raw_path"] == {"bytes": "/caf%C3%A9"}


def test_headers_lower_cased_in_order_with_duplicates(server):
    scope, _ = raw_scope(
        server.port,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Dup: first\r\nX-Other: Mixed Case Value\r\n"
        b"x-DUP: second\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    )
    headers = [(n["bytes"], v["bytes"]) for n, v in scope["headers"]]
    assert headers == [
        ("host", "localhost"),
        ("x-dup", "first"),
        ("x-other", "Mixed Case Value"),
        ("x-dup", "second"),
        ("accept", "*/*"),
        ("connection", "close"),
    ]


def test_client_is_the_peer_address(server):
    scope, client_addr = raw_scope(
        server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert tuple(scope["client"]) == client_addr
    assert tuple(scope["server"]) == ("127.0.0.1", server.port)


def test_http_10_request(server):
    scope, _ = raw_scope(server.port, b"GET /old HTTP/1.0\r\nHost: x\r\n\r\n")
    assert scope["http_version"] == "1.0"
    assert scope["path"] == "/old"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods(server, method):
    r = httpx.request(method, server.url + "/m", content=b"payload")
    assert r.status_code == 200
    assert r.json()["method"] == method


def test_head_has_no_body(server):
    r = httpx.head(server.url + "/h")
    assert r.status_code == 200
    assert r.content == b""
    assert int(r.headers["content-length"]) > 0  # the app's header is passed through


def test_lifespan_state_reaches_requests(server):
    scope = httpx.get(server.url + "/").json()
    assert scope["state"] == {"greeting": "hello"}


def test_root_path_setting():
    with ServerThread(app, root_path="/api") as srv:
        scope = httpx.get(srv.url + "/api/items").json()
    assert scope["root_path"] == "/api"


def test_websocket_scope(server):
    url = f"ws://127.0.0.1:{server.port}/ws/caf%C3%A9?room=1"
    with connect(url, subprotocols=["chat.v2", "chat.v1"]) as ws:
        scope = json.loads(ws.recv(10))
        assert ws.subprotocol == "chat.v2"
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/ws/café"
    assert scope["raw_path"] == {"bytes": "/ws/caf%C3%A9"}
    assert scope["query_string"] == {"bytes": "room=1"}
    assert scope["subprotocols"] == ["chat.v2", "chat.v1"]
    assert scope["http_version"] == "1.1"
    assert scope["state"] == {"greeting": "hello"}
    assert ws.close_code == 1000


# -- scheme and client behind TLS and proxies ---------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    cert.private_key_pem.write_to_path(folder / "key.pem")
    cert.cert_chain_pems[0].write_to_path(folder / "cert.pem")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    return folder


def test_https_scope(tls_files):
    with ServerThread(app, url="https://127.0.0.1:0",
                      ssl_certfile=str(tls_files / "cert.pem"),
                      ssl_keyfile=str(tls_files / "key.pem")) as srv:
        context = ssl.create_default_context(cafile=str(tls_files / "ca.pem"))
        r = httpx.get(f"https://127.0.0.1:{srv.port}/secure?x=1", verify=context)
        scope = r.json()
    assert scope["scheme"] == "https"
    assert scope["path"] == "/secure"
    assert scope["server"] == ["127.0.0.1", srv.port]


def test_wss_scope(tls_files):
    context = ssl.create_default_context(cafile=str(tls_files / "ca.pem"))
    with ServerThread(app, url="https://127.0.0.1:0",
                      ssl_certfile=str(tls_files / "cert.pem"),
                      ssl_keyfile=str(tls_files / "key.pem")) as srv:
        with connect(f"wss://127.0.0.1:{srv.port}/tls-ws", ssl=context) as ws:
            scope = json.loads(ws.recv(10))
    assert (scope["type"], scope["scheme"], scope["path"]) == ("websocket", "wss", "/tls-ws")


FORWARDED = {"X-Forwarded-For": "203.0.113.7, 127.0.0.1", "X-Forwarded-Proto": "https"}


def test_proxy_headers_from_trusted_peer():
    with ServerThread(app, proxy_headers=True, forwarded_allow_ips="127.0.0.1") as srv:
        scope = httpx.get(srv.url + "/p", headers=FORWARDED).json()
    assert scope["client"][0] == "203.0.113.7"
    assert scope["scheme"] == "https"


def test_proxy_headers_ignored_from_untrusted_peer():
    with ServerThread(app, proxy_headers=True, forwarded_allow_ips="10.1.2.3") as srv:
        scope = httpx.get(srv.url + "/p", headers=FORWARDED).json()
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"
