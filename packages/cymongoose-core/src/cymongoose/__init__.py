"""cymongoose: Python on the mongoose 7.23 C event loop.

``cymongoose`` is one import namespace shared by several distributions
(cymongoose-core, -aio, -wsgi, -asgi); this package extends its ``__path__`` so
their subpackages are found wherever each is installed.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

from cymongoose._mongoose import *  # noqa: E402,F401,F403
from cymongoose._mongoose import MG_VERSION_STR as MONGOOSE_VERSION  # noqa: E402,F401
from cymongoose._mongoose import (  # noqa: E402,F401
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


def __getattr__(name):
    if name == "AsyncManager":
        try:
            from cymongoose.aio import AsyncManager
        except ImportError as exc:
            raise ImportError(
                "cymongoose.AsyncManager needs the cymongoose-aio package: "
                "pip install cymongoose-aio"
            ) from exc
        return AsyncManager
    raise AttributeError(f"module 'cymongoose' has no attribute {name!r}")
