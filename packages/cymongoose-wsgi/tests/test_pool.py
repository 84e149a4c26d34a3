"""What only the pooled mode has to get right now that the core answers the common request
itself (the app on a pool thread, the response written from there): requests run on the
pool, a blocked app holds only its own connection, a request whose client left is not
run, and requests the fast path hands back to the server keep their order. The rest of the
suite runs in both modes (see conftest.py)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import httpx
import pytest

from cymongoose.wsgi.testing import ServerThread


@pytest.fixture(scope="module")
def threads() -> int:
    """This module always serves pooled (each test asks its pool size): run it once, not per
    mode."""
    return 4


def read_response(sock: socket.socket, buf: bytearray) -> bytes:
    """One response (Content-Length or chunked body) from ``buf`` and then the socket."""

    def fill(done) -> None:
        while not done():
            chunk = sock.recv(65536)
            assert chunk, "closed before the end of the response"
            buf.extend(chunk)

    fill(lambda: b"\r\n\r\n" in buf)
    head = bytes(buf).partition(b"\r\n\r\n")[0]
    start = len(head) + 4
    if b"transfer-encoding: chunked" in head.lower():
        fill(lambda: buf.find(b"\r\n0\r\n\r\n", start - 2) >= 0)
        end = buf.find(b"\r\n0\r\n\r\n", start - 2) + 7
    else:
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        end = start + length
        fill(lambda: len(buf) >= end)
    response = bytes(buf[:end])
    del buf[:end]
    return response


class SlowApp:
    """The app: ``/slow`` waits for ``release``; any other path answers at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.ran: list[str] = []

    def __call__(self, environ, start_response):
        self.ran.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/slow":
            self.started.set()
            self.release.wait(30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]


@contextmanager
def slow_request(srv: ServerThread, app: SlowApp):
    """GET /slow from another thread until the block ends; yields its response list."""
    slow: list[httpx.Response] = []
    waiter = threading.Thread(target=lambda: slow.append(httpx.get(srv.url + "/slow",
                                                                  timeout=30)))
    waiter.start()
    try:
        assert app.started.wait(10)
        yield slow
    finally:
        app.release.set()
        waiter.join(30)
    assert slow[0].text == "/slow"


def test_requests_run_on_pool_threads():
    seen = []

    def app(environ, start_response):
        seen.append((threading.current_thread().name, environ["wsgi.multithread"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"pooled"]

    with ServerThread(app, threads=2, access_log=False) as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            for _ in range(20):
                assert client.get("/").text == "pooled"
    assert len(seen) == 20
    assert all(name.startswith("cymongoose-wsgi-") and multithread for name, multithread in seen)


def test_blocked_app_holds_only_its_own_connection():
    app = SlowApp()
    with ServerThread(app, threads=2, access_log=False) as srv:
        with slow_request(srv, app) as slow:
            with httpx.Client(base_url=srv.url, timeout=10) as client:
                for _ in range(10):
                    assert client.get("/fast").text == "/fast"
            assert not slow  # still held by its app


def wait_until(done, timeout_s: float = 30.0) -> bool:
    """Poll ``done()`` until it is true (True) or ``timeout_s`` has passed (False)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_request_whose_client_left_while_queued_is_not_run():
    app = SlowApp()
    with ServerThread(app, threads=1, access_log=False) as srv:
        mgr = srv.server.manager
        with slow_request(srv, app):
            # The only app thread is busy: this request waits in the queue, then its
            # client goes away.
            known = {c.id for c in mgr.connections}
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as gone:
                gone.sendall(b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
                # The server can only skip a request whose close it has seen: wait until
                # it has accepted the connection (it then reads the request before the
                # FIN, which follows it on the wire) ...
                assert wait_until(lambda: {c.id for c in mgr.connections} - known)
                (gone_id,) = {c.id for c in mgr.connections} - known
            # ... and has closed it, while the app thread is still busy.
            assert wait_until(lambda: gone_id not in {c.id for c in mgr.connections})
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as probe:
            probe.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(probe, bytearray()).startswith(b"HTTP/1.1 200")
    assert app.ran == ["/slow", "/after"]


def test_pipelined_requests_of_both_paths_are_answered_in_order():
    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/gen":  # a generator: the fast path hands it to the server
            start_response("200 OK", [("Content-Type", "text/plain")])
            return (part for part in [b"gen", b"erated"])
        if path == "/empty":
            start_response("204 No Content", [])
            return []
        if path == "/fail":
            raise RuntimeError("boom")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [path.encode()]

    requests = [
        ("GET", "/one"), ("GET", "/gen"), ("HEAD", "/head"), ("GET", "/empty"),
        ("GET", "/fail"), ("GET", "/two"),
    ]
    wire = b"".join(f"{m} {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for m, p in requests)
    with ServerThread(app, threads=4, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(wire)
            buf = bytearray()
            answers = []
            for method, _ in requests:
                if method == "HEAD":
                    while b"\r\n\r\n" not in buf:
                        buf += sock.recv(65536)
                    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
                    answers.append(head + b"\r\n\r\n")
                    buf[:] = rest
                else:
                    answers.append(read_response(sock, buf))
    statuses = [a.split(b"\r\n", 1)[0] for a in answers]
    assert statuses == [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK",
                        b"HTTP/1.1 204 No Content", b"HTTP/1.1 500 Internal Server Error",
                        b"HTTP/1.1 200 OK"]
    assert answers[0].endswith(b"/one") and answers[5].endswith(b"/two")
    head, _, chunks = answers[1].partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and chunks.endswith(b"\r\n0\r\n\r\n")
    assert _dechunk(chunks) == b"generated"
    assert b"Content-Length: 5" in answers[2]  # HEAD: the length of the GET body, none sent


def _dechunk(data: bytes) -> bytes:
    """The body of a complete chunked message body (RFC 9112 section 7.1)."""
    out = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out += data[:size]
        data = data[size + 2:]


def _warm(srv: ServerThread) -> None:
    # A few quick requests: the pool has a poller and a standby, and the poller runs quick
    # requests itself between its polls.
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        for _ in range(20):
            assert client.get("/warm").status_code == 200


_slow_started = threading.Event()


def _fast_while_slow(srv: ServerThread, slow_path: str) -> tuple[float, bool]:
    """GET ``slow_path`` on one connection; once its app runs, GET /fast on another.
    Returns how long /fast took (seconds) and whether the slow response had arrived by
    then."""
    slow: list[httpx.Response] = []
    _slow_started.clear()
    waiter = threading.Thread(
        target=lambda: slow.append(httpx.get(srv.url + slow_path, timeout=30)))
    waiter.start()
    try:
        assert _slow_started.wait(10)
        begun = time.monotonic()
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            assert client.get("/fast").text == "/fast"
        return time.monotonic() - begun, bool(slow)
    finally:
        waiter.join(30)
        assert slow and slow[0].text == slow_path


def _slow_app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/sleep":
        _slow_started.set()
        time.sleep(3)
    elif path == "/spin":  # CPU-bound: holds the GIL but for the interpreter's switches
        _slow_started.set()
        end = time.perf_counter() + 3
        while time.perf_counter() < end:
            pass
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [path.encode()]


@pytest.mark.parametrize("slow_path", ["/sleep", "/spin"])
def test_a_slow_app_on_the_polling_thread_delays_no_other_connection(slow_path):
    # A quick-looking request runs on the thread that polls; once it turns out slow, a
    # pool thread takes over the polling and the other connection is answered meanwhile.
    with ServerThread(_slow_app, threads=2, access_log=False) as srv:
        _warm(srv)
        took, slow_done = _fast_while_slow(srv, slow_path)
    assert not slow_done
    assert took < 2.0  # 3 s or more if the fast request waited for the slow one


def test_a_slow_reader_of_a_stream_delays_no_other_connection():
    # A streamed response waits for its client (backpressure) on a pool thread, never on
    # the polling thread: other connections are served, and the stream arrives whole.
    block = bytes(range(256)) * 256  # 64 KiB
    blocks = 256  # 16 MiB, far above what the server queues

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        if environ["PATH_INFO"] == "/stream":
            return (block for _ in range(blocks))
        return [b"fast"]

    with ServerThread(app, threads=2, access_log=False) as srv:
        _warm(srv)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            first = sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 200")
            time.sleep(0.5)  # the app is held back by the client, not the server
            with httpx.Client(base_url=srv.url, timeout=10) as client:
                for _ in range(5):
                    assert client.get("/").text == "fast"
            buf = bytearray(first)
            response = read_response(sock, buf)
    body = response.partition(b"\r\n\r\n")[2]
    chunks, size = bytearray(), 0
    while True:  # de-chunk
        line, _, body = body.partition(b"\r\n")
        size = int(line, 16)
        if not size:
            break
        chunks += body[:size]
        body = body[size + 2:]
    assert bytes(chunks) == block * blocks


def test_large_uploads_are_echoed_whole():
    def app(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    payload = bytes(range(256)) * (32 << 10)  # 8 MiB
    with ServerThread(app, threads=2, access_log=False) as srv:
        _warm(srv)
        with httpx.Client(base_url=srv.url, timeout=60) as client:
            for _ in range(3):
                response = client.post("/echo", content=payload)
                assert response.status_code == 200
                assert response.content == payload
                assert client.get("/after").status_code == 200


def test_graceful_stop_while_the_polling_thread_runs_a_slow_app():
    # The stop waits for the app the polling thread runs, and its answer still goes out.
    app = SlowApp()
    srv = ServerThread(app, threads=2, access_log=False, graceful_timeout_s=30)
    srv.__enter__()
    try:
        _warm(srv)
        with slow_request(srv, app) as slow:
            srv.server.shutdown()
            time.sleep(0.3)  # the stop has begun and waits for /slow
            assert not slow
    finally:
        srv.stop()
    assert slow[0].headers["connection"] == "close"


def test_apps_that_wait_briefly_run_concurrently_on_the_pool():
    # Each call waits 3 ms (a quick database query): shorter than a takeover takes, yet
    # the requests of several clients must not run one after the other on the leader.
    lock = threading.Lock()
    running = peak = 0

    def app(environ, start_response):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.003)
        with lock:
            running -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def client() -> None:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            for _ in range(40):
                assert http.get("/").text == "ok"

    with ServerThread(app, threads=4, access_log=False) as srv:
        clients = [threading.Thread(target=client) for _ in range(4)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(60)
    assert peak >= 2


def test_large_bodies_stay_on_the_polling_thread():
    """Sending a large body takes the kernel a while (about 0.1 ms a MiB, more on a busy
    CPU): that is not app time. Many 8 MiB answers in a row are still run by the polling
    thread, not handed to the pool as if the app were slow (which cost the bench's 1 MiB
    row about half its speed on a loaded machine)."""
    body = b"b" * (8 << 20)
    names: list[str] = []

    def app(environ, start_response):
        names.append(threading.current_thread().name)
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    with ServerThread(app, threads=4, access_log=False) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            buf = bytearray()
            for _ in range(60):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                read_response(sock, buf)
    leader = max(set(names), key=names.count)
    # A loaded machine may preempt the leader in an app call (a takeover): most, not all.
    assert names.count(leader) >= len(names) * 3 // 4, names
