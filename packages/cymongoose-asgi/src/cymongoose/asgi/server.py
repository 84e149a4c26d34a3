"""`ASGIServer`: ASGI 3 apps on mongoose, through `cymongoose.aio.AsyncManager`.

The core's HTTP/1.1 server protocol (`Connection.configure_http_server`) parses requests,
enforces the limits, streams large bodies and closes idle keep-alive connections in C.
By default the AsyncManager runs in *integrated* mode where available (Linux): mongoose is
polled on the asyncio thread, so the "poll thread" below is the asyncio thread, hand-overs
are plain ``call_soon`` and ``call_in_poll_thread`` writes straight into the connection's
buffer (flushed by one coalesced ``poll(0)``). In *threaded* mode the same hand-overs cross
threads (``call_soon_threadsafe``, batched wakeups).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from time import perf_counter
from typing import Any
from urllib.parse import unquote

from cymongoose import (
    EV_HTTP_BODY,
    EV_REQUEST_LIMIT,
    EV_WRITABLE,
    MG_EV_ACCEPT,
    MG_EV_CLOSE,
    MG_EV_ERROR,
    MG_EV_HTTP_MSG,
    MG_EV_WS_CTL,
    MG_EV_WS_MSG,
    TlsOpts,
)
from cymongoose.aio import AsyncManager
from cymongoose.serving import lifecycle
from cymongoose.serving.accesslog import AccessLogFormat, log_refused, parse_request_line
from cymongoose.serving.config import ServerConfig
from cymongoose.serving.httprules import (
    PROXY_HEADER_NAMES,
    STOP_IDLE_S,
    keep_alive,
    response_defaults,
)
from cymongoose.serving.listen import listen_http, unix_socket_path
from cymongoose.serving.logconfig import setup_logging
from cymongoose.serving.proxy import ProxyHeaders
from cymongoose.serving.tls import load_tls, log_connection_error
from cymongoose.serving.watchdog import RETIRING, STOP, TICK_MS, Watchdog

from .eager import EagerRunner
from .http import HttpConnection, RequestCycle
from .lifespan import Lifespan
from .websocket import WebSocketConnection, open_websocket

__all__ = ["ASGIServer", "serve", "serve_process"]

logger = logging.getLogger("cymongoose.asgi")

# HTTP & WebSocket spec 2.4: send() on a closed connection raises an OSError subclass.
_ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
# scope["extensions"]: the ASGI extensions implemented (http.py, websocket.py); a TLS
# connection adds "tls" (tls_extension, read once per connection). Copied per request:
# an app may change its scope.
HTTP_EXTENSIONS: dict[str, Any] = {
    "http.response.pathsend": {},
    "http.response.trailers": {},
    "http.response.early_hint": {},
}
WEBSOCKET_EXTENSIONS: dict[str, Any] = {"websocket.http.response": {}}
# The request header fields _on_http_msg looks at, by name: one dict lookup per field.
_CONNECTION, _UPGRADE, _PROXY = 1, 2, 3
_SPECIAL_HEADERS = {b"connection": _CONNECTION, b"upgrade": _UPGRADE,
                    **dict.fromkeys(PROXY_HEADER_NAMES, _PROXY)}


def tls_extension(conn: Any) -> dict[str, Any]:
    """The ASGI TLS extension's dict (asgiref specs/tls.rst, version 0.2) for a TLS
    connection whose handshake is done (`Connection.tls_info`)."""
    info = conn.tls_info() or {}
    return {
        "server_cert": info.get("local_cert"),
        "client_cert_chain": info.get("peer_cert_chain", []),
        "client_cert_name": info.get("peer_cert_name"),
        "client_cert_error": info.get("peer_cert_error"),
        "tls_version": info.get("version"),
        "cipher_suite": info.get("cipher_suite"),
    }


class ASGIServer:
    """Serve one ASGI 3 application.

    The positional parameters are those of cymongoose 0.2.5 (``app, error_handler``); the
    others are keyword-only.

    Args:
        app: the ASGI application ``async app(scope, receive, send)``.
        error_handler: called with exceptions raised on the event-loop level (not by the
            app: those are logged to the ``cymongoose.asgi`` logger and answered with 500).
        config: a `cymongoose.serving.config.ServerConfig`; keyword ``options`` (its field
            names: ``max_body_size``, ``keep_alive_timeout_s``, ``lifespan``,
            ``graceful_timeout_s``, ``ws_max_size``, ``ssl_certfile`` ...) override it.
        mode: the `AsyncManager` mode: ``"auto"`` (integrated where available, else
            threaded), ``"integrated"`` or ``"threaded"``.
        watchdog: a `cymongoose.serving.watchdog.Watchdog` ticked from the asyncio loop
            (gunicorn's heartbeat and ``alive`` flag, the supervisor's max-requests
            hand-over); default: one for ``config.limit_max_requests``, if set. When it
            asks to stop, `exit_requested` is set (`serve` then stops gracefully).

    Attributes:
        exit_requested: an `asyncio.Event` set when the server asks to be stopped (its
            watchdog: max requests reached, gunicorn's worker no longer alive).

    Raises TypeError/ValueError naming a bad option, TypeError if ``error_handler`` is
    neither None nor callable.
    """

    def __init__(
        self,
        app: Any,
        error_handler: Callable[[BaseException], Any] | None = None,
        *,
        config: ServerConfig | None = None,
        mode: str = "auto",
        watchdog: Watchdog | None = None,
        **options: Any,
    ) -> None:
        if error_handler is not None and not callable(error_handler):
            hint = " (pass config= by keyword)" if isinstance(error_handler, ServerConfig) \
                else ""
            raise TypeError(f"error_handler must be callable or None, got "
                            f"{type(error_handler).__name__}{hint}")
        self.config = ServerConfig.from_kwargs(config, **options)
        self.app = app
        self._error_handler = error_handler
        self._mode = mode
        self._am: AsyncManager | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Poll thread -> asyncio thread: call_soon_threadsafe, or call_soon when they are
        # the same thread (integrated mode; no self-pipe write per request).
        self._call_soon: Callable[..., Any] = lambda *a: None
        self._direct = False
        self._eager: EagerRunner = None  # type: ignore[assignment]  # set by start()
        self._listener: Any = None
        self._lifespan: Lifespan | None = None
        self._state: dict[str, Any] = {}
        self._scheme = "http"
        self._root_path = self.config.root_path
        self._proxy = (
            ProxyHeaders(self.config.forwarded_allow_ips or []) if self.config.proxy_headers
            else None
        )
        self._tls: TlsOpts | None = None
        # The access log: False, True (the default line) or a gunicorn format.
        self._log: bool | AccessLogFormat = False
        self._stopping = False
        # conn.id -> protocol object; poll thread only.
        self._conns: dict[int, HttpConnection | WebSocketConnection] = {}
        # asyncio thread only: WebSocket tasks, and the request tasks of HTTP connections
        # that closed while their app was still running (stop() cancels those too).
        self._tasks: set[asyncio.Task[None]] = set()
        self._detached: set[asyncio.Task[None]] = set()
        self._watchdog = watchdog if watchdog is not None else Watchdog.for_config(self.config)
        self.exit_requested = asyncio.Event()
        # The path of the Unix socket served (scope "server": (path, None), no "client").
        self.unix_path: str | None = None

    @property
    def manager(self) -> Any:
        """The underlying `cymongoose.Manager` (RuntimeError before `start`)."""
        if self._am is None:
            raise RuntimeError("ASGIServer is not started")
        return self._am.manager

    @property
    def async_manager(self) -> AsyncManager:
        """The running `AsyncManager` (RuntimeError before `start`): other servers of the
        process (`cymongoose.asgi.mqtt.MqttServer`) may share its event loop."""
        if self._am is None:
            raise RuntimeError("ASGIServer is not started")
        return self._am

    @property
    def lifespan_supported(self) -> bool:
        """True when lifespan startup ran and the app took part (lifespan shutdown
        follows in `stop`)."""
        return self._lifespan is not None and self._lifespan.supported

    @property
    def scheme(self) -> str:
        """``"https"`` with TLS, else ``"http"`` (once started)."""
        return self._scheme

    @property
    def mode(self) -> str:
        """The `AsyncManager` mode in use (``"integrated"`` or ``"threaded"``) once started."""
        return self._am.mode if self._am is not None else self._mode

    async def start(self, url: str | None = None) -> Any:
        """Run lifespan startup, then listen; returns the listening Connection.

        ``url`` defaults to the config's (``http://127.0.0.1:8000`` unless configured;
        https with TLS); with ``config.fd`` the server uses that socket (TCP or Unix), with
        ``config.uds`` it binds that Unix socket. Raises
        RuntimeError if lifespan startup fails; `cymongoose.serving.listen.ListenError` (an
        OSError with the errno, e.g. EADDRINUSE, and a RuntimeError) if the address cannot
        be listened on (after running lifespan shutdown), also for a ``uds`` path where a
        server listens or that is not a socket; ValueError/OSError for an ``fd`` that is
        not a listening stream socket; FileNotFoundError/PermissionError (OSError)
        naming a TLS file that cannot be read.
        """
        if self._am is not None:
            raise RuntimeError("ASGIServer already started")
        cfg = self.config
        url = url or cfg.url
        self._loop = asyncio.get_running_loop()
        if cfg.ssl_certfile:
            self._tls = load_tls(cfg)
            url = "https" + url[url.index(":"):] if url.startswith("http:") else url
        self._scheme = "https" if url.startswith(("https:", "wss:")) else "http"
        if cfg.access_log:
            self._log = AccessLogFormat(cfg.access_log_format) if cfg.access_log_format \
                else True
        am = AsyncManager(self._handle, error_handler=self._error_handler, mode=self._mode)
        await am.start()
        self._am = am
        loop = self._loop
        self._call_soon = _call_now if am.mode == "integrated" else loop.call_soon_threadsafe
        # Integrated mode: the poll thread is the asyncio thread, a request starts at once.
        self._direct = am.mode == "integrated"
        self._eager = EagerRunner(loop)
        # Every key of an http scope, the server's set: a request's scope is a copy (one
        # memcpy of the table) with the others replaced, about half the cost of a dict
        # display of 14 keys.
        self._scope = {
            "type": "http", "asgi": _ASGI_VERSION, "http_version": "1.1", "method": "GET",
            "scheme": self._scheme, "path": "", "raw_path": b"", "query_string": b"",
            "root_path": self._root_path, "headers": [], "client": None, "server": None,
            "state": None, "extensions": None,
        }
        self._poll_call = am.poll_thread_caller()
        try:
            if cfg.lifespan != "off":
                self._lifespan = Lifespan(self.app, self._state, cfg.lifespan)
                await self._lifespan.startup()
            try:
                self._listener = am.run_locked(self._listen, url)
            except BaseException:
                if self._lifespan is not None:
                    await self._lifespan.shutdown()  # the app started: let it clean up
                raise
        except BaseException:
            if self._lifespan is not None:
                # After a failed startup: a lifespan call still running is cancelled now,
                # not when the loop closes.
                await self._lifespan.shutdown()
            await am.aclose()
            self._eager.close()
            self._am = None
            raise
        if self._watchdog is not None:
            self._watchdog.ready()
        return self._listener

    def _listen(self, mgr: Any, url: str) -> Any:
        cfg = self.config
        listener = listen_http(mgr, url, self._handle, fd=cfg.fd, uds=cfg.uds,
                               backlog=cfg.backlog)
        if cfg.fd is not None or cfg.uds is not None:
            self.unix_path = unix_socket_path(cfg.fd) if cfg.fd is not None else cfg.uds
        # Accepted connections inherit both: no Python call per loop iteration each.
        listener.io_events = False
        listener.configure_http_server(
            max_header_count=cfg.max_header_count,
            max_header_bytes=cfg.max_header_bytes,
            max_body_size=cfg.max_body_size or 0,
            keep_alive_timeout_ms=max(1, int(cfg.keep_alive_timeout_s * 1000)),
            max_connections=cfg.max_connections or 0,
            **response_defaults(cfg),
            ws_max_size=cfg.ws_max_size,
        )
        if cfg.ws_ping_interval_s:
            period_s = min(cfg.ws_ping_interval_s, cfg.ws_ping_timeout_s or 1e9) / 2
            mgr.timer_add(max(10, int(period_s * 1000)), self._ping_websockets, repeat=True)
        if self._watchdog is not None:
            mgr.timer_add(TICK_MS, self._watch, repeat=True)
            # The limit is acted on at once (EV_REQUEST_LIMIT), not at the next tick.
            listener.request_limit = self._watchdog.max_requests or 0
        return listener

    async def stop(self) -> None:
        """Stop accepting, answer the requests already sent (with ``Connection: close``),
        close each keep-alive connection once idle (``STOP_IDLE_S``) or answered, let
        in-flight requests finish (all within ``graceful_timeout_s``), cancel what is
        left, close connections, run lifespan shutdown, free the manager.

        A server retiring after its max requests (``watchdog.retiring``) closes no
        idle connection itself: each ends after its next response (``Connection:
        close``) or its keep-alive timeout, within ``graceful_timeout_s``, so that no
        client sends a request into a closing socket."""
        am = self._am
        if am is None:
            return
        self._stopping = True
        listener = self._listener
        if listener is not None:
            am.call_in_poll_thread(listener.close)
        deadline = time.monotonic() + self.config.graceful_timeout_s
        if self._watchdog is not None and self._watchdog.retiring:
            while am.run_locked(_open_connections) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        am.call_in_poll_thread(self._shutdown_websockets)
        # A request already sent (still in the socket, or parsed and on its way to the
        # app) is answered, not cut off by a close: only idle connections are closed.
        idle_since: dict[int, tuple[float, int]] = {}
        while am.run_locked(self._close_idle, idle_since) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        tasks = self._running_tasks(am)
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        tasks = self._running_tasks(am)
        if tasks:
            logger.warning("cancelling %d running task(s): graceful shutdown timeout "
                           "(%.1f s) exceeded", len(tasks), self.config.graceful_timeout_s)
            await _cancel(tasks)
        am.call_in_poll_thread(self._close_all)
        await asyncio.sleep(0.05)  # let the poll thread flush close frames / FINs
        # Threaded mode: a connection that closed meanwhile hands its task over only now.
        await _cancel(self._running_tasks(am))
        if self._lifespan is not None:
            await self._lifespan.shutdown()
        await am.aclose()
        self._eager.close()
        self._am = None

    def _running_tasks(self, am: AsyncManager) -> set[asyncio.Task[None]]:
        """Every app task still running: those of open connections (read on the poll
        thread), WebSocket tasks and those of closed connections (asyncio thread)."""
        tasks: set[asyncio.Task[None]] = am.run_locked(self._conn_runners)
        tasks.update(t for t in (*self._tasks, *self._detached) if not t.done())
        return tasks

    # -- poll thread ---------------------------------------------------------------------

    def _conn_runners(self, _mgr: Any = None) -> set[asyncio.Task[None]]:
        return {proto.runner for proto in self._conns.values()
                if isinstance(proto, HttpConnection) and proto.runner is not None}

    def _shutdown_websockets(self) -> None:
        for proto in list(self._conns.values()):
            if isinstance(proto, WebSocketConnection):
                proto.shutdown()

    def _close_idle(self, mgr: Any, idle_since: dict[int, tuple[float, int]]) -> bool:
        """Drain each HTTP connection idle for ``STOP_IDLE_S``: no request in flight, none
        parsed, no byte of the next one received (a busy one closes by itself after its
        response). True while an HTTP connection is still open and not draining."""
        now = time.monotonic()
        wakeup = mgr.wakeup_id
        waiting = False
        for conn in mgr.connections:
            if conn.is_listening or conn.id == wakeup or conn.is_closing or conn.is_draining:
                continue
            proto = self._conns.get(conn.id)
            if isinstance(proto, WebSocketConnection):
                continue  # shut down, its task ends it
            waiting = True
            received = proto.received if proto is not None else 0
            since, seen = idle_since.get(conn.id, (now, received))
            if conn.recv_len or received != seen or (proto is not None and (
                    proto.current is not None or proto.requests)):
                idle_since[conn.id] = (now, received)
            elif now - since >= STOP_IDLE_S:
                idle_since.pop(conn.id, None)
                conn.drain()
            else:
                idle_since[conn.id] = (since, received)
        return waiting

    def _close_all(self) -> None:
        for proto in list(self._conns.values()):
            if not proto.closed:
                proto.conn.close()

    def _watch(self) -> None:
        # The tick runs on the asyncio loop (this timer's thread in integrated mode): an
        # app that blocks the loop stops the heartbeat, which is what gunicorn watches.
        listener = self._listener
        self._call_soon(self._tick, listener.request_count if listener is not None else 0)

    def _tick(self, requests: int) -> None:
        action = self._watchdog.tick(requests) if self._watchdog is not None else None
        if action == STOP:
            self.exit_requested.set()
        elif action == RETIRING:
            self._stopping = True  # responses say Connection: close from now on

    def _ping_websockets(self) -> None:
        cfg = self.config
        now = time.monotonic()
        interval_s = cfg.ws_ping_interval_s or 0.0
        for proto in list(self._conns.values()):
            if isinstance(proto, WebSocketConnection):
                proto.keepalive(now, interval_s, cfg.ws_ping_timeout_s)

    def _handle(self, conn: Any, ev: int, data: Any) -> None:
        if ev == MG_EV_HTTP_MSG:
            self._on_http_msg(conn, data)
        elif ev == EV_HTTP_BODY:
            proto = self._conns.get(conn.id)
            if isinstance(proto, HttpConnection) and proto.body_cycle is not None:
                cycle = proto.body_cycle
                if not data:
                    proto.body_cycle = None
                self._call_soon(cycle.feed_body, data)
        elif ev == EV_WRITABLE:
            proto = self._conns.get(conn.id)
            if proto is not None:
                self._call_soon(_on_writable, proto)
        elif ev == MG_EV_WS_MSG:
            ws = self._conns.get(conn.id)
            if isinstance(ws, WebSocketConnection):
                ws.on_message(data)
        elif ev == MG_EV_WS_CTL:
            ws = self._conns.get(conn.id)
            if isinstance(ws, WebSocketConnection):
                ws.on_control(data)
        elif ev == MG_EV_ACCEPT:
            if self._tls is not None:
                conn.tls_init(self._tls)
        elif ev == EV_REQUEST_LIMIT:
            self._watch()
        elif ev == MG_EV_ERROR:  # a failed TLS handshake, most often; the server goes on
            log_connection_error(conn, data)
        elif ev == MG_EV_CLOSE:
            proto = self._conns.pop(conn.id, None)
            if self._log:
                refused = conn.refused
                if refused is not None:
                    self._log_refused(conn, proto, *refused)
            if proto is None:
                return
            proto.closed = True
            if isinstance(proto, WebSocketConnection):
                self._call_soon(proto.on_disconnect, proto.close_code, proto.close_reason)
            else:
                self._call_soon(_on_http_close, proto, self._detached)

    def _log_refused(self, conn: Any, proto: HttpConnection | WebSocketConnection | None,
                     status: int, line: str | None) -> None:
        # An answer the core made by itself (413, 431, 503, ...). Without a request line
        # (a 413 to a chunked body): the request the app has, if any.
        request = parse_request_line(line)
        client = conn.remote_addr
        if isinstance(proto, HttpConnection):
            client = proto.client
            cycle = proto.body_cycle or proto.current
            if request is None and cycle is not None:
                scope = cycle.scope
                target = scope["raw_path"].decode("latin-1")
                if scope["query_string"]:
                    target += "?" + scope["query_string"].decode("latin-1")
                request = (scope["method"], target, scope["http_version"])
        log_refused(client, status, request,
                    self._log if isinstance(self._log, AccessLogFormat) else None)

    def _on_http_msg(self, conn: Any, msg: Any) -> None:
        proto = self._conns.get(conn.id)
        if proto is None:
            proto = self._conns[conn.id] = HttpConnection(conn)
            remote = conn.remote_addr
            local = conn.local_addr
            if self.unix_path is None:
                proto.client = (remote[0], remote[1])
                proto.server = (local[0], local[1])
            else:  # ASGI spec: no client for a Unix socket; uvicorn's server
                proto.server = (self.unix_path, None)
            proto.trusted = self._proxy is not None and self._proxy.is_trusted(remote[0])
            if self._tls is not None:
                proto.tls = tls_extension(conn)
        elif isinstance(proto, WebSocketConnection):
            return
        proto.received += 1
        method, raw_path, query, proto_str, headers, body = msg.parts()
        http_version = proto_str[5:] if proto_str.startswith("HTTP/") else "1.1"
        upgrade = connection = b""
        forwarded = False
        special = _SPECIAL_HEADERS.get
        for name, value in headers:
            kind = special(name)  # one lookup per header; most are none of these
            if kind is not None:
                if kind == _CONNECTION:
                    connection = value.lower()
                elif kind == _UPGRADE:
                    upgrade = value.lower()
                else:
                    forwarded = True
        path = raw_path.decode("utf-8", "surrogateescape")
        if "%" in path:
            path = unquote(path)
        scope = self._scope.copy()
        if forwarded and proto.trusted:
            scope["client"], scope["scheme"], _host = self._proxy.resolve(  # type: ignore[union-attr]
                headers, proto.client, self._scheme)
        else:
            scope["client"] = proto.client
        scope["server"] = proto.server
        scope["http_version"] = http_version
        scope["path"] = self._root_path + path
        scope["raw_path"] = raw_path
        scope["query_string"] = query
        scope["headers"] = headers
        scope["state"] = self._state.copy()
        if upgrade == b"websocket" and b"upgrade" in connection and method == "GET":
            del scope["method"], scope["extensions"]
            self._open_websocket(conn, proto, headers, scope)
            return
        scope["method"] = method
        scope["extensions"] = HTTP_EXTENSIONS.copy() if proto.tls is None \
            else {**HTTP_EXTENSIONS, "tls": proto.tls}
        more_body = msg.more_body
        if self._stopping:
            close = True
        elif connection:
            close = not keep_alive(http_version, connection.decode("latin-1"))
        else:  # no Connection field (RFC 9112 section 9.3): HTTP/1.1 persists, 1.0 not
            close = http_version != "1.1"
        log = self._log
        cycle = RequestCycle(
            self._poll_call, proto, scope, None if more_body else body, close, log,
            method == "HEAD", http_version == "1.0",
        )
        if log and log is not True:
            cycle.arrived = perf_counter()  # a gunicorn format may show the request time
        if more_body:
            proto.body_cycle = cycle
        if self._direct:
            self._on_request(proto, cycle)
        else:
            self._call_soon(self._on_request, proto, cycle)

    def _open_websocket(self, conn: Any, proto: HttpConnection, headers: list[Any],
                        scope: dict[str, Any]) -> None:
        assert self._am is not None
        scope["extensions"] = WEBSOCKET_EXTENSIONS.copy()
        if proto.tls is not None:
            scope["extensions"]["tls"] = proto.tls
        ws = open_websocket(self._am, self._call_soon, conn, scope, headers, self._log,
                            self.config.ws_per_message_deflate)
        if ws is not None:
            self._conns[conn.id] = ws
            self._call_soon(self._start_websocket, ws)

    # -- asyncio thread ------------------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = self._eager.create_task(coro)  # not in the context of the poll's caller
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_request(self, hc: HttpConnection, cycle: RequestCycle) -> None:
        # A run of pipelined requests starts at once (EagerRunner): an app that never
        # suspends completes here, with no Task of its own and no loop iteration; one
        # that does continues in a Task (found through _conns, not _tasks: no
        # done-callback per request).
        hc.requests.append(cycle)
        if hc.runner is None:
            task = self._eager.start(self._run_requests(hc))
            if task is not None and not task.done():
                hc.runner = task

    async def _run_requests(self, hc: HttpConnection) -> None:
        # Pipelined requests are answered in the order they arrived.
        try:
            while hc.requests:
                cycle = hc.requests.popleft()
                hc.current = cycle
                await cycle.run(self.app)
        finally:
            hc.current = None
            hc.runner = None

    def _start_websocket(self, ws: WebSocketConnection) -> None:
        self._spawn(ws.run(self.app))


def _open_connections(mgr: Any) -> int:
    """Accepted connections still open (poll thread)."""
    wakeup = mgr.wakeup_id
    return sum(1 for c in mgr.connections
               if not c.is_listening and not c.is_closing and c.id != wakeup)


async def _cancel(tasks: set[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and give them up to 1 s to unwind."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=1.0)


def _call_now(fn: Callable[..., Any], *args: Any) -> None:
    fn(*args)


def _on_http_close(hc: HttpConnection, detached: set[asyncio.Task[None]]) -> None:
    # After every _on_request of this connection (same FIFO): hc.runner is final here.
    runner = hc.runner
    if runner is not None and not runner.done():
        # The app outlives its client: keep the task where stop() finds it.
        detached.add(runner)
        runner.add_done_callback(detached.discard)
    for cycle in (hc.current, *hc.requests):
        if cycle is not None:
            cycle.finish()
    _on_writable(hc)


def _on_writable(proto: HttpConnection | WebSocketConnection) -> None:
    if isinstance(proto, WebSocketConnection):
        proto.on_writable()
        return
    waiter = proto.writable
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def _serve(app: Any, url: str | None, config: ServerConfig,
                 watchdog: Watchdog | None) -> None:
    server = ASGIServer(app, config=config, watchdog=watchdog)
    stop = server.exit_requested
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or not supported on this platform
    if config.lifespan != "off":
        lifecycle.app_starting(logger)
    conn = await server.start(url)
    lifecycle.app_started(logger)
    if url is not None or config.fd is None:  # else the process that bound it says where
        host, port = conn.local_addr[0], conn.local_addr[1]
        lifecycle.running(logger, lifecycle.listen_url(server._scheme, host, port,
                                                       server.unix_path))
    try:
        await stop.wait()
    finally:
        lifecycle.shutting_down(logger)
        lifespan = server._lifespan
        if lifespan is not None and lifespan.supported:
            lifecycle.app_stopping(logger)
        await server.stop()
        if lifespan is not None and lifespan.supported:
            lifecycle.app_stopped(logger)
        for sig in installed:
            loop.remove_signal_handler(sig)


def serve(app: Any, url: str | None = None, *, config: ServerConfig | None = None,
          watchdog: Watchdog | None = None, **options: Any) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, or until its watchdog asks to stop (by default:
    ``limit_max_requests`` requests served), then shut down gracefully; blocks.

    ``url`` (e.g. ``"http://0.0.0.0:8000"``) defaults to the config's host and port
    (``http://127.0.0.1:8000`` unless configured); ``config``/``options`` as for
    `ASGIServer`. ``app`` and ``url`` are positional as in cymongoose 0.2.5, the rest
    keyword-only; ``watchdog`` as for `ASGIServer`.

    Logging is set up first as ``log_config`` says
    (`cymongoose.serving.logconfig.setup_logging`): by default uvicorn-style lines on
    stderr/stdout unless the program has set up logging itself; ``log_config=None``
    leaves it alone. Then it logs the start-up lines (``Started server process``,
    lifespan, ``Application startup complete.``, ``cymongoose running on http://...``)
    and, at the end, ``Finished server process``.

    Raises as `ASGIServer.start`, and `cymongoose.serving.logconfig.LogConfigError` for
    a log config that cannot be applied.
    """
    cfg = ServerConfig.from_kwargs(config, **options)
    serve_process(cfg, lambda: _serve(app, url, cfg, watchdog))


def serve_process(config: ServerConfig, main: Callable[[], Any]) -> None:
    """The process around a server: logging set up as ``config.log_config`` says, the
    ``Started/Finished server process`` lines, and the coroutine ``main()`` run on the
    loop ``config.loop`` chooses (`_run`) until it returns or Ctrl-C; blocks. Raises what
    ``main`` raises, `cymongoose.serving.logconfig.LogConfigError`, and ImportError for
    ``loop="uvloop"`` without uvloop."""
    setup_logging(config)
    lifecycle.process_started(logger)
    try:
        _run(main(), config.loop)
    except KeyboardInterrupt:
        pass
    lifecycle.process_finished(logger)


def _run(coro: Any, loop: str) -> None:
    """``asyncio.run`` on the chosen loop: uvloop when asked, or for ``"auto"`` when it is
    installed (uvicorn's ``--loop auto``). Raises ImportError for ``"uvloop"`` without it."""
    new_loop: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError as exc:
            if loop == "uvloop":
                coro.close()  # never run: no "coroutine was never awaited" warning
                raise ImportError(f"loop 'uvloop' needs the uvloop package ({exc}); install "
                                  "it (pip install uvloop) or use loop 'auto' or 'asyncio'",
                                  name="uvloop") from exc
        else:
            new_loop = uvloop.new_event_loop
    if new_loop is None:
        asyncio.run(coro)
        return
    if not hasattr(asyncio, "Runner"):  # Python 3.10
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=new_loop) as runner:  # type: ignore[attr-defined]
        runner.run(coro)
