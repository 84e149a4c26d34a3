"""FastAPI on cymongoose-asgi, the features real APIs use: JSON models, forms, a 50 MiB
upload hashed on the server, streaming responses, background tasks and dependencies with
``yield`` cleanup. Clients: httpx over real sockets."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")  # python-multipart, for Form/File
from apps.asgi_fastapi_app import STREAM_CHUNKS, make_app  # noqa: E402
from apps.asgi_support import split_response, wait_for  # noqa: E402
from cymongoose.asgi.testing import ServerThread  # noqa: E402

pytestmark = pytest.mark.timeout(180)

MIB = 1024 * 1024
BIG = 50 * MIB


@pytest.fixture(scope="module")
def served():
    app, record = make_app()
    with ServerThread(app) as srv:
        yield srv, record


@pytest.fixture
def url(served):
    return served[0].url


@pytest.fixture(scope="module")
def big_body():
    return os.urandom(BIG)


def events(url: str) -> list[str]:
    return httpx.get(url + "/record").json()["events"]


# -- JSON and forms -------------------------------------------------------------------


def test_json_model_roundtrip(url):
    item = {"name": "café ☕", "price": 2.5, "tags": ["hot", "drink"], "meta": {"n": [1, 2]}}
    r = httpx.post(url + "/items", json=item)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"item": item, "total": 3.0}


def test_json_validation_error(url):
    r = httpx.post(url + "/items", json={"name": "x", "price": "not a number"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "price"]


def test_invalid_json_body(url):
    r = httpx.post(url + "/items", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_urlencoded_form(url):
    r = httpx.post(url + "/form", data={"name": "Zoë & co", "count": "3", "tags": ["a", "b"]})
    assert r.status_code == 200
    assert r.json() == {"name": "Zoë & co", "count": 3, "tags": ["a", "b"]}


def test_multipart_form_with_file(url):
    r = httpx.post(
        url + "/form-file",
        data={"title": "notes"},
        files={"doc": ("notes.txt", "line one\nline two ✓\n".encode(), "text/plain")},
    )
    assert r.status_code == 200
    assert r.json() == {"title": "notes", "filename": "notes.txt", "content_type": "text/plain",
                        "text": "line one\nline two ✓\n"}


# -- big request bodies ---------------------------------------------------------------


def test_upload_50_mib_multipart(url, big_body):
    r = httpx.post(url + "/upload", files={"file": ("big.bin", big_body)}, timeout=120)
    assert r.status_code == 200
    assert r.json() == {"filename": "big.bin", "size": BIG,
                        "sha256": hashlib.sha256(big_body).hexdigest()}


def test_raw_upload_50_mib_with_content_length_is_streamed(url, big_body):
    r = httpx.put(url + "/raw", content=big_body, timeout=120)
    assert r.status_code == 200
    result = r.json()
    assert (result["size"], result["sha256"]) == (BIG, hashlib.sha256(big_body).hexdigest())
    # Streamed to the app with bounded memory: many http.request messages, none huge.
    assert result["messages"] > 1
    assert result["largest"] <= 8 * MIB


def test_raw_upload_50_mib_chunked_is_decoded_and_streamed(url, big_body):
    def pieces():
        view = memoryview(big_body)
        for start in range(0, BIG, MIB):
            yield bytes(view[start:start + MIB])

    # A generator has no known length: httpx sends Transfer-Encoding: chunked.
    r = httpx.put(url + "/raw", content=pieces(), timeout=120)
    assert r.status_code == 200
    result = r.json()
    assert (result["size"], result["sha256"]) == (BIG, hashlib.sha256(big_body).hexdigest())
    assert result["messages"] > 1
    assert result["largest"] <= 8 * MIB


def test_expect_100_continue(served):
    srv = served[0]
    body = json.dumps({"name": "continued", "price": 10}).encode()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=15) as s:
        s.sendall(b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        interim = b""
        while b"\r\n\r\n" not in interim:  # the client waits for the go-ahead
            data = s.recv(1)
            assert data, "connection closed before 100 Continue"
            interim += data
        assert interim.startswith(b"HTTP/1.1 100 ")
        s.sendall(body)
        raw = b""
        while data := s.recv(65536):
            raw += data
    status, _, payload = split_response(raw)
    assert status == 200
    assert json.loads(payload) == {"item": {"name": "continued", "price": 10.0, "tags": [],
                                            "meta": {}}, "total": 12.0}


def test_client_abandons_upload_app_sees_disconnect(served):
    # Content-Length promises 10 MiB; the client sends 1 MiB and closes: the app's
    # receive() must give http.disconnect rather than wait forever for the rest.
    srv = served[0]
    before = len(events(srv.url))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=15) as s:
        s.sendall(b"PUT /raw-watch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % (10 * MIB))
        s.sendall(b"\0" * MIB)
    wait_for(lambda: "upload aborted after True data" in events(srv.url)[before:],
             "the app to see http.disconnect")
    assert "upload complete" not in events(srv.url)[before:]


def test_keep_alive_after_big_upload(url, big_body):
    with httpx.Client(timeout=120) as client:
        r1 = client.put(url + "/raw", content=big_body[: 5 * MIB])
        addr1 = r1.extensions["network_stream"].get_extra_info("client_addr")
        r2 = client.post(url + "/items", json={"name": "after", "price": 1})
        addr2 = r2.extensions["network_stream"].get_extra_info("client_addr")
    assert r1.json()["size"] == 5 * MIB
    assert r2.json()["item"]["name"] == "after"
    assert addr1 == addr2  # the same connection served both


# -- streaming responses ----------------------------------------------------------------


def test_streaming_response_all_chunks_in_order(url):
    with httpx.stream("GET", url + "/stream") as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers
        assert r.headers.get("transfer-encoding") == "chunked"
        lines = list(r.iter_lines())
    assert lines == [f"chunk {i:05d}" for i in range(STREAM_CHUNKS)]


def test_streaming_response_is_sent_as_produced(url):
    # The second chunk is produced only after POST /release, which the client sends after
    # reading the first: a server that held the response back until the app finished
    # would never deliver "first" (the read times out).
    with httpx.Client(timeout=15) as streamer, httpx.Client(timeout=15) as other:
        with streamer.stream("GET", url + "/stream-gated") as r:
            received = b""
            chunks = r.iter_raw()
            while b"first\n" not in received:
                received += next(chunks)
            assert other.post(url + "/release").json() == {"released": True}
            received += b"".join(chunks)
    assert received == b"first\nsecond\n"


def test_streaming_response_backpressure(url, served):
    # The client reads 1 MiB and stops reading: send() must suspend the app once the
    # socket's buffers are full instead of queueing all 128 MiB in memory.
    total = 128 * MIB
    with httpx.Client(timeout=30) as reader, httpx.Client(timeout=30) as other:
        with reader.stream("GET", url + "/big-stream", params={"mib": 128}) as r:
            chunks = r.iter_bytes()
            received = len(next(chunks))
            readings = [-1]

            def stalled() -> bool:  # the same count twice, 0.3 s apart
                time.sleep(0.3)
                readings.append(other.get(url + "/produced").json()["produced"])
                return readings[-1] == readings[-2]

            wait_for(stalled, "the producer to stop while the client does not read", 60)
            assert readings[-1] < total // 2
            for chunk in chunks:
                received += len(chunk)
    assert received == total
    assert served[1].produced == total


# -- background tasks and dependencies -----------------------------------------------------


def test_background_task_runs_after_the_response(url):
    # The task waits for POST /release, so the response must reach the client while the
    # app (which runs background tasks after the body) is still running.
    before = len(events(url))
    r = httpx.post(url + "/bg", timeout=15)
    assert r.json() == {"queued": True}
    wait_for(lambda: "task started" in events(url)[before:], "the background task to start")
    assert "task done" not in events(url)[before:]
    httpx.post(url + "/release")
    wait_for(lambda: "task done" in events(url)[before:], "the background task to finish")
    assert events(url)[before:] == ["endpoint returned", "task started", "task done"]


def test_dependency_with_yield_is_cleaned_up(url):
    r = httpx.get(url + "/me")
    assert r.status_code == 200
    session = r.json()["session"]
    assert r.json() == {"user": {"name": "alice", "session": session}, "session": session}
    closed = f"session {session} closed"
    wait_for(lambda: closed in events(url), "the dependency's cleanup")
    log = events(url)
    start = log.index(f"session {session} open")
    assert log[start:start + 3] == [f"session {session} open",
                                    f"handler saw session {session}", closed]


# -- body size limit (413) -------------------------------------------------------------

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def limited():
    app, _ = make_app()
    with ServerThread(app, max_body_size=LIMIT) as srv:
        yield srv


def test_body_within_the_limit(limited):
    r = httpx.put(limited.url + "/raw", content=b"x" * LIMIT)
    assert (r.status_code, r.json()["size"]) == (200, LIMIT)


def test_body_over_the_limit_is_413(limited):
    r = httpx.put(limited.url + "/raw", content=b"x" * (LIMIT + 1))
    assert r.status_code == 413


def test_chunked_body_over_the_limit_is_413(limited):
    # The length is known only as the chunks arrive, after the app started reading. The
    # whole request (~65 KB) is sent before reading, so nothing is left unread to make
    # the server's close a reset.
    body = b"".join(b"%x\r\n%s\r\n" % (n, b"z" * n) for n in (32768, 32768, 1)) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", limited.port), timeout=15) as s:
        s.sendall(b"PUT /raw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        raw = b""
        try:
            while data := s.recv(65536):
                raw += data
        except ConnectionResetError:
            pytest.fail(f"connection reset after {raw!r}; expected a 413 response")
    assert raw, "connection closed without a response; expected 413"
    assert split_response(raw)[0] == 413
