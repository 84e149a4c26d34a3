"""Fixtures for the adversarial suite: the same plain app, as an ASGI and as a WSGI
callable, each served by its cymongoose server with small limits, so that every hostile
input is tried against both servers.

Routes (both apps):
    /echo          read the whole body; JSON {"length", "sha256"}
    /slow?s=F      sleep F seconds, then answer like /info
    /big?n=N       stream N bytes (64 KiB pieces, no Content-Length)
    /bytes?n=N     N bytes in one piece, with Content-Length
    /crlf          try to set a header whose value contains CR/LF
    /raise-before  raise before starting the response
    /raise-after   start a response, send 2 MiB of it, then raise
    /cl-short      declare Content-Length: 20, send 5 bytes
    /cl-long       declare Content-Length: 20, send 20 bytes and then a whole fake response
    /status?code=N answer status N with the fake response as its body
    /no-response   return without starting a response
    /double-start  start the response twice
ASGI only: /after-complete sends the fake response after the final body message.
WSGI only: /str-body returns str instead of bytes.
    /headers       JSON {"client": peer address as the app sees it, "headers": [[name,
                   value bytes hex]]} (ASGI: scope headers; WSGI: the HTTP_* environ keys)
    anything else  /info: JSON {"method", "path" (decoded path bytes, hex), "version",
                   "raw_path" (ASGI only, hex), "length", "sha256"} after reading the body
ASGI only: any WebSocket path echoes messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from urllib.parse import parse_qsl

import httpx
import pytest
from cymongoose.asgi.testing import ServerThread as ASGIServerThread
from cymongoose.wsgi.testing import ServerThread as WSGIServerThread

WAIT_S = 10.0
PIECE = 64 * 1024
RAISE_AFTER_BYTES = 2 * 1024 * 1024
#: What /cl-long sends after declaring Content-Length: 20: a whole second response.
FAKE_RESPONSE = (b"01234567890123456789"
                 b"HTTP/1.1 200 OK\r\nX-Fake: yes\r\nContent-Length: 4\r\n\r\nfake")

#: The limits every adversarial server runs with (ServerConfig field names).
LIMITS = {
    "max_header_count": 20,
    "max_header_bytes": 8192,
    "max_body_size": 8 * 1024 * 1024,
    "keep_alive_timeout_s": 5.0,
    "graceful_timeout_s": 10.0,
    "access_log": False,
}


class Tracker:
    """What the app did, seen from the test thread: ``(what, path)`` marks, in order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.marks: list[tuple[str, str]] = []

    def mark(self, what: str, path: str) -> None:
        with self._cond:
            self.marks.append((what, path))
            self._cond.notify_all()

    def count(self, what: str, path: str) -> int:
        with self._cond:
            return self.marks.count((what, path))

    def wait(self, what: str, path: str, count: int = 1) -> bool:
        """Wait (at most WAIT_S) until ``(what, path)`` was marked ``count`` times."""
        with self._cond:
            return self._cond.wait_for(lambda: self.marks.count((what, path)) >= count, WAIT_S)


def _info(method: str, path_bytes: bytes, version: str, body: bytes,
          raw_path: bytes | None = None) -> bytes:
    return json.dumps({"method": method, "path": path_bytes.hex(), "version": version,
                       "raw_path": raw_path.hex() if raw_path is not None else None,
                       "length": len(body),
                       "sha256": hashlib.sha256(body).hexdigest()}).encode()


def _headers(client: str, headers: list[tuple[str, bytes]]) -> bytes:
    return json.dumps({"client": client,
                       "headers": [[name, value.hex()] for name, value in headers]}).encode()


# ------------------------------------------------------------------------- ASGI app

def make_asgi_app(tracker: Tracker):
    async def read_body(receive, path):
        body = bytearray()
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                tracker.mark("disconnect", path)
                return None
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                return bytes(body)

    async def respond(send, body, status=200):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def websocket(scope, receive, send):
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                tracker.mark(f"ws-close-{msg.get('code')}", scope["path"])
                return
            await send({"type": "websocket.send", "bytes": msg.get("bytes"),
                        "text": msg.get("text")})

    async def http(scope, receive, send):
        path = scope["path"]
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        if path == "/raise-before":
            raise RuntimeError("the app fails before starting its response")
        if path == "/crlf":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"x-bad", b"a\r\nInjected: yes")]})
            await send({"type": "http.response.body", "body": b"never"})
            return
        if path == "/no-response":
            return
        if path == "/double-start":
            start = {"type": "http.response.start", "status": 200, "headers": []}
            await send(start)
            await send(start)
            return
        if path == "/after-complete":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"4")]})
            await send({"type": "http.response.body", "body": b"done"})
            await send({"type": "http.response.body", "body": FAKE_RESPONSE[20:]})
            return
        if path == "/status":
            await send({"type": "http.response.start", "status": int(query["code"]),
                        "headers": []})
            await send({"type": "http.response.body", "body": FAKE_RESPONSE[20:]})
            return
        if path in ("/cl-short", "/cl-long"):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"20")]})
            await send({"type": "http.response.body",
                        "body": b"short" if path == "/cl-short" else FAKE_RESPONSE})
            return
        if path == "/bytes":
            n = int(query["n"])
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(n).encode())]})
            await send({"type": "http.response.body", "body": b"x" * n})
            return
        if path in ("/big", "/raise-after"):
            n = int(query.get("n", RAISE_AFTER_BYTES))
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream")]})
            for i in range(0, n, PIECE):
                await send({"type": "http.response.body", "body": b"x" * min(PIECE, n - i),
                            "more_body": True})
            if path == "/raise-after":
                raise RuntimeError("the app fails after starting its response")
            await send({"type": "http.response.body", "body": b""})
            return
        body = await read_body(receive, path)
        if body is None:
            return
        if path == "/headers":
            await respond(send, _headers(scope["client"][0], [
                (name.decode("latin-1"), value) for name, value in scope["headers"]]))
            return
        if path == "/slow":
            await asyncio.sleep(float(query.get("s", "0.2")))
        if path == "/echo":
            out = json.dumps({"length": len(body),
                              "sha256": hashlib.sha256(body).hexdigest()}).encode()
        else:
            out = _info(scope["method"], path.encode("utf-8", "surrogateescape"),
                        scope["http_version"], body, scope.get("raw_path"))
        await respond(send, out)

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                await send({"type": msg["type"] + ".complete"})
                if msg["type"] == "lifespan.shutdown":
                    return
        if scope["type"] == "websocket":
            await websocket(scope, receive, send)
            return
        path = scope["path"]
        tracker.mark("start", path)
        try:
            await http(scope, receive, send)
        finally:
            tracker.mark("end", path)

    return app


# ------------------------------------------------------------------------- WSGI app

def make_wsgi_app(tracker: Tracker):
    def read_body(environ, path):
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        body = bytearray()
        try:
            if length:
                left = int(length)
                while left:
                    piece = stream.read(min(left, PIECE))
                    if not piece:
                        tracker.mark("disconnect", path)
                        return None
                    body += piece
                    left -= len(piece)
            else:
                while piece := stream.read(PIECE):
                    body += piece
        except Exception:
            tracker.mark("disconnect", path)
            raise
        return bytes(body)

    def stream(path, n, fail):
        try:
            for i in range(0, n, PIECE):
                yield b"x" * min(PIECE, n - i)
            if fail:
                raise RuntimeError("the app fails after starting its response")
        finally:
            tracker.mark("closed", path)

    def http(environ, start_response, path):
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        if path == "/raise-before":
            raise RuntimeError("the app fails before starting its response")
        if path == "/crlf":
            start_response("200 OK", [("X-Bad", "a\r\nInjected: yes")])
            return [b"never"]
        if path == "/no-response":
            return []
        if path == "/double-start":
            start_response("200 OK", [])
            start_response("200 OK", [])
            return [b"twice"]
        if path == "/str-body":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return ["not bytes"]
        if path == "/status":
            start_response(f"{query['code']} Whatever", [])
            return [FAKE_RESPONSE[20:]]
        if path in ("/cl-short", "/cl-long"):
            start_response("200 OK", [("Content-Length", "20")])
            return [b"short" if path == "/cl-short" else FAKE_RESPONSE]
        if path == "/bytes":
            start_response("200 OK", [("Content-Length", query["n"])])
            return [b"x" * int(query["n"])]
        if path in ("/big", "/raise-after"):
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return stream(path, int(query.get("n", RAISE_AFTER_BYTES)), path == "/raise-after")
        body = read_body(environ, path)
        if body is None:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"short body"]
        if path == "/headers":
            out = _headers(environ["REMOTE_ADDR"], [
                (k, v.encode("latin-1")) for k, v in environ.items() if k.startswith("HTTP_")])
            start_response("200 OK", [("Content-Type", "application/json")])
            return [out]
        if path == "/slow":
            time.sleep(float(query.get("s", "0.2")))
        if path == "/echo":
            out = json.dumps({"length": len(body),
                              "sha256": hashlib.sha256(body).hexdigest()}).encode()
        else:
            out = _info(environ["REQUEST_METHOD"], path.encode("latin-1"),
                        environ["SERVER_PROTOCOL"].partition("/")[2], body)
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(out)))])
        return [out]

    def app(environ, start_response):
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        tracker.mark("start", path)
        try:
            return http(environ, start_response, path)
        finally:
            tracker.mark("end", path)

    return app


# ------------------------------------------------------------------------- servers

class Served:
    """A running server: ``kind`` ("asgi": the ASGI server in its default, integrated
    mode; "asgi-threaded"; "wsgi": a pool of 8 app threads; "wsgi-inline": the app on the
    poll thread), ``family`` ("asgi"/"wsgi"), ``port``, ``url``,
    ``tracker``, ``errors`` (exceptions the server reported at the event-loop level)."""

    def __init__(self, kind: str, limits: dict) -> None:
        self.kind = kind
        self.family = kind.partition("-")[0]
        self.tracker = Tracker()
        self.errors: list[BaseException] = []
        options = {**LIMITS, **limits, "error_handler": self.errors.append}
        if self.family == "asgi":
            mode = "threaded" if kind == "asgi-threaded" else "auto"
            self.thread = ASGIServerThread(make_asgi_app(self.tracker), mode=mode, **options)
        else:
            threads = 0 if kind == "wsgi-inline" else 8
            self.thread = WSGIServerThread(make_wsgi_app(self.tracker), threads=threads,
                                           **options)
        self.thread.__enter__()
        self.port = self.thread.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.thread.__exit__(None, None, None)

    def assert_serves(self) -> None:
        """The server still answers a normal request, and reported no loop-level error."""
        r = httpx.get(self.url + "/after", timeout=WAIT_S)
        assert r.status_code == 200
        assert r.json()["path"] == b"/after".hex()
        assert self.errors == []


@pytest.fixture(params=["asgi", "asgi-threaded", "wsgi", "wsgi-inline"])
def kind(request) -> str:
    """Every server configuration: ASGI (integrated and threaded AsyncManager), WSGI
    (thread pool and inline)."""
    return request.param


@pytest.fixture
def start_server(kind):
    """Factory: ``start_server(**ServerConfig fields) -> Served`` for the current kind;
    every server started is stopped at teardown."""
    started: list[Served] = []

    def start(**limits) -> Served:
        served = Served(kind, limits)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture
def server(start_server) -> Served:
    """A server with the default LIMITS."""
    return start_server()


@pytest.fixture(params=["asgi", "asgi-threaded"])
def asgi_server(request):
    """The ASGI server alone, in both modes (WebSocket cases: WSGI has no WebSocket)."""
    served = Served(request.param, {"ws_max_size": 64 * 1024})
    yield served
    served.stop()
