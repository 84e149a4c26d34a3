"""MQTT in one process: a tiny broker on ``Manager.mqtt_listen`` and a client.

mongoose parses MQTT on both sides; what a broker *does* is up to the program. This broker
answers CONNECT, SUBSCRIBE and PINGREQ and forwards every PUBLISH to the subscribers of
matching topics (``+`` and ``#`` wildcards, QoS 0). The client subscribes to
``sensors/+/temp``, publishes two readings and prints what comes back, then exits.

Run: ``python examples/core/mqtt_roundtrip.py --port 1883``
"""

# example: runs to completion

from __future__ import annotations

import argparse
import struct

from cymongoose import (
    MG_EV_MQTT_CMD,
    MG_EV_MQTT_MSG,
    MG_EV_MQTT_OPEN,
    MQTT_CMD_CONNACK,
    MQTT_CMD_CONNECT,
    MQTT_CMD_PINGREQ,
    MQTT_CMD_PUBLISH,
    MQTT_CMD_SUBACK,
    MQTT_CMD_SUBSCRIBE,
    Manager,
    match,
)


def _variable_header_and_payload(dgram: bytes) -> bytes:
    """Skip the fixed header: one type byte, then the remaining length (1-4 bytes)."""
    i = 1
    while dgram[i] & 0x80:
        i += 1
    return dgram[i + 1:]


class Broker:
    def __init__(self, mgr: Manager, url: str) -> None:
        self.subscriptions: dict = {}  # Connection -> [topic filters]
        self.listener = mgr.mqtt_listen(url, self.handler)

    def handler(self, conn, ev, msg) -> None:
        if ev != MG_EV_MQTT_CMD:
            return
        if msg.cmd == MQTT_CMD_CONNECT:
            conn.mqtt_send_header(MQTT_CMD_CONNACK, 0, 2)
            conn.send(b"\x00\x00")  # no session present, return code 0 (accepted)
        elif msg.cmd == MQTT_CMD_SUBSCRIBE:
            body = _variable_header_and_payload(msg.dgram)
            packet_id, rest, granted = body[:2], body[2:], b""
            while rest:
                (size,) = struct.unpack(">H", rest[:2])
                topic_filter = rest[2:2 + size].decode()
                rest = rest[3 + size:]  # skip the requested QoS byte too
                self.subscriptions.setdefault(conn, []).append(topic_filter)
                granted += b"\x00"  # QoS 0 granted
            conn.mqtt_send_header(MQTT_CMD_SUBACK, 0, 2 + len(granted))
            conn.send(packet_id + granted)
        elif msg.cmd == MQTT_CMD_PUBLISH:
            for sub, filters in self.subscriptions.items():
                # mongoose's glob: '*' matches one level like MQTT's '+', '#' the rest.
                if not sub.is_closing and any(
                        match(msg.topic, f.replace("+", "*"))[0] for f in filters):
                    sub.mqtt_pub(msg.topic, msg.data)
        elif msg.cmd == MQTT_CMD_PINGREQ:
            conn.mqtt_pong()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args()
    received: list[tuple[str, str]] = []

    def client(conn, ev, data) -> None:
        if ev == MG_EV_MQTT_OPEN:  # CONNACK arrived; data is its return code
            print(f"connected (code {data})", flush=True)
            conn.mqtt_sub("sensors/+/temp")
        elif ev == MG_EV_MQTT_CMD and data.cmd == MQTT_CMD_SUBACK:
            conn.mqtt_pub("sensors/kitchen/temp", b"21.5")
            conn.mqtt_pub("sensors/cellar/humidity", b"80")  # not subscribed: not delivered
            conn.mqtt_pub("sensors/garage/temp", "9.0")
        elif ev == MG_EV_MQTT_MSG:
            received.append((data.topic, data.text))
            print(f"{data.topic} = {data.text}", flush=True)

    with Manager() as mgr:
        broker = Broker(mgr, f"mqtt://127.0.0.1:{args.port}")
        port = broker.listener.local_addr[1]
        conn = mgr.mqtt_connect(f"mqtt://127.0.0.1:{port}", client, client_id="example")
        while len(received) < 2:
            mgr.poll(100)
        conn.mqtt_disconnect()
    assert received == [("sensors/kitchen/temp", "21.5"), ("sensors/garage/temp", "9.0")]


if __name__ == "__main__":
    main()
