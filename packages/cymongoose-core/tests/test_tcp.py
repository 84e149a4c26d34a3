"""Raw TCP: MG_EV_READ delivers bytes; echo over a real socket."""

from __future__ import annotations

import os
import socket
import threading

from cymongoose import MG_EV_ACCEPT, MG_EV_READ


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(1 << 16, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def echo_server(serve):
    seen = {"types": [], "recv_len": [], "accepted": 0}

    def handler(c, ev, data):
        if ev == MG_EV_ACCEPT:
            seen["accepted"] += 1
        elif ev == MG_EV_READ:
            seen["types"].append(type(data))
            seen["recv_len"].append(c.recv_len)
            c.send(data)

    srv = serve(handler, "tcp://127.0.0.1:0")
    srv.seen = seen
    return srv


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
    # Raw TCP data is handed to Python and removed from the receive buffer.
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
