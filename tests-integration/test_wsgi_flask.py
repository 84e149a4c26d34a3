"""A Flask app served by cymongoose-wsgi over real sockets to httpx."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cymongoose.wsgi import WSGIServer
from flask import Flask, jsonify, request


def make_app() -> Flask:
    app = Flask(__name__)

    @app.route("/")
    def index():
        return "Hello from Flask on cymongoose!"

    @app.route("/api/echo", methods=["POST"])
    def echo():
        return jsonify(request.json)

    @app.route("/api/greet/<name>")
    def greet(name):
        return jsonify({"greeting": f"Hello, {name}!"})

    @app.route("/api/upload", methods=["POST"])
    def upload():
        data = request.get_data()
        return data, 200, {"Content-Type": "application/octet-stream"}

    return app


@pytest.fixture
def base_url():
    server = WSGIServer(make_app(), workers=8, access_log=False)
    port = server.listen("http://127.0.0.1:0").local_addr[1]
    thread = threading.Thread(target=server.run, kwargs={"poll_ms": 20}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=10)
    assert not thread.is_alive()


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


def test_404(base_url):
    r = httpx.get(base_url + "/nope")
    assert r.status_code == 404


def test_405(base_url):
    assert httpx.get(base_url + "/api/echo").status_code == 405


def test_large_post_body_intact(base_url):
    body = bytes(range(256)) * (2 * 1024 * 1024 // 256)
    r = httpx.post(base_url + "/api/upload", content=body, timeout=30)
    assert r.status_code == 200
    assert len(r.content) == len(body)
    assert r.content == body


def test_keep_alive_50_requests(base_url):
    with httpx.Client() as client:
        for i in range(50):
            r = client.get(f"{base_url}/api/greet/n{i}")
            assert r.status_code == 200
            assert r.json() == {"greeting": f"Hello, n{i}!"}


def test_100_concurrent_requests(base_url):
    def one(i: int) -> dict:
        with httpx.Client() as client:
            return client.post(base_url + "/api/echo", json={"i": i}).json()

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(one, range(100)))
    assert results == [{"i": i} for i in range(100)]
