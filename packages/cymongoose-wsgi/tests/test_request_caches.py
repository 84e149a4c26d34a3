"""What the core remembers from one request to the next (request strings it decoded,
status and header checks it made, header names it found to be tokens) is exact: on one
keep-alive connection, requests that differ only a little each get their own values,
and a response that differs from an accepted one is checked again."""

from __future__ import annotations

import io
import socket

import pytest
from wsgi_wire import read_response

from cymongoose.wsgi.testing import ServerThread


def exchange(sock: socket.socket, request: bytes) -> tuple[bytes, bytes]:
    """Send one request on ``sock``; its response's (head, body)."""
    sock.sendall(request)
    return read_response(sock, bodiless=request.startswith(b"HEAD "))


KEYS = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL", "HTTP_HOST",
        "HTTP_X_V", "CONTENT_TYPE")


def echo(environ, start_response):
    body = "|".join(f"{key}={environ.get(key)}" for key in KEYS).encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def test_request_strings_of_the_same_shape_keep_their_own_values(threads):
    # Same length, same first and last 8 bytes: one slot of a cache keyed on those.
    variants = [f"abcdefgh{i}{j}ijklmnop" for i, j in ("00", "19", "55", "91", "00")]
    with ServerThread(echo, workers=threads and 1, access_log=False) as srv, \
            socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        for method in ("GET", "PUT", "GET", "PIT", "DELETE", "GET"):
            for proto in ("HTTP/1.1", "HTTP/1.0"):
                for v in variants:
                    request = (f"{method} /{v}?{v} {proto}\r\nHost: {v}\r\nX-V: {v}\r\n"
                               f"Content-Type: {v}\r\nConnection: keep-alive\r\n"
                               f"Content-Length: 0\r\n\r\n")
                    _, body = exchange(sock, request.encode())
                    assert body.decode("latin-1") == (
                        f"REQUEST_METHOD={method}|PATH_INFO=/{v}|QUERY_STRING={v}|"
                        f"SERVER_PROTOCOL={proto}|HTTP_HOST={v}|HTTP_X_V={v}|"
                        f"CONTENT_TYPE={v}")


def test_latin1_values_of_the_same_length_keep_their_own_values(threads):
    values = ["caf\xe9-\xff1", "cafe-\xff1", "caf\xe9-\xff2", "caf\xe9-\xff1", "caf\xc9-\xff1"]
    with ServerThread(echo, workers=threads and 1, access_log=False) as srv, \
            socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        for v in values * 2:
            _, body = exchange(sock, f"GET / HTTP/1.1\r\nHost: h\r\nX-V: {v}\r\n\r\n"
                                     .encode("latin-1"))
            assert f"|HTTP_X_V={v}|".encode("latin-1") in body


def test_repeated_equal_fields_are_still_joined(threads):
    # The second field's value may be the very str object of the first (cached decode).
    with ServerThread(echo, workers=threads and 1, access_log=False) as srv, \
            socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        for _ in range(3):
            _, body = exchange(sock, b"GET / HTTP/1.1\r\nHost: h\r\nX-V: same\r\n"
                                     b"X-V: same\r\nX-V: same\r\n\r\n")
            assert b"|HTTP_X_V=same, same, same|" in body


def test_every_environ_gets_its_own_request_keys_and_input(threads):
    seen = []

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        seen.append((environ["REQUEST_METHOD"], type(stream), stream.read(), stream.readline(),
                     list(stream), environ.get("CONTENT_LENGTH")))
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv, \
            socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        exchange(sock, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        exchange(sock, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        exchange(sock, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
        exchange(sock, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        exchange(sock, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert seen == [("GET", io.BytesIO, b"", b"", [], None),
                    ("POST", io.BytesIO, b"abc", b"", [], "3"),
                    ("POST", io.BytesIO, b"", b"", [], "0"),
                    ("HEAD", io.BytesIO, b"", b"", [], None),
                    ("GET", io.BytesIO, b"", b"", [], None)]


@pytest.mark.parametrize("repeat", [1, 3])
def test_statuses_and_header_names_are_checked_per_object(repeat, threads):
    """A status or header name accepted before does not vouch for another one, nor does
    a status's code carry over to the next status."""
    answers = {
        "/ok": ("200 OK", [("X-A", "1")]),
        "/none": ("204 No Content", [("X-A", "1")]),
        "/bad-status": ("2000 OK", [("X-A", "1")]),
        "/bad-name": ("200 OK", [("X-A", "1"), ("X A", "1")]),
        "/colon": ("200 OK", [("X-A", "1"), ("X:A", "1")]),
        "/crlf": ("200 OK", [("X-A", "1\r\nInjected: 1")]),
        "/dynamic": (" ".join(["200", "OK"]), [("-".join(["X", "A"]), "1")]),
    }

    def app(environ, start_response):
        status, headers = answers[environ["PATH_INFO"]]
        start_response(status, headers)
        return [b"body"]

    expected = {"/ok": b"200", "/none": b"204", "/bad-status": b"500",
                "/bad-name": b"500", "/colon": b"500", "/crlf": b"500", "/dynamic": b"200"}
    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        for path in [*answers, *reversed(answers)] * repeat:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
                head, body = exchange(sock, f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
                assert head.split(b" ")[1] == expected[path], path
                assert b"Injected" not in head
                assert body == (b"" if path == "/none" else
                                b"body" if expected[path] == b"200" else
                                b"Internal Server Error")


def test_header_values_with_cr_or_lf_anywhere_give_500(threads):
    """Refused at every position of values of 1 to 20 characters, between clean values
    of the same length (the check goes a word at a time, the last word overlapping)."""
    values = {}
    for n in range(1, 21):
        values[f"/clean{n}"] = "v" * n
        for k in range(n):
            for bad in "\r\n":
                values[f"/bad{n}-{k}-{ord(bad)}"] = "v" * k + bad + "v" * (n - k - 1)

    def app(environ, start_response):
        start_response("200 OK", [("X-V", values[environ["PATH_INFO"]])])
        return [b"x"]

    with ServerThread(app, workers=threads and 1, access_log=False) as srv:
        for path, value in values.items():
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
                head, _ = exchange(sock, f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            if path.startswith("/clean"):
                assert f"\r\nX-V: {value}".encode() in head + b"\r\n", path
                assert head.startswith(b"HTTP/1.1 200 "), path
            else:
                assert head.startswith(b"HTTP/1.1 500 "), path
