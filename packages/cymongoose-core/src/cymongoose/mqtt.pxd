cdef class MqttMessage:
    cdef mg_mqtt_message *_mm     # NULL once the event handler has returned

    cdef inline mg_mqtt_message *_get(self) except NULL
