"""The pipeline workload's answer check: many HTTP/1.1 requests in one write, answered in order.

wrk counts responses but cannot tell one from another, so before and after the load
run.py sends ``depth`` requests in a single ``sendall`` on one connection, alternating
``GET /`` (13-byte hello) and ``POST /echo`` with a distinct small body, and reads the
responses back: each must have status 200 and its own body, in the order sent (RFC 9112
section 9.3.2). A server that drops, merges, reorders or stalls on pipelined requests fails.

    python benchmarks/pipelining.py PORT [DEPTH]   # check a running server by hand
"""

from __future__ import annotations

import socket
import sys

HELLO = b"Hello, World!"
DEPTH = 16  # requests per write, as in the TechEmpower plaintext test


def requests(depth: int = DEPTH) -> tuple[bytes, list[bytes]]:
    """The pipelined bytes and the body expected for each of the ``depth`` responses."""
    wire, expected = [], []
    for i in range(depth):
        if i % 2:
            body = f"pipelined request {i:02d}".encode()
            wire.append(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/octet-stream\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            expected.append(body)
        else:
            wire.append(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            expected.append(HELLO)
    return b"".join(wire), expected


def read_response(f) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response from the buffered reader ``f``: (status, headers, body).
    Bodies by Content-Length or chunked; raises ConnectionError on EOF, ValueError on garbage."""
    line = f.readline(65536)
    if not line:
        raise ConnectionError("connection closed before the response")
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"bad status line {line[:60]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    while True:
        line = f.readline(65536)
        if not line:
            raise ConnectionError("connection closed in the response head")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(f.readline(1024).split(b";")[0], 16)
            chunk = f.read(size + 2)[:size]
            if size == 0:
                while f.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            chunks.append(chunk)
        body = b"".join(chunks)
    else:
        length = int(headers.get("content-length", "0"))
        body = f.read(length)
        if len(body) != length:
            raise ConnectionError(f"connection closed after {len(body)} of {length} body bytes")
    return status, headers, body


def check_pipeline(port: int, depth: int = DEPTH, timeout: float = 10.0) -> None:
    """Send ``depth`` pipelined requests in one write to 127.0.0.1:``port`` and check every
    response (status 200, the request's own body, in order, connection kept open).
    Raises RuntimeError naming the first wrong response; socket errors propagate."""
    wire, expected = requests(depth)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(wire)
        f = sock.makefile("rb")
        for i, want in enumerate(expected):
            try:
                status, headers, body = read_response(f)
            except (ConnectionError, TimeoutError) as exc:
                raise RuntimeError(f"pipelined response {i + 1}/{depth}: {exc}") from None
            if status != 200 or body != want:
                raise RuntimeError(f"pipelined response {i + 1}/{depth}: status {status}, "
                                   f"body {body[:40]!r}, expected {want!r}")
            if headers.get("connection", "").lower() == "close":
                raise RuntimeError(f"pipelined response {i + 1}/{depth}: connection: close")


if __name__ == "__main__":
    check_pipeline(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else DEPTH)
    print("ok")
