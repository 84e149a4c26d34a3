# Values come from the compiled mongoose enums, never hard-coded.
MG_VERSION_STR = MG_VERSION.decode()

_EVENT_NAMES = {}
for _name, _val in (
    ("MG_EV_ERROR", MG_EV_ERROR), ("MG_EV_OPEN", MG_EV_OPEN), ("MG_EV_POLL", MG_EV_POLL),
    ("MG_EV_RESOLVE", MG_EV_RESOLVE), ("MG_EV_CONNECT", MG_EV_CONNECT),
    ("MG_EV_ACCEPT", MG_EV_ACCEPT), ("MG_EV_TLS_HS", MG_EV_TLS_HS), ("MG_EV_READ", MG_EV_READ),
    ("MG_EV_WRITE", MG_EV_WRITE), ("MG_EV_CLOSE", MG_EV_CLOSE),
    ("MG_EV_HTTP_HDRS", MG_EV_HTTP_HDRS), ("MG_EV_HTTP_MSG", MG_EV_HTTP_MSG),
    ("MG_EV_WS_OPEN", MG_EV_WS_OPEN), ("MG_EV_WS_MSG", MG_EV_WS_MSG),
    ("MG_EV_WS_CTL", MG_EV_WS_CTL), ("MG_EV_MQTT_CMD", MG_EV_MQTT_CMD),
    ("MG_EV_MQTT_MSG", MG_EV_MQTT_MSG), ("MG_EV_MQTT_OPEN", MG_EV_MQTT_OPEN),
    ("MG_EV_SNTP_TIME", MG_EV_SNTP_TIME), ("MG_EV_WAKEUP", MG_EV_WAKEUP),
    ("MG_EV_USER", MG_EV_USER),
    # The core's HTTP server's own events (state.pxd).
    ("EV_HTTP_BODY", _EV_HTTP_BODY), ("EV_WRITABLE", _EV_WRITABLE),
    ("EV_REQUEST_LIMIT", _EV_REQUEST_LIMIT),
):
    globals()[_name] = _val
    _EVENT_NAMES[_val] = _name

globals().update(
    WEBSOCKET_OP_CONTINUE=WEBSOCKET_OP_CONTINUE,
    WEBSOCKET_OP_TEXT=WEBSOCKET_OP_TEXT,
    WEBSOCKET_OP_BINARY=WEBSOCKET_OP_BINARY,
    WEBSOCKET_OP_CLOSE=WEBSOCKET_OP_CLOSE,
    WEBSOCKET_OP_PING=WEBSOCKET_OP_PING,
    WEBSOCKET_OP_PONG=WEBSOCKET_OP_PONG,
    MG_LL_NONE=MG_LL_NONE,
    MG_LL_ERROR=MG_LL_ERROR,
    MG_LL_INFO=MG_LL_INFO,
    MG_LL_DEBUG=MG_LL_DEBUG,
    MG_LL_VERBOSE=MG_LL_VERBOSE,
)


def event_name(int ev) -> str:
    """Name of event ``ev``: ``"MG_EV_HTTP_MSG"``, ``"MG_EV_USER+N"``, or ``"MG_EV_UNKNOWN(N)"``."""
    if ev in _EVENT_NAMES:
        return _EVENT_NAMES[ev]
    if ev > MG_EV_USER:
        return f"MG_EV_USER+{ev - MG_EV_USER}"
    return f"MG_EV_UNKNOWN({ev})"
