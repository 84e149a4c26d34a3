"""Hostile connection behaviour against both servers (issue 8): pipelining, idle and
trickling connections, clients that vanish, graceful shutdown with requests in flight.

Every case ends with ``server.assert_serves()``: the server still answers a normal request.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from rawhttp import WAIT_S, RawConnection, get


def test_pipelined_requests_answered_in_order(server):
    body = os.urandom(200_000)  # streamed by the core, between two plain requests
    data = (get("/slow?s=0.2")
            + b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            + get("/p3")
            + b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\nabc\r\n0\r\n\r\n"
            + b"HEAD /p5 HTTP/1.1\r\nHost: a\r\n\r\n"
            + get("/p6"))
    with RawConnection(server.port) as c:
        c.send(data)
        got = [c.response() for _ in range(4)]
        got.append(c.response(head=True))
        got.append(c.response())
    assert [r.status for r in got] == [200] * 6
    assert json.loads(got[0].body)["path"] == b"/slow".hex()
    assert json.loads(got[1].body)["sha256"] == hashlib.sha256(body).hexdigest()
    assert json.loads(got[2].body)["path"] == b"/p3".hex()
    assert json.loads(got[3].body)["sha256"] == hashlib.sha256(b"abc").hexdigest()
    assert got[4].body == b""
    assert json.loads(got[5].body)["path"] == b"/p6".hex()
    server.assert_serves()


def test_half_closed_client_gets_the_whole_response(server):
    # The client shuts down its sending side once the answer starts (shutdown(SHUT_WR)):
    # the rest of a body larger than the socket buffers still arrives, then the close.
    n = 16 * 1024 * 1024
    with RawConnection(server.port) as c:
        c.send(get(f"/bytes?n={n}"))
        c.sock.recv(1, socket.MSG_PEEK)  # the answer has started
        c.sock.shutdown(socket.SHUT_WR)
        resp = c.response()
        assert resp is not None and resp.status == 200
        assert len(resp.body) == n and resp.body.count(b"x") == n
        assert c.closed_by_server()
    server.assert_serves()


def test_many_pipelined_requests(server):
    with RawConnection(server.port) as c:
        c.send(b"".join(get(f"/n{i}") for i in range(50)))
        paths = [json.loads(c.response().body)["path"] for _ in range(50)]
    assert paths == [f"/n{i}".encode().hex() for i in range(50)]
    server.assert_serves()


def test_pipelined_burst(server):
    # 1000 requests in one write: all answered, in order.
    with RawConnection(server.port) as c:
        c.send(b"".join(get(f"/b{i}") for i in range(1000)))
        paths = []
        while len(paths) < 1000 and (resp := c.response()) is not None:
            paths.append(json.loads(resp.body)["path"])
    assert paths == [f"/b{i}".encode().hex() for i in range(len(paths))]
    assert len(paths) == 1000
    server.assert_serves()


def test_idle_keep_alive_closed_after_timeout(start_server):
    server = start_server(keep_alive_timeout_s=0.3)
    with RawConnection(server.port) as c:
        c.send(get("/once"))
        assert c.response().status == 200
        assert c.closed_by_server()  # read blocks until the server closes (WAIT_S bound)
    with RawConnection(server.port) as silent:  # connected, never sent a byte
        assert silent.closed_by_server()
    server.assert_serves()


def test_slow_request_not_cut_by_keep_alive_timeout(start_server):
    # A request the app is still working on is not "idle".
    server = start_server(keep_alive_timeout_s=0.2)
    with RawConnection(server.port) as c:
        c.send(get("/slow?s=1.0"))
        resp = c.response()
    assert resp is not None and resp.status == 200
    server.assert_serves()


def test_slowloris_does_not_starve_normal_clients(server):
    # 200 connections trickle header bytes for as long as the normal clients run.
    trickling = [RawConnection(server.port) for _ in range(200)]
    stop = threading.Event()

    def trickle():
        for c in trickling:
            c.send(b"GET /slowloris HTTP/1.1\r\nHost: a\r\n")
        i = 0
        while not stop.is_set():
            for c in trickling:
                c.send(b"X-%d: y\r\n" % i)
            i += 1
            stop.wait(0.05)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        with httpx.Client(timeout=WAIT_S) as keep_alive:
            for i in range(30):
                assert keep_alive.get(f"{server.url}/n{i}").status_code == 200
                fresh = httpx.get(f"{server.url}/f{i}", timeout=WAIT_S)
                assert fresh.status_code == 200
    finally:
        stop.set()
        thread.join(WAIT_S)
        for c in trickling:
            c.close()
    assert server.tracker.count("start", "/slowloris") == 0
    server.assert_serves()


def test_stalled_request_bodies_do_not_starve_normal_clients(server):
    # R-U-Dead-Yet: 24 uploads (three times the WSGI pool) send part of a 500 kB body and
    # stall. A server that hands the request to the app before the body is there ties up
    # an app thread per upload; normal clients must still be answered.
    stalled = [RawConnection(server.port) for _ in range(24)]
    try:
        for c in stalled:
            c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 500000\r\n\r\n"
                   + b"x" * 100_000)
        for i in range(5):
            r = httpx.get(f"{server.url}/normal{i}", timeout=WAIT_S)
            assert r.status_code == 200
    finally:
        for c in stalled:
            c.close()
    server.assert_serves()


def test_client_disconnects_mid_head(server):
    with RawConnection(server.port) as c:
        c.send(b"GET /half HTTP/1.1\r\nHost: a\r\nX-Par")
    server.assert_serves()
    assert server.tracker.count("start", "/half") == 0


def test_client_disconnects_mid_body(server):
    # Inline WSGI gathers a streamed body before calling the app: the app never runs.
    # Elsewhere the app is reading the body when the client goes; it learns of it and ends.
    # 400,000 bytes: pooled WSGI starts the app at 256 KiB of body; the margin covers
    # the reads in flight when the client goes.
    with RawConnection(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
        c.send(b"x" * 400_000)
        if server.kind != "wsgi-inline":
            assert server.tracker.wait("start", "/echo")
    server.assert_serves()
    if server.kind == "wsgi-inline":
        assert server.tracker.count("start", "/echo") == 0
    else:
        assert server.tracker.wait("disconnect", "/echo")
        assert server.tracker.wait("end", "/echo")


def test_client_disconnects_mid_response(server):
    with RawConnection(server.port) as c:
        c.send(get(f"/big?n={256 * 1024 * 1024}"))
        head = c.sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200")
    # The app stops producing (ASGI: send() fails; WSGI: the iterable is closed).
    finished = "end" if server.family == "asgi" else "closed"
    assert server.tracker.wait(finished, "/big")
    server.assert_serves()


def test_disconnect_with_pipelined_requests_queued(server):
    with RawConnection(server.port) as c:
        c.send(get("/slow?s=0.3") + get("/queued1") + get("/queued2"))
        assert server.tracker.wait("start", "/slow")
    assert server.tracker.wait("end", "/slow")
    server.assert_serves()


def test_reset_connections_under_load(server):
    def reset_one(i):
        with RawConnection(server.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"
                   + b"y" * (i * 1000))
            # linger 0: close() sends RST instead of FIN
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(reset_one, range(60)))
    server.assert_serves()


def test_graceful_shutdown_answers_requests_in_flight(start_server):
    server = start_server(graceful_timeout_s=20.0)
    n = 6
    conns = [RawConnection(server.port) for _ in range(n)]
    try:
        for c in conns:
            c.send(get("/slow?s=1.0"))
        assert server.tracker.wait("start", "/slow", n)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        responses = [c.response() for c in conns]
        stopper.join(WAIT_S * 3)
        assert not stopper.is_alive()
    finally:
        server.stop()
        for c in conns:
            c.close()
    assert [r.status if r else None for r in responses] == [200] * n
    assert all(json.loads(r.body)["path"] == b"/slow".hex() for r in responses)

