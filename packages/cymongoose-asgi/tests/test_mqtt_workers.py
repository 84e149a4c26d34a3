"""mqttasgi's worker messages (``mqttasgi.worker.spawn`` / ``.kill``), ``max_applications``
eviction and failing instances, against mosquitto."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("asgiref", reason="asgiref is the [mqtt] extra")

from mqttkit import Client, Running, master_app  # noqa: E402


def _has(client: Client, topic: str, payload: bytes | None = None):
    return lambda: any(t == topic and (payload is None or p == payload)
                       for t, p in client.received)


def _spawn(client: Client, app_id: str, tag: str) -> None:
    """Spawn through the master; wait until the worker said hello (it subscribed)."""
    hello = f"out/hello/{app_id}"
    before = [t for t, _ in client.received].count(hello)
    client.conn.mqtt_pub(f"ctl/spawn/{app_id}", tag.encode(), qos=1)
    client.wait_for(lambda: [t for t, _ in client.received].count(hello) > before,
                    f"worker {app_id} up")


@pytest.mark.parametrize("mode", ["integrated", "threaded"])
def test_spawn_routes_by_subscription_and_kill_stops_the_worker(broker, mode):
    events: list = []
    server = Running(master_app(events), broker, mode=mode)
    client = Client(broker)
    try:
        client.subscribed()
        _spawn(client, "w1", "one:")
        _spawn(client, "w2", "two:")
        client.conn.mqtt_pub("work/w1", b"a", qos=1)
        client.conn.mqtt_pub("work/w2", b"b", qos=1)
        client.wait_for(_has(client, "out/work/w2", b"two:b"), "w2's echo")
        client.wait_for(_has(client, "out/work/w1", b"one:a"), "w1's echo")
        client.conn.mqtt_pub("ctl/kill/w1", b"", qos=1)
        client.wait_for(_has(client, "out/bye/w1"), "w1's mqtt.disconnect")
        # w1's subscription ended with it: only the marker comes back.
        client.conn.mqtt_pub("work/w1", b"late", qos=1)
        client.conn.mqtt_pub("ctl/marker", b"m", qos=1)
        client.wait_for(_has(client, "out/ctl/marker"), "the marker")
        assert not _has(client, "out/work/w1", b"one:late")()
        # The master never saw the workers' messages.
        topics = [e["mqtt"]["topic"] for e in events if e["type"] == "mqtt.msg"]
        assert "work/w1" not in topics and "work/w2" not in topics
        assert sorted(server.call(lambda: list(server.server.application_instances)), key=str) == \
            [0, "w2"]
    finally:
        server.stop()
        client.close()


def test_max_applications_evicts_the_least_recently_used_worker(broker, caplog):
    server = Running(master_app([]), broker, max_applications=3)  # master + 2 workers
    client = Client(broker)
    try:
        with caplog.at_level(logging.WARNING):
            client.subscribed()
            _spawn(client, "w1", "")
            _spawn(client, "w2", "")
            client.conn.mqtt_pub("work/w1", b"touch", qos=1)  # w2 is now the oldest
            client.wait_for(_has(client, "out/work/w1", b"touch"), "w1's echo")
            _spawn(client, "w3", "")
            client.wait_for(_has(client, "out/bye/w2"), "w2 evicted")
        assert not _has(client, "out/bye/w1")()
        assert "max_applications (3) reached: stopping worker 'w2'" in caplog.text
        live = server.call(lambda: sorted(map(str, server.server.application_instances)))
        assert live == ["0", "w1", "w3"]
        server.stop()  # gives every live worker its mqtt.disconnect, then disconnects
        client.wait_for(_has(client, "out/bye/w1"), "w1's goodbye")
        client.wait_for(_has(client, "out/bye/w3"), "w3's goodbye")
    finally:
        server.stop()
        client.close()


def test_raising_worker_is_logged_and_reaped_the_rest_goes_on(broker, caplog):
    server = Running(master_app([]), broker)
    client = Client(broker)
    try:
        with caplog.at_level(logging.ERROR):
            client.subscribed()
            _spawn(client, "w1", "")
            client.conn.mqtt_pub("work/w1", b"boom", qos=1)
            client.conn.mqtt_pub("ctl/after", b"still here", qos=1)
            client.wait_for(_has(client, "out/ctl/after", b"still here"), "the master")
            client.wait_for(lambda: "worker w1 exploded" in caplog.text, "the log")
        assert "Exception in MQTT application instance 'w1'" in caplog.text
        client.wait_for(lambda: "w1" not in server.call(
            lambda: list(server.server.application_instances)), "w1 reaped")
        _spawn(client, "w1", "again:")  # its app_id is free again
        client.conn.mqtt_pub("work/w1", b"x", qos=1)
        client.wait_for(_has(client, "out/work/w1", b"again:x"), "the new w1")
    finally:
        server.stop()
        client.close()


def test_spawn_errors_reach_the_master_and_name_the_problem(broker):
    server = Running(master_app([]), broker)
    client = Client(broker)
    try:
        client.subscribed()
        client.conn.mqtt_pub("ctl/bad", b"", qos=1)
        client.wait_for(_has(client, "out/error"), "the bad path's error")
        _spawn(client, "w1", "")
        client.conn.mqtt_pub("ctl/spawn/w1", b"", qos=1)  # running already
        client.wait_for(lambda: len([t for t, _ in client.received if t == "out/error"]) == 2,
                        "the duplicate's error")
        errors = [p for t, p in client.received if t == "out/error"]
        assert b"no_such_module" in errors[0]
        assert errors[1] == b"'mqttasgi.worker.spawn': app_id 'w1' is already running"
    finally:
        server.stop()
        client.close()
