"""The command-line flags shared by ``cymongoose-asgi`` and ``cymongoose-wsgi``.

Flag names follow uvicorn where the concept is the same. Apart from ``--host``, ``--port``
and ``--log-level`` (whose defaults are ServerConfig's), every flag defaults to "not given"
so that :class:`~cymongoose.serving.config.ServerConfig` holds the one set of defaults;
the help text quotes them.

    parser = argparse.ArgumentParser(prog="cymongoose-asgi")
    add_server_arguments(parser, "asgi")
    args = parser.parse_args()
    config = config_from_args(args, parser)   # a validated ServerConfig

:func:`run_cli` is the whole CLI flow (logging, app import, ``--workers``) used by both
``main.py`` modules.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields
from typing import Any

from ..importer import import_app
from .config import LIFESPAN_MODES, LOG_LEVELS, LOOP_MODES, ServerConfig
from .logconfig import configure_logging

logger = logging.getLogger("cymongoose.serving")

# argparse dest -> ServerConfig field
FIELD_OF_DEST = {
    "host": "host",
    "port": "port",
    "fd": "fd",
    "workers": "workers",
    "log_level": "log_level",
    "access_log": "access_log",
    "root_path": "root_path",
    "proxy_headers": "proxy_headers",
    "forwarded_allow_ips": "forwarded_allow_ips",
    "ssl_keyfile": "ssl_keyfile",
    "ssl_certfile": "ssl_certfile",
    "ssl_ca_certs": "ssl_ca_certs",
    "timeout_keep_alive": "keep_alive_timeout_s",
    "timeout_graceful_shutdown": "graceful_timeout_s",
    "limit_concurrency": "max_connections",
    "limit_request_fields": "max_header_count",
    "limit_request_header_size": "max_header_bytes",
    "limit_request_body": "max_body_size",
    "lifespan": "lifespan",
    "loop": "loop",
    "ws_max_size": "ws_max_size",
    "ws_ping_interval": "ws_ping_interval_s",
    "ws_ping_timeout": "ws_ping_timeout_s",
    "threads": "threads",
}
# Flags where 0 on the command line means "off" (None in ServerConfig).
_ZERO_IS_NONE = {"ws_ping_interval", "ws_ping_timeout", "limit_concurrency",
                 "limit_request_body"}


def _default(name: str) -> Any:
    for f in fields(ServerConfig):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            return f.default_factory()  # type: ignore[misc,operator,unused-ignore]
    raise KeyError(name)


def add_server_arguments(parser: argparse.ArgumentParser, server: str) -> None:
    """Add the app argument and every server flag to ``parser``.

    ``server`` is ``"asgi"`` (adds ``--lifespan --ws-max-size --ws-ping-interval
    --ws-ping-timeout``) or ``"wsgi"`` (adds ``--threads``); ValueError otherwise. Also
    sets ``parser.allow_abbrev = False``: flags must be given in full.
    """
    if server not in ("asgi", "wsgi"):
        raise ValueError(f"server must be 'asgi' or 'wsgi', got {server!r}")
    # A flag is given in full: "--work 2" is not taken for --workers, and other servers'
    # flags (uvicorn's --ws) are "unrecognized", not "ambiguous".
    parser.allow_abbrev = False
    d = _default
    parser.add_argument("app", help="the application, as module:attribute (e.g. main:app)")
    parser.add_argument("--factory", action="store_true",
                        help="treat module:attribute as a factory: call it to get the app")
    parser.add_argument("--app-dir", default=".",
                        help="directory added to sys.path before importing the app "
                             "(default: the current directory)")
    net = parser.add_argument_group("socket")
    net.add_argument("--host", default=d("host"),
                     help="bind to this address (default %(default)s; "
                          "0.0.0.0 or :: for every interface)")
    net.add_argument("--port", type=int, default=d("port"),
                     help="bind to this TCP port (default %(default)s; 0 picks a free one)")
    net.add_argument("--fd", type=int,
                     help="serve on this already bound and listening socket file descriptor "
                          "instead of --host/--port")
    net.add_argument("--workers", type=int,
                     help="number of worker processes sharing the socket "
                          "(default: $WEB_CONCURRENCY or 1)")
    # Given by --workers to the processes it starts (see run_cli); not for users.
    net.add_argument("--worker-process", action="store_true", help=argparse.SUPPRESS)
    log = parser.add_argument_group("logging")
    log.add_argument("--log-level", choices=LOG_LEVELS, type=str.lower, default="info",
                     help="level of the server's log (default %(default)s)")
    log.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=None,
                     help="log one line per response (default on)")
    prox = parser.add_argument_group("proxies")
    prox.add_argument("--root-path",
                      help="path prefix under which the app is mounted behind a proxy "
                           "(ASGI root_path, WSGI SCRIPT_NAME), e.g. /api")
    prox.add_argument("--proxy-headers", action=argparse.BooleanOptionalAction, default=None,
                      help="take client address, scheme and host from X-Forwarded-For/"
                           "-Proto/-Host and Forwarded sent by trusted proxies (default on)")
    prox.add_argument("--forwarded-allow-ips",
                      help="comma-separated IPs or CIDR networks trusted to send proxy "
                           "headers, or '*' (default: $FORWARDED_ALLOW_IPS or 127.0.0.1)")
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--ssl-keyfile", help="PEM private key file (serve HTTPS)")
    tls.add_argument("--ssl-certfile", help="PEM certificate (chain) file (serve HTTPS)")
    tls.add_argument("--ssl-ca-certs", help="PEM CA certificates to verify client certificates")
    lim = parser.add_argument_group("timeouts and limits")
    lim.add_argument("--timeout-keep-alive", type=float, metavar="SECONDS",
                     help="close idle keep-alive connections after this many seconds "
                          f"(default {d('keep_alive_timeout_s')})")
    lim.add_argument("--timeout-graceful-shutdown", type=float, metavar="SECONDS",
                     help="on SIGTERM/SIGINT wait this many seconds for in-flight requests "
                          f"(default {d('graceful_timeout_s')})")
    lim.add_argument("--limit-concurrency", type=int, metavar="CONNECTIONS",
                     help="answer 503 to connections beyond this many open ones "
                          "(default unlimited; 0 = unlimited)")
    lim.add_argument("--limit-request-fields", type=int, metavar="COUNT",
                     help="answer 431 to requests with more header fields "
                          f"(1..100, default {d('max_header_count')})")
    lim.add_argument("--limit-request-header-size", type=int, metavar="BYTES",
                     help="answer 431 when the request line plus headers exceed this many "
                          f"bytes (default {d('max_header_bytes')})")
    lim.add_argument("--limit-request-body", type=int, metavar="BYTES",
                     help="answer 413 to request bodies larger than this many bytes "
                          "(default unlimited; 0 = unlimited)")
    if server == "asgi":
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
    else:
        wsgi = parser.add_argument_group("WSGI")
        wsgi.add_argument("--threads", type=int, metavar="COUNT",
                          help="threads running the WSGI app; 0 runs it on the event loop "
                               "thread (inline mode, for apps that do not block) "
                               f"(default {d('threads')} on this machine: min(32, cpus*4+4))")


def config_from_args(
    args: argparse.Namespace, parser: argparse.ArgumentParser | None = None
) -> ServerConfig:
    """Build a validated ServerConfig from flags parsed by :func:`add_server_arguments`.

    Flags not given keep ServerConfig's defaults (``--workers`` falls back to
    ``$WEB_CONCURRENCY``). An invalid value raises ValueError/TypeError, or, when
    ``parser`` is given, exits through ``parser.error`` (status 2) with the message.
    """
    values: dict[str, Any] = {}
    for dest, name in FIELD_OF_DEST.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest in _ZERO_IS_NONE and value == 0:
            value = None
        values[name] = value
    if "workers" not in values and os.environ.get("WEB_CONCURRENCY", "").isdecimal():
        values["workers"] = int(os.environ["WEB_CONCURRENCY"])
    try:
        return ServerConfig(**values)
    except (TypeError, ValueError) as exc:
        if parser is None:
            raise
        parser.error(str(exc))
        raise  # unreachable: parser.error exits


def _call_serve(serve: Callable[..., Any], app: Any, config: ServerConfig) -> None:
    try:
        accepts_config = "config" in inspect.signature(serve).parameters
    except (TypeError, ValueError):
        accepts_config = True
    if accepts_config:
        serve(app, config=config)
    else:
        # Servers that predate ServerConfig take only the URL.
        logger.warning("this server version ignores most options; serving on %s", config.url)
        serve(app, config.url)


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``, whose "unrecognized arguments" error also names the
    flags that were probably meant (``--work``: did you mean --workers?). Exits with
    status 2."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        flags = [flag for action in parser._actions if action.help != argparse.SUPPRESS
                 for flag in action.option_strings]
        guesses: list[str] = []
        for arg in extra:
            if arg.startswith("--"):
                name = arg.split("=")[0]
                guesses += [f for f in flags if f.startswith(name)][:3] or \
                    difflib.get_close_matches(name, flags, n=1)
        hint = f" (did you mean {' or '.join(dict.fromkeys(guesses))}?)" if guesses else ""
        parser.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    return args


#: What a newcomer's mistake raises at start-up: a port in use (ListenError), a TLS file
#: or app module that cannot be read or found, a missing uvloop, a bad ``--fd``. Shown as
#: one line, ``prog: error: <the exception>``, with exit status 1 (see the docstrings of
#: import_app, serving.listen and serving.tls for what each raises).
STARTUP_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, ImportError)


def report_startup_error(prog: str, exc: BaseException) -> None:
    """Print ``exc`` on stderr as one line, ``prog: error: <exc>``; with ``--log-level
    debug`` its traceback is logged first."""
    logger.debug("start-up failed", exc_info=exc)
    print(f"{prog}: error: {str(exc) or type(exc).__name__}", file=sys.stderr, flush=True)


def run_cli(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    serve: Callable[..., Any],
    module: str,
) -> int:
    """Parse ``argv``, set up logging, then serve (or supervise ``--workers`` processes).

    ``serve(app, config=ServerConfig)`` blocks until SIGINT/SIGTERM. ``module`` is what
    ``python -m`` runs to start one worker process (``"cymongoose.asgi"``). Returns the
    process exit status: 0 after a clean stop; 1 when the server cannot start
    (:data:`STARTUP_ERRORS`, reported by :func:`report_startup_error`; a worker process of
    ``--workers`` returns EXIT_STARTUP_FAILED instead, which tells its parent not to
    restart it); bad flags exit with status 2 through ``parser.error``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(parser, argv)
    config = config_from_args(args, parser)
    configure_logging(config.log_level, config.access_log)
    try:
        if config.workers > 1:
            from .workers import Supervisor

            def child_command(fd: int) -> list[str]:
                # argparse keeps the last occurrence of a flag: these override the user's.
                return [sys.executable, "-m", module, *argv, "--workers", "1", "--fd",
                        str(fd), "--worker-process"]

            return Supervisor(config, child_command).run()
        app_dir = os.path.abspath(args.app_dir)
        if app_dir not in sys.path:
            sys.path.insert(0, app_dir)
        app = import_app(args.app, factory=args.factory)
        _call_serve(serve, app, config)
    except STARTUP_ERRORS as exc:
        report_startup_error(parser.prog, exc)
        if args.worker_process:
            from .workers import EXIT_STARTUP_FAILED

            return EXIT_STARTUP_FAILED
        return 1
    return 0
