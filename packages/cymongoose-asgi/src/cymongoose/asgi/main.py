"""The ``cymongoose-asgi`` command line: ``cymongoose-asgi module:app [--host --port ...]``."""

from __future__ import annotations

import argparse
import logging
import sys

from cymongoose.importer import import_app

from .server import serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cymongoose-asgi", description="Serve an ASGI application with cymongoose."
    )
    parser.add_argument("app", help="the application, as module:attribute")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="bind port (default 8000)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level (default info)",
    )
    parser.add_argument(
        "--factory",
        action="store_true",
        help="treat module:attribute as a factory that returns the app",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    if "" not in sys.path:
        sys.path.insert(0, "")  # like uvicorn: the app module is found from the cwd
    app = import_app(args.app, factory=args.factory)
    host = f"[{args.host}]" if ":" in args.host else args.host
    serve(app, f"http://{host}:{args.port}")
    return 0
