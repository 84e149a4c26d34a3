"""HTTPS on both servers, started from their command lines as users do, with trustme
certificates: RSA and EC keys, TLS 1.2-only and 1.3-only clients, an encrypted key,
client certificates (mTLS), ALPN, and failed handshakes logged at debug while the
server goes on serving.

The servers (``--log-level debug``) serve the FastAPI app (ASGI) and the Flask app
(WSGI, with an app thread pool and inline); the clients are httpx and Python's ssl.
"""

from __future__ import annotations

import re
import socket
import ssl
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cymongoose import TLS_LIBRARY
from test_cli_workers import APPS, ASGI_APP, WSGI_APP, cli, free_port, serve  # noqa: F401

pytestmark = pytest.mark.skipif(not TLS_LIBRARY.startswith("OpenSSL"),
                                reason=f"this build's TLS is {TLS_LIBRARY}")

SERVERS = {"asgi": ("asgi", ASGI_APP), "wsgi": ("wsgi", WSGI_APP, "--threads", "4"),
           "wsgi-inline": ("wsgi", WSGI_APP, "--threads", "0")}
V12, V13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def write_pair(tmp: Path, leaf: trustme.LeafCert, key: bytes | None = None) -> list[str]:
    (tmp / "cert.pem").write_bytes(leaf.cert_chain_pems[0].bytes())
    (tmp / "key.pem").write_bytes(key or leaf.private_key_pem.bytes())
    return ["--ssl-certfile", str(tmp / "cert.pem"), "--ssl-keyfile", str(tmp / "key.pem")]


def pkcs8(leaf: trustme.LeafCert, password: bytes | None = None) -> bytes:
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    enc = (serialization.BestAvailableEncryption(password) if password
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def client(ca: trustme.CA, lo: ssl.TLSVersion | None = None, hi: ssl.TLSVersion | None = None,
           cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if lo:
        ctx.minimum_version = lo
    if hi:
        ctx.maximum_version = hi
    if cert:
        cert.configure_cert(ctx)
    return ctx


def start(serve, server: str, *flags: str, verify: object):  # noqa: F811
    kind, app, *own = SERVERS[server]
    return serve(*cli(kind, app, *own, "--log-level", "debug", *flags), scheme="https",
                 verify=verify)


def handshake(port: int, ctx: ssl.SSLContext, alpn: list[str] | None = None) -> tuple:
    """(TLS version, ALPN protocol) of one handshake with the server."""
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return tls.version(), tls.selected_alpn_protocol()


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("key_type", ["RSA", "ECDSA"])
def test_https_with_rsa_and_ec_certificates_tls12_and_13(serve, ca, tmp_path, server,  # noqa: F811
                                                          key_type):
    leaf = ca.issue_cert("127.0.0.1", key_type=getattr(trustme.KeyType, key_type))
    # RSA in PKCS#8, EC in SEC1 ("BEGIN EC PRIVATE KEY"): both forms users have.
    key = pkcs8(leaf) if key_type == "RSA" else None
    served = start(serve, server, *write_pair(tmp_path, leaf, key), verify=client(ca))
    r = served.get()
    assert r.status_code == 200 and r.json()["scheme"] == "https"
    for version in (V12, V13):
        with httpx.Client(verify=client(ca, version, version)) as http:
            r = http.post(served.base + "/echo", content=b"x" * 300_000, timeout=30)
            assert r.json() == {"size": 300_000}
        got = handshake(served.port, client(ca, version, version))[0]
        assert got == version.name.replace("_", ".")
    # ALPN: HTTP/1.1 only, whatever else the client offers (HTTP/2 is not served).
    assert handshake(served.port, client(ca), ["h2", "http/1.1"])[1] == "http/1.1"
    assert handshake(served.port, client(ca), ["h2"])[1] is None


@pytest.mark.parametrize("server", ["asgi", "wsgi"])
def test_minimum_version_and_ciphers_flags(serve, ca, tmp_path, server):  # noqa: F811
    leaf = ca.issue_cert("127.0.0.1")
    served = start(serve, server, *write_pair(tmp_path, leaf), "--ssl-version", "TLSv1.3",
                   verify=client(ca))
    with pytest.raises(ssl.SSLError):
        handshake(served.port, client(ca, V12, V12))
    assert handshake(served.port, client(ca))[0] == "TLSv1.3"
    served.stop()
    assert re.search(r"TLS handshake with 127\.0\.0\.1:\d+ failed: unsupported protocol",
                     served.err), served.err

    served = start(serve, server, *write_pair(tmp_path, leaf), "--ssl-ciphers",
                   "ECDHE-ECDSA-CHACHA20-POLY1305", verify=client(ca))
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        with client(ca, V12, V12).wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            assert tls.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305"


@pytest.mark.parametrize("server", ["asgi", "wsgi"])
def test_encrypted_key_with_password(serve, ca, tmp_path, server):  # noqa: F811
    leaf = ca.issue_cert("127.0.0.1", key_type=trustme.KeyType.RSA)
    flags = write_pair(tmp_path, leaf, pkcs8(leaf, b"open sesame"))
    served = start(serve, server, *flags, "--ssl-keyfile-password", "open sesame",
                   verify=client(ca))
    assert served.get().json()["scheme"] == "https"


@pytest.mark.parametrize("password", [None, "wrong"])
@pytest.mark.parametrize("server", ["asgi", "wsgi"])
def test_encrypted_key_without_or_with_a_wrong_password_is_a_startup_error(
        ca, tmp_path, server, password):
    import subprocess
    import sys

    leaf = ca.issue_cert("127.0.0.1")
    flags = write_pair(tmp_path, leaf, pkcs8(leaf, b"open sesame"))
    if password:
        flags += ["--ssl-keyfile-password", password]
    proc = subprocess.run([sys.executable, "-m", f"cymongoose.{server}", SERVERS[server][1],
                           "--port", str(free_port()), *flags],
                          cwd=APPS, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    if password:
        assert last.startswith(f"cymongoose-{server}: error: ssl_keyfile_password does not "
                               "decrypt the key"), proc.stderr
    else:
        assert last == (f"cymongoose-{server}: error: ssl_keyfile '{tmp_path / 'key.pem'}' is "
                        "encrypted and no password was given"), proc.stderr


@pytest.mark.parametrize("server", SERVERS)
def test_mtls_client_certificate_accepted_and_missing_one_refused(serve, ca, tmp_path,  # noqa: F811
                                                                  server):
    leaf = ca.issue_cert("127.0.0.1")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
    user = ca.issue_cert("alice@example.com")
    served = start(serve, server, *write_pair(tmp_path, leaf), "--ssl-ca-certs",
                   str(tmp_path / "ca.pem"), "--ssl-cert-reqs", "2",
                   verify=client(ca, cert=user))
    assert served.get().json()["scheme"] == "https"
    with pytest.raises(httpx.TransportError):
        with httpx.Client(verify=client(ca)) as http:  # no client certificate
            http.get(served.base + "/info", timeout=30)
    assert served.get().status_code == 200  # still serving
    served.stop()
    assert re.search(r"TLS handshake with 127\.0\.0\.1:\d+ failed: peer did not return a "
                     "certificate", served.err), served.err


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
@pytest.mark.parametrize("server", SERVERS)
def test_bad_handshakes_are_logged_at_debug_and_the_server_goes_on(serve, ca, tmp_path,  # noqa: F811
                                                                   server):
    leaf = ca.issue_cert("127.0.0.1")
    served = start(serve, server, *write_pair(tmp_path, leaf), verify=client(ca))
    # Plain HTTP to the TLS port.
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(4096)  # the server's alert, then its close
    # A TLS 1.0 client (OpenSSL needs security level 0 to offer TLS 1.0 at all).
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(served.port, old)
    for _ in range(3):
        assert served.get().status_code == 200
    served.stop()
    for reason in ("http request", "unsupported protocol"):
        assert re.search(rf"DEBUG: +TLS handshake with 127\.0\.0\.1:\d+ failed: {reason}",
                         served.err), served.err
