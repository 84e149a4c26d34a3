"""One client connection of the WSGI server (poll thread): from mongoose's request to a
:class:`~.cycle.Cycle`, and the connection's life around it.

It builds the environ (proxy headers applied), feeds a request body that arrives after the
head, runs pipelined requests one at a time in arrival order, answers 408 to a body that
stalls before the app took the request, and cancels what runs when the client leaves. How
the app runs and how the answer is written is the mode's writer's business
(``inline.InlineWriter``, ``pooled.PooledWriter``).
"""

from __future__ import annotations

import logging
from collections import deque
from io import BytesIO
from time import perf_counter
from typing import Any

from cymongoose.serving.httprules import PROXY_HEADER_NAMES, keep_alive

from cymongoose import WsgiConnState

from .cycle import Cycle
from .environ import ClientDisconnected, base_environ

__all__ = ["BODY_READ_TIMEOUT_S", "MAX_PIPELINED", "Protocol"]

logger = logging.getLogger("cymongoose.wsgi")

#: A request body that stops arriving for this long before the app took the request gets
#: a 408 (and an app reading ``wsgi.input`` gives up after as long without data).
BODY_READ_TIMEOUT_S = 60.0
#: Pipelined requests queued behind the running one before the connection is closed.
MAX_PIPELINED = 64

# The environ keys of the proxy headers ("x-forwarded-for" -> HTTP_X_FORWARDED_FOR).
_PROXY_KEYS = tuple(
    (name, "HTTP_" + name.decode().upper().replace("-", "_")) for name in PROXY_HEADER_NAMES
)
_PROXY_KEY_SET = frozenset(key for _, key in _PROXY_KEYS)

# The keys every request's environ gets (the core sets the first four, the fast path and
# on_request wsgi.input), in ``base`` already with a placeholder: the core's copy of base
# then replaces them, which costs a third of inserting them (a dict insertion probes for
# the key, then again for a free slot).
_REQUEST_SLOTS = dict.fromkeys(
    ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL", "wsgi.input")
)


class Protocol(WsgiConnState):
    """Per-connection state and the request flow of one connection.

    ``server``: the :class:`~.server.WSGIServer` (app, config, proxy, access log);
    ``writer``: its mode's writer. The core's fast path reads ``base`` (the
    per-connection environ keys), ``fast``, ``proxied`` and ``busy`` (see
    ``cymongoose.WsgiConnState``) from ``conn.userdata``, which is this object.
    """

    __slots__ = (
        "server",
        "writer",
        "conn",
        "client",
        "trusted",
        "current",
        "pending",
        "receiving",
        "reading_paused",
    )

    def __init__(self, server: Any, conn: Any) -> None:
        remote = conn.remote_addr
        unix = server.unix_path is not None
        self.server = server
        self.writer = server.writer
        self.conn = conn
        self.client = None if unix else (remote[0], remote[1])  # the peer
        proxy = server.proxy
        self.trusted = proxy is not None and proxy.is_trusted(remote[0])
        self.base = base_environ(
            None if unix else conn.local_addr,
            None if unix else remote,
            "https" if conn.is_tls else "http",
            script_name=server.config.root_path,
            multithread=server.threads > 0,
            multiprocess=server.multiprocess,
        ) | _REQUEST_SLOTS
        self.fast = True  # the core's fast path may answer this connection's requests
        self.proxied = self.trusted  # ...except those carrying a trusted proxy's headers
        self.busy = False
        self.current: Cycle | None = None  # the request being answered
        self.pending: deque[Cycle] = deque()
        self.receiving: Cycle | None = None  # its body is still arriving
        self.reading_paused = False
        conn.userdata = self

    # -- requests ------------------------------------------------------------------------

    def on_request(self, msg: Any) -> None:
        """``MG_EV_HTTP_MSG`` the fast path left to Python: make its cycle and run it, or
        queue it behind the running one."""
        server = self.server
        cycle = Cycle()
        cycle.taken = True
        cycle.protocol = self
        cycle.writer = self.writer
        cycle.conn = self.conn
        environ = cycle.environ = msg.wsgi_environ(self.base)  # the CGI keys, built in C
        version = environ["SERVER_PROTOCOL"]
        connection = environ.get("HTTP_CONNECTION")
        if connection is not None or version != "HTTP/1.1":
            cycle.http11 = version == "HTTP/1.1"
            cycle.keep_alive = keep_alive(version, connection)
        if environ["REQUEST_METHOD"] == "HEAD":
            cycle.is_head = True
        if server.access_log:
            cycle.uri = msg.uri
            cycle.query = msg.query
            if server.access_format is not None:
                cycle.arrived = perf_counter()
        if self.trusted and not _PROXY_KEY_SET.isdisjoint(environ):
            self._apply_proxy(cycle)
        if msg.more_body:
            cycle.body = self.writer.new_body(cycle)
            self.receiving = cycle
            if "CONTENT_LENGTH" not in environ:
                # A chunked body: no CONTENT_LENGTH is made up, wsgi.input ends where the
                # body does (the extension Werkzeug and others read). Not set otherwise:
                # Werkzeug then reads without a size, which PEP 3333's read(size) and
                # wsgiref.validate do not allow.
                environ["wsgi.input_terminated"] = True
        else:
            environ["wsgi.input"] = BytesIO(msg.body_bytes)
        if self.current is None:
            self._dispatch(cycle)
        elif len(self.pending) < MAX_PIPELINED:
            self.pending.append(cycle)
        else:
            logger.warning(
                "closing connection %d: more than %d pipelined requests",
                self.conn.id, MAX_PIPELINED,
            )
            self.conn.close()

    def _apply_proxy(self, cycle: Cycle) -> None:
        environ = cycle.environ
        headers = [
            (name, environ[key].encode("latin-1")) for name, key in _PROXY_KEYS if key in environ
        ]
        result = self.server.proxy.resolve(headers, self.client, environ["wsgi.url_scheme"])
        if result.client is not None and result.client != self.client:
            cycle.client = result.client
            environ["REMOTE_ADDR"] = result.client[0]
            environ["REMOTE_PORT"] = str(result.client[1])
        environ["wsgi.url_scheme"] = result.scheme
        if result.host:
            environ["HTTP_HOST"] = result.host

    def _dispatch(self, cycle: Cycle) -> None:
        self.current = cycle
        body = cycle.body
        if body is not None and not body.ready:
            # A client that sends a little of its body and stalls must not hold the app
            # (R-U-Dead-Yet): the writer starts it once its body is ready.
            cycle.deferred = True
        else:
            self.writer.start(cycle)

    def adopt(self, cycle: Cycle) -> None:
        """A request the core's fast path began becomes the current one (poll thread)."""
        if self.current is None and not self.conn.is_closing:
            self.current = cycle
        else:
            self.writer.cancel(cycle)

    def on_body(self, data: bytes) -> None:
        """A piece of the request body (``b""``: its end)."""
        cycle = self.receiving
        if cycle is None:
            return
        body = cycle.body
        if body.feed(data) and not self.reading_paused:
            self.reading_paused = True
            self.conn.pause_reading()
        if cycle.deferred and body.ready:
            cycle.deferred = False
            self.writer.start(cycle)
        if not data:
            # The whole body is in: what follows is the next request, which the core
            # holds back until this one is answered.
            self.receiving = None
            self.resume_reading()

    def resume_reading(self) -> None:
        """Read the socket again, unless the body still arriving wants the pause."""
        if not self.reading_paused:
            return
        receiving = self.receiving
        if receiving is not None and receiving.body.still_paused():
            return
        self.reading_paused = False
        self.conn.resume_reading()

    def on_writable(self) -> None:
        """``EV_WRITABLE``: the send buffer drained to the writer's low-water mark."""
        self.writer.writable(self)

    def finish(self, cycle: Cycle) -> None:
        """The response is complete or given up (poll thread): next request, or close."""
        if self.current is cycle:
            self.current = None
        body = cycle.body
        if body is not None:
            # An app that answered without reading the whole body: skip the rest, so that
            # the next request can be parsed.
            body.discard()
        self.resume_reading()
        if not cycle.keep_alive:
            self.pending.clear()
            self.conn.drain()  # the client gets what was written, then the close
        elif self.pending and self.current is None:
            self._dispatch(self.pending.popleft())

    def abort(self, cycle: Cycle, hard: bool) -> None:
        """The response cannot be completed (poll thread): the client gets what was
        written, then the close (``hard``: the close at once)."""
        if self.current is cycle:
            self.current = None
        cycle.keep_alive = False
        if hard:
            self.conn.close()
        else:
            self.conn.drain()

    def sweep(self, now: float) -> None:
        """Timer (poll thread): 408 to a request whose body stopped arriving before the
        app took it; the writer's own checks (a client that takes no data)."""
        cycle = self.current
        if cycle is None:
            return
        if cycle.deferred and cycle.body.last_feed < now - BODY_READ_TIMEOUT_S:
            logger.info(
                "closing connection %d: request body stalled for %.0f s",
                self.conn.id, BODY_READ_TIMEOUT_S,
            )
            cycle.deferred = False
            cycle.code = 408
            self.current = None
            self.conn.send_response(
                408, [("Content-Type", "text/plain"), ("Connection", "close")],
                b"Request Timeout",
            )
            self.conn.drain()
            if self.server.access_log:
                cycle.log()
            return
        self.writer.sweep(self, cycle, now)

    def on_close(self) -> None:
        """The connection is gone: stop what runs for it, fail body reads."""
        self.conn.userdata = None
        error = ClientDisconnected("the client closed the connection")
        for cycle in (self.current, self.receiving, *self.pending):
            if cycle is not None and cycle.body is not None:
                cycle.body.fail(error)
        self.pending.clear()
        cycle, self.current, self.receiving = self.current, None, None
        if cycle is not None:
            self.writer.cancel(cycle)

    def in_flight(self) -> bool:
        """Whether a request is being answered (graceful shutdown waits for it)."""
        return self.current is not None or self.busy
