"""ASGI over MQTT against a real broker (mosquitto, started here on a free port).

The server runs in a thread with its own asyncio loop; the test thread talks to the
broker with the core's MQTT client (a plain Manager it polls itself).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("asgiref", reason="asgiref is the [mqtt] extra")

from cymongoose import MG_EV_MQTT_MSG, MG_EV_MQTT_OPEN, Manager  # noqa: E402
from cymongoose.asgi.mqtt import MqttServer, topic_matches  # noqa: E402

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
DEADLINE_S = 20  # generous: the machine may be loaded


@pytest.fixture
def broker(tmp_path: Path):
    """mosquitto on a free loopback port; yields its mqtt:// URL."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mosquitto did not start: {proc.stderr.read()!r}")
                time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


class Client:
    """The test's own MQTT client: the core's Manager, polled by `wait_for`."""

    def __init__(self, url: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.readies = 0  # echoes of the readiness probe, kept out of received
        self.open = False
        self.mgr = Manager(self._handler)
        self.conn = self.mgr.mqtt_connect(url, client_id="test-client")
        self.wait_for(lambda: self.open, "CONNACK")

    def _handler(self, conn, ev, data):
        if ev == MG_EV_MQTT_OPEN:
            self.open = data == 0
        elif ev == MG_EV_MQTT_MSG and data.topic == "out/ready":
            self.readies += 1
        elif ev == MG_EV_MQTT_MSG:
            self.received.append((data.topic, data.data))

    def wait_for(self, cond, what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.mgr.poll(20)

    def close(self) -> None:
        self.mgr.close()


class Running:
    """An MqttServer in a thread with its own loop."""

    def __init__(self, app, url: str, **kwargs) -> None:
        self.server = MqttServer(app, url, **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        async def main():
            self.loop = asyncio.get_running_loop()
            await self.server.arun()

        asyncio.run(main())

    def stop(self) -> None:
        while self.loop is None:
            time.sleep(0.01)
        self.loop.call_soon_threadsafe(self.server.stop)
        self.thread.join(DEADLINE_S)
        assert not self.thread.is_alive(), "the server did not stop"


def echo_app(events: list):
    """Subscribes to in/+/x on connect; echoes each message to out/...; b"unsub" makes
    it unsubscribe from in/+/x and subscribe to marker; b"boom" makes it raise."""

    async def app(scope, receive, send):
        assert scope["type"] == "mqtt" and scope["instance_type"] == "master"
        while True:
            event = await receive()
            events.append(event)
            if event["type"] == "mqtt.connect":
                await send({"type": "mqtt.sub", "mqtt": {"topic": "in/+/x", "qos": 1}})
                await send({"type": "mqtt.sub", "mqtt": {"topic": "ready", "qos": 0}})
            elif event["type"] == "mqtt.msg":
                msg = event["mqtt"]
                if msg["payload"] == b"boom":
                    raise RuntimeError("consumer exploded")
                if msg["payload"] == b"unsub":
                    await send({"type": "mqtt.usub", "mqtt": {"topic": "in/+/x"}})
                    await send({"type": "mqtt.sub", "mqtt": {"topic": "marker", "qos": 1}})
                out = "out/" + msg["topic"]
                await send({"type": "mqtt.pub", "mqtt": {"topic": out, "payload": msg["payload"],
                                                         "qos": 1, "retain": False}})
            elif event["type"] == "mqtt.disconnect":
                return

    return app


def _subscribed(client: Client, events: list) -> None:
    """Wait until the app's subscriptions are in place: it echoes what arrives on ready."""
    client.conn.mqtt_sub("out/#", qos=1)

    def echoed():
        if not client.readies:
            client.conn.mqtt_pub("ready", b"?", qos=0)
            client.mgr.poll(50)
        return client.readies > 0

    client.wait_for(echoed, "the app's subscriptions")


def test_message_in_app_publishes_back(broker):
    events: list = []
    server = Running(echo_app(events), broker, client_id="asgi-app")
    client = Client(broker)
    try:
        _subscribed(client, events)
        client.conn.mqtt_pub("in/a/x", b"hello", qos=1)
        client.wait_for(lambda: client.received, "the echo")
        assert client.received == [("out/in/a/x", b"hello")]
        msgs = [e for e in events if e["type"] == "mqtt.msg" and e["mqtt"]["topic"] == "in/a/x"]
        assert msgs == [{"type": "mqtt.msg",
                         "mqtt": {"topic": "in/a/x", "payload": b"hello", "qos": 1}}]
        assert events[0] == {"type": "mqtt.connect", "mqtt": {}}
    finally:
        server.stop()
        client.close()
    assert events[-1] == {"type": "mqtt.disconnect"}


def test_usub_stops_delivery_wildcards(broker):
    events: list = []
    server = Running(echo_app(events), broker)
    client = Client(broker)
    try:
        _subscribed(client, events)
        client.conn.mqtt_pub("in/b/y", b"not matched", qos=1)  # + matches one level only
        client.conn.mqtt_pub("in/b/x", b"unsub", qos=1)
        client.wait_for(lambda: ("out/in/b/x", b"unsub") in client.received, "unsub echo")
        # The app now listens on marker only: in/c/x, sent before marker, must not come.
        client.conn.mqtt_pub("in/c/x", b"after", qos=1)
        client.conn.mqtt_pub("marker", b"m", qos=1)
        client.wait_for(lambda: ("out/marker", b"m") in client.received, "marker echo")
        topics = [t for t, _ in client.received]
        assert topics == ["out/in/b/x", "out/marker"]
    finally:
        server.stop()
        client.close()


def test_raising_app_is_logged_and_server_goes_on(broker, caplog):
    events: list = []
    server = Running(echo_app(events), broker)
    client = Client(broker)
    try:
        with caplog.at_level(logging.ERROR):
            _subscribed(client, events)
            client.conn.mqtt_pub("in/d/x", b"boom", qos=1)
            client.conn.mqtt_pub("in/d/x", b"still here", qos=1)
            client.wait_for(lambda: client.received, "the echo after the crash")
        assert client.received == [("out/in/d/x", b"still here")]
        assert "consumer exploded" in caplog.text
    finally:
        server.stop()
        client.close()


def test_bad_message_from_app_raises_naming_the_field(broker, caplog):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "mqtt.pub", "mqtt": {"topic": "t", "payload": b"x", "qos": 7}})

    server = Running(app, broker)
    try:
        with caplog.at_level(logging.ERROR):
            deadline = time.monotonic() + DEADLINE_S
            while "qos" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
        assert "mqtt['qos'] must be 0, 1 or 2, got 7" in caplog.text
    finally:
        server.stop()


@pytest.mark.parametrize(("pattern", "topic", "expected"), [
    ("a/+/c", "a/b/c", True), ("a/+/c", "a/b/d/c", False), ("a/#", "a/b/c", True),
    ("#", "$SYS/x", False), ("$share/g/a/+", "a/b", True), ("a/b", "a/b/c", False),
])
def test_topic_matches(pattern, topic, expected):
    assert topic_matches(pattern, topic) is expected


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"url": "http://x"}, "url"), ({"keepalive": 0}, "keepalive"),
    ({"reconnect_min": 0}, "reconnect_min"),
])
def test_bad_arguments_name_themselves(kwargs, word):
    args = {"url": "mqtt://127.0.0.1:1883", **kwargs}
    with pytest.raises(ValueError, match=word):
        MqttServer(lambda *a: None, args.pop("url"), **args)
