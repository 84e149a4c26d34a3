"""Server settings (``ServerConfig`` fields): limits, keep-alive timeout, TLS, proxy headers,
root_path, access log, pool size and graceful shutdown."""

from __future__ import annotations

import errno
import json
import logging
import socket
import ssl
import threading

import httpx
import pytest
from cymongoose.serving.config import ServerConfig

from cymongoose.wsgi import WSGIServer
from cymongoose.wsgi.testing import ServerThread


def environ_app(environ, start_response):
    out = {k: v for k, v in environ.items() if isinstance(v, str)}
    out["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
    out["wsgi.multiprocess"] = environ["wsgi.multiprocess"]
    out["body_size"] = len(environ["wsgi.input"].read())
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def status_of(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, "closed without a response"
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.mark.pooled_only("pool size settings")
def test_config_object_and_field_overrides():
    config = ServerConfig(root_path="/base", threads=3, access_log=False)
    server = WSGIServer(environ_app, config=config, threads=2)
    try:
        assert server.workers == 2
        assert server.config.root_path == "/base"
        assert config.threads == 3  # the given config is left alone
    finally:
        server.close()


@pytest.mark.pooled_only("pool size settings")
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"workers": -1}, ValueError),
        ({"workers": 2, "threads": 3}, ValueError),
        ({"no_such_setting": 1}, TypeError),
        ({"max_header_count": 1000}, ValueError),
        ({"stream_timeout": 0}, ValueError),
    ],
)
def test_invalid_settings_are_rejected(kwargs, error):
    with pytest.raises(error):
        WSGIServer(environ_app, **kwargs)


@pytest.mark.pooled_only("pool size settings")
def test_seed_style_positional_url_and_workers_keyword():
    # serve(app, url, workers=8) and WSGIServer(app, workers=8) as in the seed document
    server = WSGIServer(environ_app, workers=8, access_log=False)
    assert server.workers == 8
    conn = server.listen("http://127.0.0.1:0")
    assert conn.local_addr[1] > 0
    server.close()


def test_header_limits_give_431(threads):
    with ServerThread(environ_app, threads=threads, max_header_count=5, max_header_bytes=2000,
                      access_log=False) as srv:
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(10))
        assert status_of(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n") == 431
        big = b"X-Big: " + b"b" * 3000 + b"\r\n"
        assert status_of(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n") == 431
        assert httpx.get(srv.url).status_code == 200


def test_body_limit_gives_413(threads):
    with ServerThread(environ_app, threads=threads, max_body_size=1000, access_log=False) as srv:
        r = httpx.post(srv.url, content=b"x" * 1001)
        assert r.status_code == 413
        r = httpx.post(srv.url, content=b"x" * 1000)
        assert r.status_code == 200
        assert r.json()["body_size"] == 1000


def test_connection_limit_gives_503(threads):
    with ServerThread(environ_app, threads=threads, max_connections=2, access_log=False) as srv:
        with httpx.Client() as a, httpx.Client() as b:
            assert a.get(srv.url).status_code == 200
            assert b.get(srv.url).status_code == 200
            # both keep their connections open: a third is refused
            assert status_of(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 503


def test_idle_keep_alive_connection_is_closed_after_timeout(threads):
    with ServerThread(environ_app, threads=threads, keep_alive_timeout_s=0.3,
                      access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):  # ends when the server closes the idle connection
                data += chunk
        assert data.startswith(b"HTTP/1.1 200")
        assert data.count(b"HTTP/1.1 200") == 1


@pytest.fixture(scope="module")
def tls_ca():
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_files(tls_ca, tmp_path_factory):
    ca = tls_ca
    cert = ca.issue_cert("127.0.0.1", "localhost")
    d = tmp_path_factory.mktemp("tls")
    cert.private_key_pem.write_to_path(d / "key.pem")
    cert.cert_chain_pems[0].write_to_path(d / "cert.pem")
    ca.cert_pem.write_to_path(d / "ca.pem")
    return d


def test_tls_from_certificate_files(tls_files, threads):
    with ServerThread(
        environ_app,
        threads=threads,
        ssl_certfile=str(tls_files / "cert.pem"),
        ssl_keyfile=str(tls_files / "key.pem"),
        access_log=False,
    ) as srv:
        assert srv.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(tls_files / "ca.pem"))
        with httpx.Client(verify=ctx) as client:
            for _ in range(3):
                r = client.post(srv.url + "/s", content=b"secret" * 20_000)
                assert r.status_code == 200
                env = r.json()
                assert env["wsgi.url_scheme"] == "https"
                assert env["body_size"] == 120_000


def test_client_certificates_required_with_ssl_ca_certs(tls_ca, tls_files, threads):
    trustme = pytest.importorskip("trustme")
    other_ca = trustme.CA()
    with ServerThread(
        environ_app,
        threads=threads,
        ssl_certfile=str(tls_files / "cert.pem"),
        ssl_keyfile=str(tls_files / "key.pem"),
        ssl_ca_certs=str(tls_files / "ca.pem"),
        access_log=False,
    ) as srv:
        ctx = ssl.create_default_context(cafile=str(tls_files / "ca.pem"))
        with pytest.raises(httpx.HTTPError):
            httpx.get(srv.url, verify=ctx)  # no client certificate
        other_ca.issue_cert("intruder@example.com").configure_cert(ctx)
        with pytest.raises(httpx.HTTPError):
            httpx.get(srv.url, verify=ctx)  # signed by a CA the server does not trust
        ctx = ssl.create_default_context(cafile=str(tls_files / "ca.pem"))
        tls_ca.issue_cert("client@example.com").configure_cert(ctx)
        assert httpx.get(srv.url, verify=ctx).status_code == 200


def test_https_url_without_certificate_is_an_error(threads):
    server = WSGIServer(environ_app, threads=threads, access_log=False)
    try:
        with pytest.raises(ValueError, match="ssl_certfile"):
            server.listen("https://127.0.0.1:0")
    finally:
        server.close()


def test_missing_certificate_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"\(ssl_certfile\): '.*nope.pem'"):
        WSGIServer(environ_app, ssl_certfile=str(tmp_path / "nope.pem"),
                   ssl_keyfile=str(tmp_path / "nope.key"))


def test_port_in_use_is_an_oserror_with_errno_and_still_a_runtime_error(threads):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        url = f"http://127.0.0.1:{holder.getsockname()[1]}"
        server = WSGIServer(environ_app, threads=threads, access_log=False)
        try:
            with pytest.raises(OSError) as info:
                server.listen(url)
        finally:
            server.close()
    assert info.value.errno == errno.EADDRINUSE and isinstance(info.value, RuntimeError)
    assert str(info.value).startswith(f"cannot listen on {url}: [Errno {errno.EADDRINUSE}]")


PROXY_HEADERS = {
    "X-Forwarded-For": "203.0.113.7, 10.0.0.2",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "example.com",
}


def test_proxy_headers_from_trusted_peer(threads):
    with ServerThread(environ_app, threads=threads, forwarded_allow_ips="127.0.0.1, 10.0.0.0/8",
                      access_log=False) as srv:
        env = httpx.get(srv.url, headers=PROXY_HEADERS).json()
    assert env["REMOTE_ADDR"] == "203.0.113.7"
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTP_HOST"] == "example.com"


def test_proxy_headers_ignored_from_untrusted_peer(threads):
    with ServerThread(environ_app, threads=threads, forwarded_allow_ips="10.1.2.3",
                      access_log=False) as srv:
        env = httpx.get(srv.url, headers=PROXY_HEADERS).json()
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["wsgi.url_scheme"] == "http"
    assert env["HTTP_HOST"].startswith("127.0.0.1:")
    assert env["wsgi.multiprocess"] is False


def test_proxy_headers_off(threads):
    with ServerThread(environ_app, threads=threads, proxy_headers=False, access_log=False) as srv:
        env = httpx.get(srv.url, headers={"Forwarded": "for=198.51.100.1;proto=https"}).json()
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["wsgi.url_scheme"] == "http"


def test_root_path_is_script_name(threads):
    with ServerThread(environ_app, threads=threads, root_path="/app", access_log=False) as srv:
        env = httpx.get(srv.url + "/app/items/1?x=1").json()
        assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/items/1")
        env = httpx.get(srv.url + "/app").json()
        assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "")
        # a proxy that already stripped the prefix
        env = httpx.get(srv.url + "/items/2").json()
        assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/items/2")
        env = httpx.get(srv.url + "/application").json()
        assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/application")


def test_access_log_line_per_response(caplog, threads):
    with caplog.at_level(logging.INFO, logger="cymongoose.access"):
        with ServerThread(environ_app, threads=threads, access_log=True) as srv:
            with httpx.Client() as client:
                client.get(srv.url + "/a?b=1", headers={"X-Forwarded-For": "192.0.2.9"})
                client.post(srv.url + "/p", content=b"x")
    lines = [r.getMessage() for r in caplog.records if r.name == "cymongoose.access"]
    assert lines == [
        '192.0.2.9:0 - "GET /a?b=1 HTTP/1.1" 200',
        lines[1],
    ]
    assert lines[1].startswith("127.0.0.1:") and lines[1].endswith('"POST /p HTTP/1.1" 200')


def test_access_log_off(caplog, threads):
    with caplog.at_level(logging.INFO, logger="cymongoose.access"):
        with ServerThread(environ_app, threads=threads, access_log=False) as srv:
            httpx.get(srv.url)
    assert not [r for r in caplog.records if r.name == "cymongoose.access"]


@pytest.mark.pooled_only("the app blocks")
def test_pool_size_bounds_concurrency():
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=30)

    def app(environ, start_response):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            gate.wait()  # only passes once 3 requests run at the same time
        finally:
            with lock:
                running -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    from concurrent.futures import ThreadPoolExecutor

    with ServerThread(app, threads=3, access_log=False) as srv:
        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(lambda _: httpx.get(srv.url, timeout=60).status_code, range(6)))
    assert codes == [200] * 6
    assert peak == 3


@pytest.mark.pooled_only("the app blocks")
def test_graceful_shutdown_finishes_in_flight_requests():
    started = threading.Event()
    release = threading.Event()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            started.set()
            release.wait(30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"finished"]

    srv = ServerThread(app, access_log=False, graceful_timeout_s=30)
    srv.__enter__()
    results = []
    client = threading.Thread(
        target=lambda: results.append(httpx.get(srv.url + "/slow", timeout=60))
    )
    client.start()
    assert started.wait(30)
    srv.server.shutdown()
    # New connections are refused once the listener is closed; the running request is not.
    # A connection accepted just before that, whose request had not arrived when the stop
    # began, is closed like an idle one (as uvicorn does): the client sees a disconnect.
    with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError)):
        for _ in range(200):  # the poll thread closes the listener on its next iteration
            httpx.get(srv.url + "/fast", timeout=5)
            release.wait(0.05)
    release.set()
    client.join(60)
    srv.stop()
    assert results[0].status_code == 200
    assert results[0].text == "finished"
    assert results[0].headers["connection"] == "close"


@pytest.mark.pooled_only("the app blocks")
def test_graceful_shutdown_gives_up_after_timeout():
    started = threading.Event()

    def app(environ, start_response):
        started.set()
        threading.Event().wait(60)
        start_response("200 OK", [])
        return [b""]

    srv = ServerThread(app, access_log=False, graceful_timeout_s=0.5)
    srv.__enter__()
    failed = []

    def call():
        try:
            httpx.get(srv.url, timeout=60)
        except httpx.HTTPError as exc:
            failed.append(exc)

    client = threading.Thread(target=call)
    client.start()
    assert started.wait(30)
    srv.stop()  # returns although the app never finishes
    client.join(30)
    assert failed  # the connection was closed under the client


def test_serves_on_an_inherited_listening_socket(threads):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = WSGIServer(environ_app, threads=threads, fd=sock.fileno(), port=port,
                        access_log=False)
    conn = server.listen()  # no URL: the fd from the settings
    assert conn.local_addr[1] == port
    thread = threading.Thread(target=server.run, kwargs={"poll_ms": 20}, daemon=True)
    thread.start()
    try:
        env = httpx.get(f"http://127.0.0.1:{port}/fd").json()
        assert env["PATH_INFO"] == "/fd"
        assert env["wsgi.multiprocess"] is True  # as under gunicorn or --workers N
        assert env["SERVER_PORT"] == str(port)
    finally:
        server.shutdown()
        thread.join(30)
        sock.close()
    assert not thread.is_alive()
