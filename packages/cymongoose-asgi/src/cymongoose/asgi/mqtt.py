"""ASGI over MQTT: a stateless-protocol server on mongoose's MQTT client.

`MqttServer` subclasses asgiref's ``StatelessServer`` (install the extra
``cymongoose-asgi[mqtt]``). It connects to one broker with ``Manager.mqtt_connect`` on an
`cymongoose.aio.AsyncManager` (its own, or one shared with an `ASGIServer`), runs the
application as the *master* instance (scope id ``app_id``) and speaks mqttasgi's
messages, so consumers written for mqttasgi run unchanged (the full spec:
docs/guides/mqtt-asgi.md):

- scope: ``{"type": "mqtt", "app_id": app_id, "instance_type": "master",
  "asgi": {"version": "3.0"}}``; a worker's has ``"instance_type": "worker"`` and its
  ``consumer_params``;
- the app receives ``{"type": "mqtt.connect", "mqtt": {}}`` first (mqttasgi's shape),
  ``{"type": "mqtt.msg", "mqtt": {"topic": str, "payload": bytes, "qos": int,
  "retain": bool}}`` per PUBLISH received (MQTT 5: also ``"properties"``), and
  ``{"type": "mqtt.disconnect"}`` when it is stopped;
- the app sends ``mqtt.pub``, ``mqtt.sub``, ``mqtt.usub`` (`cymongoose.asgi.mqttmsg`)
  and, from the master, ``mqttasgi.worker.spawn`` / ``mqttasgi.worker.kill``.

asgiref 3.x note: ``get_or_create_application_instance`` is synchronous and returns the
instance's input queue (some examples ``await`` it, which fails).

The connection is re-made after a loss with exponential backoff, and every live
subscription is sent again after each CONNACK. Messages the app publishes while the
broker is unreachable are queued (up to ``max_pending``) and sent after the reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from asgiref.compatibility import guarantee_single_callable
from asgiref.server import StatelessServer
from cymongoose import (
    MG_EV_CLOSE,
    MG_EV_CONNECT,
    MG_EV_ERROR,
    MG_EV_MQTT_CMD,
    MG_EV_MQTT_MSG,
    MG_EV_MQTT_OPEN,
    TlsOpts,
)
from cymongoose.aio import AsyncManager
from cymongoose.importer import import_app

from . import syncthread
from .mqttmsg import field, pub_properties, qos_of, received_properties, topic_matches

__all__ = ["MqttServer", "topic_matches"]

logger = logging.getLogger("cymongoose.asgi.mqtt")

_DISCONNECT = {"type": "mqtt.disconnect"}


def check_url(url: Any) -> tuple[str, int]:
    """``(host, port)`` of an ``mqtt://HOST[:PORT]`` / ``mqtts://`` URL (default ports
    1883 / 8883); ValueError naming the URL otherwise."""
    want = "mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"
    if not isinstance(url, str):
        raise ValueError(f"url must be {want}, got {url!r}")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or port == -1 \
            or parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"url must be {want}, got {url!r}")
    return parts.hostname, port or (8883 if parts.scheme == "mqtts" else 1883)


class MqttServer(StatelessServer):  # type: ignore[misc]
    """Serve an ASGI application from an MQTT broker.

    Args:
        application: the ASGI 3 application (e.g. a Channels ``ProtocolTypeRouter``).
        url: the broker, ``mqtt://HOST[:PORT]`` or ``mqtts://HOST[:PORT]`` (TLS).
        client_id, username, password: CONNECT fields; an empty client id becomes
            ``cymongoose-`` and 12 random hex digits.
        clean_session: the CONNECT clean session flag (MQTT 5: clean start); False
            keeps the broker's session, with the QoS 1/2 messages it queued while we were
            away (MQTT 5: with a session expiry interval of "never", as 3.1.1 keeps it).
        keepalive: seconds (1-65535) of the CONNECT keep alive; a PINGREQ goes out every
            half of it.
        version: 4 (MQTT 3.1.1) or 5 (MQTT 5.0: ``mqtt.msg`` carries ``properties``,
            ``mqtt.pub`` may set them).
        tls: `cymongoose.TlsOpts` for ``mqtts://`` (CA to verify the broker with, client
            certificate); default ``TlsOpts()``: the system's CA certificates.
        app_id: the ``app_id`` of the master instance's scope.
        max_applications: live instances (master and workers) at most; spawning one more
            stops the least recently used worker (never the master).
        reconnect_min, reconnect_max: seconds of the first and the longest wait between
            connection attempts (doubling in between).
        max_pending: publishes kept while disconnected; beyond it the oldest are dropped
            (with a warning).
        manager: an `AsyncManager` already running (e.g. `ASGIServer.async_manager`), to
            share one event loop with an HTTP server; default: one of its own.
        shutdown_timeout_s: how long `stop` lets instances finish after
            ``mqtt.disconnect`` before cancelling them.
        connect_timeout_s: an attempt without CONNACK after this many seconds (TCP,
            TLS and CONNECT) is closed and counts as failed.
        mode: the mode of its own `AsyncManager` (``"auto"``, ``"integrated"``,
            ``"threaded"``); unused with ``manager``.
        sync_thread: while `handle` runs, asgiref's thread-sensitive ``sync_to_async``
            calls (Channels makes one per message) run on a
            `cymongoose.asgi.syncthread.SyncThread`, which costs two context switches per
            call instead of six (Linux; elsewhere asgiref's executor is kept). False:
            leave asgiref's executor alone.

    Raises:
        ValueError: naming the argument, for a url that is not ``mqtt://`` /
            ``mqtts://`` with a host, tls without ``mqtts://``, a keepalive, version,
            max_applications or reconnect delays out of range, a sync_thread that is not
            a bool.
    """

    def __init__(
        self,
        application: Callable[..., Any],
        url: str,
        *,
        client_id: str = "",
        username: str = "",
        password: str = "",
        clean_session: bool = True,
        keepalive: int = 60,
        version: int = 4,
        tls: TlsOpts | None = None,
        app_id: int | str = 0,
        max_applications: int = 1000,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        max_pending: int = 10000,
        manager: AsyncManager | None = None,
        shutdown_timeout_s: float = 5.0,
        connect_timeout_s: float = 10.0,
        mode: str = "auto",
        sync_thread: bool = True,
    ) -> None:
        check_url(url)
        if isinstance(keepalive, bool) or not isinstance(keepalive, int) \
                or not 1 <= keepalive <= 65535:
            raise ValueError(f"keepalive must be an int of 1-65535 seconds, got {keepalive!r}")
        if version not in (4, 5) or isinstance(version, bool):
            raise ValueError(f"version must be 4 (MQTT 3.1.1) or 5 (MQTT 5.0), got {version!r}")
        if not 0 < reconnect_min <= reconnect_max:
            raise ValueError(f"reconnect_min ({reconnect_min!r}) and reconnect_max "
                             f"({reconnect_max!r}) must satisfy 0 < min <= max")
        if isinstance(max_applications, bool) or not isinstance(max_applications, int) \
                or max_applications < 1:
            raise ValueError(f"max_applications must be an int >= 1, got {max_applications!r}")
        if not isinstance(sync_thread, bool):
            raise ValueError(f"sync_thread must be True or False, got {sync_thread!r}")
        if tls is not None and not url.startswith("mqtts://"):
            raise ValueError(f"tls needs an mqtts:// url, got {url!r}")
        super().__init__(application, max_applications=max_applications)
        self.url = url
        self.client_id = client_id or "cymongoose-" + secrets.token_hex(6)
        self._connect_kwargs = {"client_id": self.client_id, "username": username,
                                "password": password, "clean_session": clean_session,
                                "keepalive": keepalive, "version": version}
        if version == 5 and not clean_session:
            # MQTT 5 ends a session at disconnect unless CONNECT says otherwise (3.1.2.11.2):
            # keep it as MQTT 3.1.1 does, "does not expire".
            self._connect_kwargs["properties"] = [(0x11, 0xFFFFFFFF)]
        self.keepalive, self.version = keepalive, version
        self._tls = tls if tls is not None or not url.startswith("mqtts://") else TlsOpts()
        self.app_id = app_id
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.shutdown_timeout_s = shutdown_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._shared = manager
        self._mode = mode
        self.sync_thread = sync_thread
        self._am: AsyncManager | None = None
        self._direct = False  # mongoose events handled at once (integrated mode)
        self._conn: Any = None  # the live mongoose connection, None while disconnected
        self._attempt: Any = None  # the last connection opened (maybe still connecting)
        self._last_rx = 0.0  # time.monotonic() of the last packet from the broker
        self._connected = asyncio.Event()
        self._closed: asyncio.Event | None = None
        self._stopping = False
        self._stop_event: asyncio.Event | None = None
        self._greeted = False
        self._unread: list[dict[str, Any]] = []  # what a crashed master left
        self._retiring: set[asyncio.Future[Any]] = set()  # killed/evicted, still running
        #: scope id -> {topic filter: qos}: every live subscription, re-sent after CONNACK.
        self.subscriptions: dict[Any, dict[str, int]] = {}
        self._pending: deque[tuple[str, bytes, int, bool, Any]] = deque(maxlen=max_pending)

    # -- asgiref hooks --------------------------------------------------------------------

    @property
    def scope(self) -> dict[str, Any]:
        """The scope of the master instance."""
        return {"type": "mqtt", "app_id": self.app_id, "instance_type": "master",
                "asgi": {"version": "3.0"}}

    @property
    def connected(self) -> bool:
        """True while the broker has accepted our CONNECT and the connection is up."""
        return self._conn is not None

    def stop(self) -> None:
        """Ask `handle` to stop: ``mqtt.disconnect`` to every instance, DISCONNECT to the
        broker, then return (call from the event loop's thread)."""
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()

    async def arun(self) -> None:
        """`handle` with asgiref's `application_checker` beside it, until `stop`."""
        checker = asyncio.ensure_future(self.application_checker())
        try:
            await self.handle()
        finally:
            checker.cancel()
            await asyncio.gather(checker, return_exceptions=True)

    async def handle(self) -> None:
        """Connect, deliver messages to the app and reconnect until `stop`."""
        self._stop_event = asyncio.Event()
        self._connected = asyncio.Event()
        if self._stopping:
            self._stop_event.set()
        own_thread = self.sync_thread and syncthread.acquire()
        try:
            if self._shared is not None:
                await self._serve(self._shared)
                return
            async with AsyncManager(self._on_event, error_handler=self._log_error,
                                    mode=self._mode) as am:
                await self._serve(am)
        finally:
            if own_thread:
                syncthread.release()

    async def _serve(self, am: AsyncManager) -> None:
        self._am = am
        self._direct = am.mode == "integrated"
        tasks = [asyncio.ensure_future(self._connection_loop()),
                 asyncio.ensure_future(self._ping_loop())]
        try:
            assert self._stop_event is not None
            await self._stop_event.wait()
        finally:
            await self._shutdown(tasks)
            self._am = None
            self._direct = False

    async def application_send(self, scope: dict[str, Any], message: dict[str, Any]) -> None:
        """Carry out one message an instance sent; ValueError naming the bad field."""
        kind = message.get("type")
        scope_id = scope.get("app_id")
        if kind == "mqtt.pub":
            topic = field(message, "topic", str)
            payload = field(message, "payload", (bytes, bytearray, str))
            if isinstance(payload, str):
                payload = payload.encode()
            retain = bool(message["mqtt"].get("retain", False))
            props = pub_properties(message) if self.version == 5 else None
            self._publish(topic, bytes(payload), qos_of(message), retain, props)
        elif kind == "mqtt.sub":
            topic = field(message, "topic", str)
            qos = qos_of(message)
            if scope_id not in self.application_instances:
                return  # a killed or evicted instance, still finishing: nothing for it
            self.subscriptions.setdefault(scope_id, {})[topic] = qos
            self._call(lambda c: c.mqtt_sub(topic, qos))
        elif kind == "mqtt.usub":
            self._unsubscribe(scope_id, field(message, "topic", str))
        elif kind in ("mqttasgi.worker.spawn", "mqttasgi.worker.kill"):
            if scope.get("instance_type") != "master":
                raise ValueError(f"{kind!r}: only the master instance may spawn or kill "
                                 f"workers, not app_id {scope_id!r}")
            command = message.get("command")
            if not isinstance(command, dict) or "app_id" not in command:
                raise ValueError(f"{kind!r} message needs a 'command' dict with 'app_id', "
                                 f"got {command!r}")
            if kind == "mqttasgi.worker.spawn":
                self._spawn(command)
            else:
                self._kill(command["app_id"])
        else:
            raise ValueError(f"unknown message type {kind!r} for an mqtt scope; expected "
                             "'mqtt.pub', 'mqtt.sub', 'mqtt.usub', 'mqttasgi.worker.spawn' "
                             "or 'mqttasgi.worker.kill'")

    # -- instances (loop thread) -----------------------------------------------------------

    def _start(self, scope_id: Any, scope: dict[str, Any], application: Any) -> Any:
        """Start an application instance as asgiref does (same ``application_instances``
        entry), after making room under ``max_applications``; its first message is
        ``mqtt.connect``. Returns its input queue."""
        while len(self.application_instances) >= self.max_applications:
            workers = [(d["last_used"], sid) for sid, d in self.application_instances.items()
                       if sid != self.app_id]
            if not workers:
                break
            victim = min(workers, key=lambda w: w[0])[1]
            logger.warning("max_applications (%d) reached: stopping worker %r, the least "
                           "recently used", self.max_applications, victim)
            self._kill(victim)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        instance = guarantee_single_callable(application)
        future = asyncio.ensure_future(instance(
            scope=scope, receive=queue.get,
            send=lambda message: self.application_send(scope, message)))
        self.application_instances[scope_id] = {"input_queue": queue, "future": future,
                                                "scope": scope, "last_used": time.time()}
        queue.put_nowait({"type": "mqtt.connect", "mqtt": {}})  # mqttasgi's shape
        return queue

    def _master(self) -> Any:
        """The master instance's input queue; a new master (after a crash) gets
        ``mqtt.connect``, then what the old one left unread."""
        details = self.application_instances.get(self.app_id)
        if details is not None and details["future"].done():
            self._reap(self.app_id, details)
            details = None
        if details is not None:
            details["last_used"] = time.time()
            return details["input_queue"]
        queue = self._start(self.app_id, self.scope, self.application)
        for message in self._unread:
            queue.put_nowait(message)
        self._unread.clear()
        return queue

    def _spawn(self, command: dict[str, Any]) -> None:
        scope_id = command["app_id"]
        path = command.get("consumer_path")
        params = command.get("consumer_params") or {}
        if scope_id in self.application_instances:
            raise ValueError(f"'mqttasgi.worker.spawn': app_id {scope_id!r} is already running")
        if not isinstance(path, str) or not isinstance(params, dict):
            raise ValueError("'mqttasgi.worker.spawn': command needs 'consumer_path' (str, "
                             "e.g. 'app.consumers.Worker') and 'consumer_params' (dict), got "
                             f"{command!r}")
        module, _, attr = path.rpartition(".")
        target = import_app(path if ":" in path else f"{module}:{attr}")
        application = target.as_asgi() if hasattr(target, "as_asgi") else target
        scope = {"type": "mqtt", "app_id": scope_id, "instance_type": "worker",
                 "asgi": {"version": "3.0"}, **params}
        self._start(scope_id, scope, application)

    def _kill(self, scope_id: Any) -> None:
        """Stop an instance: ``mqtt.disconnect`` now, cancelled after
        ``shutdown_timeout_s``; its subscriptions end at once."""
        details = self.application_instances.pop(scope_id, None)
        if details is None:
            logger.warning("'mqttasgi.worker.kill': no worker with app_id %r", scope_id)
            return
        for topic in list(self.subscriptions.get(scope_id, ())):
            self._unsubscribe(scope_id, topic)
        self.subscriptions.pop(scope_id, None)
        future = details["future"]
        if future.done():
            self._log_outcome(future, details)
            return
        details["input_queue"].put_nowait(dict(_DISCONNECT))
        self._retiring.add(future)
        future.add_done_callback(lambda f: (self._retiring.discard(f),
                                            self._log_outcome(f, details)))
        asyncio.get_running_loop().call_later(self.shutdown_timeout_s, future.cancel)

    def _unsubscribe(self, scope_id: Any, topic: str) -> None:
        self.subscriptions.get(scope_id, {}).pop(topic, None)
        # The broker holds one subscription per filter for this client: keep it while
        # another instance still wants the filter.
        if not any(topic in subs for subs in self.subscriptions.values()):
            self._call(lambda c: c.mqtt_unsub(topic))

    async def application_checker(self) -> None:
        """asgiref's reaper: a finished instance is logged (with its exception) and
        dropped; a crashed master's unread messages go to a new master."""
        while True:
            await asyncio.sleep(self.application_checker_interval)
            for scope_id, details in list(self.application_instances.items()):
                if details["future"].done():
                    self._reap(scope_id, details)
            if self._unread and not self._stopping:
                self._master()

    def _reap(self, scope_id: Any, details: dict[str, Any]) -> None:
        self.application_instances.pop(scope_id, None)
        self._log_outcome(details["future"], details)
        queue = details["input_queue"]
        if scope_id == self.app_id:
            while not queue.empty():  # none is lost between a crash and the reaping
                message = queue.get_nowait()
                if message.get("type") == "mqtt.msg":
                    self._unread.append(message)
        else:
            for topic in list(self.subscriptions.get(scope_id, ())):
                self._unsubscribe(scope_id, topic)
            self.subscriptions.pop(scope_id, None)

    def _log_outcome(self, future: asyncio.Future[Any], details: dict[str, Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            asyncio.ensure_future(self.application_exception(future.exception(), details))

    async def application_exception(self, exception: BaseException,
                                    application_details: dict[str, Any]) -> None:
        """Log an instance's exception (with its traceback) on ``cymongoose.asgi.mqtt``."""
        logger.error("Exception in MQTT application instance %r",
                     application_details["scope"].get("app_id"), exc_info=exception)

    # -- the connection (loop thread) ------------------------------------------------------

    async def _connection_loop(self) -> None:
        delay = self.reconnect_min
        assert self._am is not None
        while True:
            self._closed = closed = asyncio.Event()
            try:
                conn = self._attempt = self._am.run_locked(self._connect)
            except Exception as exc:  # noqa: BLE001 (a bad host: retry like a lost broker)
                logger.error("MQTT connect to %s failed: %s", self.url, exc)
                closed.set()
            else:
                await self._await_connack(conn, closed)
            await closed.wait()
            if self._connected.is_set():
                delay = self.reconnect_min  # it was up: start the backoff again
            self._connected.clear()
            logger.warning("MQTT connection to %s lost; reconnecting in %.1f s", self.url, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max)

    def _connect(self, mgr: Any) -> Any:
        conn = mgr.mqtt_connect(self.url, handler=self._on_event, **self._connect_kwargs)
        # MG_EV_POLL, READ and WRITE (about seven per message under load) need no Python
        # call: _on_event does nothing with them.
        conn.io_events = False
        return conn

    async def _await_connack(self, conn: Any, closed: asyncio.Event) -> None:
        """Give up an attempt that got no CONNACK in ``connect_timeout_s`` (a broker or
        TLS handshake that never answers): close it, which reconnects."""
        waiters = [asyncio.ensure_future(closed.wait()),
                   asyncio.ensure_future(self._connected.wait())]
        try:
            done, _ = await asyncio.wait(waiters, timeout=self.connect_timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if not done and self._am is not None:
            logger.error("MQTT broker %s did not accept the connection within %.1f s",
                         self.url, self.connect_timeout_s)
            self._am.call_in_poll_thread(conn.close)

    async def _ping_loop(self) -> None:
        # A broker gone silent (no RST: a cable, a NAT) is noticed by its missing
        # PINGRESPs: nothing received for 1.5 keep alive periods closes the connection.
        while True:
            await asyncio.sleep(self.keepalive / 2)
            conn, am = self._conn, self._am
            if conn is None or am is None:
                continue
            if time.monotonic() - self._last_rx > self.keepalive * 1.5:
                logger.warning("MQTT broker %s has not answered for %.0f s: reconnecting",
                               self.url, time.monotonic() - self._last_rx)
                am.call_in_poll_thread(conn.close)
            else:
                am.call_in_poll_thread(conn.mqtt_ping)

    async def _shutdown(self, tasks: list[asyncio.Future[Any]]) -> None:
        """mqtt.disconnect to every instance; wait (``shutdown_timeout_s``) while the
        connection still carries what they send; then DISCONNECT and close."""
        self._stopping = True
        tasks[0].cancel()  # no reconnect from here on
        futures = set(self._retiring)
        for details in self.application_instances.values():
            if not details["future"].done():
                details["input_queue"].put_nowait(dict(_DISCONNECT))
                futures.add(details["future"])
        if futures:
            _done, late = await asyncio.wait(futures, timeout=self.shutdown_timeout_s)
            for future in late:
                future.cancel()
            if late:
                logger.warning("cancelled %d MQTT application instance(s) still running "
                               "%.1f s after mqtt.disconnect", len(late), self.shutdown_timeout_s)
                await asyncio.wait(late, timeout=1.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn, am, closed = self._conn, self._am, self._closed
        attempt = self._attempt
        if conn is None and attempt is not None and am is not None:
            am.call_in_poll_thread(attempt.close)  # still connecting: give it up
        if conn is not None and am is not None:
            am.call_in_poll_thread(lambda c: (c.mqtt_disconnect(), c.drain()), conn)
            if closed is not None:  # the DISCONNECT is on the wire before the loop goes
                try:
                    await asyncio.wait_for(closed.wait(), 2.0)
                except asyncio.TimeoutError:
                    am.call_in_poll_thread(conn.close)
        self._conn = None
        logger.info("Disconnected from MQTT broker %s", self.url)

    def _call(self, fn: Callable[[Any], Any]) -> None:
        conn, am = self._conn, self._am
        if conn is not None and am is not None:
            am.call_in_poll_thread(fn, conn)

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool,
                 props: Any) -> None:
        if self._conn is None:
            if len(self._pending) == self._pending.maxlen:
                logger.warning("MQTT: disconnected, dropping the oldest queued publish")
            self._pending.append((topic, payload, qos, retain, props))
            return
        self._call(lambda c: c.mqtt_pub(topic, payload, qos, retain, properties=props))

    def _opened(self, conn: Any, code: int) -> None:
        if code != 0:
            logger.error("MQTT broker %s refused the connection (CONNACK code %d)",
                         self.url, code)
            return  # mongoose closes it: MG_EV_CLOSE reconnects
        if self._stopping:
            if self._am is not None:  # an attempt that won the race with stop()
                self._am.call_in_poll_thread(conn.close)
            return
        self._conn = conn
        self._last_rx = time.monotonic()
        self._connected.set()
        if self._greeted:
            logger.info("Reconnected to MQTT broker %s", self.url)
        else:
            logger.info("Connected to MQTT broker %s as client id %s", self.url,
                        self.client_id)
        for subs in self.subscriptions.values():
            for topic, qos in subs.items():
                self._call(lambda c, t=topic, q=qos: c.mqtt_sub(t, q))
        while self._pending and self._conn is not None:
            self._publish(*self._pending.popleft())
        if not self._greeted:
            self._greeted = True
            self._master()  # a new instance: its first message is mqtt.connect

    def _closed_conn(self, conn: Any) -> None:
        if self._conn is conn:
            self._conn = None
        if self._closed is not None:
            self._closed.set()

    def _deliver(self, message: dict[str, Any]) -> None:
        topic = message["mqtt"]["topic"]
        targets = [sid for sid, subs in self.subscriptions.items()
                   if any(topic_matches(p, topic) for p in subs)]
        # A message no instance subscribed to (e.g. a persistent session's) goes to the
        # master, as in mqttasgi.
        for n, scope_id in enumerate(targets or [self.app_id]):
            copy = message if n == 0 else {**message, "mqtt": dict(message["mqtt"])}
            if scope_id == self.app_id:
                self._master().put_nowait(copy)
                continue
            details = self.application_instances.get(scope_id)
            if details is not None and not details["future"].done():
                details["last_used"] = time.time()
                details["input_queue"].put_nowait(copy)

    # -- mongoose events (poll thread; the loop thread in integrated mode) --------------------

    def _on_event(self, conn: Any, ev: int, data: Any) -> None:
        am = self._am
        if am is None:
            return
        if ev == MG_EV_MQTT_MSG:
            # data is only valid during this call: copy it out.
            mqtt = {"topic": data.topic, "payload": data.data, "qos": data.qos,
                    "retain": data.retain}
            if self.version == 5:
                mqtt["properties"] = received_properties(data.properties())
            message = {"type": "mqtt.msg", "mqtt": mqtt}
            if self._direct:
                self._deliver(message)
            else:
                am.schedule(lambda: self._deliver(message))
        elif ev == MG_EV_MQTT_CMD:
            self._last_rx = time.monotonic()
        elif ev == MG_EV_MQTT_OPEN:
            self._soon(am, lambda code=int(data): self._opened(conn, code))
        elif ev == MG_EV_CONNECT and self._tls is not None:
            conn.tls_init(self._tls)
        elif ev == MG_EV_ERROR:
            logger.error("MQTT connection to %s: %s", self.url, data)
        elif ev == MG_EV_CLOSE and conn.is_client:
            self._soon(am, lambda: self._closed_conn(conn))

    def _soon(self, am: AsyncManager, fn: Callable[[], Any]) -> None:
        # Integrated mode: handlers already run on the loop's thread, in event order.
        if self._direct:
            fn()
        else:
            am.schedule(fn)

    def _log_error(self, exc: BaseException) -> None:
        logger.error("MQTT server: %s", exc, exc_info=exc)
