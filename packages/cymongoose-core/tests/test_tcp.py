"""Raw TCP over real sockets: MG_EV_READ's data is the bytes received (spec); they stay in
the receive buffer as in cymongoose 0.2.x (``recv_data()``), or leave it with the opt-in
``consume_reads``."""

from __future__ import annotations

import os
import socket
import threading
import time

from cymongoose import MG_EV_ACCEPT, MG_EV_READ


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(1 << 16, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def echo_server(serve):
    """Opt-in delivery: each MG_EV_READ carries the new bytes, already out of the buffer."""
    seen = {"types": [], "recv_len": [], "accepted": 0}

    def handler(c, ev, data):
        if ev == MG_EV_ACCEPT:
            seen["accepted"] += 1
        elif ev == MG_EV_READ:
            seen["types"].append(type(data))
            seen["recv_len"].append(c.recv_len)
            c.send(data)

    srv = serve(handler, "tcp://127.0.0.1:0", consume_reads=True)
    srv.seen = seen
    return srv


def test_read_by_default_leaves_the_bytes_in_the_buffer(serve):
    # cymongoose 0.2.x contract: recv_data() peeks (a second call sees the same bytes) and
    # the buffer grows with each read; data is the bytes of this read (spec).
    reads = []

    def handler(c, ev, data):
        if ev == MG_EV_READ:
            first, second = c.recv_data(), c.recv_data()
            reads.append((data, first, second, c.recv_len))
            if c.recv_data().endswith(b"\n"):
                c.send(c.recv_data())  # a 0.2.x echo server

    srv = serve(handler, "tcp://127.0.0.1:0")
    assert srv.listener.consume_reads is False
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"hello")
        wait_for(lambda: reads)
        s.sendall(b" world\n")
        assert recv_exact(s, 12) == b"hello world\n"
    assert reads[0] == (b"hello", b"hello", b"hello", 5)
    assert reads[-1][1:] == (b"hello world\n", b"hello world\n", 12)
    assert b"".join(data for data, *_ in reads) == b"hello world\n"


def test_tcp_echo(serve):
    srv = echo_server(serve)
    assert srv.listener.is_listening
    assert srv.listener.local_addr == ("127.0.0.1", srv.port, False)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        for msg in (b"hello", b"\x00\xff" * 100, b"x"):
            s.sendall(msg)
            assert recv_exact(s, len(msg)) == msg
    assert srv.seen["accepted"] == 1
    assert set(srv.seen["types"]) == {bytes}
    # consume_reads (inherited from the listener): the data left the receive buffer.
    assert set(srv.seen["recv_len"]) == {0}


def test_tcp_echo_large(serve):
    srv = echo_server(serve)
    payload = os.urandom(4 << 20)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        sender = threading.Thread(target=s.sendall, args=(payload,))
        sender.start()
        got = recv_exact(s, len(payload))
        sender.join()
    assert got == payload


def test_tcp_many_clients(serve):
    srv = echo_server(serve)
    socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(20)]
    try:
        for i, s in enumerate(socks):
            s.sendall(b"client %d" % i)
        for i, s in enumerate(socks):
            msg = b"client %d" % i
            assert recv_exact(s, len(msg)) == msg
    finally:
        for s in socks:
            s.close()
