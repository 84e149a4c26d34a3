"""`ASGIServer`: ASGI 3 apps on mongoose, through `cymongoose.aio.AsyncManager`.

By default the AsyncManager runs in *integrated* mode where available (Linux): mongoose is
polled on the asyncio thread, the "poll thread" below is the asyncio thread, hand-overs are
plain ``call_soon`` and ``call_in_poll_thread`` writes straight into the connection's
buffer (flushed by one coalesced ``poll(0)`` per loop iteration). In *threaded* mode:

Per request: the poll thread turns ``MG_EV_HTTP_MSG`` into a scope and body (the message
dies when the handler returns) and hands them to the asyncio loop with one
``call_soon_threadsafe``; the app runs as a Task; its response comes back to the poll
thread through `AsyncManager.call_in_poll_thread` (one wakeup for a batch of responses)
and is written with ``Connection.send_response``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from cymongoose import MG_EV_CLOSE, MG_EV_HTTP_MSG, MG_EV_WS_CTL, MG_EV_WS_MSG
from cymongoose.aio import AsyncManager

from .http import HttpConnection, RequestCycle
from .lifespan import Lifespan
from .websocket import OP_BINARY, OP_CLOSE, OP_TEXT, WebSocketConnection

__all__ = ["ASGIServer", "serve"]

logger = logging.getLogger("cymongoose.asgi")

_ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}


def _to_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # the core decoded UTF-8 header bytes
        return value.encode("utf-8", "surrogateescape")


class ASGIServer:
    """Serve one ASGI 3 application.

    Args:
        app: the ASGI application ``async app(scope, receive, send)``.
        error_handler: called with exceptions raised on the event-loop level (not by the
            app: those are logged to the ``cymongoose.asgi`` logger and answered with 500).
        lifespan: ``"auto"`` (run lifespan, tolerate apps without it), ``"on"`` (same, the
            failure of startup is an error either way) or ``"off"``.
        graceful_timeout_s: how long `stop` waits for in-flight requests before cancelling.
        mode: the `AsyncManager` mode: ``"auto"`` (integrated where available, else
            threaded), ``"integrated"`` or ``"threaded"``.
    """

    def __init__(
        self,
        app: Any,
        error_handler: Callable[[BaseException], Any] | None = None,
        *,
        lifespan: str = "auto",
        graceful_timeout_s: float = 5.0,
        mode: str = "auto",
    ) -> None:
        if lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', got {lifespan!r}")
        self.app = app
        self._error_handler = error_handler
        self._lifespan_mode = lifespan
        self._graceful_timeout_s = graceful_timeout_s
        self._mode = mode
        self._am: AsyncManager | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Poll thread -> asyncio thread: call_soon_threadsafe, or call_soon when they are
        # the same thread (integrated mode; no self-pipe write per request).
        self._call_soon: Callable[..., Any] | None = None
        self._listener: Any = None
        self._lifespan: Lifespan | None = None
        self._state: dict[str, Any] = {}
        self._scheme = "http"
        # conn.id -> protocol object; poll thread only.
        self._conns: dict[int, HttpConnection | WebSocketConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def manager(self) -> Any:
        """The underlying `cymongoose.Manager` (RuntimeError before `start`)."""
        if self._am is None:
            raise RuntimeError("ASGIServer is not started")
        return self._am.manager

    @property
    def mode(self) -> str:
        """The `AsyncManager` mode in use (``"integrated"`` or ``"threaded"``) once started."""
        return self._am.mode if self._am is not None else self._mode

    async def start(self, url: str) -> Any:
        """Run lifespan startup, then listen on ``url``; returns the listening Connection.

        Raises RuntimeError if lifespan startup fails or the URL cannot be listened on.
        """
        if self._am is not None:
            raise RuntimeError("ASGIServer already started")
        self._loop = asyncio.get_running_loop()
        self._scheme = "https" if url.startswith(("https:", "wss:")) else "http"
        am = AsyncManager(self._handle, error_handler=self._error_handler, mode=self._mode)
        await am.start()
        self._am = am
        loop = self._loop
        self._call_soon = loop.call_soon if am.mode == "integrated" else loop.call_soon_threadsafe
        try:
            if self._lifespan_mode != "off":
                self._lifespan = Lifespan(self.app, self._state)
                await self._lifespan.startup()
            self._listener = am.listen(url, self._handle, http=True)
            # Accepted connections inherit this: no Python call per loop iteration each.
            self._listener.io_events = False
        except BaseException:
            await am.aclose()
            self._am = None
            raise
        return self._listener

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to ``graceful_timeout_s``),
        cancel what is left, close connections, run lifespan shutdown, free the manager."""
        am = self._am
        if am is None:
            return
        listener = self._listener
        if listener is not None:
            am.call_in_poll_thread(listener.close)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._graceful_timeout_s)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        am.call_in_poll_thread(self._close_all)
        await asyncio.sleep(0.05)  # let the poll thread flush close frames / FINs
        if self._lifespan is not None:
            await self._lifespan.shutdown()
        await am.aclose()
        self._am = None

    def _close_all(self) -> None:
        for proto in list(self._conns.values()):
            if not proto.closed:
                proto.conn.close()

    # -- poll thread ---------------------------------------------------------------------

    def _handle(self, conn: Any, ev: int, data: Any) -> None:
        if ev == MG_EV_HTTP_MSG:
            self._on_http_msg(conn, data)
        elif ev == MG_EV_WS_MSG:
            ws = self._conns.get(conn.id)
            if isinstance(ws, WebSocketConnection):
                op = data.flags & 15
                if op == OP_TEXT:
                    message = {"type": "websocket.receive", "text": data.text}
                elif op == OP_BINARY:
                    message = {"type": "websocket.receive", "bytes": data.data}
                else:
                    return
                self._call_soon(ws.queue.put_nowait, message)  # type: ignore[misc]
        elif ev == MG_EV_WS_CTL:
            ws = self._conns.get(conn.id)
            if isinstance(ws, WebSocketConnection) and data.flags & 15 == OP_CLOSE:
                payload = data.data
                ws.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        elif ev == MG_EV_CLOSE:
            proto = self._conns.pop(conn.id, None)
            if proto is None:
                return
            proto.closed = True
            call_soon = self._call_soon
            assert call_soon is not None
            if isinstance(proto, WebSocketConnection):
                call_soon(proto.on_disconnect, proto.close_code)
            else:
                call_soon(self._on_http_close, proto)

    def _on_http_msg(self, conn: Any, msg: Any) -> None:
        proto = self._conns.get(conn.id)
        if isinstance(proto, WebSocketConnection):
            return
        headers: list[tuple[bytes, bytes]] = []
        upgrade = connection = b""
        for name, value in msg.headers():
            lname = name.lower().encode("latin-1")
            bvalue = _to_bytes(value)
            headers.append((lname, bvalue))
            if lname == b"upgrade":
                upgrade = bvalue.lower()
            elif lname == b"connection":
                connection = bvalue.lower()
        uri = msg.uri
        query = msg.query or ""
        if "?" in uri:  # defensive: mongoose splits the query off already
            uri, _, query = uri.partition("?")
        proto_str = msg.proto or "HTTP/1.1"
        http_version = proto_str[5:] if proto_str.startswith("HTTP/") else "1.1"
        remote = conn.remote_addr
        local = conn.local_addr
        scope: dict[str, Any] = {
            "asgi": _ASGI_VERSION,
            "http_version": http_version,
            "scheme": self._scheme,
            "path": unquote(uri),
            "raw_path": uri.encode("utf-8"),
            "query_string": query.encode("utf-8"),
            "root_path": "",
            "headers": headers,
            "client": (remote[0], remote[1]),
            "server": (local[0], local[1]),
            "state": dict(self._state),
        }
        call_soon = self._call_soon
        assert call_soon is not None and self._am is not None
        if upgrade == b"websocket":
            scope["type"] = "websocket"
            scope["scheme"] = "wss" if self._scheme == "https" else "ws"
            subprotocols = [
                p.strip()
                for v in (v for k, v in headers if k == b"sec-websocket-protocol")
                for p in v.decode("latin-1").split(",")
                if p.strip()
            ]
            scope["subprotocols"] = subprotocols
            conn.ws_upgrade(msg)
            ws = WebSocketConnection(self._am, conn, scope)
            self._conns[conn.id] = ws
            call_soon(self._start_websocket, ws)
            return
        scope["type"] = "http"
        scope["method"] = msg.method
        if http_version == "1.0":
            keep_alive = b"keep-alive" in connection
        else:
            keep_alive = b"close" not in connection
        if proto is None:
            proto = HttpConnection(conn)
            self._conns[conn.id] = proto
        cycle = RequestCycle(self._am, proto, scope, msg.body_bytes, keep_alive)
        call_soon(self._on_request, proto, cycle)

    # -- asyncio thread ------------------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = self._loop.create_task(coro)  # type: ignore[union-attr]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_request(self, hc: HttpConnection, cycle: RequestCycle) -> None:
        hc.requests.append(cycle)
        if hc.runner is None:
            hc.runner = self._spawn(self._run_requests(hc))

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

    def _on_http_close(self, hc: HttpConnection) -> None:
        for cycle in (hc.current, *hc.requests):
            if cycle is not None:
                cycle.done.set()

    def _start_websocket(self, ws: WebSocketConnection) -> None:
        self._spawn(ws.run(self.app))


async def _serve(app: Any, url: str, **kwargs: Any) -> None:
    server = ASGIServer(app, **kwargs)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or not supported on this platform
    conn = await server.start(url)
    host, port = conn.local_addr[0], conn.local_addr[1]
    logger.info("cymongoose-asgi listening on %s (port %d)", host, port)
    try:
        await stop.wait()
    finally:
        logger.info("shutting down")
        await server.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)


def serve(app: Any, url: str = "http://127.0.0.1:8000", **kwargs: Any) -> None:
    """Serve ``app`` on ``url`` until SIGINT/SIGTERM; blocks. Keyword arguments go to
    `ASGIServer`."""
    try:
        asyncio.run(_serve(app, url, **kwargs))
    except KeyboardInterrupt:
        pass
