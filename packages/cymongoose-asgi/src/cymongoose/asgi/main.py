"""The ``cymongoose-asgi`` command line: ``cymongoose-asgi module:app [options]``.

The flags (uvicorn's names) and the flow (logging, app import, ``--workers``) are shared
with ``cymongoose-wsgi`` and live in :mod:`cymongoose.serving.cli`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cymongoose.importer import import_app
from cymongoose.serving.cli import add_server_arguments, run_cli

__all__ = ["build_parser", "import_app", "main"]  # import_app: re-exported, as before


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``cymongoose-asgi`` (shared flags plus the ASGI ones)."""
    parser = argparse.ArgumentParser(
        prog="cymongoose-asgi", description="Serve an ASGI 3 application with cymongoose."
    )
    add_server_arguments(parser, "asgi")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    from .server import serve

    return run_cli(build_parser(), argv, serve, "cymongoose.asgi")


if __name__ == "__main__":
    raise SystemExit(main())
