"""The fields of ASGI-over-MQTT messages: checks of what an app sends, topic filters, and
MQTT 5 properties both ways (names in docs/guides/mqtt-asgi.md, "MQTT 5 properties").

Pure functions, no I/O: `cymongoose.asgi.mqtt.MqttServer` calls them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROPERTY_IDS", "field", "pub_properties", "qos_of", "received_properties",
           "topic_matches"]

#: ``properties`` key -> MQTT 5.0 property id (section 2.2.2.2), for PUBLISH.
PROPERTY_IDS = {
    "payload_format_indicator": 0x01,
    "message_expiry_interval": 0x02,
    "content_type": 0x03,
    "response_topic": 0x08,
    "correlation_data": 0x09,
    "subscription_identifier": 0x0B,
    "user_properties": 0x26,
}
_NAMES = {pid: name for name, pid in PROPERTY_IDS.items()}
_TEXT = {0x03, 0x08}  # UTF-8 strings; 0x09 is binary data


def topic_matches(pattern: str, topic: str) -> bool:
    """True if ``topic`` matches the MQTT filter ``pattern`` (``+`` one level, ``#`` the
    rest; ``$share/GROUP/`` is stripped; MQTT 3.1.1 section 4.7)."""
    if pattern.startswith("$share/"):
        pattern = pattern.split("/", 2)[2] if pattern.count("/") >= 2 else ""
    if topic.startswith("$") and not pattern.startswith("$"):
        return False  # 4.7.2: wildcards at the first level do not match $SYS/...
    pat, top = pattern.split("/"), topic.split("/")
    for i, level in enumerate(pat):
        if level == "#":
            return True
        if i >= len(top) or (level != "+" and level != top[i]):
            return False
    return len(pat) == len(top)


def field(message: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``message["mqtt"][key]``, checked to be a ``kind``; ValueError naming it."""
    mqtt = message.get("mqtt")
    if not isinstance(mqtt, dict):
        raise ValueError(f"{message.get('type')!r} message needs an 'mqtt' dict, got {mqtt!r}")
    value = mqtt.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise ValueError(f"{message.get('type')!r}: mqtt[{key!r}] is invalid: {value!r}")
    return value


def qos_of(message: dict[str, Any]) -> int:
    """``message["mqtt"]["qos"]`` (default 0); ValueError unless 0, 1 or 2."""
    mqtt = message.get("mqtt") or {}
    qos = mqtt.get("qos", 0) if isinstance(mqtt, dict) else 0
    if isinstance(qos, bool) or qos not in (0, 1, 2):
        raise ValueError(f"{message.get('type')!r}: mqtt['qos'] must be 0, 1 or 2, got {qos!r}")
    return int(qos)


def received_properties(props: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``properties`` of an ``mqtt.msg`` from ``MqttMessage.properties()``: the keys
    of :data:`PROPERTY_IDS` that the PUBLISH carries (``correlation_data`` as bytes,
    ``user_properties`` as a list of ``[key, value]`` str pairs in the order sent,
    ``subscription_identifier`` as a list of ints); other properties are left out."""
    out: dict[str, Any] = {}
    for prop in props:
        pid = prop["id"]
        name = _NAMES.get(pid)
        if name is None:
            continue
        if pid == 0x26:
            out.setdefault(name, []).append([prop["key"], prop["val"]])
        elif pid == 0x0B:
            out.setdefault(name, []).append(prop["iv"])
        elif pid == 0x09:  # binary: the core decodes with surrogateescape, undo it
            out[name] = prop["val"].encode("utf-8", "surrogateescape")
        elif pid in _TEXT:
            out[name] = prop["val"]
        else:
            out[name] = prop["iv"]
    return out


def pub_properties(message: dict[str, Any]) -> list[tuple[int, Any]] | None:
    """``message["mqtt"]["properties"]`` (optional) as ``Connection.mqtt_pub``'s
    ``(id, value)`` pairs; ValueError naming an unknown or ill-typed key."""
    props = message["mqtt"].get("properties")
    if props is None:
        return None
    kind = message.get("type")
    if not isinstance(props, dict):
        raise ValueError(f"{kind!r}: mqtt['properties'] must be a dict, got {props!r}")
    out: list[tuple[int, Any]] = []
    for name, value in props.items():
        pid = PROPERTY_IDS.get(name)
        if pid is None or pid == 0x0B:  # a subscription identifier is the broker's
            known = ", ".join(n for n in PROPERTY_IDS if n != "subscription_identifier")
            raise ValueError(f"{kind!r}: unknown property {name!r} in mqtt['properties'] "
                             f"(known: {known})")
        if pid == 0x26:
            pairs = value.items() if isinstance(value, dict) else value
            try:
                out += [(pid, (str(k), str(v))) for k, v in pairs]
            except (TypeError, ValueError):
                raise ValueError(f"{kind!r}: mqtt['properties']['user_properties'] must be "
                                 f"a dict or a list of [key, value] pairs, got {value!r}"
                                 ) from None
            continue
        top = 0xFF if pid == 0x01 else 0xFFFFFFFF
        ok = isinstance(value, str) if pid in _TEXT else \
            isinstance(value, (bytes, bytearray)) and len(value) < 65536 if pid == 0x09 else \
            isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top
        if not ok:
            want = "str" if pid in _TEXT else "bytes (64 KiB at most)" if pid == 0x09 \
                else f"an int of 0..{top}"
            raise ValueError(f"{kind!r}: mqtt['properties'][{name!r}] must be {want}, "
                             f"got {value!r}")
        out.append((pid, bytes(value) if pid == 0x09 else value))
    return out
