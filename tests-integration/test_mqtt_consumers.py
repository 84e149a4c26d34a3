"""Consumers written for mqttasgi (an ``MqttConsumer`` subclass and a plain Channels
``AsyncConsumer``, apps/mqtt_consumers.py) run unchanged on cymongoose's MQTT server
against a real mosquitto: subscribe on connect, receive, publish replies, QoS 0/1/2 end
to end, retained messages, wildcards and unsubscribe; and they see the same scope and
messages as under mqttasgi itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_support import Client, ServerProcess, broker, wait_ready  # noqa: F401 (fixture)

CONSUMERS = ["device", "channels_device"]  # MqttConsumer subclass, Channels AsyncConsumer
BINARY = bytes(range(256))


@pytest.fixture
def client(broker) -> Iterator[Client]:  # noqa: F811
    """A test client subscribed to the consumer's replies and readiness."""
    c = Client(broker, "test-client")
    c.subscribe("reply/#", qos=2)
    c.subscribe("ready/#", qos=1)
    yield c
    c.close()


@pytest.fixture(params=CONSUMERS)
def served(request, broker, client) -> Iterator[ServerProcess]:  # noqa: F811
    """The consumer served by cymongoose, ready (subscribed)."""
    server = ServerProcess("cymongoose", broker, request.param, "consumer-under-test")
    try:
        wait_ready(client, server)
        yield server
    finally:
        out = server.stop()
    assert "Traceback" not in out, out


def replies(client: Client, count: int) -> list[tuple[str, bytes, int, bool]]:
    client.wait_for(lambda: len(client.received("reply/")) >= count, f"{count} replies")
    return client.received("reply/")


def test_qos_0_1_2_end_to_end(served, client):
    """Each message comes back at the QoS it was published with (the consumer
    subscribed at 2 and replies at the QoS it received), payload bytes intact."""
    for qos in (0, 1, 2):
        client.publish("sensors/kitchen/temp", BINARY + bytes([qos]), qos=qos)
    got = replies(client, 3)
    assert sorted(got, key=lambda m: m[2]) == [
        ("reply/sensors/kitchen/temp", BINARY + bytes([qos]), qos, False) for qos in (0, 1, 2)]


def test_wildcards(served, client):
    """``sensors/+/temp`` matches one level only; ``fleet/#`` matches fleet and below."""
    for topic in ("sensors/a/b/temp", "sensors/a/temp", "fleet", "fleet/truck/7/gps",
                  "fleetx/1", "other/temp"):
        client.publish(topic, topic.encode(), qos=1)
    client.publish("control", b"marker", qos=1)  # the consumer handles messages in order
    got = replies(client, 4)
    assert [m[0] for m in got] == ["reply/sensors/a/temp", "reply/fleet",
                                   "reply/fleet/truck/7/gps", "reply/control"]


def test_unsubscribe(served, client):
    client.publish("fleet/a", b"before", qos=1)
    client.publish("control", b"unsub fleet/#", qos=1)
    replies(client, 2)
    client.publish("fleet/a", b"after", qos=1)
    client.publish("sensors/x/temp", b"marker", qos=1)
    got = replies(client, 3)
    assert [(m[0], m[1]) for m in got] == [("reply/fleet/a", b"before"),
                                           ("reply/control", b"unsub fleet/#"),
                                           ("reply/sensors/x/temp", b"marker")]


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_retained_messages(consumer, broker, client):  # noqa: F811
    """A message retained before the consumer started reaches it on subscribe; one it
    publishes retained reaches a client that subscribes afterwards, flagged retained."""
    client.publish("retained/state", b"on", qos=1, retain=True)
    server = ServerProcess("cymongoose", broker, consumer, "consumer-under-test")
    try:
        wait_ready(client, server)
        assert replies(client, 1) == [("reply/retained/state", b"on", 1, False)]
        client.publish("control", b"retain last-known", qos=1)
        replies(client, 2)
        late = Client(broker, "late-client")
        try:
            late.subscribe("state/out", qos=1)
            late.wait_for(lambda: late.received("state/out"), "the retained state/out")
            assert late.received("state/out") == [("state/out", b"last-known", 1, True)]
        finally:
            late.close()
    finally:
        server.stop()


def _recorded_run(kind: str, broker, client: Client, path: Path) -> list:  # noqa: F811
    """Run the recording consumer under ``kind``, send it one message of each QoS and a
    retained one, stop it; return what it recorded (scope and events, typed)."""
    client.publish("retained/state", b"kept", qos=1, retain=True)
    server = ServerProcess(kind, broker, "recorded", f"recorded-{kind}",
                           env={"MQTT_RECORD": str(path)})
    try:
        wait_ready(client, server)
        replies(client, 1)
        for qos in (0, 1, 2):
            client.publish("sensors/a/temp", b"\x00\xff" + str(qos).encode(), qos=qos)
            replies(client, 2 + qos)  # one at a time: the order is then the same
    finally:
        server.stop()
    with client.lock:
        client.messages.clear()
    return [json.loads(line) for line in path.read_text().splitlines()]


def _subset(theirs, ours) -> bool:
    """Everything in ``theirs`` is in ``ours`` with the same value and type (``ours`` may
    add keys: the documented extras, such as ``retain`` on ``mqtt.msg``)."""
    if isinstance(theirs, dict):
        return isinstance(ours, dict) and all(k in ours and _subset(v, ours[k])
                                              for k, v in theirs.items())
    return theirs == ours


def test_same_messages_as_under_mqttasgi(broker, client, tmp_path):  # noqa: F811
    """mqttasgi (its command line, as a black box) and ours deliver the same events, each
    with at least mqttasgi's keys, values and value types, and a scope with the same type,
    app_id and instance_type."""
    theirs = _recorded_run("mqttasgi", broker, client, tmp_path / "mqttasgi.jsonl")
    ours = _recorded_run("cymongoose", broker, client, tmp_path / "ours.jsonl")
    our_events = [r[1] for r in ours if r[0] == "event"]
    their_events = [r[1] for r in theirs if r[0] == "event"]
    assert [e["type"][1] for e in our_events] == [
        "mqtt.connect", "mqtt.msg", "mqtt.msg", "mqtt.msg", "mqtt.msg", "mqtt.disconnect"]
    assert len(our_events) == len(their_events)
    for mine, theirs_event in zip(our_events, their_events, strict=True):
        assert _subset(theirs_event, mine), (theirs_event, mine)
    scope = {k: v for r in ours if r[0] == "scope" for k, v in r[1].items()}
    their_scope = {k: v for r in theirs if r[0] == "scope" for k, v in r[1].items()}
    for key in ("type", "app_id", "instance_type"):
        assert scope[key] == their_scope[key], key


def test_one_process_serves_http_websocket_and_mqtt(broker, client):  # noqa: F811
    """`--mqtt` with `--port`: one process, one loop, a ProtocolTypeRouter with http,
    websocket and mqtt; the HTTP side sees what the MQTT side received."""
    import httpx
    from mqtt_support import free_port
    from websockets.sync.client import connect

    port = free_port()
    server = ServerProcess("cymongoose", broker, "web_and_mqtt", "web-and-mqtt",
                           extra=("--host", "127.0.0.1", "--port", str(port)))
    try:
        wait_ready(client, server)
        client.publish("sensors/kitchen/temp", b"21.5", qos=1)
        client.wait_for(lambda: client.received("reply/sensors/kitchen/temp"), "the reply")
        answer = httpx.get(f"http://127.0.0.1:{port}/seen", timeout=10)
        assert answer.status_code == 200
        assert answer.text == "21.5"  # the same process: the MQTT consumer's state
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "echo hi"
    finally:
        out = server.stop()
    assert server.proc.returncode == 0, out
    assert "Traceback" not in out, out
