"""What the MQTT integration tests share: a mosquitto broker on a free port, a paho-mqtt
test client, and a server process (cymongoose's MQTT server or mqttasgi) running one of
the consumers of ``apps/mqtt_consumers.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

paho = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is a test dependency")
pytest.importorskip("mqttasgi", reason="mqttasgi is a test dependency")
pytest.importorskip("asgiref", reason="asgiref is cymongoose-asgi's [mqtt] extra")

APPS = Path(__file__).parent / "apps"
MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
DEADLINE_S = 30.0  # generous: the machine may be loaded


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """mosquitto on a free loopback port; yields (host, port)."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
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
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(10)


class Client:
    """A paho-mqtt client on its own thread; ``messages`` collects (topic, payload, qos,
    retain) as they arrive."""

    def __init__(self, broker: tuple[str, int], client_id: str) -> None:
        self.messages: list[tuple[str, bytes, int, bool]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        self.client.connect(*broker)
        self.client.loop_start()
        self.wait_for(self.client.is_connected, "the test client's CONNACK")

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001 (paho's callback)
        with self.lock:
            self.messages.append((msg.topic, msg.payload, msg.qos, bool(msg.retain)))

    def subscribe(self, topic: str, qos: int = 2) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic, qos)
        assert done.wait(DEADLINE_S), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(DEADLINE_S)

    def received(self, prefix: str = "") -> list[tuple[str, bytes, int, bool]]:
        with self.lock:
            return [m for m in self.messages if m[0].startswith(prefix)]

    def wait_for(self, cond: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def server_argv(kind: str, broker: tuple[str, int], app: str, client_id: str,
                extra: tuple[str, ...] = ()) -> list[str]:
    """The command line serving ``apps/mqtt_consumers.py``'s ``app`` from ``broker``:
    ``kind`` "cymongoose" (``cymongoose-asgi --mqtt``) or "mqttasgi" (its own command
    line)."""
    spec = f"mqtt_consumers:{app}"
    if kind == "mqttasgi":
        exe = shutil.which("mqttasgi", path=str(Path(sys.executable).parent))
        assert exe, "mqttasgi's command line is not installed next to this Python"
        return [exe, "-H", broker[0], "-p", str(broker[1]), "-i", client_id, spec]
    url = f"mqtt://{broker[0]}:{broker[1]}"
    return [sys.executable, "-m", "cymongoose.asgi", "--mqtt", url, "--mqtt-client-id",
            client_id, *extra, spec]


class ServerProcess:
    """A server process serving a consumer; ``stop()`` sends SIGTERM and waits."""

    def __init__(self, kind: str, broker: tuple[str, int], app: str, client_id: str,
                 env: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> None:
        self.log = tempfile.TemporaryFile()
        environ = dict(os.environ, PYTHONPATH=str(APPS), **(env or {}))
        argv = server_argv(kind, broker, app, client_id, extra)
        self.proc = subprocess.Popen(argv, cwd=APPS,
                                     env=environ, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> str:
        """Stop it (SIGTERM, then SIGKILL after DEADLINE_S); return its output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out = self.output()
        self.log.close()
        return out


def wait_ready(client: Client, server: ServerProcess, name: str = "worker") -> None:
    """Wait for the consumer's ``ready/<name>`` (its subscriptions are then in place)."""
    def ready() -> bool:
        assert server.alive(), f"the server exited:\n{server.output()}"
        return any(m[0] == f"ready/{name}" for m in client.received("ready/"))

    client.wait_for(ready, f"ready/{name} from the consumer")
