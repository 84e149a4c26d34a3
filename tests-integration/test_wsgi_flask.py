"""A Flask app served by cymongoose-wsgi over real sockets to httpx."""

from __future__ import annotations

import hashlib
import warnings
from concurrent.futures import ThreadPoolExecutor
from wsgiref.validate import validator

import httpx
import pytest
from apps import cli_flask_app
from apps.wsgi_flask import make_app
from cymongoose.wsgi.testing import ServerThread
from wsgi_modes import wsgi_threads  # noqa: F401  (each test: pooled and inline)

DOWNLOAD = bytes(range(256)) * 12_000  # about 3 MiB


@pytest.fixture(scope="module")
def download_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("flask") / "data.bin"
    path.write_bytes(DOWNLOAD)
    return path


@pytest.fixture(scope="module", params=["plain", "validated"])
def base_url(request, download_file, threads):
    """The app as is, and wrapped in wsgiref.validate with its warnings made errors; 8 app
    threads in pooled mode."""
    app = make_app(str(download_file))
    if request.param == "validated":
        app = validator(app)
    with warnings.catch_warnings():
        if request.param == "validated":
            warnings.simplefilter("error")  # a protocol warning fails the request (500)
        with ServerThread(app, workers=threads and 8, access_log=False) as srv:
            yield srv.url


def test_index(base_url):
    r = httpx.get(base_url + "/")
    assert r.status_code == 200
    assert r.text == "Hello from Flask on cymongoose!"
    assert r.headers["content-type"].startswith("text/html")


def test_echo_json(base_url):
    payload = {"a": 1, "b": [1, 2, 3], "c": {"d": "é"}}
    r = httpx.post(base_url + "/api/echo", json=payload)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == payload


def test_greet(base_url):
    r = httpx.get(base_url + "/api/greet/World")
    assert r.json() == {"greeting": "Hello, World!"}
    r = httpx.get(base_url + "/api/greet/J%C3%BCrgen")
    assert r.json() == {"greeting": "Hello, Jürgen!"}


def test_404_and_405(base_url):
    assert httpx.get(base_url + "/nope").status_code == 404
    assert httpx.get(base_url + "/api/echo").status_code == 405


def test_urlencoded_form(base_url):
    r = httpx.post(base_url + "/form", data={"name": "Zoë", "tags": ["a", "b"]})
    assert r.status_code == 200
    assert r.json() == {"form": {"name": ["Zoë"], "tags": ["a", "b"]}, "files": {}}


def test_multipart_form_with_file(base_url):
    content = b"\x00\x01binary\r\n--not-a-boundary\r\n" * 10_000
    r = httpx.post(
        base_url + "/form",
        data={"title": "report"},
        files={"doc": ("report.bin", content, "application/octet-stream")},
    )
    assert r.status_code == 200
    assert r.json() == {
        "form": {"title": ["report"]},
        "files": {"doc": {"filename": "report.bin", "size": len(content)}},
    }


def test_upload_50_mib_checked_by_sha256(base_url):
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    blocks = 50 * 16
    digest = hashlib.sha256()
    for _ in range(blocks):
        digest.update(block)

    def body():
        for _ in range(blocks):
            yield block

    r = httpx.post(
        base_url + "/api/upload",
        content=body(),
        headers={"Content-Length": str(len(block) * blocks)},
        timeout=120,
    )
    assert r.status_code == 200
    assert r.json() == {"size": 50 * 1024 * 1024, "sha256": digest.hexdigest()}


def test_chunked_upload(base_url):
    data = b"chunky" * 100_000

    def body():
        for i in range(0, len(data), 50_000):
            yield data[i : i + 50_000]

    r = httpx.post(base_url + "/api/upload", content=body(), timeout=60)
    assert r.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_large_post_body_echoed_intact(base_url):
    body = bytes(range(256)) * (2 * 1024 * 1024 // 256)
    r = httpx.post(base_url + "/api/upload-echo", content=body, timeout=30)
    assert r.status_code == 200
    assert r.content == body


def test_streamed_response(base_url):
    with httpx.stream("GET", base_url + "/stream/1000?tag=t") as r:
        assert r.status_code == 200
        assert r.headers["transfer-encoding"] == "chunked"
        lines = list(r.iter_lines())
    assert lines == [f"line {i} of t" for i in range(1000)]


def test_send_file_download(base_url):
    with httpx.Client() as client:
        r = client.get(base_url + "/download")
        assert r.status_code == 200
        assert r.content == DOWNLOAD
        assert r.headers["content-length"] == str(len(DOWNLOAD))
        assert r.headers["content-disposition"] == "attachment; filename=data.bin"
        # conditional and range requests work through the same path
        etag = r.headers["etag"]
        cached = client.get(base_url + "/download", headers={"If-None-Match": etag})
        assert cached.status_code == 304
        part = client.get(base_url + "/download", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206
        assert part.content == DOWNLOAD[10:20]
        head = client.head(base_url + "/download")
        assert head.headers["content-length"] == str(len(DOWNLOAD))
        assert head.content == b""


def test_keep_alive_50_requests(base_url):
    with httpx.Client() as client:
        for i in range(50):
            r = client.get(f"{base_url}/api/greet/n{i}")
            assert r.status_code == 200
            assert r.json() == {"greeting": f"Hello, n{i}!"}


def test_100_concurrent_requests(base_url):
    # One client (creating one costs more than the request) with up to 32 connections.
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(limits=limits, timeout=60) as client, ThreadPoolExecutor(32) as pool:
        results = list(
            pool.map(lambda i: client.post(base_url + "/api/echo", json={"i": i}).json(),
                     range(100))
        )
    assert results == [{"i": i} for i in range(100)]


def test_cli_flask_app_under_validator(threads):
    """tests-integration/apps/cli_flask_app.py (the CLI tests' app) obeys PEP 3333 too."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ServerThread(validator(cli_flask_app.app), threads=threads,
                          access_log=False) as srv:
            info = httpx.get(srv.url + "/info", headers={"X-Forwarded-For": "192.0.2.1"}).json()
            echo = httpx.post(srv.url + "/echo", content=b"x" * 100_000).json()
    assert info["server"] == "flask"
    assert info["client"] == "192.0.2.1"
    assert echo == {"size": 100_000}
