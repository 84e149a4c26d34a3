"""What mqtt.msg / mqtt.pub carry over mqttasgi's: the retain flag, and MQTT 5 properties
(version=5), against mosquitto."""

from __future__ import annotations

import logging
import time

import pytest

pytest.importorskip("asgiref", reason="asgiref is the [mqtt] extra")

from mqttkit import DEADLINE_S, Client, Running  # noqa: E402

REPLY_PROPS = {"content_type": "text/plain", "response_topic": "replies/here",
               "message_expiry_interval": 30, "payload_format_indicator": 1,
               "user_properties": [["k", "v"], ["k", "again"]]}


def props_app(events: list):
    """Subscribes to in/# and ready; answers each message on out/<topic> with
    REPLY_PROPS and the message's own correlation data."""

    async def app(scope, receive, send):
        while True:
            event = await receive()
            events.append(event)
            if event["type"] == "mqtt.connect":
                await send({"type": "mqtt.sub", "mqtt": {"topic": "in/#", "qos": 1}})
                await send({"type": "mqtt.sub", "mqtt": {"topic": "ready", "qos": 0}})
            elif event["type"] == "mqtt.msg":
                msg = event["mqtt"]
                props = dict(REPLY_PROPS)
                if "correlation_data" in msg.get("properties", {}):
                    props["correlation_data"] = msg["properties"]["correlation_data"]
                await send({"type": "mqtt.pub", "mqtt": {
                    "topic": "out/" + msg["topic"], "payload": msg["payload"], "qos": 1,
                    "retain": msg["topic"] == "in/keep", "properties": props}})
            elif event["type"] == "mqtt.disconnect":
                return

    return app


def _msgs(events: list, topic: str) -> list[dict]:
    return [e["mqtt"] for e in events if e["type"] == "mqtt.msg" and e["mqtt"]["topic"] == topic]


def test_retain_flag_on_mqtt_msg(broker):
    early = Client(broker, client_id="early")
    early.conn.mqtt_pub("in/state", b"on", qos=1, retain=True)
    early.conn.mqtt_sub("in/state", qos=1)  # its own message back: the broker has it
    early.wait_for(lambda: early.received, "the retained message stored")
    early.close()
    events: list = []
    server = Running(props_app(events), broker)
    client = Client(broker)
    try:
        client.subscribed()
        client.conn.mqtt_pub("in/live", b"now", qos=1)
        client.wait_for(lambda: ("out/in/live", b"now") in client.received, "the echo")
        assert [m["retain"] for m in _msgs(events, "in/state")] == [True]
        assert [m["retain"] for m in _msgs(events, "in/live")] == [False]
        assert "properties" not in _msgs(events, "in/live")[0]  # MQTT 3.1.1
    finally:
        server.stop()
        client.close()


def test_mqtt5_properties_both_ways(broker):
    events: list = []
    server = Running(props_app(events), broker, version=5)
    client = Client(broker, version=5)
    try:
        client.subscribed()
        client.conn.mqtt_pub("in/req", b"{}", qos=1, properties=[
            (0x02, 60), (0x03, "application/json"), (0x08, "replies/1"),
            (0x09, b"\xff\x00id"), (0x26, ("trace", "abc")), (0x26, ("trace", "def"))])
        client.conn.mqtt_pub("in/keep", b"k", qos=1)
        client.wait_for(lambda: len(client.messages) >= 2, "the answers")
        got = _msgs(events, "in/req")[0]
        props = got["properties"]
        assert 50 <= props.pop("message_expiry_interval") <= 60  # what is left of it
        assert props == {"content_type": "application/json", "response_topic": "replies/1",
                         "correlation_data": b"\xff\x00id",
                         "user_properties": [["trace", "abc"], ["trace", "def"]]}
        assert got["payload"] == b"{}" and got["retain"] is False
        answer = next(m for m in client.messages if m["topic"] == "out/in/req")
        by_id: dict = {}
        for p in answer["properties"]:
            by_id.setdefault(p["id"], []).append(p)
        assert by_id[0x03][0]["val"] == "text/plain"
        assert by_id[0x08][0]["val"] == "replies/here"
        assert 25 <= by_id[0x02][0]["iv"] <= 30
        assert by_id[0x01][0]["iv"] == 1
        assert [(p["key"], p["val"]) for p in by_id[0x26]] == [("k", "v"), ("k", "again")]
        assert by_id[0x09][0]["val"].encode("utf-8", "surrogateescape") == b"\xff\x00id"
        # "retain" on mqtt.pub: a new subscriber gets the answer as retained.
        late = Client(broker, client_id="late", version=5)
        late.conn.mqtt_sub("out/in/keep", qos=1)
        late.wait_for(lambda: late.messages, "the retained answer")
        assert late.messages[0]["retain"] is True
        late.close()
    finally:
        server.stop()
        client.close()


@pytest.mark.parametrize("payload", [b"", b"x", b"xy"])
def test_mqtt5_short_payloads_arrive_whole(broker, payload):
    events: list = []
    server = Running(props_app(events), broker, version=5)
    client = Client(broker, version=5)
    try:
        client.subscribed()
        client.conn.mqtt_pub("in/short", payload, qos=1)
        client.wait_for(lambda: _msgs(events, "in/short"), "the message")
        assert _msgs(events, "in/short")[0]["payload"] == payload
    finally:
        server.stop()
        client.close()


def test_bad_properties_name_the_key(broker, caplog):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "mqtt.pub", "mqtt": {"topic": "t", "payload": b"x",
                                                 "properties": {"colour": "red"}}})

    server = Running(app, broker, version=5)
    try:
        with caplog.at_level(logging.ERROR):
            deadline = time.monotonic() + DEADLINE_S
            while "colour" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
        assert "unknown property 'colour' in mqtt['properties']" in caplog.text
    finally:
        server.stop()
