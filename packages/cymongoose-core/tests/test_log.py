"""mongoose's own log output: nothing on stdout at MG_LL_NONE (the level set at import),
not even the hex dump mongoose writes for a request that does not parse."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = r"""
import socket, sys
import cymongoose as cm

level = int(sys.argv[1])
cm.log_set(level)
answered = []

def handler(conn, ev, data):
    if ev == cm.MG_EV_HTTP_MSG:
        conn.reply(200, b"ok")
        answered.append(1)

with cm.Manager(handler) as mgr:
    port = mgr.listen("http://127.0.0.1:0").local_addr[1]
    with socket.create_connection(("127.0.0.1", port)) as bad:
        bad.sendall(b"GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n")
        for _ in range(50):
            mgr.poll(10)
    with socket.create_connection(("127.0.0.1", port)) as good:
        good.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        while not answered:
            mgr.poll(10)
sys.stderr.write("served\n")
"""


def _run(level: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROGRAM, str(level)], capture_output=True,
                          timeout=60)


def test_no_output_at_log_level_none_even_for_a_request_that_does_not_parse():
    import cymongoose

    out = _run(cymongoose.MG_LL_NONE)
    assert out.stderr.endswith(b"served\n"), out.stderr
    assert out.stdout == b""


def test_mongoose_log_still_printed_when_asked_for():
    import cymongoose

    out = _run(cymongoose.MG_LL_ERROR)
    assert out.stderr.endswith(b"served\n"), out.stderr
    assert b"HTTP parse" in out.stdout
