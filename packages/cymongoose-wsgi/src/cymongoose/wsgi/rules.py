"""PEP 3333's rules for a response, and the HTTP/1.1 fix-ups the server applies to it.

The only copy: the request cycle (:mod:`.cycle`) calls these whatever the mode. HTTP
rules that the ASGI server shares live in :mod:`cymongoose.serving.httprules`.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from cymongoose.serving.httprules import ascii_digits, no_content, parse_content_length

__all__ = [
    "COALESCE_BYTES",
    "ERROR_BODY",
    "ERROR_HEADERS",
    "ERROR_STATUS",
    "SEND_HIGH_WATER_BYTES",
    "SEND_LOW_WATER_BYTES",
    "FAST_STREAM_BYTES",
    "check_headers",
    "connection_headers",
    "content_length",
    "file_region",
    "find_header",
    "fit_response",
    "parse_status",
    "without",
]

#: A lazy response announcing a Content-Length up to this many bytes is written by the
#: core's fast path, which has no flow control; a longer one gets the cycle's.
FAST_STREAM_BYTES = 1 << 20
#: Streamed blocks that are ready together go out as one chunk of at most this size.
COALESCE_BYTES = 256 << 10
#: A streamed response stops feeding mongoose's send buffer once it holds this much...
SEND_HIGH_WATER_BYTES = 256 << 10
#: ...and goes on when the client has taken it down to this many bytes (EV_WRITABLE).
SEND_LOW_WATER_BYTES = 64 << 10

ERROR_STATUS = "500 Internal Server Error"
ERROR_BODY = b"Internal Server Error"
ERROR_HEADERS = [("Content-Type", "text/plain; charset=utf-8")]


def parse_status(status: Any) -> int:
    """The code of a PEP 3333 status string (``"200 OK"`` -> 200).

    Raises TypeError for a non-str, ValueError for one that is not ``NNN reason`` with a
    code in 200..599: interim (1xx) responses are the server's business (RFC 9110 section
    15.2; 100 Continue is sent by the server, and WSGI cannot take over a connection).
    """
    if not isinstance(status, str):
        raise TypeError(f"WSGI status must be a str like '200 OK', got {status!r}")
    code = status[:3]
    if len(status) < 4 or status[3] != " " or not ascii_digits(code) \
            or not 100 <= int(code) <= 599:
        raise ValueError(f"WSGI status must look like '200 OK', got {status!r}")
    if code[0] == "1":
        raise ValueError(f"a WSGI app cannot send a 1xx (interim) status, got {status!r}")
    return int(code)


def check_headers(headers: Any) -> list[tuple[str, str]]:
    """``headers`` itself when it is a list of ``(str, str)`` tuples without CR/LF (and
    no ``:`` in names), as PEP 3333 asks; TypeError/ValueError naming the bad item."""
    if type(headers) is not list:
        raise TypeError(f"WSGI response headers must be a list of tuples, got {type(headers)}")
    for item in headers:
        if not (
            type(item) is tuple
            and len(item) == 2
            and type(item[0]) is str
            and type(item[1]) is str
        ):
            raise TypeError(f"WSGI response header must be a (str, str) tuple, got {item!r}")
        name, value = item
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise ValueError(f"invalid character in response header {item!r}")
    return headers


def find_header(headers: list[tuple[str, str]], lname: str) -> str | None:
    """The value of the first header named ``lname`` (lower-case), or None."""
    for name, value in headers:
        if name.lower() == lname:
            return value
    return None


def without(headers: list[tuple[str, str]], lname: str) -> list[tuple[str, str]]:
    """``headers`` without those named ``lname`` (lower-case)."""
    return [(n, v) for n, v in headers if n.lower() != lname]


def content_length(headers: list[tuple[str, str]]) -> int | None:
    """The app's Content-Length, None when absent; ValueError when it is not digits."""
    value = find_header(headers, "content-length")
    if value is None:
        return None
    try:
        return parse_content_length(value)
    except ValueError:
        raise ValueError(f"WSGI app set an invalid Content-Length: {value!r}") from None


def connection_headers(
    headers: list[tuple[str, str]], keep_alive: bool, http11: bool
) -> list[tuple[str, str]]:
    """The response's Connection header (RFC 9112 section 9.3): ``close`` when the
    connection ends after it, ``keep-alive`` for an HTTP/1.0 client that keeps it."""
    if not keep_alive:
        return [*without(headers, "connection"), ("Connection", "close")]
    if not http11:
        return [*headers, ("Connection", "keep-alive")]
    return headers


def fit_response(
    code: int, headers: list[tuple[str, str]], body: bytes, size: int, is_head: bool
) -> tuple[list[tuple[str, str]], bytes, bool]:
    """A complete response's headers and body as they go on the wire (RFC 9110 section
    8.6, 9.3.2, 15.3.5, 15.4.5): ``(headers, body, complete)``.

    ``size``: the body bytes the app produced (for HEAD, where ``body`` is not kept).
    No content for HEAD, 204 and 304 (204 loses any Content-Length; HEAD gets the length
    the body would have had, when the app produced it: an app that skips the body for
    HEAD gets no invented ``Content-Length: 0``); a body longer than the app's
    Content-Length is cut to it; one shorter gives ``complete`` False: the caller closes
    the connection after it.
    """
    length = content_length(headers)
    if no_content(code, is_head):
        if code == 204:
            headers = without(headers, "content-length")
        elif length is None and is_head and size and code != 304:
            headers = [*headers, ("Content-Length", str(size))]
        return headers, b"", True
    if length is None or length == len(body):
        return headers, body, True
    if length < len(body):
        return headers, body[:length], True
    return headers, body, False


def file_region(
    filelike: Any, headers: list[tuple[str, str]]
) -> tuple[int, int, int, list[tuple[str, str]]] | None:
    """``(fd, offset, length, headers)`` for sending a ``wsgi.file_wrapper``'s file with
    ``Connection.send_file``: the rest of a regular file from its current position, and
    the headers with a Content-Length. None when it cannot: no fileno, not a regular file,
    or a Content-Length the file is too short for (the ordinary path then closes)."""
    try:
        fd = filelike.fileno()
        st = os.fstat(fd)
        offset = filelike.tell()
    except (AttributeError, OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode) or offset > st.st_size:
        return None
    length = content_length(headers)
    if length is None:
        length = st.st_size - offset
        headers = [*headers, ("Content-Length", str(length))]
    elif length > st.st_size - offset:
        return None
    return fd, offset, length, headers
