"""One raw HTTP/1.1 response read off a socket, for the tests that speak to the server
byte by byte (the one copy of this reader for test_body and test_request_caches)."""

from __future__ import annotations

import socket


def read_response(sock: socket.socket, *, bodiless: bool = False) -> tuple[bytes, bytes]:
    """Read one response whose body has a Content-Length (no body if ``bodiless``, as for
    HEAD); return (head, body). Fails if the connection closes first or if more bytes
    than that one response arrived."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:] if not bodiless else ():
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed: {body!r}"
        body += chunk
    assert len(body) == length, "more than one response"
    return head, body
