"""``cymongoose-asgi --mqtt URL``: the real command in a subprocess against mosquitto."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("asgiref", reason="asgiref is the [mqtt] extra")

from mqttkit import DEADLINE_S, Client, free_port  # noqa: E402

APP = '''
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            await send({"type": event["type"] + ".complete"})
            if event["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"web " + scope["path"].encode()})
        return
    assert scope["type"] == "mqtt"
    while True:
        event = await receive()
        if event["type"] == "mqtt.connect":
            await send({"type": "mqtt.sub", "mqtt": {"topic": "in/#", "qos": 1}})
            await send({"type": "mqtt.sub", "mqtt": {"topic": "ready", "qos": 0}})
        elif event["type"] == "mqtt.msg":
            await send({"type": "mqtt.pub", "mqtt": {
                "topic": "out/" + event["mqtt"]["topic"], "payload": event["mqtt"]["payload"],
                "qos": 1}})
        elif event["type"] == "mqtt.disconnect":
            await send({"type": "mqtt.pub", "mqtt": {"topic": "out/bye", "payload": b"bye",
                                                     "qos": 1}})
            return
'''


class Cli:
    """``python -m cymongoose.asgi ARGS app:app`` with stderr collected in a file."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        (tmp_path / "app.py").write_text(APP)
        self.log = tmp_path / "stderr.txt"
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cymongoose.asgi", "--app-dir", str(tmp_path),
                 *args, "app:app"], stdout=err, stderr=err,
                env={**os.environ, **(env or {})})

    def text(self) -> str:
        return self.log.read_text()

    def wait_log(self, needle: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while needle not in self.text():
            assert self.proc.poll() is None, f"exited: {self.text()}"
            assert time.monotonic() < deadline, f"no {needle!r} in: {self.text()}"
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(DEADLINE_S)


def test_mqtt_only_round_trip_and_sigterm(tmp_path, broker):
    cli = Cli(tmp_path, "--mqtt", broker, "--mqtt-client-id", "cli-1",
              env={"CYMONGOOSE_MQTT_KEEPALIVE": "30"})
    client = Client(broker)
    try:
        cli.wait_log(f"Connected to MQTT broker {broker} as client id cli-1")
        client.subscribed()
        client.conn.mqtt_pub("in/a", b"hello", qos=1)
        client.wait_for(lambda: ("out/in/a", b"hello") in client.received, "the echo")
        assert "running on" not in cli.text()  # --mqtt alone: no HTTP listener
        started = time.monotonic()
        assert cli.stop() == 0
        assert time.monotonic() - started < 10  # promptly, on a loaded machine too
        # The app saw mqtt.disconnect and its last publish went out before DISCONNECT.
        client.wait_for(lambda: ("out/bye", b"bye") in client.received, "the goodbye")
    finally:
        cli.stop()
        client.close()
    text = cli.text()
    assert "Application startup complete." in text and "Application shutdown complete." in text
    assert "Disconnected from MQTT broker" in text and "Traceback" not in text


def test_mqtt_and_http_in_one_process(tmp_path, broker):
    port = free_port()
    cli = Cli(tmp_path, "--mqtt", broker, "--port", str(port))
    client = Client(broker)
    try:
        cli.wait_log(f"running on http://127.0.0.1:{port}")
        cli.wait_log("Connected to MQTT broker")
        client.subscribed()
        client.conn.mqtt_pub("in/b", b"x", qos=1)
        assert httpx.get(f"http://127.0.0.1:{port}/page", timeout=DEADLINE_S).text == "web /page"
        client.wait_for(lambda: ("out/in/b", b"x") in client.received, "the echo")
        assert cli.stop() == 0
    finally:
        cli.stop()
        client.close()


@pytest.mark.parametrize(("args", "needle"), [
    (["--mqtt", "http://127.0.0.1:1883"], "--mqtt: the broker URL must be mqtt://HOST"),
    (["--mqtt", "mqtt://127.0.0.1:notaport"], "--mqtt: the broker URL must be"),
    (["--mqtt-client-id", "x"], "--mqtt-client-id needs --mqtt URL"),
    (["--no-mqtt-clean-session"], "--no-mqtt-clean-session needs --mqtt URL"),
    (["--mqtt", "mqtt://h", "--mqtt-ca-certs", "ca.pem"], "--mqtt-ca-certs needs an mqtts://"),
    (["--mqtt", "mqtt://h", "--mqtt-version", "3"], "--mqtt-version: invalid choice"),
    (["--mqtt", "mqtt://h", "--workers", "2"], "--mqtt runs in one process"),
])
def test_bad_mqtt_flags_exit_2_naming_the_flag(tmp_path, args, needle):
    cli = Cli(tmp_path, *args)
    assert cli.proc.wait(DEADLINE_S) == 2
    assert needle in cli.text()


def test_unreadable_ca_file_is_a_startup_error(tmp_path):
    cli = Cli(tmp_path, "--mqtt", "mqtts://127.0.0.1:1", "--mqtt-ca-certs",
              str(tmp_path / "missing.pem"))
    assert cli.proc.wait(DEADLINE_S) == 1
    assert "missing.pem" in cli.text() and "Traceback" not in cli.text()


def _options(argv, monkeypatch, **env):
    from cymongoose.asgi.main import build_parser
    from cymongoose.asgi.mqttserve import mqtt_options
    from cymongoose.serving.environment import apply_environment

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    parser = build_parser()
    apply_environment(parser, argv)
    return mqtt_options(parser.parse_args(argv), parser, argv)


def test_mqtt_settings_from_flags_and_variables(monkeypatch):
    got = _options(["--mqtt", "mqtt://b:1", "--mqtt-version", "5", "--no-mqtt-clean-session",
                    "app:app"], monkeypatch, CYMONGOOSE_MQTT_PASSWORD="s3cret",
                   CYMONGOOSE_MQTT_KEEPALIVE="15")["mqtt"]
    assert (got.url, got.version, got.clean_session, got.password, got.keepalive, got.http) \
        == ("mqtt://b:1", 5, False, "s3cret", 15, False)
    assert _options(["app:app"], monkeypatch, CYMONGOOSE_MQTT="mqtt://b",
                    CYMONGOOSE_PORT="9000")["mqtt"].http is True
    assert _options(["--mqtt", "mqtt://b", "--uds", "/tmp/x.sock", "app:app"],
                    monkeypatch)["mqtt"].http is True


def test_mqtt_variables_without_mqtt_are_left_alone(monkeypatch):
    # A .env shared with other tools may hold CYMONGOOSE_MQTT_PASSWORD: HTTP serves on.
    assert _options(["app:app"], monkeypatch, CYMONGOOSE_MQTT_PASSWORD="x") == {}


def test_unreachable_broker_is_retried_and_sigterm_still_exits_0(tmp_path):
    cli = Cli(tmp_path, "--mqtt", f"mqtt://127.0.0.1:{free_port()}")  # nobody listens
    try:
        cli.wait_log("reconnecting in")
        assert cli.stop() == 0
    finally:
        cli.stop()
    assert "Connected to MQTT broker" not in cli.text() and "Traceback" not in cli.text()


def test_http_port_in_use_with_mqtt_is_a_one_line_startup_error(tmp_path, broker):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        cli = Cli(tmp_path, "--mqtt", broker, "--port", str(taken.getsockname()[1]))
        assert cli.proc.wait(DEADLINE_S) == 1
    text = cli.text()
    assert "cymongoose-asgi: error:" in text and "Traceback" not in text
    assert "Connected to MQTT broker" not in text
