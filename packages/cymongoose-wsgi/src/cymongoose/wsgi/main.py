"""The ``cymongoose-wsgi`` command line: ``cymongoose-wsgi module:app [options]``.

The shared flags (uvicorn's names) and the flow (logging, app import, ``--workers``) live
in :mod:`cymongoose.serving.cli`; this module adds ``--threads`` and describes the server
in :data:`ADAPTER` (also used by the gunicorn worker class, :mod:`.workers`).
"""

from __future__ import annotations

import argparse

from cymongoose.importer import import_app
from cymongoose.serving.cli import ServerAdapter, config_default

from .server import serve

__all__ = ["ADAPTER", "build_parser", "import_app", "main"]  # import_app: re-exported


def add_wsgi_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads`` (``ServerConfig.threads``, the app threads of each process)."""
    wsgi = parser.add_argument_group("WSGI")
    wsgi.add_argument("--threads", type=int, metavar="COUNT",
                      help="threads running the WSGI app; 0 runs it on the event loop "
                           "thread (inline mode, for apps that do not block) "
                           f"(default {config_default('threads')} on this machine: "
                           "min(32, cpus*4+4))")


ADAPTER = ServerAdapter(
    prog="cymongoose-wsgi",
    description="Serve a PEP 3333 WSGI application with cymongoose.",
    module="cymongoose.wsgi",
    serve=serve,
    add_arguments=add_wsgi_arguments,
    app_threads=True,
)

#: ``build_parser()``: the parser of ``--help`` (the docs' CLI reference reads it);
#: ``main(argv=None) -> int``: the command (the console script, ``python -m``).
build_parser = ADAPTER.build_parser
main = ADAPTER.main

if __name__ == "__main__":
    raise SystemExit(main())
