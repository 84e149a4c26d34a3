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


cdef inline int _check_qos(int qos) except -1:
    if qos < 0 or qos > 2:
        raise ValueError(f"qos must be 0, 1 or 2, got {qos}")
    return 0
