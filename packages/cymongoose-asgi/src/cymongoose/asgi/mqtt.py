"""ASGI over MQTT: a stateless-protocol server on mongoose's MQTT client.

`MqttServer` subclasses asgiref's ``StatelessServer`` (install the extra
``cymongoose-asgi[mqtt]``). It connects to one broker with ``Manager.mqtt_connect`` on an
`cymongoose.aio.AsyncManager`, runs the application as one instance (scope id ``app_id``)
and speaks mqttasgi's messages, so consumers written for mqttasgi run unchanged:

- scope: ``{"type": "mqtt", "app_id": app_id, "instance_type": "master",
  "asgi": {"version": "3.0"}}`` (mqttasgi's instance started by the server is its
  "master"; the worker API lets only that one spawn workers);
- the app receives ``{"type": "mqtt.connect", "mqtt": {}}`` once the broker accepted the
  first CONNECT, ``{"type": "mqtt.msg", "mqtt": {"topic": str, "payload": bytes, "qos": int}}`` per
  PUBLISH received, and ``{"type": "mqtt.disconnect"}`` when the server stops;
- the app sends ``{"type": "mqtt.pub", "mqtt": {"topic", "payload", "qos", "retain"}}``,
  ``{"type": "mqtt.sub", "mqtt": {"topic", "qos"}}`` and
  ``{"type": "mqtt.usub", "mqtt": {"topic"}}``.

asgiref 3.x note: ``get_or_create_application_instance`` is synchronous and returns the
instance's input queue (some examples ``await`` it, which fails).

The connection is re-made after a loss with exponential backoff, and every subscription
the app made is sent again after each CONNACK. Messages the app publishes while the
broker is unreachable are queued (up to ``max_pending``) and sent after the reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from asgiref.server import StatelessServer
from cymongoose import MG_EV_CLOSE, MG_EV_ERROR, MG_EV_MQTT_MSG, MG_EV_MQTT_OPEN
from cymongoose.aio import AsyncManager

__all__ = ["MqttServer", "topic_matches"]

logger = logging.getLogger("cymongoose.asgi.mqtt")


def topic_matches(pattern: str, topic: str) -> bool:
    """True if ``topic`` matches the MQTT filter ``pattern`` (``+`` one level, ``#`` the
    rest; ``$share/GROUP/`` is stripped; MQTT 3.1.1 section 4.7)."""
    if pattern.startswith("$share/"):
        pattern = pattern.split("/", 2)[2] if pattern.count("/") >= 2 else ""
    if topic.startswith("$") and not pattern.startswith("$"):
        return False  # 4.7.2: wildcards at the first level do not match $SYS/...
    pat, top = pattern.split("/"), topic.split("/")
    for i, level in enumerate(pat):
        if level == "#":
            return True
        if i >= len(top) or (level != "+" and level != top[i]):
            return False
    return len(pat) == len(top)


def _field(message: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    mqtt = message.get("mqtt")
    if not isinstance(mqtt, dict):
        raise ValueError(f"{message.get('type')!r} message needs an 'mqtt' dict, got {mqtt!r}")
    value = mqtt.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise ValueError(f"{message.get('type')!r}: mqtt[{key!r}] is invalid: {value!r}")
    return value


def _qos(message: dict[str, Any]) -> int:
    mqtt = message.get("mqtt") or {}
    qos = mqtt.get("qos", 0) if isinstance(mqtt, dict) else 0
    if isinstance(qos, bool) or qos not in (0, 1, 2):
        raise ValueError(f"{message.get('type')!r}: mqtt['qos'] must be 0, 1 or 2, got {qos!r}")
    return int(qos)


class MqttServer(StatelessServer):  # type: ignore[misc]
    """Serve an ASGI application from an MQTT broker.

    Args:
        application: the ASGI 3 application (e.g. a Channels ``ProtocolTypeRouter``).
        url: the broker, ``mqtt://HOST:PORT`` (``mqtts://`` for TLS).
        client_id, username, password: CONNECT fields (empty: none; the broker then picks
            a client id, which MQTT 3.1.1 allows only with ``clean_session``).
        clean_session: the CONNECT clean session flag.
        keepalive: seconds (1-65535) of the CONNECT keep alive; a PINGREQ goes out every
            half of it.
        app_id: the ``app_id`` of the application instance's scope.
        max_applications: asgiref's limit on live instances.
        reconnect_min, reconnect_max: seconds of the first and the longest wait between
            connection attempts (doubling in between).
        max_pending: publishes kept while disconnected; beyond it the oldest are dropped
            (with a warning).

    Raises:
        ValueError: naming the argument, for a url that is not mqtt:// or mqtts://, a
            keepalive out of range or non-positive reconnect delays.
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
        app_id: int | str = 0,
        max_applications: int = 1000,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        max_pending: int = 10000,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("mqtt://", "mqtts://")):
            raise ValueError(f"url must start with mqtt:// or mqtts://, got {url!r}")
        if isinstance(keepalive, bool) or not isinstance(keepalive, int) \
                or not 1 <= keepalive <= 65535:
            raise ValueError(f"keepalive must be an int of 1-65535 seconds, got {keepalive!r}")
        if not 0 < reconnect_min <= reconnect_max:
            raise ValueError(f"reconnect_min ({reconnect_min!r}) and reconnect_max "
                             f"({reconnect_max!r}) must satisfy 0 < min <= max")
        super().__init__(application, max_applications=max_applications)
        self.url = url
        self._connect_kwargs = {"client_id": client_id, "username": username,
                                "password": password, "clean_session": clean_session,
                                "keepalive": keepalive}
        self.keepalive = keepalive
        self.app_id = app_id
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self._am: AsyncManager | None = None
        self._conn: Any = None  # the live mongoose connection, None while disconnected
        self._connected = asyncio.Event()
        self._closed: asyncio.Event | None = None
        self._stopping = False
        self._stop_event: asyncio.Event | None = None
        self._greeted = False
        self._unread: dict[Any, list[dict[str, Any]]] = {}
        # app_id -> {topic filter: qos}; re-sent after every CONNACK.
        self.subscriptions: dict[Any, dict[str, int]] = {}
        self._pending: deque[tuple[str, bytes, int, bool]] = deque(maxlen=max_pending)

    # -- asgiref hooks --------------------------------------------------------------------

    @property
    def scope(self) -> dict[str, Any]:
        """The scope of the application instance."""
        return {"type": "mqtt", "app_id": self.app_id, "instance_type": "master",
                "asgi": {"version": "3.0"}}

    def stop(self) -> None:
        """Ask `handle` to disconnect and return (from the loop's thread)."""
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()

    async def handle(self) -> None:
        """Connect, deliver messages to the app and reconnect until `stop`."""
        self._stop_event = asyncio.Event()
        self._connected = asyncio.Event()
        if self._stopping:
            self._stop_event.set()
        async with AsyncManager(self._on_event, error_handler=self._log_error) as am:
            self._am = am
            tasks = [asyncio.ensure_future(self._connection_loop()),
                     asyncio.ensure_future(self._ping_loop())]
            try:
                await self._stop_event.wait()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self._shutdown()
            self._am = None

    async def application_send(self, scope: dict[str, Any], message: dict[str, Any]) -> None:
        """Carry out one message the app sent; ValueError naming the bad field."""
        kind = message.get("type")
        if kind == "mqtt.pub":
            topic = _field(message, "topic", str)
            payload = _field(message, "payload", (bytes, bytearray, str))
            if isinstance(payload, str):
                payload = payload.encode()
            retain = bool(message["mqtt"].get("retain", False))
            self._publish(topic, bytes(payload), _qos(message), retain)
        elif kind == "mqtt.sub":
            topic = _field(message, "topic", str)
            qos = _qos(message)
            self.subscriptions.setdefault(scope.get("app_id"), {})[topic] = qos
            self._call(lambda c: c.mqtt_sub(topic, qos))
        elif kind == "mqtt.usub":
            topic = _field(message, "topic", str)
            self.subscriptions.get(scope.get("app_id"), {}).pop(topic, None)
            self._call(lambda c: c.mqtt_unsub(topic))
        else:
            raise ValueError(f"unknown message type {kind!r} for an mqtt scope; expected "
                             "'mqtt.pub', 'mqtt.sub' or 'mqtt.usub'")

    # -- the connection (loop thread) ------------------------------------------------------

    async def _connection_loop(self) -> None:
        delay = self.reconnect_min
        assert self._am is not None
        while True:
            self._closed = asyncio.Event()
            try:
                self._am.mqtt_connect(self.url, handler=self._on_event, **self._connect_kwargs)
            except Exception as exc:  # noqa: BLE001 (a bad host: retry like a lost broker)
                logger.error("MQTT connect to %s failed: %s", self.url, exc)
                self._closed.set()
            await self._closed.wait()
            if self._connected.is_set():
                delay = self.reconnect_min  # it was up: start the backoff again
            self._connected.clear()
            logger.warning("MQTT connection to %s lost; reconnecting in %.1f s", self.url, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max)

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive / 2)
            self._call(lambda c: c.mqtt_ping())

    async def _shutdown(self) -> None:
        queue = self.application_instances.get(self.app_id, {}).get("input_queue")
        if queue is not None:
            queue.put_nowait({"type": "mqtt.disconnect"})
            await asyncio.sleep(0)  # let the app see it before the connection goes
        self._call(lambda c: c.mqtt_disconnect())
        conn, self._conn = self._conn, None
        if conn is not None and self._am is not None:
            self._am.call_in_poll_thread(conn.drain)

    def _call(self, fn: Callable[[Any], Any]) -> None:
        conn, am = self._conn, self._am
        if conn is not None and am is not None:
            am.call_in_poll_thread(fn, conn)

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if self._conn is None:
            if len(self._pending) == self._pending.maxlen:
                logger.warning("MQTT: disconnected, dropping the oldest queued publish")
            self._pending.append((topic, payload, qos, retain))
            return
        self._call(lambda c: c.mqtt_pub(topic, payload, qos, retain))

    def _opened(self, conn: Any, code: int) -> None:
        if code != 0:
            logger.error("MQTT broker %s refused the connection (CONNACK code %d)",
                         self.url, code)
            return  # mongoose closes it: MG_EV_CLOSE reconnects
        self._conn = conn
        self._connected.set()
        logger.info("MQTT connected to %s", self.url)
        for subs in self.subscriptions.values():
            for topic, qos in subs.items():
                self._call(lambda c, t=topic, q=qos: c.mqtt_sub(t, q))
        while self._pending and self._conn is not None:
            self._publish(*self._pending.popleft())
        if not self._greeted:
            self._greeted = True
            self._instance()  # a new instance: its first message is mqtt.connect

    def _closed_conn(self, conn: Any) -> None:
        if self._conn is conn:
            self._conn = None
        if self._closed is not None:
            self._closed.set()

    def _deliver(self, topic: str, payload: bytes, qos: int) -> None:
        message = {"type": "mqtt.msg", "mqtt": {"topic": topic, "payload": payload, "qos": qos}}
        targets = [app_id for app_id, subs in self.subscriptions.items()
                   if any(topic_matches(p, topic) for p in subs)]
        # A message no instance subscribed to (e.g. a persistent session's) goes to the app.
        for app_id in targets or [self.app_id]:
            if app_id == self.app_id:
                self._instance().put_nowait(message)

    async def application_checker(self) -> None:
        """asgiref's reaper, keeping what a finished instance left unread (see `_reap`)."""
        while True:
            await asyncio.sleep(self.application_checker_interval)
            for scope_id, details in list(self.application_instances.items()):
                if details["future"].done():
                    self._reap(scope_id, details)
            if self._unread.get(self.app_id) and not self._stopping:
                self._instance()  # a crashed app left messages: a new instance takes them

    def _reap(self, scope_id: Any, details: dict[str, Any]) -> None:
        """Drop a finished instance, log its exception, keep its unread messages for the
        next instance (so none is lost between a crash and the reaping)."""
        self.application_instances.pop(scope_id, None)
        future = details["future"]
        if not future.cancelled() and future.exception() is not None:
            asyncio.ensure_future(self.application_exception(future.exception(), details))
        queue = details["input_queue"]
        while not queue.empty():
            message = queue.get_nowait()
            if message.get("type") != "mqtt.connect":
                self._unread.setdefault(scope_id, []).append(message)

    def _instance(self) -> asyncio.Queue[Any]:
        """The app instance's input queue. A new instance gets ``mqtt.connect`` first,
        then what a finished one left unread."""
        details = self.application_instances.get(self.app_id)
        if details is not None and details["future"].done():
            self._reap(self.app_id, details)
        fresh = self.app_id not in self.application_instances
        # asgiref 3.x: synchronous, returns the input queue (and creates the instance).
        queue: asyncio.Queue[Any] = self.get_or_create_application_instance(
            self.app_id, self.scope)
        if fresh:
            queue.put_nowait({"type": "mqtt.connect", "mqtt": {}})  # mqttasgi's shape
            for message in self._unread.pop(self.app_id, []):
                queue.put_nowait(message)
        return queue

    # -- mongoose events (poll thread; the loop thread in integrated mode) --------------------

    def _on_event(self, conn: Any, ev: int, data: Any) -> None:
        am = self._am
        if am is None:
            return
        if ev == MG_EV_MQTT_MSG:
            # data is only valid during this call: copy it out.
            am.schedule(lambda t=data.topic, p=data.data, q=data.qos: self._deliver(t, p, q))
        elif ev == MG_EV_MQTT_OPEN:
            am.schedule(lambda code=int(data): self._opened(conn, code))
        elif ev == MG_EV_ERROR:
            logger.error("MQTT connection to %s: %s", self.url, data)
        elif ev == MG_EV_CLOSE and conn.is_client:
            am.schedule(lambda: self._closed_conn(conn))

    def _log_error(self, exc: BaseException) -> None:
        logger.error("MQTT server: %s", exc, exc_info=exc)
