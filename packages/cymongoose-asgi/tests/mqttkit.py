"""What the MQTT tests share: a real mosquitto on a free port, the test's own MQTT
client (the core's Manager, polled by the test thread) and an MqttServer in a thread."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cymongoose import MG_EV_CONNECT, MG_EV_MQTT_MSG, MG_EV_MQTT_OPEN, Manager, TlsOpts

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
DEADLINE_S = 20  # generous: the machine may be loaded


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """mosquitto on a free loopback port; `stop` and `start` again keep the port (and,
    with ``persistence``, the sessions, saved on SIGTERM). ``tls``: (ca, cert, key,
    require_certificate) PEM paths for an mqtts listener."""

    def __init__(self, tmp_path: Path, *, persistence: bool = False,
                 tls: tuple[Path, Path, Path, bool] | None = None) -> None:
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
        self.port = free_port()
        store = tmp_path / "mosquitto-db"
        store.mkdir(exist_ok=True)
        self.scheme = "mqtts" if tls else "mqtt"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                 f"persistence {'true' if persistence else 'false'}",
                 f"persistence_location {store}/", "autosave_interval 1"]
        if os.geteuid() == 0:  # else it runs as the user mosquitto, who cannot write there
            lines.append("user root")
        if tls:
            ca, cert, key, require = tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}",
                      f"require_certificate {'true' if require else 'false'}"]
        self.conf = tmp_path / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read() if self.proc.stderr else b""
                    pytest.fail(f"mosquitto did not start: {err!r}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(DEADLINE_S)
        self.proc = None


@pytest.fixture
def mosquitto(tmp_path: Path):
    broker = Mosquitto(tmp_path)
    yield broker
    broker.stop()


@pytest.fixture
def broker(mosquitto: Mosquitto) -> str:
    """The mqtt:// URL of a fresh mosquitto."""
    return mosquitto.url


class Client:
    """The test's own MQTT client: the core's Manager, polled by `wait_for`."""

    def __init__(self, url: str, client_id: str = "test-client", *, version: int = 4,
                 tls: TlsOpts | None = None) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.messages: list[dict] = []  # topic, payload, retain, properties
        self.readies = 0  # echoes of the readiness probe, kept out of received
        self.open = False
        self.tls = tls
        self.mgr = Manager(self._handler)
        self.conn = self.mgr.mqtt_connect(url, client_id=client_id, version=version)
        self.wait_for(lambda: self.open, "CONNACK")

    def _handler(self, conn, ev, data):
        if ev == MG_EV_CONNECT and self.tls is not None:
            conn.tls_init(self.tls)
        elif ev == MG_EV_MQTT_OPEN:
            self.open = data == 0
        elif ev == MG_EV_MQTT_MSG and data.topic == "out/ready":
            self.readies += 1
        elif ev == MG_EV_MQTT_MSG:
            self.received.append((data.topic, data.data))
            self.messages.append({"topic": data.topic, "payload": data.data,
                                  "retain": data.retain, "properties": data.properties()})

    def wait_for(self, cond, what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.mgr.poll(20)

    def subscribed(self) -> None:
        """Wait until the app's subscriptions are in place: it echoes what arrives on
        ``ready`` to ``out/ready`` (the app must subscribe to ``ready``)."""
        self.conn.mqtt_sub("out/#", qos=1)

        def echoed():
            if not self.readies:
                self.conn.mqtt_pub("ready", b"?", qos=0)
                self.mgr.poll(50)
            return self.readies > 0

        self.wait_for(echoed, "the app's subscriptions")

    def close(self) -> None:
        self.mgr.close()


class Running:
    """An MqttServer (or ``server_class``, a subclass) in a thread with its own loop."""

    def __init__(self, app, url: str, server_class=None, **kwargs) -> None:
        from cymongoose.asgi.mqtt import MqttServer

        self.server = (server_class or MqttServer)(app, url, **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        async def main():
            self.loop = asyncio.get_running_loop()
            await self.server.arun()

        asyncio.run(main())

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the server's loop and return its result."""
        while self.loop is None:
            time.sleep(0.01)
        done = threading.Event()
        out = []
        self.loop.call_soon_threadsafe(lambda: (out.append(fn(*args)), done.set()))
        assert done.wait(DEADLINE_S)
        return out[0]

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        self.call(self.server.stop)
        self.thread.join(DEADLINE_S)
        assert not self.thread.is_alive(), "the server did not stop"


def echo_app(events: list):
    """Subscribes to in/+/x and ready on connect; echoes each message to out/...;
    b"unsub" makes it unsubscribe from in/+/x and subscribe to marker; b"boom" makes it
    raise."""

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


class EchoWorker:
    """A worker consumer (``consumer_path="mqttkit.EchoWorker"``): subscribes to
    ``work/<app_id>``, says ``out/hello/<app_id>``, echoes to ``out/work/<app_id>`` with
    its ``tag`` param, raises on b"boom", says ``out/bye/<app_id>`` on mqtt.disconnect."""

    @classmethod
    def as_asgi(cls):
        async def app(scope, receive, send):
            me, tag = scope["app_id"], scope.get("tag", "")
            assert scope["instance_type"] == "worker"
            while True:
                event = await receive()
                if event["type"] == "mqtt.connect":
                    await send({"type": "mqtt.sub", "mqtt": {"topic": f"work/{me}", "qos": 1}})
                    await _say(send, f"out/hello/{me}", b"hi")
                elif event["type"] == "mqtt.msg":
                    if event["mqtt"]["payload"] == b"boom":
                        raise RuntimeError(f"worker {me} exploded")
                    await _say(send, f"out/work/{me}", tag.encode() + event["mqtt"]["payload"])
                elif event["type"] == "mqtt.disconnect":
                    await _say(send, f"out/bye/{me}", b"bye")
                    return

        return app


async def _say(send, topic: str, payload: bytes) -> None:
    await send({"type": "mqtt.pub", "mqtt": {"topic": topic, "payload": payload, "qos": 1}})


def master_app(events: list):
    """Subscribes to ctl/# and ready; ``ctl/spawn/<id>`` (payload: the tag) spawns an
    EchoWorker, ``ctl/kill/<id>`` kills it, ``ctl/bad`` sends a spawn with a bad path;
    errors of its sends go to ``out/error``; anything else is echoed to ``out/...``."""

    async def app(scope, receive, send):
        assert scope["instance_type"] == "master"
        while True:
            event = await receive()
            events.append(event)
            if event["type"] == "mqtt.connect":
                await send({"type": "mqtt.sub", "mqtt": {"topic": "ctl/#", "qos": 1}})
                await send({"type": "mqtt.sub", "mqtt": {"topic": "ready", "qos": 0}})
            elif event["type"] == "mqtt.msg":
                topic, payload = event["mqtt"]["topic"], event["mqtt"]["payload"]
                parts = topic.split("/")
                try:
                    if topic.startswith("ctl/spawn/"):
                        await send({"type": "mqttasgi.worker.spawn", "command": {
                            "app_id": parts[2], "consumer_path": "mqttkit.EchoWorker",
                            "consumer_params": {"tag": payload.decode()}}})
                    elif topic.startswith("ctl/kill/"):
                        await send({"type": "mqttasgi.worker.kill",
                                    "command": {"app_id": parts[2]}})
                    elif topic == "ctl/bad":
                        await send({"type": "mqttasgi.worker.spawn", "command": {
                            "app_id": "x", "consumer_path": "no_such_module.Consumer",
                            "consumer_params": {}}})
                    else:
                        await _say(send, "out/" + topic, payload)
                except Exception as exc:  # noqa: BLE001
                    await _say(send, "out/error", str(exc).encode())
            elif event["type"] == "mqtt.disconnect":
                return

    return app
