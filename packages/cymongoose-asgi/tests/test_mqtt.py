"""ASGI over MQTT against a real broker (mosquitto, started on a free port: mqttkit).

The server runs in a thread with its own asyncio loop; the test thread talks to the
broker with the core's MQTT client (a plain Manager it polls itself).
"""

from __future__ import annotations

import logging
import time

import pytest

pytest.importorskip("asgiref", reason="asgiref is the [mqtt] extra")

from cymongoose.asgi.mqtt import MqttServer, topic_matches  # noqa: E402
from mqttkit import DEADLINE_S, Client, Running, echo_app  # noqa: E402


@pytest.mark.parametrize("mode", ["integrated", "threaded"])
def test_message_in_app_publishes_back(broker, mode):
    events: list = []
    server = Running(echo_app(events), broker, client_id="asgi-app", mode=mode)
    client = Client(broker)
    try:
        client.subscribed()
        client.conn.mqtt_pub("in/a/x", b"hello", qos=1)
        client.wait_for(lambda: client.received, "the echo")
        assert client.received == [("out/in/a/x", b"hello")]
        msgs = [e for e in events if e["type"] == "mqtt.msg" and e["mqtt"]["topic"] == "in/a/x"]
        assert msgs == [{"type": "mqtt.msg", "mqtt": {"topic": "in/a/x", "payload": b"hello",
                                                      "qos": 1, "retain": False}}]
        assert events[0] == {"type": "mqtt.connect", "mqtt": {}}
    finally:
        server.stop()
        client.close()
    assert events[-1] == {"type": "mqtt.disconnect"}


def test_loop_iteration_events_cost_no_python_call(broker):
    # MG_EV_POLL, READ and WRITE reach no Python handler of the broker connection (they
    # were seven calls per message under load); the MQTT events still do.
    from cymongoose import MG_EV_MQTT_MSG, MG_EV_POLL, MG_EV_READ, MG_EV_WRITE

    seen: list[int] = []

    class Counting(MqttServer):
        def _on_event(self, conn, ev, data):
            seen.append(ev)
            super()._on_event(conn, ev, data)

    events: list = []
    running = Running(echo_app(events), broker, server_class=Counting)
    client = Client(broker)
    try:
        client.subscribed()
        for n in range(5):
            client.conn.mqtt_pub("in/io/x", b"%d" % n, qos=1)
        client.wait_for(lambda: len(client.received) == 5, "five echoes")
    finally:
        running.stop()
        client.close()
    assert seen.count(MG_EV_MQTT_MSG) >= 6  # the probe and the five
    assert not {MG_EV_POLL, MG_EV_READ, MG_EV_WRITE} & set(seen)


def test_usub_stops_delivery_wildcards(broker):
    events: list = []
    server = Running(echo_app(events), broker)
    client = Client(broker)
    try:
        client.subscribed()
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
            client.subscribed()
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
    ({"url": "http://x"}, "url"), ({"url": "mqtt://"}, "url"),
    ({"url": "mqtt://h:99999"}, "url"), ({"keepalive": 0}, "keepalive"),
    ({"reconnect_min": 0}, "reconnect_min"), ({"version": 3}, "version"),
    ({"max_applications": 0}, "max_applications"), ({"sync_thread": "no"}, "sync_thread"),
])
def test_bad_arguments_name_themselves(kwargs, word):
    args = {"url": "mqtt://127.0.0.1:1883", **kwargs}
    with pytest.raises(ValueError, match=word):
        MqttServer(lambda *a: None, args.pop("url"), **args)


def test_non_utf8_payload_reaches_the_app_as_bytes(broker):
    events: list = []
    server = Running(echo_app(events), broker)
    client = Client(broker)
    raw = b"\xff\xfe\x00\x80 not UTF-8"
    try:
        client.subscribed()
        client.conn.mqtt_pub("in/z/x", raw, qos=1)
        client.wait_for(lambda: client.received, "the echo")
        assert client.received == [("out/in/z/x", raw)]
        got = [e["mqtt"]["payload"] for e in events
               if e["type"] == "mqtt.msg" and e["mqtt"]["topic"] == "in/z/x"]
        assert got == [raw]
    finally:
        server.stop()
        client.close()


def test_a_broker_that_never_answers_is_given_up_and_retried(caplog):
    import socket

    silent = socket.socket()  # accepts (the kernel does), never answers CONNECT
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"mqtt://127.0.0.1:{silent.getsockname()[1]}"
    with caplog.at_level(logging.WARNING, logger="cymongoose.asgi.mqtt"):
        server = Running(echo_app([]), url, connect_timeout_s=0.3, reconnect_min=0.1,
                         reconnect_max=0.1)
        try:
            deadline = time.monotonic() + DEADLINE_S
            while caplog.text.count("did not accept the connection within 0.3 s") < 2:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
        finally:
            server.stop()
            silent.close()


def test_a_broker_gone_silent_is_noticed_by_its_missing_pingresps(caplog):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []

    def broker():  # CONNACK, then silence: no PINGRESP, no RST
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            accepted.append(sock)
            sock.recv(1024)
            sock.sendall(b"\x20\x02\x00\x00")

    threading.Thread(target=broker, daemon=True).start()
    url = f"mqtt://127.0.0.1:{listener.getsockname()[1]}"
    with caplog.at_level(logging.INFO, logger="cymongoose.asgi.mqtt"):
        server = Running(echo_app([]), url, keepalive=1, reconnect_min=0.1)
        try:
            deadline = time.monotonic() + DEADLINE_S
            while "Reconnected to MQTT broker" not in caplog.text:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
            assert "has not answered for" in caplog.text and len(accepted) >= 2
        finally:
            server.stop()
            listener.close()
            for sock in accepted:
                sock.close()
