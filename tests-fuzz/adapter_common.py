"""What the two adapter fuzz targets share: the input format, the app's directives, the oracle.

Input format: the bytes of an HTTP request (the seeds in ``corpus/adapters`` are real
ones). :func:`build_request` keeps its head up to the first blank line (or all of it),
drops the framing and upgrade headers (``Content-Length``, ``Transfer-Encoding``,
``Upgrade``, ``Connection``: those paths belong to the core's fuzz target), and sends what
follows the blank line as a body with its own ``Content-Length`` and
``Connection: close``, so every request is complete and the answer ends with a close.

Directives: request headers tell the fuzzed app how to answer, so that fuzzed bytes reach
the adapters' response writers too (percent-decoded, so CR, LF and NUL get through):
``x-status`` (the status: raw for WSGI, an int for ASGI), ``x-h: name=value`` (one
response header each, in order), ``x-pieces: n`` (the body in n pieces: WSGI generator,
ASGI ``more_body``), ``x-raise: before|after`` (the app raises before or after starting
the response). The response body is the request body.

Oracle (:func:`check_answer`): the answer is exactly one well-framed HTTP/1.1 response
(after any ``100 Continue``), with no bytes after it. When the app's status and headers
are valid (RFC 9110: status 200..599, header names are tokens, values without
CR/LF/NUL), the response has that status, those headers in order and the request body
(no body for 204 and 304, RFC 9110 sections 15.3.5 and 15.4.5: the servers drop it);
when they are not, it is a 500 (or the connection closed with nothing sent). A header
the app did not set, other than the server's framing and connection headers, is never
allowed: that would be response splitting.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?\r\n")
SERVER_HEADERS = {b"content-length", b"transfer-encoding", b"connection", b"date", b"server"}
_DROPPED = {b"content-length", b"transfer-encoding", b"upgrade", b"connection", b"x-fuzz-id"}
RECV_TIMEOUT_S = 30.0


class OracleError(AssertionError):
    """The server's answer broke an invariant."""


@dataclass
class Directives:
    """How the fuzzed app must answer; parsed from the request's ``x-*`` headers."""

    status: bytes = b"200 OK"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    pieces: int = 1
    raise_at: str = ""
    #: ``(path, query)`` of the request target when the request line is plainly
    #: ``METHOD /target HTTP/1.x`` (else None: the oracle does not guess how it parses).
    target: tuple[bytes, bytes] | None = None
    #: The request line's method token.
    method: bytes = b""

    @property
    def status_code(self) -> int | None:
        """The status as ASGI gets it: an int, or None when ``x-status`` is not one."""
        text = self.status.split(b" ", 1)[0]
        try:
            return int(text)
        except ValueError:
            return None

    def valid_for(self, server: str) -> bool:
        """Whether a correct server sends this response as asked (else: 500)."""
        if self.raise_at:
            return False
        if server == "wsgi":
            # PEP 3333: "200 OK" — three digits, a space, a reason phrase.
            match = re.fullmatch(rb"(\d{3}) [^\r\n\x00]*", self.status)
            code = int(match.group(1)) if match else None
        else:
            code = self.status_code
        if code is None or not 200 <= code <= 599:
            return False
        return all(TOKEN.match(n) and not re.search(rb"[\r\n\x00]", v)
                   for n, v in self.headers)


def parse_directives(lines: list[bytes]) -> Directives:
    """Read the directives from request header lines (``name: value``)."""
    headers = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if colon:
            headers.append((name.strip().lower(), value.strip(b" \t")))
    d = Directives()
    for name, value in headers:
        if name == b"x-status":
            d.status = unquote_to_bytes(value)
        elif name == b"x-h":
            raw_name, _, raw_value = value.partition(b"=")
            header = (unquote_to_bytes(raw_name), unquote_to_bytes(raw_value))
            # Framing headers are the server's business; an app's wrong one is not fuzzed.
            if header[0].lower().strip() not in SERVER_HEADERS:
                d.headers.append(header)
        elif name == b"x-pieces" and value.strip().isdigit():
            d.pieces = max(1, min(int(value), 8))
        elif name == b"x-raise":
            d.raise_at = value.strip().decode("latin-1")
    return d


def build_request(data: bytes, request_id: int) -> tuple[bytes, bytes, bytes, Directives]:
    """Return ``(request, method, body, directives)`` for one fuzz input.

    The harness adds ``x-fuzz-id: <request_id>`` so that the app finds the directives
    the harness parsed (the app and the oracle then agree on them exactly).
    """
    head, _sep, body = data.partition(b"\r\n\r\n")
    lines = re.split(rb"\r?\n", head)
    kept = [lines[0]]
    for line in lines[1:]:
        # An empty line would end the head early: the rest would be a second request.
        if line and line.split(b":", 1)[0].strip().lower() not in _DROPPED:
            kept.append(line)
    method = lines[0].split(b" ", 1)[0]
    directives = parse_directives(kept[1:])
    directives.method = method
    words = lines[0].split(b" ")
    if (len(words) == 3 and words[1][:1] == b"/" and words[2] in (b"HTTP/1.1", b"HTTP/1.0")
            and TOKEN.match(words[0]) and not re.search(rb"[\x00-\x20\x7f]", words[1])):
        path, _, query = words[1].partition(b"?")
        directives.target = (path, query)
    kept += [b"x-fuzz-id: %d" % request_id, b"Content-Length: %d" % len(body),
             b"Connection: close"]
    return b"\r\n".join(kept) + b"\r\n\r\n" + body, method, body, directives


def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a new connection; return everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=RECV_TIMEOUT_S) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused early; read what it said
        out = bytearray()
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError as exc:
                raise OracleError(f"no close within {RECV_TIMEOUT_S} s; got {bytes(out[:300])!r}"
                                  ) from exc
            if not chunk:
                return bytes(out)
            out += chunk
    return bytes(out)


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def parse_response(raw: bytes, method: bytes) -> Response:
    """Parse exactly one final response (after 1xx ones) that ends the stream."""
    pos = 0
    while True:
        match = STATUS_LINE.match(raw, pos)
        if not match:
            raise OracleError(f"no valid status line at byte {pos}: {raw[pos:pos + 200]!r}")
        status = int(match.group(1))
        pos = match.end()
        headers = []
        while True:
            end = raw.find(b"\r\n", pos)
            if end < 0:
                raise OracleError(f"response head not terminated: {raw[:300]!r}")
            line = raw[pos:end]
            pos = end + 2
            if not line:
                break
            name, colon, value = line.partition(b":")
            if not colon or not name or b"\n" in line or b"\r" in line or b"\x00" in line:
                raise OracleError(f"invalid response header line {line!r} in {raw[:300]!r}")
            headers.append((name, value.strip(b" \t")))
        if 100 <= status < 200:
            if status == 101:
                raise OracleError(f"101 in answer to a request without Upgrade: {raw[:300]!r}")
            continue
        break
    lengths = [v for n, v in headers if n.lower() == b"content-length"]
    chunked = any(n.lower() == b"transfer-encoding" and b"chunked" in v.lower()
                  for n, v in headers)
    if lengths and chunked:
        raise OracleError(f"Content-Length and Transfer-Encoding together: {raw[:300]!r}")
    if len(set(lengths)) > 1:
        raise OracleError(f"conflicting Content-Length headers: {raw[:300]!r}")
    if method == b"HEAD" or status in (204, 304):
        body, pos = b"", pos
    elif chunked:
        body, pos = _dechunk(raw, pos)
    elif lengths:
        if not lengths[0].isdigit():
            raise OracleError(f"invalid Content-Length {lengths[0]!r}")
        n = int(lengths[0])
        if len(raw) - pos < n:
            raise OracleError(f"body shorter ({len(raw) - pos}) than Content-Length {n}")
        body, pos = raw[pos:pos + n], pos + n
    else:
        body, pos = raw[pos:], len(raw)
    if pos != len(raw):
        raise OracleError(f"{len(raw) - pos} bytes after the response: {raw[pos:pos + 200]!r}"
                          f" (whole answer {raw[:300]!r})")
    return Response(status, headers, body)


def _dechunk(raw: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    while True:
        end = raw.find(b"\r\n", pos)
        if end < 0:
            raise OracleError(f"unterminated chunk size line at {pos}: {raw[pos:pos + 100]!r}")
        size_text = raw[pos:end].split(b";", 1)[0]
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise OracleError(f"invalid chunk size {size_text!r}") from exc
        pos = end + 2
        if size == 0:
            while True:  # trailers, then the blank line
                end = raw.find(b"\r\n", pos)
                if end < 0:
                    raise OracleError("unterminated chunked trailer")
                line, pos = raw[pos:end], end + 2
                if not line:
                    return bytes(out), pos
        if raw[pos + size:pos + size + 2] != b"\r\n":
            raise OracleError(f"chunk of {size} bytes not followed by CRLF")
        out += raw[pos:pos + size]
        pos += size + 2


def check_answer(raw: bytes, method: bytes, body: bytes, d: Directives, server: str,
                 app_ran: bool) -> int:
    """Apply the oracle (see the module docstring); return the status answered (0: none).

    ``app_ran``: whether the app was called for this request (else the core answered).
    """
    if not raw:
        # The core may close on a request it cannot parse at all (RFC 9112 section 2.2
        # lets it); once the app ran, closing silently would lose its answer.
        # An app that raised after starting its response may get the connection closed
        # before its first bytes went out (the ASGI server closes at once).
        if app_ran and d.raise_at != "after":
            raise OracleError("the app ran, but the server closed without any answer")
        return 0
    try:
        resp = parse_response(raw, method)
    except OracleError:
        if d.raise_at == "after" and _head_complete(raw):
            return 0  # the app raised mid-body: a cut-off response is the honest signal
        if method != b"HEAD" or app_ran:
            raise
        # A request the core could not parse gets an error with a body, even if it
        # started with "HEAD" (and Connection: close ends it).
        resp = parse_response(raw, b"GET")
    if not app_ran:
        # The core answered by itself (400, 413, 431, 501, 505 ...): an error, well framed.
        if resp.status < 400:
            raise OracleError(f"the app never ran, yet status {resp.status}: {raw[:300]!r}")
        return resp.status
    app_headers = [(n.lower(), v) for n, v in d.headers]
    extra = [(n.lower(), v) for n, v in resp.headers
             if n.lower() not in SERVER_HEADERS and (n.lower(), v) not in app_headers
             and (n.lower(), v.strip()) not in [(a, b.strip()) for a, b in app_headers]]
    if resp.status == 500:
        extra = [h for h in extra if h != (b"content-type", b"text/plain; charset=utf-8")]
    if extra:
        raise OracleError(f"headers the app did not set: {extra!r}; app set {d.headers!r}")
    if d.valid_for(server):
        want = d.status_code if server == "asgi" else int(d.status[:3])
        if resp.status != want:
            raise OracleError(f"status {resp.status}, app asked for {d.status!r}")
        got = [(n.lower(), v) for n, v in resp.headers if n.lower() not in SERVER_HEADERS]
        want_headers = [(n, v.strip(b" \t")) for n, v in app_headers
                        if n not in SERVER_HEADERS]
        if got != want_headers:
            raise OracleError(f"headers {got!r}, app set {want_headers!r}")
        if method != b"HEAD" and want not in (204, 304) and resp.body != body:
            raise OracleError(f"body of {len(resp.body)} bytes, app sent {len(body)}")
    elif resp.status != 500:
        bad = _invalid_beyond_tolerance(d, server)
        if bad:
            raise OracleError(f"app response invalid ({bad}) but answered {resp.status}: "
                              f"{raw[:300]!r}")
    return resp.status


def _invalid_beyond_tolerance(d: Directives, server: str) -> str:
    """Why a non-500 answer to an invalid app response is wrong ('' when it is tolerated).

    Tolerated: header names that are not RFC 9110 tokens but contain no CR/LF/NUL/colon,
    sent as they are (servers commonly pass them through; they cannot split a response).
    """
    if d.raise_at == "before":
        return "the app raised before starting the response"
    for name, value in d.headers:
        if re.search(rb"[\r\n\x00]", name + value):
            return f"CR/LF/NUL in header {name!r}: {value!r}"
        if not name or b":" in name:
            return f"header name {name!r}"
    if server == "wsgi":
        match = re.fullmatch(rb"(\d{3}) [^\r\n\x00]*", d.status)
        code = int(match.group(1)) if match else None
    else:
        code = d.status_code
    if code is None:
        return f"status {d.status!r}"
    if not 100 <= code <= 999:
        return f"status {code}"
    if code < 200 or code > 599:
        return f"status {code} as a final response"
    return ""


def _head_complete(raw: bytes) -> bool:
    match = STATUS_LINE.match(raw)
    return bool(match) and b"\r\n\r\n" in raw[match.start():]
