"""PEP 3333 ``environ`` dicts, ``wsgi.input`` and ``wsgi.file_wrapper``.

``base_environ`` is the part of the environ shared by a connection's requests; the rest is
built in C by ``HttpMessage.wsgi_environ`` on the poll thread: plain Python objects only,
so an app thread never touches C memory. A body that arrives after the request head (the
core streams bodies above its ``stream_threshold`` and every chunked body) is the
``wsgi.input`` of a ``RequestBody`` (pooled mode: fed by the poll thread, read by an app
thread, the buffer between them bounded) or of a ``SpooledBody`` (inline mode: received in
full before the app is called).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from importlib import metadata
from io import BytesIO
from tempfile import SpooledTemporaryFile
from typing import Any, BinaryIO

__all__ = [
    "ClientDisconnected",
    "FileWrapper",
    "SERVER_SOFTWARE",
    "RequestBody",
    "SpooledBody",
    "base_environ",
]

class ClientDisconnected(ConnectionError):
    """Raised by ``wsgi.input`` when the client closed the connection mid-body."""


class FileWrapper:
    """``wsgi.file_wrapper`` (PEP 3333, "Optional Platform-Specific File Handling").

    Iterates over ``filelike`` (anything with ``read(size) -> bytes``) in blocks of
    ``blksize`` bytes. ``close()`` closes ``filelike`` if it has a ``close`` method; the
    server calls it when the response ends, also when the client disconnects.
    """

    def __init__(self, filelike: BinaryIO, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


class RequestBody:
    """``wsgi.input`` for a request body that is still arriving (PEP 3333 "Input and Error
    Streams": ``read(size)``, ``read()``, ``readline(size)``, ``readlines(hint)``, iteration).

    The poll thread calls :meth:`feed` with each decoded piece and ``feed(b"")`` at the end;
    the worker thread reads. At most about ``high_water`` bytes wait in between: when more
    are buffered, ``feed`` returns True and the poll thread stops reading the socket; once
    a reader has brought the buffer down to ``low_water`` bytes, ``on_drained()`` is called
    (on the reader's thread) so that the poll thread reads again.

    Reads block until enough data, the end of the body, or an error: ``ClientDisconnected``
    when the connection closed first, ``TimeoutError`` when no data came for ``timeout_s``
    seconds. Past the end, reads return ``b""``.
    """

    __slots__ = (
        "_cond",
        "_buf",
        "_size",
        "_off",
        "_eof",
        "_error",
        "_paused",
        "_discard",
        "_high_water",
        "_low_water",
        "_on_drained",
        "_timeout_s",
        "received",
        "last_feed",
    )

    def __init__(
        self,
        on_drained: Callable[[], Any],
        *,
        high_water: int = 1 << 20,
        low_water: int = 256 << 10,
        timeout_s: float = 60.0,
    ) -> None:
        self._cond = threading.Condition(threading.Lock())
        # The pieces fed and not read yet, as fed: a read that takes a whole piece
        # returns that object itself (a 1 MiB body read at once is never copied here).
        self._buf: deque[bytes] = deque()
        self._size = 0  # bytes in _buf not read yet
        self._off = 0  # bytes of _buf[0] already read
        self._eof = False
        self._error: BaseException | None = None
        self._paused = False
        self._discard = False
        self._high_water = high_water
        self._low_water = low_water
        self._on_drained = on_drained
        self._timeout_s = timeout_s
        #: Bytes fed so far, and ``time.monotonic()`` of the last feed (poll thread).
        self.received = 0
        self.last_feed = time.monotonic()

    # -- poll thread ---------------------------------------------------------------------

    def feed(self, data: bytes) -> bool:
        """Append ``data`` (``b""``: end of body). Returns True when reading should pause."""
        self.last_feed = time.monotonic()
        with self._cond:
            self.received += len(data)
            if not data:
                self._eof = True
            elif not self._discard:
                self._buf.append(data)
                self._size += len(data)
            self._cond.notify_all()
            if not self._paused and self._size > self._high_water:
                self._paused = True
                return True
            return False

    @property
    def complete(self) -> bool:
        """Whether the whole body has arrived."""
        return self._eof

    @property
    def ready(self) -> bool:
        """Whether the body is worth a reader: complete, or ``low_water`` bytes waiting."""
        return self._eof or self._paused or self._size >= self._low_water

    def still_paused(self) -> bool:
        """Whether a pause requested by :meth:`feed` is still wanted (poll thread)."""
        with self._cond:
            return self._paused

    def fail(self, error: BaseException) -> None:
        """Make pending and future reads raise ``error`` (the connection closed)."""
        with self._cond:
            if not self._eof:
                self._error = error
            self._cond.notify_all()

    def discard(self) -> None:
        """Drop buffered and future data: the response is done, nobody will read it."""
        with self._cond:
            self._discard = True
            self._paused = False
            self._buf.clear()
            self._size = 0
            self._off = 0
            self._cond.notify_all()

    # -- worker thread -------------------------------------------------------------------

    def _read(self, size: int, line: bool) -> bytes:
        out: list[bytes] = []
        got = 0
        drained = False
        cond = self._cond
        with cond:
            while size < 0 or got < size:
                buf = self._buf
                if buf:
                    piece, off = buf[0], self._off
                    left = len(piece) - off
                    n = left if size < 0 else min(left, size - got)
                    done = False
                    if line:
                        i = piece.find(b"\n", off, off + n)
                        if i >= 0:
                            n = i + 1 - off
                            done = True
                    if n == len(piece):
                        out.append(buf.popleft())  # a whole piece: no copy
                    else:
                        out.append(piece[off:off + n])
                        if n == left:
                            buf.popleft()
                            self._off = 0
                        else:
                            self._off = off + n
                    self._size -= n
                    got += n
                    if self._paused and self._size <= self._low_water:
                        self._paused = False
                        drained = True
                    if done:
                        break
                    continue
                if self._eof or self._discard:
                    break
                if self._error is not None:
                    raise self._error
                if drained:
                    # Let the poll thread read again before we wait for more.
                    cond.release()
                    try:
                        self._on_drained()
                    finally:
                        cond.acquire()
                    drained = False
                    continue
                if not cond.wait(self._timeout_s) and not self._buf and not self._eof:
                    if self._error is not None:
                        raise self._error
                    raise TimeoutError(
                        f"no request body data for {self._timeout_s} s "
                        f"({self.received} bytes received)"
                    )
        if drained:
            self._on_drained()
        return out[0] if len(out) == 1 else b"".join(out)

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all that remain when ``size`` is None or negative)."""
        return self._read(-1 if size is None else size, False)

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line (up to and including ``b"\\n"``), at most ``size`` bytes."""
        return self._read(-1 if size is None else size, True)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines until the end, or until their total size reaches ``hint``."""
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self) -> None:
        """Nothing to release; present because apps and middleware call it."""


def _server_software() -> str:
    try:
        return f"cymongoose-wsgi/{metadata.version('cymongoose-wsgi')}"
    except metadata.PackageNotFoundError:  # run from a source tree
        return "cymongoose-wsgi"


#: ``SERVER_SOFTWARE`` of every environ (a CGI variable, RFC 3875 section 4.1.17; apps
#: such as httpbin look at it to know what the server de-chunks).
SERVER_SOFTWARE = _server_software()


def base_environ(
    local_addr: tuple[str, int, bool] | None,
    remote_addr: tuple[str, int, bool] | None,
    url_scheme: str,
    *,
    script_name: str = "",
    errors: Any = None,
    multithread: bool = True,
    multiprocess: bool = False,
) -> dict[str, Any]:
    """The part of the environ that is the same for every request on one connection.

    ``script_name`` is the application's mount point (the ``root_path`` setting) as a
    native string; ``errors`` is ``wsgi.errors`` (default ``sys.stderr``); ``multithread``
    and ``multiprocess`` are the PEP 3333 flags of the same names. On a Unix socket
    (``local_addr``/``remote_addr`` None) the environ is gunicorn's: ``REMOTE_ADDR`` is
    ``""`` with no ``REMOTE_PORT``, ``SERVER_NAME`` ``"localhost"`` and ``SERVER_PORT`` the
    scheme's default port.
    """
    environ: dict[str, Any] = {}
    if local_addr is None:
        environ["SERVER_NAME"] = "localhost"
        environ["SERVER_PORT"] = "443" if url_scheme == "https" else "80"
    else:
        environ["SERVER_NAME"] = local_addr[0]
        environ["SERVER_PORT"] = str(local_addr[1])
    if remote_addr is None:
        environ["REMOTE_ADDR"] = ""
    else:
        environ["REMOTE_ADDR"] = remote_addr[0]
        environ["REMOTE_PORT"] = str(remote_addr[1])
    return environ | {
        "SCRIPT_NAME": script_name,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url_scheme,
        "wsgi.errors": sys.stderr if errors is None else errors,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }


class SpooledBody:
    """A request body received in full before the app is called (inline mode): up to
    ``memory_bytes`` in memory, the rest in a temporary file. ``file`` is the
    ``wsgi.input``, rewound when the body is complete; it is also put in ``environ``
    (when given) as ``"wsgi.input"`` then. A body within ``memory_bytes`` is kept as the
    pieces fed until the end: a ``BytesIO`` of the single piece (a ``read()`` of it all
    returns that very object) or of their join, one copy."""

    __slots__ = ("file", "complete", "last_feed", "_pieces", "_size", "_memory_bytes",
                 "_environ")

    def __init__(self, memory_bytes: int = 1 << 20,
                 environ: dict[str, Any] | None = None) -> None:
        self.file: BinaryIO = BytesIO()
        self.complete = False
        self.last_feed = time.monotonic()  # when data last arrived (poll thread)
        self._pieces: list[bytes] | None = []  # None once spilled to a temporary file
        self._size = 0
        self._memory_bytes = memory_bytes
        self._environ = environ
        if environ is not None:
            environ["wsgi.input"] = self.file

    def feed(self, data: bytes) -> bool:
        """Append ``data`` (``b""``: end of body). Never asks to pause reading (False)."""
        self.last_feed = time.monotonic()
        pieces = self._pieces
        if data:
            self._size += len(data)
            if pieces is None:
                self.file.write(data)
            elif self._size <= self._memory_bytes:
                pieces.append(data)
            else:  # too large for memory: to the spooled file, the pieces first
                self.file = SpooledTemporaryFile(max_size=self._memory_bytes)
                for piece in pieces:
                    self.file.write(piece)
                self.file.write(data)
                self._pieces = None
        else:
            self.complete = True
            if pieces is not None:
                self.file = BytesIO(pieces[0] if len(pieces) == 1 else b"".join(pieces))
                self._pieces = None
            self.file.seek(0)
            if self._environ is not None:
                self._environ["wsgi.input"] = self.file
        return False

    @property
    def ready(self) -> bool:
        """The app may run: the whole body is in."""
        return self.complete

    @staticmethod
    def still_paused() -> bool:
        return False

    def fail(self, error: BaseException) -> None:
        """The connection closed: nobody will read the body."""
        self._pieces = None
        self.file.close()

    def discard(self) -> None:
        """The response is done: the body goes."""
        self._pieces = None
        self.file.close()
