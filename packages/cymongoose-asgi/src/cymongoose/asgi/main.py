"""The ``cymongoose-asgi`` command line: ``cymongoose-asgi module:app [options]``.

The shared flags (uvicorn's names) and the flow (logging, app import, ``--workers``) live
in :mod:`cymongoose.serving.cli`; this module adds the ASGI flags and describes the server
in :data:`ADAPTER` (also used by the gunicorn worker class, :mod:`.workers`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from cymongoose.importer import import_app
from cymongoose.serving import cli
from cymongoose.serving.adapter import ServerAdapter
from cymongoose.serving.config import LIFESPAN_MODES, LOOP_MODES, ServerConfig

__all__ = ["ADAPTER", "build_parser", "import_app", "main"]  # import_app: re-exported


def add_asgi_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ASGI flags: ``--lifespan --loop --ws-max-size --ws-ping-interval
    --ws-ping-timeout`` (ServerConfig fields in :data:`cymongoose.serving.cli.FIELD_OF_DEST`)."""
    d = cli.config_default
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


def _serve(app: Any, config: ServerConfig) -> None:
    from .server import serve  # imported to serve only: --help and gunicorn's arbiter skip it

    serve(app, config=config)


ADAPTER = ServerAdapter(
    prog="cymongoose-asgi",
    description="Serve an ASGI 3 application with cymongoose.",
    module="cymongoose.asgi",
    serve=_serve,
    add_arguments=add_asgi_arguments,
)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``cymongoose-asgi`` (shared flags plus the ASGI ones)."""
    return cli.build_parser(ADAPTER)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    return cli.run_cli(ADAPTER, argv)


if __name__ == "__main__":
    raise SystemExit(main())
