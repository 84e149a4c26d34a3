"""MQTT consumers written for mqttasgi, the way its README shows, served unchanged by
cymongoose's MQTT server (and by mqttasgi itself, for comparison).

Each consumer subscribes in ``connect``, then announces itself on ``ready/<MQTT_WORKER>``
(the broker handles a client's packets in order, so a test that sees it knows that the
subscriptions are in place). ``device`` and ``channels_device`` behave alike:

- a message on a subscribed topic is republished on ``reply/<topic>`` with its payload
  and at the QoS it arrived with;
- on ``control``: ``unsub <filter>`` unsubscribes from ``<filter>``, ``retain <text>``
  publishes ``<text>`` retained on ``state/out``; both are then replied to as above.

``shared`` takes ``$share/g/jobs`` and republishes each job on ``done/<MQTT_WORKER>``.
``web_and_mqtt`` is one Channels ``ProtocolTypeRouter`` for http, websocket and mqtt:
``device``'s MQTT side, an HTTP consumer answering the payloads the MQTT side has
received so far in this process, and a WebSocket echo.
``recorded`` is ``device`` with its mqtt scope and every event it receives appended to
the file named by ``MQTT_RECORD`` as JSON, each value tagged with its Python type.
"""

from __future__ import annotations

import json
import os
from typing import Any

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        SECRET_KEY="mqtt-consumer-tests", INSTALLED_APPS=["channels"], DATABASES={},
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
    django.setup()

from channels.consumer import AsyncConsumer  # noqa: E402
from channels.exceptions import StopConsumer  # noqa: E402
from channels.generic.http import AsyncHttpConsumer  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402
from mqttasgi.consumers import MqttConsumer  # noqa: E402

NAME = os.environ.get("MQTT_WORKER", "worker")
SUBSCRIPTIONS = [("sensors/+/temp", 2), ("fleet/#", 1), ("retained/state", 1), ("control", 1)]


SEEN: list[bytes] = []  # payloads DeviceConsumer received, in this process


class DeviceConsumer(MqttConsumer):
    """mqttasgi's consumer API: connect / receive / disconnect, publish / (un)subscribe."""

    async def connect(self) -> None:
        for topic, qos in SUBSCRIPTIONS:
            await self.subscribe(topic, qos)
        await self.publish(f"ready/{NAME}", b"ready", qos=1)

    async def receive(self, mqtt_message: dict[str, Any]) -> None:
        topic, payload = mqtt_message["topic"], mqtt_message["payload"]
        SEEN.append(payload)
        if topic == "control":
            command, _, arg = payload.decode().partition(" ")
            if command == "unsub":
                await self.unsubscribe(arg)
            elif command == "retain":
                await self.publish("state/out", arg.encode(), qos=1, retain=True)
        await self.publish(f"reply/{topic}", payload, qos=mqtt_message["qos"])

    async def disconnect(self) -> None:
        for topic, _ in SUBSCRIPTIONS:
            await self.unsubscribe(topic)


class ChannelsDeviceConsumer(AsyncConsumer):
    """The same on a plain Channels AsyncConsumer: one handler per ASGI message type."""

    async def pub(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> None:
        await self.send({"type": "mqtt.pub", "mqtt": {"topic": topic, "payload": payload,
                                                      "qos": qos, "retain": retain}})

    async def mqtt_connect(self, event: dict[str, Any]) -> None:
        for topic, qos in SUBSCRIPTIONS:
            await self.send({"type": "mqtt.sub", "mqtt": {"topic": topic, "qos": qos}})
        await self.pub(f"ready/{NAME}", b"ready", 1)

    async def mqtt_msg(self, event: dict[str, Any]) -> None:
        message = event["mqtt"]
        topic, payload = message["topic"], message["payload"]
        if topic == "control":
            command, _, arg = payload.decode().partition(" ")
            if command == "unsub":
                await self.send({"type": "mqtt.usub", "mqtt": {"topic": arg}})
            elif command == "retain":
                await self.pub("state/out", arg.encode(), 1, retain=True)
        await self.pub(f"reply/{topic}", payload, message["qos"])

    async def mqtt_disconnect(self, event: dict[str, Any]) -> None:
        raise StopConsumer()


class SharedWorker(MqttConsumer):
    """One of several processes sharing ``jobs`` through the broker."""

    async def connect(self) -> None:
        await self.subscribe("$share/g/jobs", 1)
        await self.publish(f"ready/{NAME}", b"ready", qos=1)

    async def receive(self, mqtt_message: dict[str, Any]) -> None:
        await self.publish(f"done/{NAME}", mqtt_message["payload"], qos=1)

    async def disconnect(self) -> None:
        pass


class SeenConsumer(AsyncHttpConsumer):
    """HTTP: the payloads this process's MQTT consumer has received, one per line."""

    async def handle(self, body: bytes) -> None:
        await self.send_response(200, b"\n".join(SEEN),
                                 headers=[(b"Content-Type", b"text/plain")])


class EchoConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None,
                      ) -> None:
        await self.send(text_data=f"echo {text_data}")


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    return [type(value).__name__, value.decode("latin-1") if isinstance(value, bytes) else value]


def _record(kind: str, value: dict[str, Any]) -> None:
    with open(os.environ["MQTT_RECORD"], "a") as out:
        out.write(json.dumps([kind, _typed(value)]) + "\n")


def record(app: Any) -> Any:
    """``app`` with its scope and every event it receives written to ``MQTT_RECORD``."""

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "mqtt":  # e.g. lifespan, which a server may run first
            await app(scope, receive, send)
            return
        _record("scope", dict(scope))

        async def receive_recorded() -> dict[str, Any]:
            event = await receive()
            _record("event", event)
            return event

        await app(scope, receive_recorded, send)

    return recording


device = ProtocolTypeRouter({"mqtt": DeviceConsumer.as_asgi()})
channels_device = ProtocolTypeRouter({"mqtt": ChannelsDeviceConsumer.as_asgi()})
shared = ProtocolTypeRouter({"mqtt": SharedWorker.as_asgi()})
recorded = record(DeviceConsumer.as_asgi())
web_and_mqtt = ProtocolTypeRouter({"http": SeenConsumer.as_asgi(),
                                   "websocket": EchoConsumer.as_asgi(),
                                   "mqtt": DeviceConsumer.as_asgi()})
