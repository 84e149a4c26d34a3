"""The command line of both servers: the shared flags and the whole CLI flow.

Flag names follow uvicorn where the concept is the same. Apart from ``--host`` and
``--port`` (whose defaults are ServerConfig's), every flag defaults to "not given" so that
:class:`~cymongoose.serving.config.ServerConfig` holds the one set of defaults; the help
text quotes them (:func:`config_default`). Every flag can also be set by an environment
variable, ``CYMONGOOSE_<FLAG>`` (:func:`apply_environment`, one rule for every flag the
parser has, the adapters' included); ``--env-file`` loads such variables from a file.
What differs between the servers (the command's name, its own flags such as
``--threads``, its ``serve``) comes in a :class:`ServerAdapter` that each server's
``main.py`` makes; this module names no server.

    ADAPTER = ServerAdapter("cymongoose-asgi", "Serve ...", "cymongoose.asgi", serve,
                            add_arguments=add_asgi_arguments)
    main = ADAPTER.main                      # the console script
    parser = ADAPTER.build_parser()          # the shared flags plus the adapter's
    config = config_from_args(parser.parse_args(), parser)   # a validated ServerConfig

:func:`run_cli` (``ServerAdapter.main``) is the whole flow: logging, app import, serve, or
``--workers N`` server processes under the
:class:`~cymongoose.serving.supervisor.Supervisor`, or with ``--reload`` one server
process restarted on changes by the :class:`~cymongoose.serving.reload.Reloader`.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import logging
import os
import platform
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import TYPE_CHECKING, Any

from ..importer import import_app
from .config import LOG_LEVELS, ServerConfig
from .environment import ENVIRONMENT_HELP, apply_environment, env_file_of, load_env_file
from .lifecycle import running, socket_url
from .listen import check_listen_fd
from .logconfig import LogConfigError, configure_logging

if TYPE_CHECKING:
    from .reload import ReloadConfig

logger = logging.getLogger("cymongoose.serving")

# argparse dest -> ServerConfig field, for every flag: the shared ones and those the
# adapters add (ServerAdapter.add_arguments).
FIELD_OF_DEST = {
    "host": "host",
    "port": "port",
    "fd": "fd",
    "uds": "uds",
    "workers": "workers",
    "backlog": "backlog",
    "limit_max_requests": "limit_max_requests",
    "limit_max_requests_jitter": "limit_max_requests_jitter",
    "log_level": "log_level",
    "log_config": "log_config",
    "access_log": "access_log",
    "access_log_format": "access_log_format",
    "root_path": "root_path",
    "proxy_headers": "proxy_headers",
    "forwarded_allow_ips": "forwarded_allow_ips",
    "ssl_keyfile": "ssl_keyfile",
    "ssl_certfile": "ssl_certfile",
    "ssl_ca_certs": "ssl_ca_certs",
    "ssl_keyfile_password": "ssl_keyfile_password",
    "ssl_version": "ssl_version",
    "ssl_cert_reqs": "ssl_cert_reqs",
    "ssl_ciphers": "ssl_ciphers",
    "server_header": "server_header",
    "date_header": "date_header",
    "header": "headers",
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
    "ws_per_message_deflate": "ws_per_message_deflate",
    "threads": "threads",
}
# Flags where 0 on the command line means "off" (None in ServerConfig).
_ZERO_IS_NONE = {"ws_ping_interval", "ws_ping_timeout", "limit_concurrency",
                 "limit_request_body", "limit_max_requests"}


def config_default(name: str) -> Any:
    """The default of ServerConfig field ``name`` (for help texts); KeyError if no such
    field."""
    for f in fields(ServerConfig):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            return f.default_factory()  # type: ignore[misc,operator,unused-ignore]
    raise KeyError(name)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A server with no flags of its own."""


def version_line(prog: str) -> str:
    """``cymongoose-asgi 0.1.0 (cymongoose-core 0.3.0, mongoose 7.23, CPython 3.11.7 on
    Linux)``: ``prog`` is the server's distribution name."""
    from importlib.metadata import PackageNotFoundError, version

    from cymongoose import MONGOOSE_VERSION

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "(not installed)"

    return (f"{prog} {installed(prog)} (cymongoose-core {installed('cymongoose-core')}, "
            f"mongoose {MONGOOSE_VERSION}, {platform.python_implementation()} "
            f"{platform.python_version()} on {platform.system()})")


class _VersionAction(argparse._VersionAction):
    """``--version``: :func:`version_line` of the parser's ``prog`` (made only when
    asked), then exit 0."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(version_line(parser.prog))
        parser.exit()


@dataclass(frozen=True)
class ServerAdapter:
    """One server package as the shared CLI (and :mod:`~cymongoose.serving.gunicorn`)
    see it: all that differs between ``cymongoose-asgi`` and ``cymongoose-wsgi``.

    Fields:
        prog: the command's name (``"cymongoose-asgi"``): argparse's ``prog``, and the
            prefix of start-up error lines (``cymongoose-asgi: error: ...``).
        description: the line under the usage in ``--help``.
        module: the package ``python -m`` runs to start one of the ``--workers N``
            server processes (``"cymongoose.asgi"``).
        serve: the server's ``serve(app, *, config=ServerConfig)``: serves until
            SIGINT/SIGTERM (blocks); under ``--workers`` also given ``watchdog=``, a
            :class:`~cymongoose.serving.watchdog.Watchdog` (and used by
            :mod:`~cymongoose.serving.gunicorn`).
        add_arguments: adds the server's own flags to the parser, after the shared ones,
            in a group of its own (``--threads``); none by default. Their ``dest`` must
            be in :data:`FIELD_OF_DEST`.
        app_threads: the server runs the app in ``ServerConfig.threads`` threads (WSGI):
            gunicorn's default ``--threads 1`` then means
            :func:`~cymongoose.serving.config.default_threads`.
        options: ``options(args, parser, given)`` -> keyword arguments for ``serve``
            from the server's flags that are not ServerConfig fields (ASGI's
            ``--mqtt``); ``given`` is the command line the user typed (without what
            ``--workers``/``--reload`` add for their processes). Reports a bad value
            through ``parser.error``. None: no such flags.
    """

    prog: str
    description: str
    module: str
    serve: Callable[..., None]
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    app_threads: bool = False
    options: Callable[[argparse.Namespace, argparse.ArgumentParser, Sequence[str]],
                      dict[str, Any]] | None = None

    def build_parser(self) -> argparse.ArgumentParser:
        """The argparse parser of ``prog``: the shared flags (:func:`add_server_arguments`),
        then the server's own (``add_arguments``)."""
        parser = argparse.ArgumentParser(prog=self.prog, description=self.description,
                                         epilog=ENVIRONMENT_HELP)
        add_server_arguments(parser)
        self.add_arguments(parser)
        return parser

    def main(self, argv: Sequence[str] | None = None) -> int:
        """The command ``prog`` on ``argv`` (default ``sys.argv[1:]``); returns the exit
        status. See :func:`run_cli`."""
        return run_cli(self, argv)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the app argument and every flag both servers share to ``parser``.

    Also sets ``parser.allow_abbrev = False``: flags must be given in full.
    """
    # A flag is given in full: "--work 2" is not taken for --workers, and other servers'
    # flags (uvicorn's --ws) are "unrecognized", not "ambiguous".
    parser.allow_abbrev = False
    d = config_default
    parser.add_argument("app", help="the application, as module:attribute (e.g. main:app)")
    parser.add_argument("--factory", action="store_true",
                        help="treat module:attribute as a factory: call it to get the app")
    parser.add_argument("--app-dir", default=".",
                        help="directory added to sys.path before importing the app "
                             "(default: the current directory)")
    conf = parser.add_argument_group("configuration")
    conf.add_argument("--env-file", metavar="PATH",
                      help="load environment variables from this .env file (needs "
                           "python-dotenv) before anything else; variables already set win")
    conf.add_argument("--version", action=_VersionAction,
                      help="print the versions of the server, the core, mongoose and "
                           "Python, and exit")
    net = parser.add_argument_group("socket")
    net.add_argument("--host", default=d("host"),
                     help="bind to this address (default %(default)s; "
                          "0.0.0.0 or :: for every interface)")
    net.add_argument("--port", type=int, default=d("port"),
                     help="bind to this TCP port (default %(default)s; 0 picks a free one)")
    net.add_argument("--uds", metavar="PATH",
                     help="bind this Unix domain socket instead of --host/--port (mode 0666; "
                          "a stale socket file is replaced)")
    net.add_argument("--fd", type=int,
                     help="serve on this already bound and listening socket file descriptor "
                          "(TCP or Unix) instead of --host/--port")
    net.add_argument("--workers", type=int,
                     help="number of worker processes sharing the socket "
                          "(default: $WEB_CONCURRENCY or 1); with 2 or more, SIGHUP "
                          "reloads them gracefully and SIGTTIN/SIGTTOU add/remove one")
    net.add_argument("--backlog", type=int, metavar="CONNECTIONS",
                     help="how many connections the kernel queues until a process "
                          f"accepts them (default {d('backlog')}; Linux caps it at "
                          "net.core.somaxconn)")
    # Given by --workers to the processes it starts (see run_cli); not for users.
    net.add_argument("--worker-process", action="store_true", help=argparse.SUPPRESS)
    rel = parser.add_argument_group("reload (development; needs watchfiles)")
    rel.add_argument("--reload", action="store_true",
                     help="restart the server when files change")
    rel.add_argument("--reload-dir", action="append", metavar="DIR",
                     help="watch this directory (repeatable; default: the current one)")
    rel.add_argument("--reload-include", action="append", metavar="PATTERN",
                     help="also watch files matching this glob (repeatable; default *.py)")
    rel.add_argument("--reload-exclude", action="append", metavar="PATTERN",
                     help="ignore files and directories matching this glob (repeatable; "
                          "default .* *.py[cod] *.sw? ~* *~)")
    net.add_argument("--supervisor-pipe", type=int, help=argparse.SUPPRESS)
    log = parser.add_argument_group("logging")
    log.add_argument("--log-level", choices=LOG_LEVELS, type=str.lower,
                     help="level of the server's log (default info, or what --log-config "
                          "sets)")
    log.add_argument("--log-config", metavar="PATH",
                     help="logging configuration applied after the default: .json, "
                          ".yaml/.yml (needs PyYAML) for logging.config.dictConfig, any "
                          "other file (.ini) for logging.config.fileConfig")
    log.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=None,
                     help="log one line per response (default on)")
    log.add_argument("--access-log-format", metavar="FORMAT",
                     help="the access log line in gunicorn's atoms, e.g. "
                          "'%%(h)s \"%%(r)s\" %%(s)s %%(b)s %%(D)s' (default: uvicorn's line)")
    resp = parser.add_argument_group("response headers")
    resp.add_argument("--server-header", action=argparse.BooleanOptionalAction, default=None,
                      help="send 'Server: cymongoose' unless the app sets Server "
                           "(default on; --no-server-header turns it off)")
    resp.add_argument("--date-header", action=argparse.BooleanOptionalAction, default=None,
                      help="send Date (RFC 9110 section 6.6.1) unless the app sets it "
                           "(default on; --no-date-header turns it off)")
    resp.add_argument("--header", action="append", metavar="NAME:VALUE",
                      help="a default header added to every response unless the app sets "
                           "that name (repeatable); Server or Date replace the server's own")
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
    tls.add_argument("--ssl-keyfile-password", help="password of an encrypted --ssl-keyfile")
    tls.add_argument("--ssl-version", metavar="VERSION",
                     help="minimum TLS version: TLSv1.2 (default) or TLSv1.3; uvicorn's "
                          "ssl.PROTOCOL_* numbers 2, 5, 16 and 17 mean TLSv1.2")
    tls.add_argument("--ssl-cert-reqs", type=int, metavar="{0,1,2}",
                     help="client certificates (mTLS): 0 not asked, 1 optional, 2 required "
                          "(default: 2 with --ssl-ca-certs, else 0)")
    tls.add_argument("--ssl-ciphers", metavar="CIPHERS",
                     help="OpenSSL cipher list for TLS 1.2 (default: OpenSSL's; TLS 1.3 "
                          "uses OpenSSL's default suites)")
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
    lim.add_argument("--limit-max-requests", type=int, metavar="COUNT",
                     help="a server process stops gracefully after this many requests; "
                          "with --workers the supervisor starts its replacement first "
                          "(default unlimited; 0 = unlimited)")
    lim.add_argument("--limit-max-requests-jitter", type=int, metavar="COUNT",
                     help="add a random 0..COUNT to --limit-max-requests in each process, "
                          "so that they do not all retire at once "
                          f"(default {d('limit_max_requests_jitter')})")


def config_from_args(
    args: argparse.Namespace, parser: argparse.ArgumentParser | None = None,
    env: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Build a validated ServerConfig from flags parsed by :func:`add_server_arguments`.

    Flags not given keep ServerConfig's defaults (``--workers`` falls back to
    ``$WEB_CONCURRENCY``). An invalid value raises ValueError/TypeError, or, when
    ``parser`` is given, exits through ``parser.error`` (status 2) with the message,
    which names the environment variable a value came from (``env``: dest -> variable,
    from :func:`apply_environment`).
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
        message = str(exc)
        for dest, variable in (env or {}).items():
            if message.split(" ", 1)[0] == FIELD_OF_DEST.get(dest, dest):
                message += f" (from the environment variable {variable})"
        parser.error(message)
        raise  # unreachable: parser.error exits


def reload_config_from_args(
    args: argparse.Namespace, parser: argparse.ArgumentParser | None = None
) -> ReloadConfig | None:
    """The :class:`~cymongoose.serving.reload.ReloadConfig` of ``--reload``'s flags, None
    without ``--reload``. An invalid value raises ValueError/TypeError, or exits through
    ``parser.error`` (status 2) when ``parser`` is given."""
    if not getattr(args, "reload", False):
        return None
    from .reload import ReloadConfig

    try:
        return ReloadConfig.from_flags(args.reload_dir, args.reload_include,
                                       args.reload_exclude)
    except (TypeError, ValueError) as exc:
        if parser is None:
            raise
        parser.error(str(exc))
        raise  # unreachable: parser.error exits


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


# How many arguments run_cli's process_argv appends to the user's command line.
_PROCESS_FLAGS = 5

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


def _announce_fd(config: ServerConfig) -> None:
    """``--fd`` in one process: the "running on" line, from the socket itself (a
    process started by ``--workers`` or gunicorn leaves it to them)."""
    fd = config.fd
    assert fd is not None
    check_listen_fd(fd)  # the clear errors for a descriptor that cannot be served
    with socket.socket(fileno=os.dup(fd)) as sock:
        running(logger, socket_url(sock, "https" if config.is_ssl else "http"))


def run_cli(adapter: ServerAdapter, argv: Sequence[str] | None = None) -> int:
    """The command ``adapter.prog``: load ``--env-file``, parse ``argv`` (default
    ``sys.argv[1:]``) over the ``CYMONGOOSE_*`` environment variables, set up logging
    (with ``--log-config``), import the app, then ``adapter.serve(app, config=config)``,
    or with ``--workers N`` (N > 1) run the
    :class:`~cymongoose.serving.supervisor.Supervisor`, which starts N server processes
    (``python -m adapter.module``) on one socket, or with ``--reload`` the
    :class:`~cymongoose.serving.reload.Reloader`, which restarts one such process when
    files change (``--workers`` is then ignored, with a warning, as uvicorn does).

    Returns the exit status: 0 after a clean stop; 1 when the server cannot start
    (:data:`STARTUP_ERRORS`, reported by :func:`report_startup_error`; one of the N server
    processes returns EXIT_STARTUP_FAILED instead, which tells the supervisor not to
    start it again); bad flags, environment variables, ``--env-file`` or ``--log-config``
    exit with status 2 through ``parser.error``.
    """
    parser = adapter.build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    env_file = env_file_of(argv)
    if env_file is not None:
        try:
            load_env_file(env_file)
        except ValueError as exc:
            parser.error(str(exc))
    env = apply_environment(parser, argv)
    args = parse_args(parser, argv)
    config = config_from_args(args, parser, env)
    reload = None if args.worker_process else reload_config_from_args(args, parser)
    # What process_argv (below) appended is not what the user typed.
    given = argv[:-_PROCESS_FLAGS] if args.worker_process else argv
    options = adapter.options(args, parser, given) if adapter.options is not None else {}
    try:
        configure_logging(config.log_level, config.access_log, args.log_config)
    except LogConfigError as exc:
        parser.error(f"--log-config: {exc}")
    # Logging is set up: serve() must not do it again (a FileHandler would be reopened).
    config = dataclasses.replace(config, log_config=None)

    def process_argv(fd: int) -> list[str]:
        # argparse keeps the last occurrence of a flag: these override the user's (and
        # --worker-process makes the process ignore --reload).
        return [sys.executable, "-m", adapter.module, *argv, "--workers", "1",
                "--fd", str(fd), "--worker-process"]  # _PROCESS_FLAGS items

    try:
        if reload is not None:
            from .reload import Reloader

            if config.workers > 1:
                logger.warning("--workers %d is ignored with --reload: one server "
                               "process is restarted on changes", config.workers)
            return Reloader(config, reload, process_argv, adapter.prog).run()
        if not args.worker_process and (args.reload_dir or args.reload_include
                                        or args.reload_exclude):
            logger.warning("--reload-dir, --reload-include and --reload-exclude do "
                           "nothing without --reload")
        if config.workers > 1:
            from .supervisor import Supervisor

            return Supervisor(config, process_argv).run()
        app_dir = os.path.abspath(args.app_dir)
        if app_dir not in sys.path:
            sys.path.insert(0, app_dir)
        app = import_app(args.app, factory=args.factory)
        if config.fd is not None and not args.worker_process:
            _announce_fd(config)
        watchdog = None
        if args.supervisor_pipe is not None:
            from .supervisor import process_watchdog

            watchdog = process_watchdog(config, args.supervisor_pipe)
        # Only given when there is one: a ServerAdapter.serve need not take it.
        if watchdog is not None:
            options["watchdog"] = watchdog
        adapter.serve(app, config=config, **options)
    except STARTUP_ERRORS as exc:
        report_startup_error(parser.prog, exc)
        if args.worker_process:
            from .supervisor import EXIT_STARTUP_FAILED

            return EXIT_STARTUP_FAILED
        return 1
    return 0
