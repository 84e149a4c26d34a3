"""SNTP against a local UDP responder; HTTPS with a certificate generated here."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import struct
import time

import httpx
import pytest
from cymongoose import (
    MG_EV_ACCEPT,
    MG_EV_CONNECT,
    MG_EV_ERROR,
    MG_EV_HTTP_MSG,
    MG_EV_SNTP_TIME,
    Manager,
    TlsOpts,
)

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def run_until(mgr, cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        mgr.poll(10)


def test_sntp_request():
    # The host's time (shifted by a known 0.25 s fraction): a successful sync moves
    # mongoose's wall clock, which later TLS tests use to check certificate dates.
    fake_epoch = int(time.time()) + 0.25
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    port = udp.getsockname()[1]
    got = []
    requests = []

    def answer():
        try:
            req, addr = udp.recvfrom(512)
        except BlockingIOError:
            return
        requests.append(req)
        secs = int(fake_epoch) + NTP_EPOCH_OFFSET
        frac = int((fake_epoch % 1) * (1 << 32))
        resp = bytearray(48)
        resp[0] = (0 << 6) | (4 << 3) | 4  # LI 0, version 4, mode 4 (server)
        resp[1] = 1  # stratum 1
        resp[24:32] = req[40:48]  # originate = client's transmit timestamp
        resp[32:40] = struct.pack(">II", secs, frac)  # receive
        resp[40:48] = struct.pack(">II", secs, frac)  # transmit
        udp.sendto(bytes(resp), addr)

    try:
        with Manager() as mgr:

            def handler(c, ev, data):
                if ev == MG_EV_SNTP_TIME:
                    got.append(data)
                elif ev == MG_EV_ERROR:
                    got.append(("error", data))

            c = mgr.sntp_connect(f"udp://127.0.0.1:{port}", handler)
            c.sntp_request()
            deadline = time.monotonic() + 30
            while not got:
                assert time.monotonic() < deadline, "no SNTP answer"
                mgr.poll(10)
                answer()
    finally:
        udp.close()
    assert requests and len(requests[0]) == 48
    # mongoose adds half the measured round trip to the server's transmit time.
    assert len(got) == 1 and isinstance(got[0], int), got
    assert 0 <= got[0] - int(fake_epoch * 1000) < 1000, got


def test_sntp_request_on_closed_connection():
    with Manager() as mgr:
        c = mgr.sntp_connect("udp://127.0.0.1:9")
        c.close()
        run_until(mgr, lambda: c not in mgr.connections)
        with pytest.raises(RuntimeError, match="closed"):
            c.sntp_request()


# --- TLS ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki():
    return make_pki()


def make_pki(valid_from_days=-1, valid_to_days=30):
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("cymongoose test CA"))
        .issuer_name(name("cymongoose test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=valid_from_days))
        .not_valid_after(now + datetime.timedelta(days=valid_to_days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        # Python 3.13's default context (VERIFY_X509_STRICT) wants the key identifiers.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return {
        "ca": ca_cert.public_bytes(pem),
        "cert": cert.public_bytes(pem),
        "key": key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ),
    }


def https_handler(pki):
    opts = TlsOpts(cert=pki["cert"], key=pki["key"])

    def handler(c, ev, data):
        if ev == MG_EV_ACCEPT:
            c.tls_init(opts)
        elif ev == MG_EV_HTTP_MSG:
            c.reply(200, b"secure " + data.uri.encode(), {"X-TLS": str(c.is_tls)})

    return handler


def test_https_server_with_python_client(serve, pki, tmp_path):
    srv = serve(https_handler(pki), "https://127.0.0.1:0")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(pki["ca"])
    ctx = ssl.create_default_context(cafile=str(ca_file))
    r = httpx.get(f"https://127.0.0.1:{srv.port}/hello", verify=ctx)
    assert r.status_code == 200
    assert r.text == "secure /hello"
    assert r.headers["X-TLS"] == "True"


def test_many_tls_handshakes_from_openssl_all_verify(serve, pki, tmp_path):
    # Each handshake signs a new transcript: before patch 0003 about 1 in 300 signatures
    # had a non-DER r or s and OpenSSL refused it ("bad signature"); 2,000 handshakes
    # would see about 7 of them.
    srv = serve(https_handler(pki), "tcp://127.0.0.1:0")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(pki["ca"])
    ctx = ssl.create_default_context(cafile=str(ca_file))
    failures = []
    for _ in range(2000):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            try:
                with ctx.wrap_socket(sock, server_hostname="localhost"):
                    pass
            except ssl.SSLError as exc:
                failures.append(str(exc))
    assert failures == []


@pytest.mark.parametrize("mode", ["verify", "skip"])
def test_https_client_and_server(pki, mode):
    got = {}
    with Manager() as mgr:
        port = mgr.listen("https://127.0.0.1:0", https_handler(pki)).local_addr[1]
        if mode == "verify":
            client_opts = TlsOpts(ca=pki["ca"].decode(), name="localhost")
        else:
            client_opts = TlsOpts(skip_verification=True)

        def client(c, ev, data):
            if ev == MG_EV_CONNECT:
                c.tls_init(client_opts)
                c.send(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            elif ev == MG_EV_HTTP_MSG:
                got["status"] = data.status()
                got["body"] = data.body_bytes
                c.close()
            elif ev == MG_EV_ERROR:
                got["error"] = data

        mgr.connect(f"https://127.0.0.1:{port}", client)
        run_until(mgr, lambda: got)
    assert got == {"status": 200, "body": b"secure /x"}


def test_https_client_rejects_unknown_ca(pki):
    got = {}
    with Manager() as mgr:
        port = mgr.listen("https://127.0.0.1:0", https_handler(pki)).local_addr[1]
        other_ca = pki["cert"]  # not a CA that signed the server cert

        def client(c, ev, data):
            if ev == MG_EV_CONNECT:
                c.tls_init(TlsOpts(ca=other_ca, name="localhost"))
                c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            elif ev == MG_EV_HTTP_MSG:
                got["status"] = data.status()
            elif ev == MG_EV_ERROR:
                got["error"] = data

        mgr.connect(f"https://127.0.0.1:{port}", client)
        run_until(mgr, lambda: got)
    assert "error" in got and "status" not in got


@pytest.mark.parametrize("dates", [(-30, -1), (1, 30)], ids=["expired", "not-yet-valid"])
def test_https_client_checks_dates_against_host_clock(dates):
    pki = make_pki(*dates)
    got = {}
    with Manager() as mgr:
        port = mgr.listen("https://127.0.0.1:0", https_handler(pki)).local_addr[1]

        def client(c, ev, data):
            if ev == MG_EV_CONNECT:
                c.tls_init(TlsOpts(ca=pki["ca"], name="localhost"))
                c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            elif ev == MG_EV_HTTP_MSG:
                got["status"] = data.status()
            elif ev == MG_EV_ERROR:
                got["error"] = data

        mgr.connect(f"https://127.0.0.1:{port}", client)
        run_until(mgr, lambda: got)
    assert "error" in got and "status" not in got, got


def test_tls_opts_validation(pki):
    with pytest.raises(TypeError, match="ca"):
        TlsOpts(ca=123)
    with pytest.raises(ValueError, match="cert and key"):
        TlsOpts(cert=b"x")
    o = TlsOpts(ca=pki["ca"].decode(), name="h", skip_verification=True)
    assert o.ca == pki["ca"] and o.name == b"h" and o.skip_verification
    with Manager() as mgr:
        c = mgr.connect("tcp://127.0.0.1:9")
        with pytest.raises(TypeError):
            c.tls_init(None)
