"""One PEP 3333 request cycle: ``start_response``, ``write``, the response iterable, and
what goes to the client, whatever the mode.

A :class:`Cycle` is one request. The core's fast path (``cymongoose.WsgiFastPath``) makes
it for the common request and writes the common answer itself; anything else it hands
over with :meth:`Cycle.take_over`. Requests the fast path leaves alone are run by
:meth:`Cycle.run`. Either way the response leaves through the connection's *writer*:
:class:`~.inline.InlineWriter` (the app runs on the poll thread) or
:class:`~.pooled.PooledWriter` (the app runs on a pool thread). A writer has ``response``,
``head``, ``data``, ``end``, ``abort`` and ``file``; the cycle decides what to send, the
writer only how.

Behaviour (PEP 3333 "Buffering and Streaming", RFC 9110/9112):

* A list or tuple (in memory already) is answered in one piece with a Content-Length.
* Other iterables (generators) and ``write()`` stream: the head waits for the first
  non-empty block, so an exception before it still gives a 500; each block is handed to
  the writer before the next is asked for (blocks that are ready together leave as one
  chunk, up to ``COALESCE_BYTES``); chunked for HTTP/1.1 without a Content-Length, else
  the app's length (a longer body is cut, a shorter one closes the connection). HEAD
  gets the app's Content-Length, the one GET would get for a list, or none.
* An exception after the head cuts the body short (no final chunk) and closes the
  connection: the client sees an incomplete response.
* ``close()`` of the iterable is always called, also when the client leaves.
"""

from __future__ import annotations

import logging
import sys
from itertools import chain
from time import perf_counter
from typing import Any

from cymongoose.serving.accesslog import AccessAtoms, log_access
from cymongoose.serving.httprules import no_content

from cymongoose import WsgiStartResponse

from .environ import ClientDisconnected, FileWrapper
from .rules import (
    ERROR_BODY,
    ERROR_HEADERS,
    ERROR_STATUS,
    check_headers,
    connection_headers,
    content_length,
    file_region,
    fit_response,
    parse_status,
    without,
)

__all__ = ["Cancelled", "Cycle"]

logger = logging.getLogger("cymongoose.wsgi")


class Cancelled(Exception):
    """The client went away while the app was running: stop producing the response."""


class Cycle(WsgiStartResponse):
    """One request and its response (the server side of PEP 3333).

    Its state lives in the core's base class (see ``cymongoose.WsgiStartResponse``), whose
    ``__call__`` is ``start_response``: ``status``, ``headers``, ``code``, ``conn``,
    ``environ``, ``protocol`` and ``writer``; ``keep_alive``, ``http11``, ``is_head``;
    ``started``/``head_sent``/``size``/``sent`` (what the app produced and what went
    out); ``parts`` (blocks not yet handed to the writer), ``result``/``iterator``,
    ``eager``, ``chunked``, ``length``; ``cancelled``; and the writers' ``cond``,
    ``queued_bytes``, ``uncredited``, ``deadline``. No instance dict: a request is one C
    struct.
    """

    __slots__ = ()

    check_status = staticmethod(parse_status)
    check_headers = staticmethod(check_headers)

    # -- entry points --------------------------------------------------------------------

    def run(self) -> None:
        """Call the app and answer (the Python path; ``taken`` is already set)."""
        if self.cancelled:
            return  # the client left while the request waited
        try:
            result = self.protocol.server.app(self.environ, self)
        except Exception:
            self._failed()
            return
        self.answer(result)

    def take_over(self, result: Any, failed: bool) -> None:
        """Go on with a request the core's fast path began: the app returned ``result``,
        or raised (``failed``; called in the ``except`` block)."""
        if not self.taken and not self._take():
            self.result = result
            self.close_result()  # the client has gone
            return
        if failed:
            self._failed()
        else:
            self.answer(result)

    def _take(self) -> bool:
        # A fast-path request becomes the Python cycle's: HTTP/1.1, no Connection header,
        # no proxy header to apply, body complete (what the fast path accepts). False when
        # the connection has closed meanwhile (pooled: the app ran without the GIL).
        protocol = self.conn.userdata
        if protocol is None:
            self.cancelled = True
            return False
        self.taken = True
        self.protocol = protocol
        writer = self.writer = protocol.writer
        writer.adopt(self)
        return True

    def write(self, data: bytes) -> None:
        """The legacy ``write(data)`` callable returned by ``start_response`` (PEP 3333):
        ``data`` is on its way to the client when it returns."""
        if not self.taken and not self._take():
            raise Cancelled
        self.eager = True
        self._block(data)

    def answer(self, result: Any) -> None:
        """Answer with the app's ``result`` (PEP 3333 response iterable)."""
        self.result = result
        if self.iterator is not None:
            # Handed over mid-iteration by the fast path: the blocks it took, then the rest
            # (the head and ``sent`` bytes may be out already, with the app's length).
            self.iterator = chain(self.prefix or (), self.iterator)
            self.prefix = None
            self.eager = True
            if self.head_sent:
                self.length = content_length(self.headers)
        else:
            if (
                type(result) is FileWrapper
                and self.status is not None
                and not self.started
                and self._send_file(result)
            ):
                return
            if type(result) is not list and type(result) is not tuple:
                self.eager = True
            try:
                self.iterator = iter(result)
            except Exception:
                self._failed()
                return
        self.pump()

    def pump(self) -> None:
        """Iterate the response until it ends, or until the writer asks for a pause (the
        inline writer, while the client is behind: it calls ``pump`` again later)."""
        writer = self.writer
        try:
            for data in self.iterator:
                if self.cancelled:
                    raise Cancelled
                self._block(data)
                if self.head_sent and writer.pause(self):
                    return
            if self.status is None:
                raise AssertionError("the WSGI app returned without calling start_response()")
        except Exception:
            self._failed()
            return
        self.iterator = None
        if not self.close_result():
            self._failed(log=False)  # close() raised (logged) before the head went out
            return
        if self.cancelled:
            return  # the client has gone, or the head was refused (a 500 went instead)
        if self.head_sent:  # every block went to the writer as it came (eager)
            if self.length is not None and self.sent < self.length:
                logger.error(
                    "WSGI app produced %d bytes of its Content-Length %d; closing",
                    self.sent, self.length,
                )
                self._abort()
                return
            writer.end(self)
            self._log()
            return
        parts = self.parts
        self.parts = None
        body = b"" if not parts else parts[0] if len(parts) == 1 else b"".join(parts)
        self._respond(body)

    # -- producing the response ----------------------------------------------------------

    def _block(self, data: Any) -> None:
        """One body block from the app: buffered, counted (no body) or streamed."""
        if self.status is None:
            raise AssertionError("the WSGI app produced body data before start_response()")
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"WSGI body blocks must be bytes, got {type(data).__name__}")
            data = bytes(data)
        if not data:
            return
        self.size += len(data)
        self.started = True
        if no_content(self.code, self.is_head):
            return  # count the length, send no body
        if self.parts is None:
            self.parts = [data]
        else:
            self.parts.append(data)
        if not self.eager:
            return  # a list or tuple: in memory already, answered in one piece
        if self.head_sent:
            self._flush()
        else:
            self._start_stream()

    def _start_stream(self) -> None:
        headers = self.headers
        self.length = content_length(headers)
        if self.length is None:
            if self.http11:
                self.chunked = True
            else:
                self.keep_alive = False  # HTTP/1.0: the end of the body is the close
        else:
            headers = without(headers, "transfer-encoding")  # RFC 9112 section 6.1
        if self.writer.stopping:
            self.keep_alive = False
        headers = connection_headers(headers, self.keep_alive, self.http11)
        self.head_sent = True
        self.writer.head(self, self.status, headers)
        self._flush()

    def _flush(self) -> None:
        """Hand the buffered blocks to the writer as one piece (cut to the app's
        Content-Length: a longer body is an app error, logged)."""
        parts = self.parts
        if not parts:
            return
        self.parts = None
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if self.length is not None:
            room = self.length - self.sent
            if len(data) > room:
                logger.error(
                    "WSGI app produced more body than its Content-Length %d; truncated",
                    self.length,
                )
                data = data[:room]
                if not data:
                    return
        self.sent += len(data)
        self.writer.data(self, data)

    def _respond(self, body: bytes) -> None:
        """Send a complete response: headers fitted as :func:`.rules.fit_response` says."""
        # HEAD of a streamed response (eager): GET has no Content-Length, so none here
        headers, body, complete = fit_response(
            self.code, self.headers, body, 0 if self.eager else self.size, self.is_head
        )
        if not complete:
            logger.error(
                "WSGI app produced %d bytes of its Content-Length %s; closing",
                len(body), content_length(headers),
            )
            self.keep_alive = False
        if self.writer.stopping:
            self.keep_alive = False
        headers = connection_headers(headers, self.keep_alive, self.http11)
        head_only = no_content(self.code, self.is_head) and content_length(headers) is None
        self.writer.response(self, self.status, headers, body, head_only)
        self._log()

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Hand a ``wsgi.file_wrapper`` over a regular file to the core, which reads it
        straight into the socket's buffer (``Connection.send_file``). False (nothing done)
        when the ordinary path must serve it: no fileno, not a regular file, no content
        to send, a Content-Length the file cannot fill, or a connection that closes."""
        if no_content(self.code, self.is_head) or not self.keep_alive or self.writer.stopping:
            return False
        region = file_region(wrapper.filelike, self.headers)
        if region is None:
            return False
        fd, offset, length, headers = region
        self.size = length
        headers = connection_headers(headers, True, self.http11)
        self.writer.file(self, self.status, headers, fd, offset, length, wrapper)
        self._log()
        return True

    # -- endings -------------------------------------------------------------------------

    def close_result(self) -> bool:
        """Call the response iterable's close() (PEP 3333: always). False if it raised
        before the head went out (the caller answers 500)."""
        result, self.result = self.result, None
        close = getattr(result, "close", None) if result is not None else None
        if close is None:
            return True
        try:
            close()
        except Exception:
            logger.exception("error in the close() of a WSGI response iterable")
            return self.head_sent
        return True

    def _failed(self, log: bool = True) -> None:
        """The app, its iterable or close() raised (called in the ``except`` block): a
        500 if nothing went out yet, else the connection closes after what was sent."""
        exc = sys.exc_info()[1]
        self.iterator = None
        self.close_result()
        if self.cancelled or isinstance(exc, Cancelled):
            return
        if isinstance(exc, ClientDisconnected):
            logger.debug("client disconnected while the app read the request body")
            self.writer.abort(self, False)
            return
        environ = self.environ
        if log:
            logger.exception(
                "Exception in WSGI application (%s %s)",
                environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"),
            )
        if self.head_sent:
            self._abort(hard=self.writer.stalled(exc))
            return
        self.status = ERROR_STATUS
        self.code = 500
        self.headers = list(ERROR_HEADERS)
        self.parts = None
        self.size = len(ERROR_BODY)
        self.eager = False  # a body in memory: HEAD gets its length, as GET
        self._respond(ERROR_BODY)

    def _abort(self, hard: bool = False) -> None:
        """The response cannot be completed: the client gets what was sent, then the close
        (``hard``: at once)."""
        self._log()
        self.writer.abort(self, hard)

    def refused(self, exc: ValueError) -> tuple[str, list[tuple[str, str]], bytes]:
        """The core refused the head the app gave (a header name that is not a token, a
        value that is not latin-1, ...): the writer sends the ``(status, headers, body)``
        returned with ``close=True`` (a 500, then the close), never the malformed head."""
        logger.error("invalid response from WSGI application: %s", exc)
        self.code = 500
        self.keep_alive = False
        headers = [*ERROR_HEADERS, ("Content-Length", str(len(ERROR_BODY)))]
        return ERROR_STATUS, headers, b"" if self.is_head else ERROR_BODY

    # -- on the poll thread: the writers put what the cycle decided on the wire ----------

    def put_response(self, status: str, headers: list[tuple[str, str]], body: bytes,
                     head_only: bool) -> None:
        """Write a complete response (``head_only``: a head without content and without
        an added Content-Length) and finish the request."""
        conn = self.conn
        try:
            if head_only:
                conn.send_wsgi_head(status, headers)
                conn.finish_response()
            else:
                conn.send_wsgi_response(status, headers, body)
        except ValueError as exc:
            conn.send_wsgi_response(*self.refused(exc), close=True)
        self.protocol.finish(self)

    def put_head(self, status: str, headers: list[tuple[str, str]]) -> bool:
        """Write a streamed response's head; False (a 500 sent instead, the request
        finished and cancelled) when the core refuses it."""
        conn = self.conn
        try:
            conn.send_wsgi_head(status, headers, chunked=self.chunked)
        except ValueError as exc:
            conn.send_wsgi_response(*self.refused(exc), close=True)
            self.protocol.finish(self)
            return False
        return True

    def put_file(self, status: str, headers: list[tuple[str, str]], fd: int, offset: int,
                 length: int, wrapper: Any) -> None:
        """Write the head and have the core send the file region; close the wrapper."""
        conn = self.conn
        try:
            conn.send_wsgi_head(status, headers)
            conn.send_file(fd, offset, length)  # duplicates the descriptor
        except ValueError as exc:
            conn.send_wsgi_response(*self.refused(exc), close=True)
        finally:
            try:
                wrapper.close()  # PEP 3333: always
            except Exception:
                logger.exception("error in the close() of a WSGI response iterable")
        self.protocol.finish(self)

    def log(self) -> None:
        """The access log line of this request (also called by the core's fast path)."""
        protocol = self.protocol if self.protocol is not None else self.conn.userdata
        environ = self.environ
        client = self.client if self.client is not None else protocol.client
        path = self.uri if self.uri is not None else ""
        access_format = protocol.server.access_format
        if access_format is None:
            log_access(client, environ["REQUEST_METHOD"], path, self.query or "",
                       environ["SERVER_PROTOCOL"][5:], self.code)
            return
        # A gunicorn format: what it may show, made only here.
        if self.sent or self.head_sent:
            length = self.sent
        else:
            length = 0 if no_content(self.code, self.is_head) else self.size
        access_format.log(AccessAtoms(
            client, environ["REQUEST_METHOD"], path, self.query or "",
            environ["SERVER_PROTOCOL"][5:], self.code, environ=environ,
            response_headers=self.headers or (), length=length,
            duration_s=perf_counter() - self.arrived if self.arrived else None))

    def _log(self) -> None:
        if not self.logged and self.protocol.server.access_log:
            self.logged = True
            self.log()
