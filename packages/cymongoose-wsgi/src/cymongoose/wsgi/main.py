"""The ``cymongoose-wsgi`` command line: ``cymongoose-wsgi module:app [options]``.

The shared flags (uvicorn's names) and the flow (logging, app import, ``--workers``) live
in :mod:`cymongoose.serving.cli`; this module adds ``--threads`` and describes the server
in :data:`ADAPTER` (also used by the gunicorn worker class, :mod:`.workers`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from cymongoose.importer import import_app
from cymongoose.serving import cli
from cymongoose.serving.adapter import ServerAdapter
from cymongoose.serving.config import ServerConfig

__all__ = ["ADAPTER", "build_parser", "import_app", "main"]  # import_app: re-exported


def add_wsgi_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads`` (``ServerConfig.threads``, the app threads of each process)."""
    wsgi = parser.add_argument_group("WSGI")
    wsgi.add_argument("--threads", type=int, metavar="COUNT",
                      help="threads running the WSGI app; 0 runs it on the event loop "
                           "thread (inline mode, for apps that do not block) "
                           f"(default {cli.config_default('threads')} on this machine: "
                           "min(32, cpus*4+4))")


def _serve(app: Any, config: ServerConfig) -> None:
    from .server import serve  # imported to serve only: --help and gunicorn's arbiter skip it

    serve(app, config=config)


ADAPTER = ServerAdapter(
    prog="cymongoose-wsgi",
    description="Serve a PEP 3333 WSGI application with cymongoose.",
    module="cymongoose.wsgi",
    serve=_serve,
    add_arguments=add_wsgi_arguments,
    app_threads=True,
)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``cymongoose-wsgi`` (shared flags plus ``--threads``)."""
    return cli.build_parser(ADAPTER)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    return cli.run_cli(ADAPTER, argv)


if __name__ == "__main__":
    raise SystemExit(main())
