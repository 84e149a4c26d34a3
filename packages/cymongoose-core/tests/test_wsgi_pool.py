"""WsgiFastPath with ``submit`` (a pooled WSGI server): the poll thread queues the request,
an app thread answers it, and the waiting poll() is woken to send the answer."""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections import deque

import pytest
from cymongoose import (
    MG_EV_ACCEPT,
    MG_EV_CLOSE,
    MG_EV_WAKEUP,
    HttpFastHandler,
    Manager,
    WsgiConnState,
    WsgiFastPath,
    WsgiPollRole,
    WsgiStartResponse,
)

pytestmark = pytest.mark.skipif(
    not WsgiFastPath.pool_supported, reason="the pooled fast path needs the epoll build"
)


class Cycle(WsgiStartResponse):
    """The smallest request cycle: the checks pass, take_over() records and hands the
    answer to the poll thread through a wakeup."""

    server = None

    @staticmethod
    def check_status(status):
        return int(status.split(" ", 1)[0])

    @staticmethod
    def check_headers(headers):
        return None

    def write(self, data):
        raise AssertionError("not used here")

    def take_over(self, result, failed):
        self.server.take_over(self, result, failed)

    def log(self):
        pass


class PooledServer:
    """A Manager polling with a long timeout in one thread, one app thread taking jobs."""

    def __init__(self, app, take_over=None):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.resumed: list = []
        self.take_over = take_over or self.record_take_over
        cycle_type = type("BoundCycle", (Cycle,), {"server": self})
        self.fast_path = WsgiFastPath(app, cycle_type, self.fallback, submit=self.jobs.put)
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

    def record_take_over(self, cycle, result, failed):
        self.resumed.append((cycle.environ["PATH_INFO"], result, failed))
        self.mgr.wakeup(cycle.conn.id, b"resumed!")

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


def test_what_the_fast_path_leaves_is_taken_over_on_the_app_thread():
    taken_on = []

    def app(environ, start_response):
        start_response("200 OK", [])
        return iter([b"lazy, no length!"])

    def take_over(cycle, result, failed):
        taken_on.append((threading.current_thread().name, failed, cycle.status, cycle.taken))
        srv.mgr.wakeup(cycle.conn.id, b"".join(result))  # the poll thread writes it

    with PooledServer(app, take_over) as srv:
        answers = get(srv.port, "/lazy")
    assert answers[0].endswith(b"lazy, no length!")
    assert taken_on == [("app-thread", False, "200 OK", False)]


def test_a_lazy_response_with_its_length_leaves_block_by_block():
    """PEP 3333: a block is on its way before the app is asked for the next one; the
    first block reaches the client while the generator still waits."""
    first_seen = threading.Event()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "12")])

        def body():
            yield b"first "
            assert first_seen.wait(30), "the first block was held back"
            yield b"second"

        return body()

    with PooledServer(app) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while not data.endswith(b"first "):
                data += sock.recv(65536)
            first_seen.set()
            while not data.endswith(b"second"):
                data += sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n")
    assert srv.resumed == []


def test_arguments_are_checked():
    def app(environ, start_response):
        start_response("200 OK", [])
        return [b""]

    fp = WsgiFastPath(app, Cycle, print, submit=print)
    assert isinstance(fp, HttpFastHandler)
    with pytest.raises(TypeError):
        fp.run(None)
    with pytest.raises(TypeError, match="submit"):
        WsgiFastPath(app, Cycle, print, submit=42)
    with pytest.raises(TypeError, match="cycle_type"):
        WsgiFastPath(app, dict, print)
    with pytest.raises(TypeError, match="fallback"):
        WsgiFastPath(app, Cycle, None)


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


def test_the_poll_role_is_taken_when_free_or_from_a_leader_stuck_in_one_app_call():
    role = WsgiPollRole(None, 1.5)
    assert role.take(11, -1, 100.0) and role.leader == 11
    assert not role.take(22, -1, 100.0)  # not free, not in an app
    role.seq, role.in_app = 7, True
    assert not role.take(22, 6, 100.0)  # another call since that look
    role.inline = True
    assert role.take(22, 7, 100.0)  # the same call since the look that saw seq 7
    assert (role.leader, role.in_app, role.inline, role.takeovers) == (22, False, False, 1)
    assert role.handoff_until == 101.5
    assert not role.resign(11) and role.resign(22) and role.leader == 0
    role.final, role.main = True, 33
    assert not role.take(22, -1, 0.0) and role.take(33, -1, 0.0)
    role.leader, role.closing = 0, True
    assert not role.take(33, -1, 0.0)
    with pytest.raises(OverflowError):
        role.take(-1, 0, 0.0)


def _accept(conn, ev, data):
    if ev == MG_EV_ACCEPT:
        state = WsgiConnState()
        state.base = {"wsgi.url_scheme": "http", "SCRIPT_NAME": ""}
        state.fast = True
        conn.userdata = state


def test_the_leader_runs_what_it_queued_after_its_poll():
    """With a role whose ``inline`` is set, requests wait on ``role.ready`` and the
    polling thread runs them (``run_ready``): no job, no other thread; the answers leave
    with the next poll. A takeover during an app call ends ``run_ready`` (False)."""
    seen = []
    led = []
    role = WsgiPollRole(deque(), 1.0)
    jobs: queue.SimpleQueue = queue.SimpleQueue()

    def app(environ, start_response):
        seen.append(threading.current_thread().name)
        if environ["PATH_INFO"] == "/taken":  # a standby finds the leader in this call
            assert role.in_app and role.take(1, role.seq, 0.0)
        start_response("200 OK", [])
        return [b"led!"]

    fast_path = WsgiFastPath(app, Cycle, _accept, submit=jobs.put, role=role)
    mgr = Manager(fast_path, enable_wakeup=True)
    listener = mgr.listen("http://127.0.0.1:0", http=True)
    listener.io_events = False
    listener.configure_http_server()
    port = listener.local_addr[1]
    role.standby, role.inline = 1, True
    ready = threading.Event()

    def lead():
        me = role.leader = threading.get_ident()
        ready.set()
        while role.leader == me:
            mgr.poll(20)
            if role.ready:
                led.append(fast_path.run_ready(me))

    leader = threading.Thread(target=lead, name="leader")
    leader.start()
    try:
        assert ready.wait(10)
        assert get(port, "/a", count=2)[1].endswith(b"led!")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /taken HTTP/1.1\r\nHost: x\r\n\r\n")
            leader.join(10)
    finally:
        role.leader = 0
        leader.join(10)
        mgr.close()
    assert seen == ["leader"] * 3
    assert led[-1] is False and role.takeovers == 1
    assert jobs.empty()


def test_the_send_of_a_large_body_is_timed_apart_from_the_app():
    """``send_s``: the seconds the fast path spent handing a large body (sent from its
    object) to the socket, which the slow-call count leaves out; 0.0 for a small body
    copied into the send buffer."""
    cycles = []

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"x" * (4 << 20) + b"!" if environ["PATH_INFO"] == "/big" else b"small!"]

    class Server(PooledServer):
        def app_loop(self):
            while (job := self.jobs.get()) is not None:
                self.fast_path.run(job)
                cycles.append((job.environ["PATH_INFO"], job.send_s))

    with Server(app) as srv:
        assert get(srv.port, "/small")[0].endswith(b"small!")
        assert get(srv.port, "/big")[0].endswith(b"!")
    assert [path for path, _ in cycles] == ["/small", "/big"]
    assert cycles[0][1] == 0.0
    assert 0.0 < cycles[1][1] < 30.0


def test_pool_calls_are_counted_by_the_same_slow_call_rule():
    """``run_pooled`` runs a cycle on a pool thread and counts it as ``run_ready`` counts
    the leader's calls: slow when it took ``slow_s`` or more, the socket send of a large
    body (``send_s``) left out. An exception propagates and is not counted."""
    role = WsgiPollRole(deque(), 1.0)
    role.slow_s = 0.2
    quick, slow, sending = Cycle(), Cycle(), Cycle()
    ran = []

    def run(cycle):
        ran.append(cycle)
        if cycle is not quick:
            time.sleep(0.25)
        if cycle is sending:
            cycle.send_s = 0.25  # the whole call was the kernel taking a large body

    for cycle in (quick, slow, sending):
        role.run_pooled(run, cycle)
    assert ran == [quick, slow, sending]
    assert (role.pool_calls, role.pool_slow) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        role.run_pooled(lambda cycle: 1 / 0, quick)
    assert (role.pool_calls, role.pool_slow) == (3, 1)
    assert (role.calls, role.slow_calls) == (0, 0)  # the leader's own counts are apart
    with pytest.raises(TypeError):
        role.run_pooled(run, "not a cycle")
