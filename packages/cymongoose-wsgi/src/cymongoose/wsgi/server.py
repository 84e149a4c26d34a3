"""The WSGI server: settings to listeners, the event loop, graceful stop, signals, serve().

A request's way (see docs/architecture.md): mongoose parses it on the poll thread; the
core's fast path (``cymongoose.WsgiFastPath``) answers the common request in C, and hands
anything else to the request cycle (:mod:`.cycle`) through one call; the rest reach
:meth:`.protocol.Protocol.on_request`. The mode is the writer under the cycle:
:class:`~.pooled.PooledWriter` (``threads >= 1``: the app runs on a pool) or
:class:`~.inline.InlineWriter` (``threads=0``: on the poll thread).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from cymongoose.serving import lifecycle
from cymongoose.serving.accesslog import (
    AccessLogFormat,
    access_log_enabled,
    log_refused,
    parse_request_line,
)
from cymongoose.serving.config import ServerConfig
from cymongoose.serving.httprules import PROXY_HEADER_NAMES, STOP_IDLE_S, response_defaults
from cymongoose.serving.listen import listen_http, unix_socket_path
from cymongoose.serving.logconfig import setup_logging
from cymongoose.serving.proxy import ProxyHeaders
from cymongoose.serving.tls import load_tls, log_connection_error
from cymongoose.serving.watchdog import RETIRING, STOP, TICK_MS, Watchdog

from cymongoose import (
    EV_HTTP_BODY,
    EV_REQUEST_LIMIT,
    EV_WRITABLE,
    MG_EV_ACCEPT,
    MG_EV_CLOSE,
    MG_EV_ERROR,
    MG_EV_HTTP_MSG,
    MG_EV_WAKEUP,
    Manager,
    WsgiFastPath,
)

from .cycle import Cycle
from .environ import FileWrapper
from .inline import InlineWriter
from .pooled import PooledWriter
from .protocol import Protocol
from .rules import FAST_STREAM_BYTES

__all__ = ["WSGIServer", "serve"]

logger = logging.getLogger("cymongoose.wsgi")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Request bodies above this size arrive in pieces (``EV_HTTP_BODY``) instead of whole.
BODY_STREAM_THRESHOLD_BYTES = 64 << 10
#: Period of the sweep for stalled request bodies and response streams (milliseconds).
SWEEP_MS = 1000


class WSGIServer:
    """Serve a PEP 3333 application on a mongoose event loop.

    The positional parameters are cymongoose 0.2.x's, in its order:
    ``WSGIServer(app, workers, error_handler, stream_timeout)``; the settings added since
    are keyword-only.

    Args:
        app: the WSGI callable ``app(environ, start_response) -> iterable of bytes``.
        workers: size of the thread pool running the app (0.2.x's name; ``threads`` is
            the same thing under the name the config and ``--threads`` use; processes are
            the CLI's ``--workers``). Default: ``config.threads``. 0: no pool, the app runs
            on the poll thread (inline mode, for apps that never block; see ``inline.py``).
        error_handler: receives exceptions raised in the event loop (not app errors, which
            become 500 responses and are logged on the ``cymongoose.wsgi`` logger).
        stream_timeout: seconds a streamed response waits for the client to take data
            before the connection is closed.
        config: a :class:`cymongoose.serving.config.ServerConfig`; keyword ``fields``
            (``host``, ``port``, ``root_path``, ``keep_alive_timeout_s``, ...) override it.
        threads: the pool size, as ``workers`` (give one of the two).
        watchdog: a :class:`~cymongoose.serving.watchdog.Watchdog` ticked on the poll
            thread (gunicorn's heartbeat and ``alive`` flag, the supervisor's max-requests
            hand-over); default: one for ``config.limit_max_requests``, if set. When it
            asks to stop, :meth:`run` stops gracefully.

    On a Unix socket (``uds``, or an ``fd`` that is one) the environ has
    ``REMOTE_ADDR`` ``""`` and no ``REMOTE_PORT``, ``SERVER_NAME`` ``"localhost"`` and
    ``SERVER_PORT`` ``"80"`` (``"443"`` with TLS), as gunicorn gives; ``unix_path`` is the
    socket's path. On shutdown, in-flight requests get ``graceful_timeout_s`` seconds to
    finish. Raises TypeError/ValueError (from ServerConfig) for invalid settings, and the errors of
    :func:`cymongoose.serving.tls.load_tls` (FileNotFoundError, PermissionError, ...
    naming the file) when a TLS file cannot be read.
    """

    def __init__(
        self,
        app: WSGIApp,
        workers: int | None = None,
        error_handler: Callable[[BaseException], Any] | None = None,
        stream_timeout: float = 5.0,
        *,
        config: ServerConfig | None = None,
        threads: int | None = None,
        watchdog: Watchdog | None = None,
        **fields: Any,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, got {app!r}")
        for name, size in (("workers", workers), ("threads", threads)):
            if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
                hint = ("; pass a ServerConfig as config=..."
                        if isinstance(size, ServerConfig) else "")
                raise TypeError(f"{name} (the thread pool size) must be an int or None, "
                                f"got {size!r}{hint}")
        if workers is not None and threads is not None and workers != threads:
            raise ValueError(
                f"workers={workers!r} and threads={threads!r} both set the thread pool size; "
                "give one of them"
            )
        pool_size = threads if threads is not None else workers
        if pool_size is not None:
            fields["threads"] = pool_size
        config = ServerConfig.from_kwargs(config, **fields)
        if isinstance(stream_timeout, bool) or not stream_timeout > 0:
            raise ValueError(f"stream_timeout must be > 0 seconds, got {stream_timeout!r}")
        self.app = app
        self.config = config
        self.threads = self.workers = config.threads  # workers: 0.2.x's name
        self.stream_timeout = float(stream_timeout)
        self.graceful_timeout_s = config.graceful_timeout_s
        self.access_log = access_log_enabled(config.access_log)
        # A gunicorn access-log format, or None for the default line.
        self.access_format = (AccessLogFormat(config.access_log_format)
                              if self.access_log and config.access_log_format else None)
        # Other processes may run the same app: --workers N children and gunicorn workers
        # (both serve an inherited socket).
        self.multiprocess = config.workers > 1 or config.fd is not None
        self.proxy = ProxyHeaders(config.forwarded_allow_ips) if config.proxy_headers else None
        self.tls = load_tls(config)
        self._mgr = Manager(self._on_event, enable_wakeup=True, error_handler=error_handler)
        self._protocols: dict[int, Protocol] = {}  # poll thread only
        self._pooled: PooledWriter | None = None
        self.writer: PooledWriter | InlineWriter
        if config.threads > 0:
            self.writer = self._pooled = PooledWriter(
                self._mgr, self._protocols, config.threads, self.stream_timeout
            )
        else:
            self.writer = InlineWriter(self.stream_timeout)
        self._fast_path = WsgiFastPath(
            app, Cycle, self._on_event,
            # Pooled: only where the core can run it on a pool thread (pool_supported);
            # elsewhere every request takes the Python path.
            submit=self._pooled.jobs.put if self._pooled is not None else None,
            role=self._pooled.role if self._pooled is not None else None,
            access_log=self.access_log, log_arrival=self.access_format is not None,
            file_wrapper=FileWrapper,
            buffer_limit=FAST_STREAM_BYTES, proxy_headers=PROXY_HEADER_NAMES,
        )
        if self._pooled is not None:
            self._pooled.run_fast = self._fast_path.run
            self._pooled.run_ready = self._fast_path.run_ready
        self._listeners: list[Any] = []
        self._sweep_timer: Any = None
        self._watchdog = watchdog if watchdog is not None else Watchdog.for_config(config)
        self._watch_timer: Any = None
        self.unix_path: str | None = None
        self._stop = threading.Event()
        self._closed = False

    @property
    def manager(self) -> Manager:
        """The underlying ``cymongoose.Manager``."""
        return self._mgr

    def listen(self, url: str | None = None, *, fd: int | None = None) -> Any:
        """Listen on ``url`` (``http://host:port`` or ``https://``; port 0 picks a free one).

        Without ``url``, listens where the config says (``host``/``port``, the Unix socket
        ``uds``, or the already listening socket ``fd``, TCP or Unix). With
        ``ssl_certfile``/``ssl_keyfile`` set, connections speak TLS whatever the scheme.
        Returns the listening ``Connection``; its ``local_addr[1]`` is the bound port. Raises
        :class:`~cymongoose.serving.listen.ListenError` (an OSError with the errno, e.g.
        EADDRINUSE, and also a RuntimeError as in 0.2.x) when it cannot listen there
        (also for a ``uds`` path where a server listens or that is not a socket, see
        :func:`~cymongoose.serving.listen.bind_unix`), ValueError/OSError for an ``fd``
        that is not a listening stream socket (see
        :func:`~cymongoose.serving.listen.check_listen_fd`).
        """
        config = self.config
        uds = None
        if fd is None and url is None:
            fd, uds = config.fd, config.uds
        if url is None:
            url = config.url
        conn = listen_http(self._mgr, url, self._fast_path, fd=fd, uds=uds,
                           backlog=config.backlog)
        if fd is not None or uds is not None:
            self.unix_path = unix_socket_path(fd) if fd is not None else uds
        conn.io_events = False  # no Python call per loop iteration per connection
        conn.configure_http_server(
            max_header_count=config.max_header_count,
            max_header_bytes=config.max_header_bytes,
            max_body_size=config.max_body_size or 0,
            stream_threshold=BODY_STREAM_THRESHOLD_BYTES,
            keep_alive_timeout_ms=max(1, int(config.keep_alive_timeout_s * 1000)),
            max_connections=config.max_connections or 0,
            **response_defaults(config),
        )
        if self.tls is None and url.startswith("https:"):
            conn.close()
            raise ValueError(f"{url!r} needs ssl_certfile and ssl_keyfile")
        self._listeners.append(conn)
        if self._pooled is not None:
            self._pooled.start_threads()
        if self._sweep_timer is None:
            self._sweep_timer = self._mgr.timer_add(SWEEP_MS, self._sweep, repeat=True)
        if self._watchdog is not None:
            # The limit is acted on at once (EV_REQUEST_LIMIT), not at the next tick.
            conn.request_limit = self._watchdog.max_requests or 0
            if self._watch_timer is None:
                self._watch_timer = self._mgr.timer_add(TICK_MS, self._watch, repeat=True)
        return conn

    def run(self, poll_ms: int = 100) -> None:
        """Poll until SIGINT/SIGTERM, :meth:`shutdown` or the watchdog's stop, finish
        in-flight requests, close.

        Signal handlers are installed only when called from the main thread, and the
        previous handlers are restored afterwards.
        """
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: self._stop.set())
        try:
            if not self._listeners:
                self.listen()
            if self._watchdog is not None:
                self._watchdog.ready()
            if self._pooled is not None:
                self._pooled.serve(self._stop, poll_ms)  # a pool thread polls meanwhile
            else:
                while not self._stop.is_set():
                    self._mgr.poll(poll_ms)
            lifecycle.shutting_down(logger)
            self._graceful_stop(poll_ms)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()

    def shutdown(self) -> None:
        """Ask :meth:`run` to stop; safe from any thread and from signal handlers."""
        self._stop.set()

    def close(self) -> None:
        """Close every connection and the manager, stop the pool threads; idempotent.

        Call it from the poll thread or after :meth:`run` has returned.
        """
        if self._closed:
            return
        self._closed = True
        self._begin_stop()
        for protocol in list(self._protocols.values()):
            protocol.on_close()
        self._mgr.close()
        if self._pooled is not None:
            self._pooled.stop_threads()

    def _begin_stop(self) -> None:
        # Responses say "Connection: close" from now on: the Python cycle writes them.
        self.writer.stopping = True
        self._fast_path.enabled = False

    def _graceful_stop(self, poll_ms: int) -> None:
        """Stop accepting, answer the requests already sent, close each connection once
        idle (``STOP_IDLE_S``) or answered, within ``graceful_timeout_s``; then close what
        is left.

        A process retiring after its max requests (``watchdog.retiring``) closes no
        idle connection itself: each ends after its next response (``Connection: close``)
        or its keep-alive timeout, so that no client sends a request into a closing
        socket while the process that replaces this one serves."""
        self._begin_stop()
        for conn in self._listeners:
            try:
                conn.close()
            except RuntimeError:
                pass
        # Not the listeners, nor the wakeup pipe that brings the running responses back.
        keep = {c.id for c in self._listeners} | {self._mgr.wakeup_id}
        retiring = self._watchdog is not None and self._watchdog.retiring
        # Read what already waits in the sockets (the listeners closed): a request sent
        # before the stop gets in flight, and is answered, instead of a closed socket.
        self._mgr.poll(0)
        idle_since: dict[int, float] = {}
        deadline = time.monotonic() + self.graceful_timeout_s
        while time.monotonic() < deadline:
            if not retiring:
                self._close_idle(keep, idle_since)
            if self.writer.idle() and not any(
                    p.in_flight() for p in self._protocols.values()) and not any(
                    c.id not in keep and (retiring or not c.is_draining)
                    for c in self._mgr.connections):
                break
            self._mgr.poll(min(poll_ms, 50))
        for protocol in list(self._protocols.values()):
            try:
                protocol.conn.drain()
            except RuntimeError:
                pass
        # Draining connections close once their send buffers are empty: keep polling
        # (within the deadline) so that what the responses queued reaches the clients.
        while True:
            self._mgr.poll(0 if time.monotonic() >= deadline else min(poll_ms, 50))
            if time.monotonic() >= deadline or not any(
                    c.id not in keep for c in self._mgr.connections):
                break

    def _close_idle(self, keep: set[int], idle_since: dict[int, float]) -> None:
        """Drain each connection idle for ``STOP_IDLE_S``: no request in flight, no byte
        of the next one received (it closes by itself after its response)."""
        now = time.monotonic()
        for conn in self._mgr.connections:
            if conn.id in keep or conn.is_closing or conn.is_draining:
                idle_since.pop(conn.id, None)
                continue
            protocol = self._protocols.get(conn.id)
            if conn.recv_len or (protocol is not None and protocol.in_flight()):
                idle_since.pop(conn.id, None)
            elif now - idle_since.setdefault(conn.id, now) >= STOP_IDLE_S:
                idle_since.pop(conn.id)
                conn.drain()

    # -- poll thread -------------------------------------------------------------------

    def _on_event(self, conn: Any, ev: int, data: Any) -> None:
        if ev == MG_EV_HTTP_MSG:
            protocol = conn.userdata
            if protocol is None:
                protocol = self._accept(conn)
            protocol.on_request(data)
        elif ev == EV_HTTP_BODY:
            protocol = conn.userdata
            if protocol is not None:
                protocol.on_body(data)
        elif ev == MG_EV_WAKEUP:
            if self._pooled is not None:
                self._pooled.flush()
        elif ev == EV_WRITABLE:
            protocol = conn.userdata
            if protocol is not None:
                protocol.on_writable()
        elif ev == MG_EV_CLOSE:
            protocol = self._protocols.pop(conn.id, None)
            if self.access_log:
                refused = conn.refused
                if refused is not None:
                    self._log_refused(conn, protocol, *refused)
            if protocol is not None:
                protocol.on_close()
            if self._pooled is not None:
                self._pooled.closed(conn.id)
        elif ev == MG_EV_ACCEPT:
            if self.tls is not None:
                conn.tls_init(self.tls)
            self._accept(conn)  # the fast path needs it from the first request
        elif ev == EV_REQUEST_LIMIT:
            self._watch()
        elif ev == MG_EV_ERROR:  # a failed TLS handshake, most often; the server goes on
            log_connection_error(conn, data)

    def _log_refused(self, conn: Any, protocol: Protocol | None, status: int,
                     line: str | None) -> None:
        # An answer the core made by itself (413, 431, 503, ...). Without a request line
        # (a 413 to a chunked body): the request the app has, if any.
        request = parse_request_line(line)
        cycle = protocol.current if protocol is not None else None
        if request is None and cycle is not None and cycle.uri is not None:
            environ = cycle.environ
            target = f"{cycle.uri}?{cycle.query}" if cycle.query else cycle.uri
            request = (environ["REQUEST_METHOD"], target, environ["SERVER_PROTOCOL"][5:])
        client = protocol.client if protocol is not None else conn.remote_addr
        log_refused(client, status, request, self.access_format)

    def _accept(self, conn: Any) -> Protocol:
        protocol = self._protocols[conn.id] = Protocol(self, conn)
        return protocol

    def _watch(self) -> None:
        # On the poll thread: an inline app (threads=0) stuck there stops the heartbeat.
        assert self._watchdog is not None
        action = self._watchdog.tick(sum(conn.request_count for conn in self._listeners))
        if action == STOP:
            self.shutdown()
        elif action == RETIRING:
            self._begin_stop()  # responses say Connection: close from now on

    def _sweep(self) -> None:
        now = time.monotonic()
        for protocol in list(self._protocols.values()):
            protocol.sweep(now)


def serve(
    app: WSGIApp,
    url: str | None = None,
    workers: int | None = None,
    stream_timeout: float = 5.0,
    *,
    config: ServerConfig | None = None,
    threads: int | None = None,
    error_handler: Callable[[BaseException], Any] | None = None,
    watchdog: Watchdog | None = None,
    **fields: Any,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, or until its watchdog asks to stop (by default:
    ``limit_max_requests`` requests served), then shut down gracefully; blocks.

    The positional parameters are cymongoose 0.2.x's, in its order:
    ``serve(app, url, workers, stream_timeout)``. ``url`` (``"http://0.0.0.0:8000"``)
    defaults to the config's host and port (``http://127.0.0.1:8000``); ``workers`` (or
    ``threads``) sizes the thread pool; ``config``, keyword ``fields`` (ServerConfig field
    names), ``error_handler`` and ``watchdog`` are as for :class:`WSGIServer`.

    Logging is set up first as ``config.log_config`` says
    (:func:`cymongoose.serving.logconfig.setup_logging`): by default uvicorn-style lines
    on stderr/stdout unless the program has set up logging itself; ``log_config=None``
    leaves it alone. Then it logs the start-up lines (``Started server process``,
    ``Application startup complete.``, ``cymongoose running on http://...``) and, at
    the end, ``Finished server process``.

    Raises what :class:`WSGIServer` and :meth:`WSGIServer.listen` raise (OSError,
    ``ListenError``, when it cannot listen), and
    :class:`~cymongoose.serving.logconfig.LogConfigError` for a log config that cannot be
    applied.
    """
    if url is not None and not isinstance(url, str):
        raise TypeError(f"url must be a str such as 'http://127.0.0.1:8000', got {url!r}"
                        + ("; pass a ServerConfig as config=..."
                           if isinstance(url, ServerConfig) else ""))
    config = ServerConfig.from_kwargs(config, **fields)
    setup_logging(config)
    lifecycle.process_started(logger)
    server = WSGIServer(app, workers, error_handler, stream_timeout, config=config,
                        threads=threads, watchdog=watchdog)
    try:
        conn = server.listen(url)
    except BaseException:
        server.close()
        raise
    if server.threads:
        logger.info("Running the WSGI app in %d threads", server.threads)
    else:
        logger.info("Running the WSGI app on the event loop thread (threads=0)")
    lifecycle.app_started(logger)
    if url is not None or config.fd is None:  # else the process that bound it says where
        host, port = conn.local_addr[0], conn.local_addr[1]
        scheme = "https" if server.tls is not None else "http"
        lifecycle.running(logger, lifecycle.listen_url(scheme, host, port, server.unix_path))
    server.run()
    lifecycle.process_finished(logger)
