"""WsgiFastPath with ``submit`` (a pooled WSGI server): the poll thread queues the request,
an app thread answers it, and the waiting poll() is woken to send the answer."""

from __future__ import annotations

import queue
import socket
import threading

import pytest
from cymongoose import (
    MG_EV_ACCEPT,
    MG_EV_CLOSE,
    MG_EV_WAKEUP,
    Manager,
    WsgiConnState,
    WsgiFastPath,
)

pytestmark = pytest.mark.skipif(
    not WsgiFastPath.pool_supported, reason="the pooled fast path needs the epoll build"
)


def check_status(status):
    return int(status.split(" ", 1)[0])


def check_headers(headers):
    return None


class PooledServer:
    """A Manager polling with a long timeout in one thread, one app thread taking jobs."""

    def __init__(self, app, resume=None):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.resumed: list = []
        self.fast_path = WsgiFastPath(
            app, self.fallback, resume or self.record_resume, check_status, check_headers,
            submit=self.jobs.put,
        )
        self.mgr = Manager(self.fast_path, enable_wakeup=True)
        listener = self.mgr.listen("http://127.0.0.1:0", http=True)
        listener.io_events = False
        listener.configure_http_server()
        self.port = listener.local_addr[1]
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.poll_loop, daemon=True),
            threading.Thread(target=self.app_loop, daemon=True, name="app-thread"),
        ]

    def fallback(self, conn, ev, data):
        if ev == MG_EV_ACCEPT:
            state = WsgiConnState()
            state.base = {"wsgi.url_scheme": "http", "SCRIPT_NAME": ""}
            state.fast = True
            conn.userdata = state
        elif ev == MG_EV_WAKEUP:  # an answer handed back by resume()
            conn.send_wsgi_response("200 OK", [], data)

    def record_resume(self, conn, environ, start, result, failed):
        self.resumed.append((environ["PATH_INFO"], result, failed))
        self.mgr.wakeup(conn.id, b"resumed!")

    def poll_loop(self):
        while not self.stop.is_set():
            # Far longer than the clients wait: answers must not wait for the timeout.
            self.mgr.poll(30_000)

    def app_loop(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.fast_path.run(job)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.jobs.put(None)
        self.mgr.wakeup(self.mgr.wakeup_id)
        for t in self.threads:
            t.join(10)
        self.mgr.close()


def get(port: int, path: str, count: int = 1) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        answers = []
        for _ in range(count):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"!"):
                chunk = sock.recv(65536)
                assert chunk, "closed early"
                data += chunk
            answers.append(data)
    return answers


def test_the_app_runs_on_the_app_thread_and_the_answer_goes_out_at_once():
    seen = []

    def app(environ, start_response):
        seen.append((threading.current_thread().name, environ["PATH_INFO"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"pooled!"]

    with PooledServer(app) as srv:
        answers = get(srv.port, "/a", count=3)
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 3
    assert all(a.endswith(b"\r\n\r\npooled!") for a in answers)
    assert seen == [("app-thread", "/a")] * 3
    assert srv.resumed == []


def test_what_the_fast_path_leaves_is_resumed_on_the_app_thread():
    resumed_on = []

    def app(environ, start_response):
        start_response("200 OK", [])
        return iter([b"lazy, no length!"])

    def resume(conn, environ, start, result, failed):
        resumed_on.append((threading.current_thread().name, failed, start.status))
        srv.mgr.wakeup(conn.id, b"".join(result))  # the poll thread writes it

    with PooledServer(app, resume) as srv:
        answers = get(srv.port, "/lazy")
    assert answers[0].endswith(b"lazy, no length!")
    assert resumed_on == [("app-thread", False, "200 OK")]


def test_run_refuses_what_was_not_queued_by_a_fast_path():
    def app(environ, start_response):
        start_response("200 OK", [])
        return [b""]

    fp = WsgiFastPath(app, print, print, check_status, check_headers, submit=print)
    with pytest.raises(TypeError):
        fp.run(None)
    with pytest.raises(TypeError, match="submit"):
        WsgiFastPath(app, print, print, check_status, check_headers, submit=42)


def test_a_request_whose_client_has_gone_is_not_run():
    """The app thread takes a queued request while the poll thread handles the close of
    its connection (mongoose has read the FIN; MG_EV_CLOSE is running): the app is not
    called for it."""
    ran: list[str] = []
    release = threading.Event()
    done: queue.SimpleQueue = queue.SimpleQueue()

    def app(environ, start_response):
        ran.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/slow":
            release.wait(30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done!"]

    class Server(PooledServer):
        armed = False

        def fallback(self, conn, ev, data):
            super().fallback(conn, ev, data)
            if ev == MG_EV_CLOSE and self.armed:
                self.armed = False
                release.set()  # the app thread finishes /slow, then takes /gone ...
                for _ in range(2):  # ... while this close is still being handled
                    done.get(timeout=30)

        def app_loop(self):
            while (job := self.jobs.get()) is not None:
                self.fast_path.run(job)
                done.put(job.environ["PATH_INFO"])

    with Server(app) as srv:
        slow = threading.Thread(target=lambda: get(srv.port, "/slow"))
        slow.start()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as gone:
            while ran != ["/slow"]:
                threading.Event().wait(0.005)
            gone.sendall(b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
            while srv.jobs.qsize() == 0:  # queued behind /slow
                threading.Event().wait(0.005)
            srv.armed = True
        slow.join(30)
    assert not slow.is_alive()
    assert ran == ["/slow"]
