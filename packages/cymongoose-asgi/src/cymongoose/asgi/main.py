"""The ``cymongoose-asgi`` command line: ``cymongoose-asgi module:app [options]``.

The shared flags (uvicorn's names) and the flow (logging, app import, ``--workers``) live
in :mod:`cymongoose.serving.cli`; this module adds the ASGI flags and describes the server
in :data:`ADAPTER` (also used by the gunicorn worker class, :mod:`.workers`).
"""

from __future__ import annotations

import argparse

from cymongoose.importer import import_app
from cymongoose.serving.cli import ServerAdapter, config_default
from cymongoose.serving.config import LIFESPAN_MODES, LOOP_MODES

from .mqttserve import add_mqtt_arguments, mqtt_options, serve

__all__ = ["ADAPTER", "build_parser", "import_app", "main"]  # import_app: re-exported


def add_asgi_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ASGI flags: ``--lifespan --loop --ws-max-size --ws-ping-interval
    --ws-ping-timeout --ws-per-message-deflate`` (ServerConfig fields in
    :data:`cymongoose.serving.cli.FIELD_OF_DEST`)."""
    d = config_default
    asgi = parser.add_argument_group("ASGI")
    asgi.add_argument("--lifespan", choices=LIFESPAN_MODES,
                      help="ASGI lifespan protocol: auto runs it if the app supports it "
                           f"(default {d('lifespan')})")
    asgi.add_argument("--loop", choices=LOOP_MODES,
                      help="event loop: auto uses uvloop when it is installed "
                           f"(default {d('loop')})")
    asgi.add_argument("--ws-max-size", type=int, metavar="BYTES",
                      help="largest WebSocket message accepted; larger ones close the "
                           f"connection with 1009 (default {d('ws_max_size')})")
    asgi.add_argument("--ws-ping-interval", type=float, metavar="SECONDS",
                      help="send a WebSocket ping this often "
                           f"(default {d('ws_ping_interval_s')}; 0 = never)")
    asgi.add_argument("--ws-ping-timeout", type=float, metavar="SECONDS",
                      help="close a WebSocket whose pong is this late "
                           f"(default {d('ws_ping_timeout_s')}; 0 = never)")
    asgi.add_argument("--ws-per-message-deflate", action=argparse.BooleanOptionalAction,
                      default=None,
                      help="agree to WebSocket compression (permessage-deflate, RFC 7692) "
                           "when the client offers it (default on)")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_asgi_arguments(parser)
    add_mqtt_arguments(parser)


ADAPTER = ServerAdapter(
    prog="cymongoose-asgi",
    description="Serve an ASGI 3 application with cymongoose (HTTP/WebSocket, and MQTT "
                "with --mqtt).",
    module="cymongoose.asgi",
    serve=serve,
    add_arguments=_add_arguments,
    options=mqtt_options,
)

#: ``build_parser()``: the parser of ``--help`` (the docs' CLI reference reads it);
#: ``main(argv=None) -> int``: the command (the console script, ``python -m``).
build_parser = ADAPTER.build_parser
main = ADAPTER.main

if __name__ == "__main__":
    raise SystemExit(main())
