"""UDP echo over loopback: MG_EV_READ's data is each datagram's bytes; recv_data() as in
0.2.x, and with ``consume_reads`` (the datagram leaves the buffer)."""

from __future__ import annotations

import socket

from cymongoose import MG_EV_READ


def test_udp_echo_with_consume_reads(serve):
    seen = []

    def handler(c, ev, data):
        if ev == MG_EV_READ:
            seen.append((c.is_udp, data, c.recv_len))
            c.send(b"echo:" + data)

    srv = serve(handler, "udp://127.0.0.1:0", consume_reads=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for payload in (b"one", b"\x00\xff" * 100, b"x" * 1400):
            s.sendto(payload, ("127.0.0.1", srv.port))
            got, _ = s.recvfrom(4096)
            assert got == b"echo:" + payload
    assert [d for _, d, _ in seen] == [b"one", b"\x00\xff" * 100, b"x" * 1400]
    assert all(udp and n == 0 for udp, _, n in seen)


def test_udp_read_by_default_as_0_2_x(serve):
    seen = []

    def handler(c, ev, data):
        if ev == MG_EV_READ:
            seen.append(data)
            c.send(b"echo:" + c.recv_data())

    srv = serve(handler, "udp://127.0.0.1:0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"ping", ("127.0.0.1", srv.port))
        got, _ = s.recvfrom(4096)
    assert got == b"echo:ping"
    assert seen == [b"ping"]
