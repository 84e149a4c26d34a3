"""TLS on OpenSSL (tls_openssl.c): TlsOpts checked when made, clients that verify the
server, servers that say why a handshake failed. Certificates from trustme."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time

import pytest
from cymongoose import (
    MG_EV_ACCEPT,
    MG_EV_CONNECT,
    MG_EV_ERROR,
    MG_EV_HTTP_MSG,
    MG_EV_TLS_HS,
    MG_EV_WS_MSG,
    MG_EV_WS_OPEN,
    TLS_LIBRARY,
    Manager,
    TlsOpts,
)

trustme = pytest.importorskip("trustme")
pytestmark = pytest.mark.skipif(not TLS_LIBRARY.startswith("OpenSSL"),
                                reason=f"this build's TLS is {TLS_LIBRARY}")


def pkcs8(key_pem: bytes, password: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem, None)
    enc = serialization.BestAvailableEncryption(password) if password else \
        serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def leaf(ca):
    return ca.issue_cert("localhost", "127.0.0.1")


def server_opts(leaf, **kw):
    return TlsOpts(cert=leaf.cert_chain_pems[0].bytes(), key=leaf.private_key_pem.bytes(), **kw)


def tls_server(serve, opts, errors=None):
    """An HTTPS hello server; MG_EV_ERROR messages go to ``errors``."""
    def handler(c, ev, data):
        if ev == MG_EV_ACCEPT:
            c.tls_init(opts)
        elif ev == MG_EV_HTTP_MSG:
            body = data.body_bytes
            c.reply(200, body if data.method == "POST" else b"hello " + data.uri.encode())
        elif ev == MG_EV_ERROR and errors is not None:
            errors.append(data)
    return serve(handler, "https://127.0.0.1:0")


def wait_for(cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def client_ctx(ca, **kw):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    for name, value in kw.items():
        setattr(ctx, name, value)
    return ctx


def https_get(port, ctx, host="localhost", path="/x"):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(path.encode()):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
            return tls.version(), tls.selected_alpn_protocol(), data


# --- TlsOpts: checked when made ---------------------------------------------------------

def test_tls_library_is_openssl_with_version():
    assert re.fullmatch(r"OpenSSL \d+\.\d+\.\d+\S*( .*)?", TLS_LIBRARY), TLS_LIBRARY


@pytest.mark.parametrize("key_type", ["ECDSA", "RSA"])
@pytest.mark.parametrize("form", ["traditional", "pkcs8"])
def test_rsa_and_ec_keys_in_pkcs1_sec1_and_pkcs8(ca, key_type, form):
    cert = ca.issue_cert("localhost", key_type=getattr(trustme.KeyType, key_type))
    key = cert.private_key_pem.bytes()
    assert key.startswith(b"-----BEGIN RSA" if key_type == "RSA" else b"-----BEGIN EC")
    if form == "pkcs8":
        key = pkcs8(key)
    opts = TlsOpts(cert=cert.cert_chain_pems[0].bytes(), key=key)
    assert opts.min_version == "TLSv1.2" and opts.cert_reqs == 0


def test_encrypted_key_needs_the_right_password(leaf):
    cert = leaf.cert_chain_pems[0].bytes()
    key = pkcs8(leaf.private_key_pem.bytes(), b"s3cret")
    with pytest.raises(ValueError, match="^key is encrypted and no password") as exc:
        TlsOpts(cert=cert, key=key)
    assert exc.value.argument == "key"
    with pytest.raises(ValueError, match="^password does not decrypt the key") as exc:
        TlsOpts(cert=cert, key=key, password="wrong")
    assert exc.value.argument == "password"
    TlsOpts(cert=cert, key=key, password="s3cret")
    TlsOpts(cert=cert, key=key, password=b"s3cret")
    TlsOpts(cert=cert, key=leaf.private_key_pem.bytes(), password="unused")


@pytest.mark.parametrize("change, argument, said", [
    ({"cert": b"not a certificate"}, "cert", "holds no usable certificate"),
    ({"key": b"not a key"}, "key", "holds no usable private key"),
    ({"ca": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "ca",
     "holds no usable CA certificate"),
    ({"ciphers": "NO-SUCH-CIPHER"}, "ciphers", "selects no cipher"),
    ({"min_version": "TLSv1.1"}, "min_version", "not 'TLSv1.2' or 'TLSv1.3'"),
    ({"cert_reqs": 3}, "cert_reqs", "not 0"),
    ({"cert_reqs": 2}, "cert_reqs", "needs ca"),
    ({"alpn": [""]}, "alpn", "1..255 bytes"),
])
def test_bad_argument_is_a_value_error_naming_it(leaf, change, argument, said):
    args = {"cert": leaf.cert_chain_pems[0].bytes(), "key": leaf.private_key_pem.bytes(),
            **change}
    with pytest.raises(ValueError, match=said) as exc:
        TlsOpts(**args)
    assert exc.value.argument == argument
    assert str(exc.value).startswith(argument)


def test_key_of_another_certificate_is_refused(ca, leaf):
    other = ca.issue_cert("localhost")
    with pytest.raises(ValueError, match="^key is not the private key of the certificate"):
        TlsOpts(cert=leaf.cert_chain_pems[0].bytes(), key=other.private_key_pem.bytes())


@pytest.mark.parametrize("change", [{"ciphers": 1}, {"min_version": 1.2},
                                    {"cert_reqs": True}, {"alpn": "http/1.1"},
                                    {"password": 5}])
def test_wrong_type_is_a_type_error(leaf, change):
    with pytest.raises(TypeError):
        server_opts(leaf, **change)


def test_options_read_back(ca, leaf):
    opts = server_opts(leaf, ca=ca.cert_pem.bytes(), min_version=ssl.TLSVersion.TLSv1_3,
                       ciphers="ECDHE+AESGCM", alpn=["http/1.1"])
    assert (opts.min_version, opts.cert_reqs, opts.ciphers, opts.alpn) == \
        ("TLSv1.3", 2, "ECDHE+AESGCM", ("http/1.1",))
    assert "password" not in repr(server_opts(leaf, password="x"))


# --- server side ------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls_12_and_13_clients(serve, ca, leaf, version):
    srv = tls_server(serve, server_opts(leaf))
    v = getattr(ssl.TLSVersion, version)
    got, _, data = https_get(srv.port, client_ctx(ca, minimum_version=v, maximum_version=v))
    assert got == version.replace("_", ".") and data.endswith(b"hello /x")


def test_minimum_version_13_refuses_a_12_client_and_says_why(serve, ca, leaf):
    errors = []
    srv = tls_server(serve, server_opts(leaf, min_version="TLSv1.3"), errors)
    v12 = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        https_get(srv.port, client_ctx(ca, minimum_version=v12, maximum_version=v12))
    wait_for(lambda: errors)
    assert errors == ["TLS handshake: unsupported protocol"]
    assert https_get(srv.port, client_ctx(ca))[0] == "TLSv1.3"  # still serving


def test_ciphers_apply_to_tls_12(serve, ca, leaf):
    errors = []
    srv = tls_server(serve, server_opts(leaf, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"), errors)
    v12 = ssl.TLSVersion.TLSv1_2
    ctx = client_ctx(ca, minimum_version=v12, maximum_version=v12)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            assert tls.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    ctx = client_ctx(ca, minimum_version=v12, maximum_version=v12)
    ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
    with pytest.raises(ssl.SSLError):
        https_get(srv.port, ctx)
    wait_for(lambda: errors)
    assert errors == ["TLS handshake: no shared cipher"]


def test_plain_http_to_the_tls_port_is_an_error_with_a_reason(serve, ca, leaf):
    errors = []
    srv = tls_server(serve, server_opts(leaf), errors)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(100)  # the alert, then the close
    wait_for(lambda: errors)
    assert errors == ["TLS handshake: http request"]
    assert https_get(srv.port, client_ctx(ca))[2].endswith(b"hello /x")


@pytest.mark.parametrize("offered, selected", [(["h2", "http/1.1"], "http/1.1"),
                                                (["h2"], None), (None, None)])
def test_alpn_selects_http11_only(serve, ca, leaf, offered, selected):
    srv = tls_server(serve, server_opts(leaf, alpn=["http/1.1"]))
    ctx = client_ctx(ca)
    if offered:
        ctx.set_alpn_protocols(offered)
    assert https_get(srv.port, ctx)[1] == selected


@pytest.mark.parametrize("cert_reqs", [1, 2])
def test_client_certificates(serve, ca, leaf, cert_reqs):
    errors = []
    srv = tls_server(serve, server_opts(leaf, ca=ca.cert_pem.bytes(), cert_reqs=cert_reqs),
                     errors)
    with_cert = client_ctx(ca)
    ca.issue_cert("client@example.com").configure_cert(with_cert)
    assert https_get(srv.port, with_cert)[2].endswith(b"hello /x")
    if cert_reqs == 1:  # optional: a client without one is served too
        assert https_get(srv.port, client_ctx(ca))[2].endswith(b"hello /x")
        return
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(srv.port, client_ctx(ca))  # TLS 1.3: the alert comes after the handshake
    wait_for(lambda: errors)
    assert errors == ["TLS handshake: peer did not return a certificate"]
    stranger = client_ctx(ca)
    trustme.CA().issue_cert("x@example.com").configure_cert(stranger)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(srv.port, stranger)
    wait_for(lambda: len(errors) == 2)
    assert errors[1].startswith("TLS handshake: ")


@pytest.mark.parametrize("version, number", [(ssl.TLSVersion.TLSv1_2, 0x0303),
                                             (ssl.TLSVersion.TLSv1_3, 0x0304)])
def test_tls_info_of_an_accepted_connection(serve, ca, leaf, version, number):
    infos = []
    opts = server_opts(leaf, ca=ca.cert_pem.bytes(), cert_reqs=1)

    def handler(c, ev, data):
        if ev == MG_EV_ACCEPT:
            infos.append(c.tls_info())  # before the handshake: None
            c.tls_init(opts)
        elif ev == MG_EV_HTTP_MSG:
            infos.append(c.tls_info())
            c.reply(200, b"hello " + data.uri.encode())
    srv = serve(handler, "https://127.0.0.1:0")
    ctx = client_ctx(ca, minimum_version=version, maximum_version=version)
    client_cert = ca.issue_cert("client@example.com", common_name="client")
    client_cert.configure_cert(ctx)
    assert https_get(srv.port, ctx)[0] == version.name.replace("v1_", "v1.")
    assert https_get(srv.port, client_ctx(ca, maximum_version=version))[2].endswith(b"hello /x")
    before, with_cert, before2, without = infos
    assert before is None and before2 is None
    assert with_cert["version"] == without["version"] == number
    assert with_cert["local_cert"] == leaf.cert_chain_pems[0].bytes().decode()
    assert with_cert["peer_cert_chain"][0] == client_cert.cert_chain_pems[0].bytes().decode()
    assert "CN=client" in with_cert["peer_cert_name"]
    assert with_cert["peer_cert_error"] is None
    assert without["peer_cert_chain"] == [] and without["peer_cert_name"] is None
    if number == 0x0304:  # RFC 8446 B.4: TLS 1.3 suites are 0x13xx
        assert with_cert["cipher_suite"] >> 8 == 0x13
    else:
        assert isinstance(with_cert["cipher_suite"], int)


def test_tls_info_is_none_without_tls(serve):
    infos = []

    def handler(c, ev, data):
        if ev == MG_EV_HTTP_MSG:
            infos.append(c.tls_info())
            c.reply(200, b"plain")
    srv = serve(handler)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(65536)
    wait_for(lambda: infos)
    assert infos == [None]


def test_large_bodies_both_ways(serve, ca, leaf):
    srv = tls_server(serve, server_opts(leaf))
    body = bytes(range(256)) * (16 * 1024)  # 4 MiB: many records, partial writes
    with socket.create_connection(("127.0.0.1", srv.port), timeout=60) as sock:
        with client_ctx(ca).wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                        + body)
            data = rest = b""
            while len(rest) < len(body):
                chunk = tls.recv(1 << 20)
                assert chunk
                data += chunk
                rest = data.partition(b"\r\n\r\n")[2]
    assert rest == body


# --- client side ------------------------------------------------------------------------

def fetch(url, opts, *, ws=False, timeout=30.0):
    """Run a client to ``url`` with ``opts``; return ("ok", body) or ("error", message)."""
    got = []

    def client(c, ev, data):
        if ev == MG_EV_CONNECT:
            c.tls_init(opts)
            if not ws:
                c.send(b"GET /y HTTP/1.1\r\nHost: localhost\r\n\r\n")
        elif ev == MG_EV_HTTP_MSG:
            got.append(("ok", data.body_bytes))
            c.close()
        elif ev == MG_EV_WS_OPEN:
            c.ws_send(b"ping")
        elif ev == MG_EV_WS_MSG:
            got.append(("ok", data.data))
            c.close()
        elif ev == MG_EV_ERROR:
            got.append(("error", data))

    with Manager() as mgr:
        (mgr.ws_connect if ws else mgr.connect)(url, client)
        deadline = time.monotonic() + timeout
        while not got:
            assert time.monotonic() < deadline, "timed out"
            mgr.poll(10)
    return got[0]


@pytest.fixture(scope="module")
def https_port(leaf):
    with python_tls_server(leaf) as port:
        yield port


@contextlib.contextmanager
def python_tls_server(leaf):
    """A Python ssl HTTPS (and WebSocket echo) server for the core's clients."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server_ctx)
    lsock = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_one(sock):
        try:
            with server_ctx.wrap_socket(sock, server_side=True) as tls:
                req = tls.recv(65536)
                if b"Upgrade: websocket" in req:
                    import base64
                    import hashlib
                    key = req.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0]
                    accept = base64.b64encode(hashlib.sha1(
                        key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
                    tls.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                                b"\r\n\r\n")
                    tls.recv(65536)  # the client's masked "ping"
                    tls.sendall(b"\x81\x04pong")
                    tls.recv(65536)
                else:
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
        except (OSError, ssl.SSLError):
            pass  # refused by the client: what several tests want

    def accept_loop():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                sock, _ = lsock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve_one, args=(sock,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield lsock.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        lsock.close()


def test_client_accepts_the_good_ca_and_checks_the_url_host(ca, https_port):
    # No name: the URL's host (an IP address here) is what the certificate must name.
    assert fetch(f"https://127.0.0.1:{https_port}", TlsOpts(ca=ca.cert_pem.bytes())) == \
        ("ok", b"secret")
    assert fetch(f"https://127.0.0.1:{https_port}",
                 TlsOpts(ca=ca.cert_pem.bytes(), name="localhost")) == ("ok", b"secret")


def test_client_refuses_a_wrong_ca(https_port):
    status, message = fetch(f"https://127.0.0.1:{https_port}",
                            TlsOpts(ca=trustme.CA().cert_pem.bytes()))
    assert (status, message) == ("error", "TLS handshake: unable to get local issuer certificate")


def test_client_refuses_a_wrong_hostname(ca, https_port):
    status, message = fetch(f"https://127.0.0.1:{https_port}",
                            TlsOpts(ca=ca.cert_pem.bytes(), name="example.com"))
    assert (status, message) == ("error", "TLS handshake: hostname mismatch")


def test_client_refuses_a_url_host_the_certificate_does_not_name(ca):
    with python_tls_server(ca.issue_cert("localhost")) as port:
        assert fetch(f"https://127.0.0.1:{port}", TlsOpts(ca=ca.cert_pem.bytes())) == \
            ("error", "TLS handshake: IP address mismatch")


def test_client_without_ca_uses_the_system_store(ca, https_port, tmp_path, monkeypatch):
    url = f"https://127.0.0.1:{https_port}"
    assert fetch(url, TlsOpts())[0] == "error"  # trustme's CA is in no system store
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # OpenSSL's override
    assert fetch(url, TlsOpts()) == ("ok", b"secret")


def test_skip_verification_accepts_any_server(https_port):
    assert fetch(f"https://127.0.0.1:{https_port}", TlsOpts(skip_verification=True)) == \
        ("ok", b"secret")


def test_wss_client_verifies(ca, https_port):
    assert fetch(f"wss://127.0.0.1:{https_port}/ws", TlsOpts(ca=ca.cert_pem.bytes()),
                 ws=True) == ("ok", b"pong")
    status, _ = fetch(f"wss://127.0.0.1:{https_port}/ws",
                      TlsOpts(ca=ca.cert_pem.bytes(), name="example.com"), ws=True)
    assert status == "error"


def test_core_client_and_server_with_client_certificate(ca, leaf):
    client_leaf = ca.issue_cert("client@example.com")
    got = []
    with Manager() as mgr:
        def server(c, ev, data):
            if ev == MG_EV_ACCEPT:
                c.tls_init(server_opts(leaf, ca=ca.cert_pem.bytes()))
            elif ev == MG_EV_TLS_HS:
                got.append("server handshake")
            elif ev == MG_EV_HTTP_MSG:
                c.reply(200, b"mutual")

        port = mgr.listen("https://127.0.0.1:0", server).local_addr[1]
        opts = TlsOpts(ca=ca.cert_pem.bytes(), cert=client_leaf.cert_chain_pems[0].bytes(),
                       key=client_leaf.private_key_pem.bytes())

        def client(c, ev, data):
            if ev == MG_EV_CONNECT:
                c.tls_init(opts)
                c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            elif ev == MG_EV_HTTP_MSG:
                got.append(data.body_bytes)
            elif ev == MG_EV_ERROR:
                got.append(data)

        mgr.connect(f"https://127.0.0.1:{port}", client)
        deadline = time.monotonic() + 30
        while b"mutual" not in got and not any(isinstance(g, str) and "TLS" in g for g in got):
            assert time.monotonic() < deadline
            mgr.poll(10)
    assert got == ["server handshake", b"mutual"]
