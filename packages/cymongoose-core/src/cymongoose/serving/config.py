"""Every setting of the cymongoose ASGI and WSGI servers, in one validated dataclass.

Settings flow one way: CLI flags (``cymongoose.serving.cli``) or keyword arguments ->
:class:`ServerConfig` -> server -> per-connection protocol objects. The config is checked
once, in ``__post_init__``; servers may trust every field afterwards.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .accesslog import AccessLogFormat
from .httprules import parse_header_list
from .lifecycle import display_url
from .logconfig import DEFAULT_LOG_CONFIG

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
LIFESPAN_MODES = ("auto", "on", "off")
LOOP_MODES = ("auto", "asyncio", "uvloop")
# mongoose parses at most this many headers per request (MG_MAX_HTTP_HEADERS in our build).
MAX_HEADER_COUNT_LIMIT = 100
# listen() backlogs beyond this are typos: Linux caps the backlog at net.core.somaxconn
# (4096 by default since 5.4) anyway.
MAX_BACKLOG = 65535


def default_threads() -> int:
    """Default number of WSGI app threads per process: ``min(32, cpus * 4 + 4)``.

    WSGI apps mostly wait on I/O (databases, upstream HTTP), so a few threads per core keep
    the cores busy; 32 bounds memory and lock contention on large machines.
    """
    return min(32, (os.cpu_count() or 1) * 4 + 4)


def _default_forwarded_allow_ips() -> list[str]:
    return parse_ip_list(os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))


def parse_ip_list(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """Split ``"10.0.0.1, 10.1.0.0/16"`` (or a list of such strings) into clean entries.

    Empty entries are dropped. The entries themselves are checked by
    :class:`cymongoose.serving.proxy.ProxyHeaders`.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"forwarded_allow_ips entries must be str, got {item!r}")
        item = item.strip()
        if item:
            out.append(item)
    return out


def _check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None,
               optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    if lo is not None and value < lo or hi is not None and value > hi:
        if hi is None:
            raise ValueError(f"{name} must be >= {lo}, got {value!r}")
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value!r}")


def _check_float(name: str, value: Any, *, positive: bool, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a number of seconds or None" if optional else "a number of seconds"
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    if math.isnan(value) or (value <= 0 if positive else value < 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")


def _check_str(name: str, value: Any, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str{' or None' if optional else ''}, got {value!r}")


# ServerConfig.ssl_version: what is accepted -> the minimum TLS version it means.
# uvicorn's --ssl-version takes Python's ssl.PROTOCOL_* numbers: PROTOCOL_TLS (2),
# PROTOCOL_TLS_CLIENT (16), PROTOCOL_TLS_SERVER (17, its default) and PROTOCOL_TLSv1_2 (5)
# all allow TLS 1.2; ssl.TLSVersion values (771, 772) are taken too.
_TLS_MIN_VERSIONS: dict[str | int, str] = {
    "tlsv1.2": "TLSv1.2", "tlsv1.3": "TLSv1.3", 2: "TLSv1.2", 5: "TLSv1.2", 16: "TLSv1.2",
    17: "TLSv1.2", 771: "TLSv1.2", 772: "TLSv1.3",
}


def tls_min_version(value: str | int | None) -> str | None:
    """``ssl_version`` normalised: ``"TLSv1.2"``, ``"TLSv1.3"`` or None (TLS 1.2).

    Takes those names (any case), uvicorn's ``ssl.PROTOCOL_*`` numbers, as int or as a
    string of digits (see :class:`ServerConfig`), or ``ssl.TLSVersion``. Raises TypeError
    for another type, ValueError naming ``ssl_version`` for another value (TLS 1.0 and
    1.1, ``PROTOCOL_TLSv1``/``_TLSv1_1`` = 3/4, are not offered).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"ssl_version must be a str such as 'TLSv1.3', an int or None, "
                        f"got {value!r}")
    key: str | int = value.strip().lower() if isinstance(value, str) else value
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    if key not in _TLS_MIN_VERSIONS:
        old = " (TLS 1.0 and 1.1 are not offered)" if key in (3, 4, "tlsv1", "tlsv1.1") else ""
        raise ValueError(f"ssl_version must be TLSv1.2 or TLSv1.3 (or one of uvicorn's "
                         f"ssl.PROTOCOL_* numbers 2, 5, 16, 17), got {value!r}{old}")
    return _TLS_MIN_VERSIONS[key]


@dataclass
class ServerConfig:
    """Settings shared by ``cymongoose.asgi`` and ``cymongoose.wsgi`` servers.

    Sizes are in bytes, times in seconds (``_s``). ``None`` for a limit means unlimited.
    Raises TypeError (wrong type) or ValueError (out of range) naming the field and the
    accepted values. ``forwarded_allow_ips`` is normalised to a ``list[str]`` (``None`` takes
    the ``FORWARDED_ALLOW_IPS`` environment variable, else ``"127.0.0.1"``) and
    ``log_level`` to lower case.

    Fields:
        host, port: address to bind (port 0..65535; 0 picks a free port).
        fd: an already bound and listening socket to serve on instead of host/port or
            uds (from gunicorn or ``--workers``): TCP, or a Unix socket.
        uds: path of a Unix domain socket to bind and serve on instead of host/port
            (mode 0o666; a stale socket file left by a dead server is replaced; see
            :func:`cymongoose.serving.listen.bind_unix`).
        root_path: ASGI ``root_path`` / WSGI ``SCRIPT_NAME`` prefix of the mounted app.
        proxy_headers: honour ``X-Forwarded-*`` / ``Forwarded`` (RFC 7239) from trusted peers.
        forwarded_allow_ips: trusted peers: IPs, CIDRs or ``"*"``.
        access_log: log one line per response to the ``cymongoose.access`` logger.
        access_log_format: None for uvicorn's line (``127.0.0.1:5000 - "GET / HTTP/1.1"
            200 OK``), or a gunicorn ``access_log_format`` (``%(h)s "%(r)s" %(s)s
            %(D)s``; atoms in :data:`cymongoose.serving.accesslog.ATOMS`).
        log_level: critical|error|warning|info|debug|trace for the ``cymongoose``
            loggers, or None: info, or the levels ``log_config`` sets.
        log_config: what ``serve()`` does with logging (the CLIs do it themselves):
            ``"default"`` sets up uvicorn-style output on stderr/stdout unless the
            program has set up logging itself; None leaves logging alone; a
            ``logging.config.dictConfig`` mapping or a file (``.json``, ``.yaml``/
            ``.yml``, else ``fileConfig``'s ``.ini`` format) is applied after the
            default. See :mod:`cymongoose.serving.logconfig`.
        server_header: send ``Server: cymongoose`` on every response (RFC 9110 section
            10.2.4) unless the app sets its own ``Server``.
        date_header: send ``Date`` (RFC 9110 section 6.6.1) on every response unless the
            app sets its own.
        headers: default headers added to every response unless the app sets a field of
            that name, as ``"Name: value"`` str or ``(name, value)`` pairs (normalised to
            pairs); one named ``Server`` or ``Date`` replaces the server's own.
        keep_alive_timeout_s: close idle keep-alive connections after this long.
        graceful_timeout_s: on shutdown, wait this long for in-flight requests.
        max_connections: beyond this many open connections new ones get 503.
        max_header_count: more request headers than this give 431 (1..100).
        max_header_bytes: a request line plus headers larger than this gives 431.
        max_body_size: a request body larger than this gives 413.
        ssl_certfile, ssl_keyfile, ssl_ca_certs: PEM files for TLS (cert and key together;
            RSA or EC keys, PKCS#1, SEC1 or PKCS#8). ``ssl_ca_certs``: CA certificates
            that sign client certificates (mTLS, see ``ssl_cert_reqs``).
        ssl_keyfile_password: the password of an encrypted ``ssl_keyfile``.
        ssl_version: the minimum TLS version, ``"TLSv1.2"`` (None, the default) or
            ``"TLSv1.3"``. uvicorn's ``ssl.PROTOCOL_*`` numbers are taken too (2
            ``PROTOCOL_TLS``, 5 ``PROTOCOL_TLSv1_2``, 16 and 17 ``PROTOCOL_TLS_CLIENT`` and
            ``_SERVER`` all mean ``"TLSv1.2"``); TLS 1.0 and 1.1 (3, 4) are refused.
        ssl_cert_reqs: client certificates: 0 not asked, 1 optional (verified when
            sent), 2 required (``ssl.CERT_*``); None: 2 with ``ssl_ca_certs``, else 0.
        ssl_ciphers: OpenSSL cipher list for TLS 1.2; None keeps OpenSSL's default list
            (TLS 1.3 always uses OpenSSL's default suites).
        ws_max_size: largest WebSocket message accepted (close 1009 beyond it).
        ws_ping_interval_s, ws_ping_timeout_s: WebSocket keep-alive pings (None: off).
        ws_per_message_deflate: agree to the permessage-deflate compression browsers and
            clients offer (RFC 7692), as uvicorn does; ``ws_max_size`` then limits a
            message once inflated.
        lifespan: ASGI lifespan protocol: auto|on|off.
        loop: ASGI event loop: auto (uvloop when installed, as uvicorn does) | asyncio |
            uvloop.
        threads: app threads of a WSGI server, in each process (>= 0; 0 runs the app on
            the poll thread).
        workers: server processes (``--workers``, started and watched by the
            supervisor); 1 serves in this process.
        backlog: the listen() backlog, i.e. how many connections the kernel queues
            until a server process accepts them (1..65535; Linux caps it at
            ``net.core.somaxconn``). Applies where the server binds the socket itself
            (``host``/``port``, and the socket the supervisor shares); a socket handed
            over as ``fd`` keeps the backlog its owner gave it.
        limit_max_requests: after this many requests (>= 1) a server process stops
            gracefully (one process: it exits; ``--workers``: the supervisor replaces it
            first); None: no limit.
        limit_max_requests_jitter: each process adds a random 0..this many requests to
            ``limit_max_requests`` (>= 0), so that processes do not all retire at once.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    fd: int | None = None
    uds: str | None = None
    root_path: str = ""
    proxy_headers: bool = True
    forwarded_allow_ips: str | list[str] | None = None
    access_log: bool = True
    access_log_format: str | None = None
    log_level: str | None = None
    log_config: Mapping[str, Any] | str | os.PathLike[str] | None = DEFAULT_LOG_CONFIG
    server_header: bool = True
    date_header: bool = True
    headers: list[tuple[str, str]] = field(default_factory=list)
    keep_alive_timeout_s: float = 5.0
    graceful_timeout_s: float = 30.0
    max_connections: int | None = None
    max_header_count: int = 100
    max_header_bytes: int = 65536
    max_body_size: int | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_ca_certs: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_version: str | int | None = None
    ssl_cert_reqs: int | None = None
    ssl_ciphers: str | None = None
    ws_max_size: int = 16 * 1024 * 1024
    ws_ping_interval_s: float | None = 20.0
    ws_ping_timeout_s: float | None = 20.0
    ws_per_message_deflate: bool = True
    lifespan: str = "auto"
    loop: str = "auto"
    threads: int = field(default_factory=default_threads)
    workers: int = 1
    backlog: int = 2048
    limit_max_requests: int | None = None
    limit_max_requests_jitter: int = 0

    def __post_init__(self) -> None:
        _check_str("host", self.host)
        if not self.host:
            raise ValueError("host must not be empty (use 0.0.0.0 or :: for all interfaces)")
        _check_int("port", self.port, 0, 65535)
        _check_int("fd", self.fd, 0, optional=True)
        _check_str("uds", self.uds, optional=True)
        if self.uds is not None and (not self.uds or "\0" in self.uds):
            raise ValueError(f"uds must be a file system path such as /run/app.sock, "
                             f"got {self.uds!r}")
        _check_str("root_path", self.root_path)
        if self.root_path and (not self.root_path.startswith("/") or self.root_path == "/"):
            raise ValueError(f"root_path must be '' or start with '/' (e.g. '/api'), "
                             f"got {self.root_path!r}")
        self.root_path = self.root_path.rstrip("/")
        for name in ("proxy_headers", "access_log", "server_header", "date_header",
                     "ws_per_message_deflate"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.forwarded_allow_ips is None:
            self.forwarded_allow_ips = _default_forwarded_allow_ips()
        elif isinstance(self.forwarded_allow_ips, (str, list, tuple)):
            self.forwarded_allow_ips = parse_ip_list(self.forwarded_allow_ips)
        else:
            raise TypeError(f"forwarded_allow_ips must be a str, a list of str or None, "
                            f"got {self.forwarded_allow_ips!r}")
        self.headers = parse_header_list(self.headers)
        if len(self.headers) > 14:  # the core takes 16 defaults: Server, Date, these
            raise ValueError(f"headers takes at most 14 entries, got {len(self.headers)}")
        if self.access_log_format is not None:
            AccessLogFormat(self.access_log_format)  # raises naming access_log_format
        if self.log_config is not None and not isinstance(
                self.log_config, (str, os.PathLike, Mapping)):
            raise TypeError(f"log_config must be 'default', None, a dictConfig mapping or "
                            f"a file name, got {self.log_config!r}")
        _check_str("log_level", self.log_level, optional=True)
        if self.log_level is not None:
            self.log_level = self.log_level.lower()
            if self.log_level not in LOG_LEVELS:
                raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)} or None, "
                                 f"got {self.log_level!r}")
        _check_float("keep_alive_timeout_s", self.keep_alive_timeout_s, positive=True)
        _check_float("graceful_timeout_s", self.graceful_timeout_s, positive=False)
        _check_int("max_connections", self.max_connections, 1, optional=True)
        _check_int("max_header_count", self.max_header_count, 1, MAX_HEADER_COUNT_LIMIT)
        _check_int("max_header_bytes", self.max_header_bytes, 1)
        _check_int("max_body_size", self.max_body_size, 0, optional=True)
        for name in ("ssl_certfile", "ssl_keyfile", "ssl_ca_certs"):
            _check_str(name, getattr(self, name), optional=True)
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile must be given together, got "
                             f"ssl_certfile={self.ssl_certfile!r}, "
                             f"ssl_keyfile={self.ssl_keyfile!r}")
        if self.ssl_ca_certs is not None and self.ssl_certfile is None:
            raise ValueError("ssl_ca_certs needs ssl_certfile and ssl_keyfile")
        self._check_tls_options()
        _check_int("ws_max_size", self.ws_max_size, 1)
        _check_float("ws_ping_interval_s", self.ws_ping_interval_s, positive=True,
                     optional=True)
        _check_float("ws_ping_timeout_s", self.ws_ping_timeout_s, positive=True, optional=True)
        _check_str("loop", self.loop)
        if self.loop not in LOOP_MODES:
            raise ValueError(f"loop must be one of {', '.join(LOOP_MODES)}, got {self.loop!r}")
        _check_str("lifespan", self.lifespan)
        if self.lifespan not in LIFESPAN_MODES:
            raise ValueError(f"lifespan must be one of {', '.join(LIFESPAN_MODES)}, "
                             f"got {self.lifespan!r}")
        _check_int("threads", self.threads, 0)
        _check_int("workers", self.workers, 1)
        _check_int("backlog", self.backlog, 1, MAX_BACKLOG)
        _check_int("limit_max_requests", self.limit_max_requests, 1, optional=True)
        _check_int("limit_max_requests_jitter", self.limit_max_requests_jitter, 0)

    def _check_tls_options(self) -> None:
        for name in ("ssl_keyfile_password", "ssl_ciphers"):
            _check_str(name, getattr(self, name), optional=True)
        if self.ssl_keyfile_password is not None and self.ssl_keyfile is None:
            raise ValueError("ssl_keyfile_password needs ssl_keyfile")
        self.ssl_version = tls_min_version(self.ssl_version)
        _check_int("ssl_cert_reqs", self.ssl_cert_reqs, 0, 2, optional=True)
        if self.ssl_cert_reqs and self.ssl_ca_certs is None:
            raise ValueError(f"ssl_cert_reqs={self.ssl_cert_reqs} (client certificates "
                             f"{'optional' if self.ssl_cert_reqs == 1 else 'required'}) "
                             "needs ssl_ca_certs, the CAs that sign them")

    @property
    def is_ssl(self) -> bool:
        """True when TLS is configured (``ssl_certfile`` and ``ssl_keyfile`` given)."""
        return self.ssl_certfile is not None

    @property
    def url(self) -> str:
        """``"http://host:port"`` (``https`` with TLS; IPv6 hosts in brackets).

        This is the URL given to ``Manager.listen``; with ``fd`` set the host and port are
        those of the inherited socket as configured, not necessarily where it is bound.
        """
        return display_url("https" if self.is_ssl else "http", self.host, self.port)

    @classmethod
    def from_kwargs(cls, config: ServerConfig | None = None, **overrides: Any) -> ServerConfig:
        """Return ``config`` (or a default config) with ``overrides`` applied, validated again.

        This is how servers implement ``Server(app, config=None, **fields)``. Raises
        TypeError naming any keyword that is not a field.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown server setting(s): {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(names))}")
        if config is None:
            return cls(**overrides)
        if not isinstance(config, cls):
            raise TypeError(f"config must be a ServerConfig, got {config!r}")
        if not overrides:
            return config
        values = {f.name: getattr(config, f.name) for f in fields(cls)}
        values.update(overrides)
        return cls(**values)
