"""pipelining.check_pipeline against small loopback servers: one that answers pipelined
requests in order passes; one that answers only the last request of a batch (what the
pipeline workload's check caught in a peer) fails, naming the response."""

import socket
import threading

import pytest
from pipelining import HELLO, check_pipeline, read_response


def serve(handle):
    """A one-connection server on loopback running ``handle(conn)``; returns its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run():
        with listener:
            conn, _ = listener.accept()
            with conn:
                handle(conn)

    threading.Thread(target=run, daemon=True).start()
    return port


def reply(conn, body):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def read_requests(f, n):
    """``n`` requests (head and Content-Length body) from ``f``: the bodies, or HELLO for
    a GET."""
    bodies = []
    for _ in range(n):
        line, length = f.readline(), 0
        while (header := f.readline()) not in (b"\r\n", b""):
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        bodies.append(f.read(length) if line.startswith(b"POST") else HELLO)
    return bodies


def test_in_order_server_passes():
    def handle(conn):
        for body in read_requests(conn.makefile("rb"), 16):
            reply(conn, body)
        conn.recv(1)  # keep the connection open until the client is done

    check_pipeline(serve(handle), 16)


def test_server_answering_only_the_last_request_fails():
    def handle(conn):
        reply(conn, read_requests(conn.makefile("rb"), 16)[-1])
        conn.recv(1)

    with pytest.raises(RuntimeError, match=r"response 1/16: status 200, body b'pipelined"):
        check_pipeline(serve(handle), 16)


def test_server_closing_early_fails():
    def handle(conn):
        reply(conn, read_requests(conn.makefile("rb"), 2)[0])

    with pytest.raises(RuntimeError, match=r"response 2/4: connection closed"):
        check_pipeline(serve(handle), 4)


def test_read_response_chunked():
    class Reader:
        def __init__(self, data):
            self.data = data

        def readline(self, limit=-1):
            line, sep, self.data = self.data.partition(b"\n")
            return line + sep

        def read(self, n):
            out, self.data = self.data[:n], self.data[n:]
            return out

    status, headers, body = read_response(Reader(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n2;x=y\r\n, "
        b"\r\n0\r\nTrailer: 1\r\n\r\n"))
    assert (status, body) == (200, b"Hello, ")
