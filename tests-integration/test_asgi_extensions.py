"""The ASGI extensions of cymongoose-asgi with real clients: ``scope["extensions"]``,
``http.response.pathsend`` (Starlette's FileResponse, byte-identical files up to 50 MiB,
backpressure, clients leaving mid-file), ``websocket.http.response`` (the websockets
client's InvalidStatus), ``http.response.early_hint`` and ``http.response.trailers``
(raw framing read with h11)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import time

import h11
import httpx
import pytest

pytest.importorskip("starlette")
from apps.asgi_extensions_app import make_app  # noqa: E402
from apps.asgi_support import wait_for  # noqa: E402
from cymongoose.asgi.testing import ServerThread  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

pytestmark = pytest.mark.timeout(120)
BIG = 50 * 1024 * 1024
HTTP_EXTENSIONS = ["http.response.early_hint", "http.response.pathsend",
                   "http.response.trailers"]  # and no "tls" without TLS
PATHSEND = ["http.response.start", "http.response.pathsend"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    path = tmp_path_factory.mktemp("files")
    (path / "small.txt").write_bytes(b"hello pathsend\n")
    (path / "empty.bin").write_bytes(b"")
    with open(path / "big.bin", "wb") as out:
        for _ in range(BIG // (1 << 20)):
            out.write(os.urandom(1 << 20))
    return path


@pytest.fixture(scope="module", params=["integrated", "threaded"])
def served(files, request):
    app, sent = make_app(files)
    with ServerThread(app, mode=request.param) as srv:
        app.server["asgi"] = srv.server
        yield srv, sent


@pytest.fixture
def server(served):
    return served[0]


def sha256_file(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stats(server) -> dict:
    return httpx.get(server.url + "/raw/stats").json()


def h11_exchange(server, target: str, headers: list[tuple[str, str]] = ()) -> list:
    """Send one GET with h11 and return every event of the answer up to its end."""
    conn = h11.Connection(h11.CLIENT)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        request = h11.Request(method="GET", target=target,
                              headers=[("Host", "localhost"), *headers])
        sock.sendall(conn.send(request) + conn.send(h11.EndOfMessage()))
        events = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
                continue
            events.append(event)
            if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return events


# -- scope["extensions"] --------------------------------------------------------------


def test_http_scope_declares_the_extensions(server):
    assert httpx.get(server.url + "/raw/extensions").json() == HTTP_EXTENSIONS


def test_websocket_scope_declares_the_denial_response(server):
    with connect(f"ws://127.0.0.1:{server.port}/raw/extensions") as ws:
        assert json.loads(ws.recv(10)) == ["websocket.http.response"]


# -- http.response.pathsend -----------------------------------------------------------


def test_starlette_file_response_uses_pathsend(served, files):
    server, sent = served
    response = httpx.get(server.url + "/files/small.txt")
    assert response.status_code == 200
    assert response.content == b"hello pathsend\n"
    assert response.headers["content-length"] == "15"
    assert sent["/files/small.txt"] == PATHSEND


def test_pathsend_empty_file_and_keep_alive(served):
    server, sent = served
    with httpx.Client() as client:
        for _ in range(3):  # the same connection goes on after each file
            assert client.get(server.url + "/files/empty.bin").content == b""
            assert client.get(server.url + "/files/small.txt").content == b"hello pathsend\n"
    assert sent["/files/empty.bin"] == PATHSEND


def test_pathsend_50_mib_byte_identical(served, files):
    server, sent = served
    digest = hashlib.sha256()
    with httpx.stream("GET", server.url + "/files/big.bin", timeout=60) as response:
        assert response.headers["content-length"] == str(BIG)
        for block in response.iter_raw():
            digest.update(block)
    assert digest.hexdigest() == sha256_file(files / "big.bin")
    assert sent["/files/big.bin"] == PATHSEND


def test_pathsend_then_close_sends_the_whole_file(served, files):
    # HTTP/1.0 without keep-alive: the connection closes after the file, not before.
    server, sent = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /files/big.bin HTTP/1.0\r\nHost: x\r\n\r\n")
        data = bytearray()
        while chunk := sock.recv(1 << 20):
            data += chunk
    head, body = bytes(data).split(b"\r\n\r\n", 1)
    assert b"connection: close" in head.lower()
    assert len(body) == BIG
    assert hashlib.sha256(body).hexdigest() == sha256_file(files / "big.bin")
    assert sent["/files/big.bin"] == PATHSEND


def test_pathsend_backpressure_on_a_stalled_client(server, files):
    # The client stops reading: the server queues a window of the file, not all of it.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        head_len = first.index(b"\r\n\r\n") + 4
        total = len(first)
        time.sleep(0.5)  # the kernel's buffers fill up
        queued = stats(server)["queued"]
        assert queued <= 1 << 20, f"{queued} bytes queued for a client that reads nothing"
        sock.settimeout(30)
        while total < head_len + BIG:  # then it reads on: the whole file arrives
            chunk = sock.recv(1 << 20)
            assert chunk, f"closed after {total - head_len} bytes of the body"
            total += len(chunk)


def test_pathsend_clients_leaving_mid_file_leak_no_fd(served):
    server, sent = served
    before = stats(server)["fds"]
    for _ in range(10):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            got = 0
            while got < 1 << 20:
                got += len(sock.recv(65536))
    # The server sees each close when it next writes: then it closes its file too.
    wait_for(lambda: stats(server)["fds"] <= before, f"open fds back to {before}")
    assert sent["/files/big.bin"] == PATHSEND
    assert httpx.get(server.url + "/files/small.txt").content == b"hello pathsend\n"


def test_pathsend_content_length_as_the_app_gives_it(server, files):
    path = files / "big.bin"
    response = httpx.get(server.url + "/raw/pathsend", params={"path": str(path),
                                                               "length": "1000"})
    assert response.headers["content-length"] == "1000"
    assert response.content == path.read_bytes()[:1000]


def test_pathsend_missing_file_is_a_500(server, files):
    response = httpx.get(server.url + "/raw/pathsend",
                         params={"path": str(files / "missing")})
    assert response.status_code == 500


# -- websocket.http.response ----------------------------------------------------------


def test_websocket_denial_response_reaches_the_websockets_client(served):
    server, sent = served
    with pytest.raises(InvalidStatus) as info:
        with connect(f"ws://127.0.0.1:{server.port}/ws-deny"):
            pass
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["x-reason"] == "token"
    assert response.body == b"go away"


def upgrade_headers() -> dict[str, str]:
    return {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}


def test_websocket_denial_response_body_in_parts(server):
    response = httpx.get(server.url + "/raw/ws-deny-parts", headers=upgrade_headers())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.content == b"slow down please"


# -- http.response.early_hint ---------------------------------------------------------


def test_early_hints_103_before_the_response(server):
    events = h11_exchange(server, "/hints")
    hint, final = events[0], events[1]
    assert isinstance(hint, h11.InformationalResponse)
    assert hint.status_code == 103
    assert [v for n, v in hint.headers if n == b"link"] == [
        b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]
    assert isinstance(final, h11.Response) and final.status_code == 200
    assert b"".join(e.data for e in events if isinstance(e, h11.Data)) == b"ok"


def test_no_early_hints_to_http10(served):
    server, sent = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /hints HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b" 103 " not in data
    assert sent["/hints"][0] == "http.response.early_hint"  # offered, and not sent


# -- http.response.trailers -----------------------------------------------------------


def test_trailers_sent_when_the_client_accepts_them(server):
    events = h11_exchange(server, "/raw/trailers", [("TE", "trailers")])
    assert events[0].headers[-1] == (b"transfer-encoding", b"chunked")
    assert b"".join(e.data for e in events if isinstance(e, h11.Data)) == \
        b"part one, part two"
    assert events[-1].headers == [(b"x-checksum", b"abc123"), (b"x-count", b"2")]


def test_trailers_dropped_without_te_trailers(server, caplog):
    events = h11_exchange(server, "/raw/trailers")
    assert b"".join(e.data for e in events if isinstance(e, h11.Data)) == \
        b"part one, part two"
    assert isinstance(events[-1], h11.EndOfMessage)
    assert events[-1].headers == []
    # The connection goes on: the response ended properly.
    with httpx.Client() as client:
        assert client.get(server.url + "/raw/trailers").text == "part one, part two"
        assert client.get(server.url + "/raw/trailers").text == "part one, part two"
    # The trailers were taken from the app, not refused as an unknown message.
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


# -- tls ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_served(files, tmp_path_factory):
    from cymongoose import TLS_LIBRARY
    if not TLS_LIBRARY.startswith("OpenSSL"):
        pytest.skip(f"this build's TLS is {TLS_LIBRARY}")
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    tmp = tmp_path_factory.mktemp("tls")
    leaf.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    app, sent = make_app(files)
    with ServerThread(app, ssl_certfile=str(tmp / "cert.pem"), ssl_keyfile=str(tmp / "key.pem"),
                      ssl_ca_certs=str(tmp / "ca.pem"), ssl_cert_reqs=1) as srv:
        app.server["asgi"] = srv.server
        yield srv, ca, leaf, sent


def tls_client(ca, cert=None, version=None) -> httpx.Client:
    import ssl
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if cert is not None:
        cert.configure_cert(ctx)
    return httpx.Client(verify=ctx)


def https(srv, path: str) -> str:
    return f"https://127.0.0.1:{srv.port}{path}"


def test_tls_extension_in_the_scope(tls_served):
    import ssl
    srv, ca, leaf, _ = tls_served
    for version, number in ((ssl.TLSVersion.TLSv1_2, 0x0303), (ssl.TLSVersion.TLSv1_3, 0x0304)):
        with tls_client(ca, version=version) as client:
            names = client.get(https(srv, "/raw/extensions")).json()
            assert names == sorted([*HTTP_EXTENSIONS, "tls"])
            tls = client.get(https(srv, "/raw/tls")).json()
        assert tls["tls_version"] == number
        assert tls["server_cert"] == leaf.cert_chain_pems[0].bytes().decode()
        assert tls["client_cert_chain"] == []
        assert tls["client_cert_name"] is None and tls["client_cert_error"] is None
        assert isinstance(tls["cipher_suite"], int)
    # TLS 1.3 suites are 0x13xx (RFC 8446 appendix B.4)
    assert tls["cipher_suite"] >> 8 == 0x13


def test_tls_extension_with_a_client_certificate(tls_served):
    srv, ca, _, _ = tls_served
    client_cert = ca.issue_cert("alice@example.com", common_name="alice")
    with tls_client(ca, cert=client_cert) as client:
        tls = client.get(https(srv, "/raw/tls")).json()
    assert tls["client_cert_chain"][0] == client_cert.cert_chain_pems[0].bytes().decode()
    assert "CN=alice" in tls["client_cert_name"]
    assert tls["client_cert_error"] is None


def test_pathsend_over_tls_byte_identical(tls_served, files):
    srv, ca, _, sent = tls_served
    digest = hashlib.sha256()
    with tls_client(ca) as client:
        with client.stream("GET", https(srv, "/files/big.bin"), timeout=60) as response:
            for block in response.iter_raw():
                digest.update(block)
    assert digest.hexdigest() == sha256_file(files / "big.bin")
    assert sent["/files/big.bin"] == PATHSEND


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("what, error", [
    ("hint", "invalid link field"),
    ("dir", "is not a regular file"),
])
def test_bad_extension_message_is_a_500_with_a_clear_error(server, caplog, what, error):
    events = h11_exchange(server, f"/raw/bad?{what}")
    assert [type(e) for e in events[:1]] == [h11.Response]  # no 103 with a smuggled field
    assert events[0].status_code == 500
    assert error in caplog.text


def test_trailers_not_announced_are_an_error(server, caplog):
    assert httpx.get(server.url + "/raw/bad?trailers").content == b"x"
    # Logged once the app's send() raised, maybe after the response went out.
    wait_for(lambda: "without 'trailers': True" in caplog.text, "the app's error logged")


def test_websocket_denial_with_an_informational_status_is_a_500(server, caplog):
    with pytest.raises(InvalidStatus) as info:
        with connect(f"ws://127.0.0.1:{server.port}/raw/bad"):
            pass
    assert info.value.response.status_code == 500
    assert "status must be an int in 200..599, got 101" in caplog.text
