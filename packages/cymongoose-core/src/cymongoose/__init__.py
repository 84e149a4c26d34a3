"""cymongoose: Python on the mongoose 7.23 C event loop.

``cymongoose`` is one import namespace shared by several distributions
(cymongoose-core, -aio, -wsgi, -asgi); this package extends its ``__path__`` so
their subpackages are found wherever each is installed.

Names that other distributions add to the top level (``cymongoose.AsyncManager``
from cymongoose-aio) are declared by them as entry points of the group
``cymongoose.exports`` and resolved on first use, like the subpackages
(``cymongoose.aio``): the core imports none of them by name.
"""

from pkgutil import extend_path
from typing import Any as _Any

__path__ = extend_path(__path__, __name__)

from cymongoose._mongoose import *  # noqa: E402,F401,F403
from cymongoose._mongoose import MG_VERSION_STR as MONGOOSE_VERSION  # noqa: E402,F401
from cymongoose._mongoose import (  # noqa: E402,F401
    TLS_LIBRARY,
    Connection,
    HttpMessage,
    Manager,
    MqttMessage,
    Timer,
    TlsOpts,
    WsMessage,
    event_name,
    log_get,
    log_set,
    millis,
)

__version__ = "0.3.0"

# mongoose prints its own log to stdout; servers log through `logging` instead.
log_set(MG_LL_NONE)  # noqa: F405

#: The entry-point group through which other distributions add top-level names.
EXPORTS_GROUP = "cymongoose.exports"

# What ``from cymongoose import *`` brings, as in cymongoose 0.2.5; the names registered
# in EXPORTS_GROUP (AsyncManager) are appended by __getattr__("__all__").
_ALL_CORE = [
    "Connection", "HttpMessage", "Manager", "MqttMessage", "Rpc", "RpcReq", "Timer",
    "TlsOpts", "WsMessage",
    "MG_EV_ACCEPT", "MG_EV_CLOSE", "MG_EV_CONNECT", "MG_EV_ERROR", "MG_EV_HTTP_HDRS",
    "MG_EV_HTTP_MSG", "MG_EV_MQTT_CMD", "MG_EV_MQTT_MSG", "MG_EV_MQTT_OPEN", "MG_EV_OPEN",
    "MG_EV_POLL", "MG_EV_READ", "MG_EV_RESOLVE", "MG_EV_SNTP_TIME", "MG_EV_TLS_HS",
    "MG_EV_USER", "MG_EV_WAKEUP", "MG_EV_WRITE", "MG_EV_WS_CTL", "MG_EV_WS_MSG",
    "MG_EV_WS_OPEN",
    "WEBSOCKET_OP_BINARY", "WEBSOCKET_OP_PING", "WEBSOCKET_OP_PONG", "WEBSOCKET_OP_TEXT",
    "MQTT_PROP_TYPE_BINARY_DATA", "MQTT_PROP_TYPE_BYTE", "MQTT_PROP_TYPE_INT",
    "MQTT_PROP_TYPE_SHORT", "MQTT_PROP_TYPE_STRING", "MQTT_PROP_TYPE_STRING_PAIR",
    "MQTT_PROP_TYPE_VARIABLE_INT",
    "base64_decode", "base64_encode", "crc32", "event_name", "hmac_sha256",
    "http_parse_multipart", "http_var", "json_get", "json_get_bool", "json_get_long",
    "json_get_num", "json_get_str", "log_get", "log_set", "match", "md5", "millis",
    "random_bytes", "random_str", "sha1", "sha256", "url_encode", "url_host",
    "url_is_ssl", "url_pass", "url_port", "url_uri", "url_user",
    "MG_LL_NONE", "MG_LL_ERROR", "MG_LL_INFO", "MG_LL_DEBUG", "MG_LL_VERBOSE",
]

# Top-level names of cymongoose 0.2.5 that now come from another distribution, with
# the one to install: used only to word the ImportError when it is missing.
_MOVED = {"AsyncManager": "cymongoose-aio"}


_exports_found: dict[str, _Any] | None = None


def _exports() -> dict[str, _Any]:
    """``{name: entry point}`` of EXPORTS_GROUP, read on first need and kept (reading
    them scans every installed distribution: not something every import should pay)."""
    global _exports_found
    if _exports_found is None:
        from importlib.metadata import entry_points

        found: dict[str, _Any] = {}
        for ep in entry_points(group=EXPORTS_GROUP):
            found.setdefault(ep.name, ep)  # the first distribution on sys.path wins
        _exports_found = found
    return _exports_found


def __getattr__(name: str) -> _Any:
    """Resolve, on first use, ``__all__``, a subpackage shipped by another distribution
    (``cymongoose.aio``) and a name registered in EXPORTS_GROUP (``AsyncManager``)."""
    if name == "__all__":
        return _ALL_CORE + [n for n in sorted(_exports()) if n not in _ALL_CORE]
    if name.isidentifier() and not name.startswith("_"):
        import importlib
        import importlib.util

        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f"{__name__}.{name}")
        ep = _exports().get(name)
        if ep is not None:
            value = globals()[name] = ep.load()
            return value
    if name in _MOVED:
        raise ImportError(
            f"cymongoose.{name} needs the {_MOVED[name]} package: pip install {_MOVED[name]}",
            name=__name__,
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_exports()))
