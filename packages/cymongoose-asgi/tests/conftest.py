"""Fixtures of the MQTT tests (mqttkit.py): ``mosquitto`` and ``broker``."""

from mqttkit import broker, mosquitto  # noqa: F401 (fixtures)
