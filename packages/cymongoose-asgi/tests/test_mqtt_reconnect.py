"""The broker goes away mid-stream and comes back on the same port: the server
reconnects with backoff, re-subscribes, and (persistent session) gets what was queued."""

from __future__ import annotations

import logging
import time

import pytest

pytest.importorskip("asgiref", reason="asgiref is the [mqtt] extra")

from mqttkit import DEADLINE_S, Client, Mosquitto, Running, echo_app  # noqa: E402


def _wait(cond, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_broker_restart_reconnects_and_resubscribes(tmp_path, caplog):
    broker = Mosquitto(tmp_path)  # no persistence: the subscriptions die with it
    events: list = []
    server = Running(echo_app(events), broker.url, client_id="asgi-re",
                     reconnect_min=0.1, reconnect_max=0.4)
    client = Client(broker.url)
    try:
        with caplog.at_level(logging.INFO, logger="cymongoose.asgi.mqtt"):
            client.subscribed()
            client.conn.mqtt_pub("in/1/x", b"before", qos=1)
            client.wait_for(lambda: ("out/in/1/x", b"before") in client.received, "echo 1")
            client.close()
            broker.stop()
            _wait(lambda: not server.server.connected, "the server to see the loss")
            time.sleep(1.0)  # a few failed attempts, with backoff
            broker.start()
            _wait(lambda: server.server.connected, "the reconnect")
            client = Client(broker.url)
            client.readies = 0
            client.subscribed()  # ready is answered: re-subscribed
            client.conn.mqtt_pub("in/2/x", b"after", qos=1)
            client.wait_for(lambda: ("out/in/2/x", b"after") in client.received, "echo 2")
        assert "Reconnected to MQTT broker" in caplog.text
        assert server.thread.is_alive()
        # One master all along: it saw one mqtt.connect, no crash and no restart.
        assert [e["type"] for e in events].count("mqtt.connect") == 1
    finally:
        server.stop()
        client.close()
        broker.stop()


@pytest.mark.parametrize("version", [4, 5])
def test_persistent_session_gets_qos1_published_while_down(tmp_path, version):
    broker = Mosquitto(tmp_path, persistence=True)
    events: list = []
    # A long first wait: the test publishes while the server is still away.
    server = Running(echo_app(events), broker.url, client_id="asgi-persist",
                     clean_session=False, reconnect_min=3.0, reconnect_max=3.0,
                     version=version)
    client = Client(broker.url, client_id="publisher")
    try:
        client.subscribed()
        client.close()
        broker.stop()  # SIGTERM: mosquitto saves the sessions
        _wait(lambda: not server.server.connected, "the server to see the loss")
        broker.start()
        client = Client(broker.url, client_id="publisher")
        client.conn.mqtt_sub("out/#", qos=1)
        for n in range(3):
            client.conn.mqtt_pub(f"in/{n}/x", b"queued %d" % n, qos=1)
        client.mgr.poll(50)
        away = not server.server.connected  # else the check below proves less
        client.wait_for(lambda: len(client.received) >= 3, "the queued messages")
        assert sorted(client.received) == [(f"out/in/{n}/x", b"queued %d" % n)
                                           for n in range(3)]
        if not away:
            pytest.skip("the server reconnected before the publishes (a slow machine)")
    finally:
        server.stop()
        client.close()
        broker.stop()
