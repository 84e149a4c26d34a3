# MQTT: message view and constants (mongoose's MQTT 3.1.1 / 5 client and listener).

globals().update(
    MQTT_PROP_TYPE_BYTE=MQTT_PROP_TYPE_BYTE,
    MQTT_PROP_TYPE_STRING=MQTT_PROP_TYPE_STRING,
    MQTT_PROP_TYPE_STRING_PAIR=MQTT_PROP_TYPE_STRING_PAIR,
    MQTT_PROP_TYPE_BINARY_DATA=MQTT_PROP_TYPE_BINARY_DATA,
    MQTT_PROP_TYPE_VARIABLE_INT=MQTT_PROP_TYPE_VARIABLE_INT,
    MQTT_PROP_TYPE_INT=MQTT_PROP_TYPE_INT,
    MQTT_PROP_TYPE_SHORT=MQTT_PROP_TYPE_SHORT,
    MQTT_CMD_CONNECT=MQTT_CMD_CONNECT,
    MQTT_CMD_CONNACK=MQTT_CMD_CONNACK,
    MQTT_CMD_PUBLISH=MQTT_CMD_PUBLISH,
    MQTT_CMD_PUBACK=MQTT_CMD_PUBACK,
    MQTT_CMD_PUBREC=MQTT_CMD_PUBREC,
    MQTT_CMD_PUBREL=MQTT_CMD_PUBREL,
    MQTT_CMD_PUBCOMP=MQTT_CMD_PUBCOMP,
    MQTT_CMD_SUBSCRIBE=MQTT_CMD_SUBSCRIBE,
    MQTT_CMD_SUBACK=MQTT_CMD_SUBACK,
    MQTT_CMD_UNSUBSCRIBE=MQTT_CMD_UNSUBSCRIBE,
    MQTT_CMD_UNSUBACK=MQTT_CMD_UNSUBACK,
    MQTT_CMD_PINGREQ=MQTT_CMD_PINGREQ,
    MQTT_CMD_PINGRESP=MQTT_CMD_PINGRESP,
    MQTT_CMD_DISCONNECT=MQTT_CMD_DISCONNECT,
)


cdef class MqttMessage:
    """View over ``struct mg_mqtt_message`` (one received MQTT packet).

    ``topic``/``data`` are set for PUBLISH; ``cmd`` is the packet type
    (``MQTT_CMD_*``); ``dgram`` is the whole raw packet. Valid only while the
    event handler runs; afterwards (as in cymongoose 0.2.5) ``topic``/``text`` are "",
    ``data`` b"", the numbers 0 and ``properties()`` ``[]``; ``dgram`` raises RuntimeError.
    """

    # Fields and C methods are declared in mqtt.pxd.

    def __cinit__(self):
        self._mm = NULL

    cdef inline mg_mqtt_message *_get(self) except NULL:
        if self._mm == NULL:
            raise RuntimeError("MqttMessage used after its event handler returned")
        return self._mm

    @property
    def topic(self) -> str:
        return _str(self._mm.topic) if self._mm != NULL else ""

    @property
    def data(self) -> bytes:
        return _bytes(self._mm.data) if self._mm != NULL else b""

    @property
    def text(self) -> str:
        return _str(self._mm.data) if self._mm != NULL else ""

    @property
    def dgram(self) -> bytes:
        return _bytes(self._get().dgram)

    @property
    def id(self) -> int:
        return self._mm.id if self._mm != NULL else 0

    @property
    def cmd(self) -> int:
        return self._mm.cmd if self._mm != NULL else 0

    @property
    def qos(self) -> int:
        return self._mm.qos if self._mm != NULL else 0

    @property
    def ack(self) -> int:
        return self._mm.ack if self._mm != NULL else 0

    @property
    def retain(self) -> bool:
        """The RETAIN flag of a PUBLISH (MQTT 3.1.1 section 3.3.1.3): True when the
        broker sends a retained message to a new subscription; False otherwise."""
        cdef mg_mqtt_message *mm = self._mm
        if mm == NULL or mm.dgram.len == 0 or mm.cmd != MQTT_CMD_PUBLISH:
            return False
        return bool((<unsigned char *>mm.dgram.buf)[0] & 1)

    def properties(self):
        """MQTT 5 properties as a list of dicts with keys ``id``, ``iv``, ``key``, ``val``.

        ``key`` and ``val`` are str (None when the property has none); empty for v3.1.1.
        """
        cdef mg_mqtt_message *mm = self._mm
        cdef mg_mqtt_prop prop
        cdef size_t ofs = 0
        cdef list out = []
        if mm == NULL or mm.props_size == 0:
            return out
        while True:
            memset(&prop, 0, sizeof(prop))
            ofs = mg_mqtt_next_prop(mm, &prop, ofs)
            if ofs == 0:
                break
            out.append({"id": prop.id, "iv": prop.iv,
                        "key": _str(prop.key) if prop.key.buf != NULL else None,
                        "val": _str(prop.val) if prop.val.buf != NULL else None})
        return out

    def __repr__(self):
        if self._mm == NULL:
            return "<MqttMessage (invalidated)>"
        return f"<MqttMessage cmd={self.cmd} topic={self.topic!r} len={self._mm.data.len}>"


cdef MqttMessage _mqtt_message(mg_mqtt_message *mm):
    cdef MqttMessage m = MqttMessage.__new__(MqttMessage)
    m._mm = mm
    return m


# MQTT 5.0 section 2.2.2.2: property id -> type (what mongoose encodes it as).
_PROP_TYPES = {
    0x01: MQTT_PROP_TYPE_BYTE, 0x02: MQTT_PROP_TYPE_INT, 0x03: MQTT_PROP_TYPE_STRING,
    0x08: MQTT_PROP_TYPE_STRING, 0x09: MQTT_PROP_TYPE_BINARY_DATA,
    0x0B: MQTT_PROP_TYPE_VARIABLE_INT, 0x11: MQTT_PROP_TYPE_INT,
    0x12: MQTT_PROP_TYPE_STRING, 0x13: MQTT_PROP_TYPE_SHORT, 0x15: MQTT_PROP_TYPE_STRING,
    0x16: MQTT_PROP_TYPE_BINARY_DATA, 0x17: MQTT_PROP_TYPE_BYTE, 0x18: MQTT_PROP_TYPE_INT,
    0x19: MQTT_PROP_TYPE_BYTE, 0x1A: MQTT_PROP_TYPE_STRING, 0x1C: MQTT_PROP_TYPE_STRING,
    0x1F: MQTT_PROP_TYPE_STRING, 0x21: MQTT_PROP_TYPE_SHORT, 0x22: MQTT_PROP_TYPE_SHORT,
    0x23: MQTT_PROP_TYPE_SHORT, 0x24: MQTT_PROP_TYPE_BYTE, 0x25: MQTT_PROP_TYPE_BYTE,
    0x26: MQTT_PROP_TYPE_STRING_PAIR, 0x27: MQTT_PROP_TYPE_INT, 0x28: MQTT_PROP_TYPE_BYTE,
    0x29: MQTT_PROP_TYPE_BYTE, 0x2A: MQTT_PROP_TYPE_BYTE,
}
_PROP_MAX = {MQTT_PROP_TYPE_BYTE: 0xFF, MQTT_PROP_TYPE_SHORT: 0xFFFF,
             MQTT_PROP_TYPE_INT: 0xFFFFFFFF, MQTT_PROP_TYPE_VARIABLE_INT: 268435455}


cdef list _prop_items(object properties):
    """``[(id, int | bytes | (bytes, bytes))]`` of ``Connection.mqtt_pub``'s
    ``properties``, checked against each id's type; the bytes are kept alive by the
    list while mongoose encodes them."""
    cdef list out = []
    if isinstance(properties, (str, bytes, dict)):
        raise TypeError("properties must be a sequence of (id, value) pairs, not "
                        f"{type(properties).__name__}")
    for item in properties:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(f"properties: each item must be an (id, value) tuple, got {item!r}")
        pid, value = item
        kind = _PROP_TYPES.get(pid) if isinstance(pid, int) else None
        if kind is None:
            raise ValueError(f"properties: {pid!r} is not an MQTT 5 property id")
        if kind in _PROP_MAX:
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not 0 <= value <= _PROP_MAX[kind]:
                raise ValueError(f"properties: property 0x{pid:02X} takes an int of "
                                 f"0..{_PROP_MAX[kind]}, got {value!r}")
            out.append((pid, value))
        elif kind == MQTT_PROP_TYPE_STRING_PAIR:
            if not isinstance(value, tuple) or len(value) != 2:
                raise ValueError(f"properties: property 0x{pid:02X} (user property) "
                                 f"takes a (key, value) pair, got {value!r}")
            out.append((pid, (_prop_bytes(pid, value[0]), _prop_bytes(pid, value[1]))))
        else:
            out.append((pid, _prop_bytes(pid, value)))
    return out


cdef mg_mqtt_prop *_prop_array(list items) except NULL:
    """A calloc'ed ``mg_mqtt_prop`` array of `_prop_items`'s ``items`` (which keep the
    bytes it points into alive); the caller frees it."""
    cdef mg_mqtt_prop *props = <mg_mqtt_prop *>calloc(len(items), sizeof(mg_mqtt_prop))
    cdef Py_ssize_t i
    if props == NULL:
        raise MemoryError()
    for i, (pid, value) in enumerate(items):
        props[i].id = <uint8_t>pid
        if isinstance(value, int):
            props[i].iv = <uint32_t>value
        elif isinstance(value, tuple):
            props[i].key = _mgs(value[0])
            props[i].val = _mgs(value[1])
        else:
            props[i].val = _mgs(value)
    return props


cdef bytes _prop_bytes(int pid, object value):
    cdef bytes b
    if isinstance(value, str):
        b = value.encode("utf-8", "surrogateescape")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
    else:
        raise ValueError(f"properties: property 0x{pid:02X} takes str or bytes, got {value!r}")
    if len(b) > 65535:
        raise ValueError(f"properties: property 0x{pid:02X} is longer than 65535 bytes")
    return b


cdef inline int _check_qos(int qos) except -1:
    if qos < 0 or qos > 2:
        raise ValueError(f"qos must be 0, 1 or 2, got {qos}")
    return 0
