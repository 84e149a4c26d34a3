"""The MQTT bench's consumer (mqttasgi's ``MqttConsumer``, served unchanged by
cymongoose-asgi's MQTT server and by mqttasgi): each message on ``bench/req`` is
republished with its payload on ``bench/reply``, both at QoS 1."""

from __future__ import annotations

import django
from django.conf import settings

if not settings.configured:
    settings.configure(SECRET_KEY="mqtt-bench", INSTALLED_APPS=["channels"], DATABASES={})
    django.setup()

from mqttasgi.consumers import MqttConsumer  # noqa: E402


class Echo(MqttConsumer):
    async def connect(self):
        await self.subscribe("bench/req", 1)

    async def receive(self, mqtt_message):
        await self.publish("bench/reply", mqtt_message["payload"], qos=1)

    async def disconnect(self):
        pass


application = Echo.as_asgi()


async def raw(scope, receive, send):
    """The same echo as a plain ASGI app (no Channels dispatch)."""
    if scope["type"] == "lifespan":  # cymongoose-asgi's command line runs it first
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while True:
        event = await receive()
        if event["type"] == "mqtt.connect":
            await send({"type": "mqtt.sub", "mqtt": {"topic": "bench/req", "qos": 1}})
        elif event["type"] == "mqtt.msg":
            await send({"type": "mqtt.pub", "mqtt": {"topic": "bench/reply", "qos": 1,
                        "payload": event["mqtt"]["payload"], "retain": False}})
        elif event["type"] == "mqtt.disconnect":
            return
