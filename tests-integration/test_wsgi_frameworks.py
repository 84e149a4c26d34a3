"""Bottle and Falcon apps on cymongoose-wsgi over real sockets, plain and wrapped in
``wsgiref.validate`` with warnings made errors."""

from __future__ import annotations

import hashlib
import warnings
from wsgiref.validate import validator

import httpx
import pytest
from cymongoose.wsgi.testing import ServerThread

pytest.importorskip("bottle")
pytest.importorskip("falcon")

from apps import wsgi_bottle, wsgi_falcon  # noqa: E402
from wsgi_modes import wsgi_threads  # noqa: F401  (each test: pooled and inline)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["plain", "validated"])
def validated(request):
    with warnings.catch_warnings():
        if request.param == "validated":
            warnings.simplefilter("error")  # a protocol warning fails the request (500)
        yield request.param == "validated"


@pytest.fixture
def serve(validated, threads):
    """serve(app): a context manager, the server thread for ``app`` (under the validator in
    the "validated" runs) with the mode's ``threads``."""
    return lambda app: ServerThread(validator(app) if validated else app, threads=threads,
                                    access_log=False)


def test_bottle(serve):
    upload = bytes(range(256)) * 4096  # 1 MiB: streamed into the app
    with serve(wsgi_bottle.make_app()) as srv, httpx.Client(base_url=srv.url) as c:
        r = c.get("/hello/w%C3%B6rld", params={"q": "1 2"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"hello": "wörld", "q": "1 2"}

        assert c.post("/echo", json={"a": [1, 2]}).json() == {"got": {"a": [1, 2]}}
        assert c.post("/form", data={"name": "Bo"}).json() == {"name": "Bo"}
        r = c.post("/upload", content=upload, headers={"Content-Type": "application/x-data"})
        assert r.json() == {"size": len(upload), "sha256": hashlib.sha256(upload).hexdigest()}

        r = c.get("/stream")
        assert r.text == "".join(f"part {i}\n" for i in range(5))

        r = c.get("/missing")
        assert r.status_code == 404
        assert r.text == "no such page"

        head = c.head("/hello/x")
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["content-length"]) == len(c.get("/hello/x").content)


def test_falcon(serve):
    upload = b"falcon" * 300_000
    with serve(wsgi_falcon.make_app()) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/items").json() == {"items": []}
        r = c.post("/items", json={"name": "first"})
        assert r.status_code == 201
        assert r.headers["location"].endswith("/items/1")
        assert r.json() == {"id": 1, "name": "first"}
        assert c.get("/items/1").json() == {"id": 1, "name": "first"}
        assert c.get("/items").json() == {"items": [{"id": 1, "name": "first"}]}

        missing = c.get("/items/99")
        assert missing.status_code == 404
        assert missing.json()["title"] == "no such item"
        assert c.get("/nowhere").status_code == 404

        r = c.post("/upload", content=upload)
        assert r.json() == {"size": len(upload), "sha256": hashlib.sha256(upload).hexdigest()}

        def chunked():
            for i in range(0, len(upload), 100_000):
                yield upload[i : i + 100_000]

        r = c.post("/upload", content=chunked())
        assert r.json() == {"size": len(upload), "sha256": hashlib.sha256(upload).hexdigest()}
