"""MQTT: a minimal broker on mqtt_listen and an mqtt_connect client in one process."""

from __future__ import annotations

import struct
import time

import cymongoose as m
import pytest
from cymongoose import (
    MG_EV_MQTT_CMD,
    MG_EV_MQTT_MSG,
    MG_EV_MQTT_OPEN,
    MQTT_CMD_CONNACK,
    MQTT_CMD_CONNECT,
    MQTT_CMD_PINGREQ,
    MQTT_CMD_PINGRESP,
    MQTT_CMD_PUBACK,
    MQTT_CMD_PUBLISH,
    MQTT_CMD_SUBACK,
    MQTT_CMD_SUBSCRIBE,
    MQTT_CMD_UNSUBACK,
    MQTT_CMD_UNSUBSCRIBE,
    Manager,
)


def run_until(mgr, cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        mgr.poll(10)


def _payload(dgram: bytes) -> bytes:
    """Skip the fixed header (type byte + variable-length remaining length)."""
    i = 1
    while dgram[i] & 0x80:
        i += 1
    return dgram[i + 1 :]


def _topics(body: bytes, with_qos: bool):
    out = []
    while body:
        (n,) = struct.unpack(">H", body[:2])
        topic = body[2 : 2 + n].decode()
        body = body[2 + n :]
        qos = 0
        if with_qos:
            qos, body = body[0], body[1:]
        out.append((topic, qos))
    return out


def _matches(topic: str, pattern: str) -> bool:
    glob = pattern.replace("+", "*")
    return m.match(topic, glob)[0]


class Broker:
    """Just enough of MQTT 3.1.1 for the tests (CONNECT, SUB/UNSUB, PUBLISH QoS 0/1, retain)."""

    def __init__(self, mgr):
        self.subs: dict = {}  # conn -> {pattern: qos}
        self.retained: dict = {}
        self.cmds: list = []
        self.listener = mgr.mqtt_listen("mqtt://127.0.0.1:0", self.handler)
        self.port = self.listener.local_addr[1]

    def handler(self, c, ev, msg):
        if ev != MG_EV_MQTT_CMD:
            return
        self.cmds.append(msg.cmd)
        if msg.cmd == MQTT_CMD_CONNECT:
            c.mqtt_send_header(MQTT_CMD_CONNACK, 0, 2)
            c.send(b"\x00\x00")
        elif msg.cmd == MQTT_CMD_SUBSCRIBE:
            body = _payload(msg.dgram)
            pid, topics = body[:2], _topics(body[2:], True)
            c.mqtt_send_header(MQTT_CMD_SUBACK, 0, 2 + len(topics))
            c.send(pid + bytes(min(q, 1) for _, q in topics))
            for pattern, qos in topics:
                self.subs.setdefault(c, {})[pattern] = min(qos, 1)
                for topic, data in self.retained.items():
                    if _matches(topic, pattern):
                        c.mqtt_pub(topic, data, min(qos, 1), True)
        elif msg.cmd == MQTT_CMD_UNSUBSCRIBE:
            body = _payload(msg.dgram)
            pid, topics = body[:2], _topics(body[2:], False)
            for pattern, _ in topics:
                self.subs.get(c, {}).pop(pattern, None)
            c.mqtt_send_header(MQTT_CMD_UNSUBACK, 0, 2)
            c.send(pid)
        elif msg.cmd == MQTT_CMD_PUBLISH:
            if msg.qos == 1:
                c.mqtt_send_header(MQTT_CMD_PUBACK, 0, 2)
                c.send(struct.pack(">H", msg.id))
            retain = bool(msg.dgram[0] & 1)
            if retain:
                self.retained[msg.topic] = msg.data
            for sub, patterns in list(self.subs.items()):
                for pattern, qos in patterns.items():
                    if _matches(msg.topic, pattern) and not sub.is_closing:
                        sub.mqtt_pub(msg.topic, msg.data, min(qos, msg.qos))
                        break
        elif msg.cmd == MQTT_CMD_PINGREQ:
            c.mqtt_pong()


@pytest.fixture
def mgr():
    with Manager() as mgr:
        yield mgr


def test_mqtt_pub_sub(mgr):
    broker = Broker(mgr)
    got = {"open": None, "msgs": [], "cmds": [], "kept": []}

    def client(c, ev, data):
        if ev == MG_EV_MQTT_OPEN:
            got["open"] = data
        elif ev == MG_EV_MQTT_MSG:
            got["msgs"].append((data.topic, data.data, data.text, data.qos))
            got["props"] = data.properties()
            got["kept"].append(data)
        elif ev == MG_EV_MQTT_CMD:
            got["cmds"].append((data.cmd, data.id))

    c = mgr.mqtt_connect(
        f"mqtt://127.0.0.1:{broker.port}",
        client,
        client_id="t1",
        username="u",
        password="p",
        keepalive=30,
    )
    run_until(mgr, lambda: got["open"] is not None)
    assert got["open"] == 0

    c.mqtt_sub("sensors/+/temp", qos=1)
    run_until(mgr, lambda: any(cmd == MQTT_CMD_SUBACK for cmd, _ in got["cmds"]))

    assert c.mqtt_pub("sensors/a/temp", b"21.5", qos=0) == 0
    pid = c.mqtt_pub("sensors/b/temp", "ünï", qos=1)
    assert pid > 0
    c.mqtt_pub("other/topic", b"ignored")
    run_until(mgr, lambda: len(got["msgs"]) >= 2 and (MQTT_CMD_PUBACK, pid) in got["cmds"])
    assert got["msgs"][:2] == [
        ("sensors/a/temp", b"21.5", "21.5", 0),
        ("sensors/b/temp", "ünï".encode(), "ünï", 1),
    ]
    assert got["props"] == []
    for kept in got["kept"]:  # after the handler: empty values, as 0.2.5
        assert (kept.topic, kept.data, kept.text, kept.id, kept.qos) == ("", b"", "", 0, 0)
        assert kept.properties() == []
        with pytest.raises(RuntimeError):
            _ = kept.dgram

    c.mqtt_unsub("sensors/+/temp")
    run_until(mgr, lambda: any(cmd == MQTT_CMD_UNSUBACK for cmd, _ in got["cmds"]))
    c.mqtt_pub("sensors/c/temp", b"after unsub")
    c.mqtt_ping()
    run_until(mgr, lambda: any(cmd == MQTT_CMD_PINGRESP for cmd, _ in got["cmds"]))
    for _ in range(10):
        mgr.poll(5)
    assert len(got["msgs"]) == 2

    c.mqtt_disconnect()
    c.drain()


def test_mqtt_retain(mgr):
    broker = Broker(mgr)
    msgs = []
    opened = []

    pub = mgr.mqtt_connect(
        f"mqtt://127.0.0.1:{broker.port}",
        lambda c, ev, d: ev == MG_EV_MQTT_OPEN and opened.append(c),
    )
    run_until(mgr, lambda: opened)
    pub.mqtt_pub("state/door", b"open", qos=1, retain=True)
    run_until(mgr, lambda: "state/door" in broker.retained)

    def sub_handler(c, ev, d):
        if ev == MG_EV_MQTT_OPEN:
            c.mqtt_sub("state/#", qos=0)
        elif ev == MG_EV_MQTT_MSG:
            msgs.append((d.topic, d.data, d.retain))

    mgr.mqtt_connect(f"mqtt://127.0.0.1:{broker.port}", sub_handler)
    run_until(mgr, lambda: msgs)
    pub.mqtt_pub("state/window", b"shut", qos=1)  # a live message: RETAIN is 0
    run_until(mgr, lambda: len(msgs) == 2)
    assert msgs == [("state/door", b"open", True), ("state/window", b"shut", False)]


def test_mqtt_argument_errors(mgr):
    broker = Broker(mgr)
    c = mgr.mqtt_connect(f"mqtt://127.0.0.1:{broker.port}")
    with pytest.raises(ValueError, match="qos"):
        c.mqtt_pub("t", b"x", qos=3)
    with pytest.raises(ValueError, match="topic"):
        c.mqtt_sub("")
    with pytest.raises(TypeError, match="message"):
        c.mqtt_pub("t", 12)
    with pytest.raises(ValueError, match="keepalive"):
        mgr.mqtt_connect("mqtt://127.0.0.1:1", keepalive=70000)
    with pytest.raises(ValueError, match="cmd"):
        c.mqtt_send_header(0, 0, 0)
    c.close()
    run_until(mgr, lambda: c.is_closing and c not in mgr.connections)
    for call in (
        lambda: c.mqtt_pub("t", b"x"),
        lambda: c.mqtt_sub("t"),
        c.mqtt_ping,
        c.mqtt_pong,
        c.mqtt_disconnect,
        lambda: c.mqtt_unsub("t"),
    ):
        with pytest.raises(RuntimeError, match="closed"):
            call()


def test_mqtt_prop_constants():
    names = ["BYTE", "STRING", "STRING_PAIR", "BINARY_DATA", "VARIABLE_INT", "INT", "SHORT"]
    values = [getattr(m, f"MQTT_PROP_TYPE_{n}") for n in names]
    assert values == list(range(len(names)))


def test_mqtt5_connect_and_publish_properties(mgr):
    # The in-process broker speaks 3.1.1: it sees the v5 packets' raw bytes.
    broker = Broker(mgr)
    opened = []
    c = mgr.mqtt_connect(f"mqtt://127.0.0.1:{broker.port}",
                         lambda c, ev, d: ev == MG_EV_MQTT_OPEN and opened.append(d),
                         client_id="v5", version=5, properties=[(0x11, 3600)])
    published = []
    broker_handler = broker.handler

    def spy(conn, ev, msg):
        if ev == MG_EV_MQTT_CMD and msg.cmd == MQTT_CMD_CONNECT:
            published.append(("connect", msg.dgram))
        elif ev == MG_EV_MQTT_CMD and msg.cmd == MQTT_CMD_PUBLISH:
            published.append(("publish", msg.dgram))
        broker_handler(conn, ev, msg)

    broker.listener.handler = spy
    run_until(mgr, lambda: opened)
    c.mqtt_pub("t", b"hi", qos=0, properties=[
        (0x02, 60), (0x03, "text/plain"), (0x09, b"\xffid"), (0x26, ("k", "v"))])
    run_until(mgr, lambda: len(published) == 2)
    connect, publish = published[0][1], published[1][1]
    assert connect[2:9] == b"\x00\x04MQTT\x05"  # protocol name and level 5
    # flags, keep alive, then the session expiry interval property (3600 s)
    assert connect[12:18] == b"\x05\x11\x00\x00\x0e\x10"
    props = (b"\x02\x00\x00\x00\x3c" b"\x03\x00\x0atext/plain"
             b"\x09\x00\x03\xffid" b"\x26\x00\x01k\x00\x01v")
    assert publish.endswith(b"\x00\x01t" + bytes([len(props)]) + props + b"hi")


@pytest.mark.parametrize(("props", "error", "word"), [
    ([(0x7F, 1)], ValueError, "property id"), ([(0x02, -1)], ValueError, "0..4294967295"),
    ([(0x01, 256)], ValueError, "0..255"), ([(0x03, 5)], ValueError, "str or bytes"),
    ([(0x26, "kv")], ValueError, "pair"), ([0x02], TypeError, "tuple"),
    ("x", TypeError, "sequence"),
])
def test_mqtt_pub_properties_errors_name_the_property(mgr, props, error, word):
    broker = Broker(mgr)
    c = mgr.mqtt_connect(f"mqtt://127.0.0.1:{broker.port}", version=5)
    with pytest.raises(error, match=word):
        c.mqtt_pub("t", b"x", properties=props)
    with pytest.raises(ValueError, match="version must be 4"):
        mgr.mqtt_connect(f"mqtt://127.0.0.1:{broker.port}", version=3)


@pytest.mark.parametrize("payload", [b"", b"x", b"xy", b"\x00"])
def test_mqtt5_short_payload_without_properties(mgr, payload):
    # mongoose 7.23 left the property length byte in a 0- or 1-byte payload.
    def broker(c, ev, msg):
        if ev == MG_EV_MQTT_CMD and msg.cmd == MQTT_CMD_CONNECT:
            c.mqtt_send_header(MQTT_CMD_CONNACK, 0, 3)
            c.send(b"\x00\x00\x00")
            body = b"\x00\x01t" + b"\x00" + payload  # topic "t", no properties
            c.mqtt_send_header(MQTT_CMD_PUBLISH, 0, len(body))
            c.send(body)

    listener = mgr.mqtt_listen("mqtt://127.0.0.1:0", broker)
    got = []
    mgr.mqtt_connect(f"mqtt://127.0.0.1:{listener.local_addr[1]}",
                     lambda c, ev, d: ev == MG_EV_MQTT_MSG and got.append(
                         (d.topic, d.data, d.properties())), version=5)
    run_until(mgr, lambda: got)
    assert got == [("t", payload, [])]
