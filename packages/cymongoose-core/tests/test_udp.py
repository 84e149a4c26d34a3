"""UDP echo over loopback: MG_EV_READ delivers each datagram's bytes."""

from __future__ import annotations

import socket

from cymongoose import MG_EV_READ


def test_udp_echo(serve):
    seen = []

    def handler(c, ev, data):
        if ev == MG_EV_READ:
            seen.append((c.is_udp, data))
            c.send(b"echo:" + data)

    srv = serve(handler, "udp://127.0.0.1:0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for payload in (b"one", b"\x00\xff" * 100, b"x" * 1400):
            s.sendto(payload, ("127.0.0.1", srv.port))
            got, _ = s.recvfrom(4096)
            assert got == b"echo:" + payload
    assert [d for _, d in seen] == [b"one", b"\x00\xff" * 100, b"x" * 1400]
    assert all(udp for udp, _ in seen)
