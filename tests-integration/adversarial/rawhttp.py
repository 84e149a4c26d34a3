"""A deliberately dumb HTTP/1.1 client over a raw socket: it sends exactly the bytes it is
given and reads responses by the rules of RFC 9112 section 6 (Content-Length, chunked,
or until the server closes), so that malformed requests reach the server unchanged."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

WAIT_S = 10.0  # upper bound for any single read; a failure bound, never a measured duration


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = True  # False: the server closed before the framing said the body ends
    raw_head: bytes = b""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None


class RawConnection:
    """One TCP connection to ``127.0.0.1:port``; bytes read but not yet parsed are kept."""

    def __init__(self, port: int, timeout_s: float = WAIT_S) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> bool:
        """Send ``data``; False if the server had already closed (reset or broken pipe)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _take_line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            if not self._fill():
                return None
        i = self.buf.index(b"\r\n")
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def _take(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill():
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def response(self, *, head: bool = False, interim: bool = False) -> Response | None:
        """Read the next response; None if the server closed before sending a status line.

        1xx responses are skipped unless ``interim``. ``head``: the request was HEAD (no body).
        """
        while True:
            while b"\r\n\r\n" not in self.buf:
                if not self._fill():
                    return None
            end = self.buf.index(b"\r\n\r\n")
            raw = bytes(self.buf[:end + 4])
            del self.buf[:end + 4]
            lines = raw[:-4].split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            headers = []
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers.append((name.strip().lower().decode("latin-1"),
                                value.strip().decode("latin-1")))
            resp = Response(status, headers, raw_head=raw)
            if 100 <= status < 200:
                if interim:
                    return resp
                continue
            break
        te = (resp.header("transfer-encoding") or "").lower()
        if head or status in (204, 304):
            return resp
        if te.endswith("chunked"):
            body = bytearray()
            while True:
                line = self._take_line()
                if line is None:
                    resp.complete = False
                    break
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while (trailer := self._take_line()) not in (b"", None):
                        pass
                    resp.complete = trailer == b""
                    break
                data = self._take(size + 2)
                if data is None:
                    body += self.buf
                    self.buf.clear()
                    resp.complete = False
                    break
                body += data[:-2]
            resp.body = bytes(body)
        elif resp.header("content-length") is not None:
            n = int(resp.header("content-length") or 0)
            data = self._take(n)
            if data is None:
                resp.body, resp.complete = bytes(self.buf), False
                self.buf.clear()
            else:
                resp.body = data
        else:  # delimited by the close
            while self._fill():
                pass
            resp.body = bytes(self.buf)
            self.buf.clear()
        return resp

    def closed_by_server(self) -> bool:
        """Wait for the server to close; True if it did without sending anything more."""
        while self._fill():
            pass
        return not self.buf


def request(port: int, data: bytes, **kw) -> Response | None:
    """Send ``data`` on a new connection and read one response."""
    with RawConnection(port) as c:
        c.send(data)
        return c.response(**kw)


def get(path: str = "/", *, version: str = "1.1", headers: str = "") -> bytes:
    return (f"GET {path} HTTP/{version}\r\nHost: test\r\n{headers}\r\n").encode("latin-1")
