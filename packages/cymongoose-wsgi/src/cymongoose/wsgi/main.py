"""The ``cymongoose-wsgi`` command line: ``cymongoose-wsgi module:app [options]``."""

from __future__ import annotations

import argparse
import logging
import sys

from cymongoose.importer import import_app

from .server import WSGIServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cymongoose-wsgi", description="Serve a WSGI application with cymongoose."
    )
    parser.add_argument("app", help="the WSGI application, as module:attribute")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="bind port (default 8000)")
    parser.add_argument(
        "--threads", type=int, default=4, help="worker threads running the app (default 4)"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log one line per request",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sys.path.insert(0, ".")
    try:
        app = import_app(args.app)
    except (ImportError, ValueError) as exc:
        print(f"cymongoose-wsgi: error: {exc}", file=sys.stderr)
        return 2
    host = f"[{args.host}]" if ":" in args.host else args.host
    server = WSGIServer(app, workers=args.threads, access_log=args.access_log)
    conn = server.listen(f"http://{host}:{args.port}")
    logging.getLogger("cymongoose.wsgi").info(
        "serving %s on http://%s:%d (%d threads)", args.app, host, conn.local_addr[1], args.threads
    )
    server.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
