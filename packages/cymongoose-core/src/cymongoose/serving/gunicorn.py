"""What the gunicorn worker classes of both servers share (gunicorn itself is not imported).

gunicorn runs a *worker class* in each of its worker processes (``-w``); ours are
``cymongoose.asgi.workers.ASGIWorker`` and ``cymongoose.wsgi.workers.WSGIWorker``, whose
``run()`` calls :func:`run_worker` with the server's
:class:`~cymongoose.serving.cli.ServerAdapter`: it maps gunicorn's settings onto a
:class:`~cymongoose.serving.config.ServerConfig` that serves on gunicorn's pre-bound socket
(TCP or ``-b unix:PATH``), routes the ``cymongoose`` loggers to gunicorn's log handlers and
serves with a :class:`~cymongoose.serving.watchdog.Watchdog` that, on the server's event
loop, every ``TICK_MS``:

* calls ``worker.notify()``, gunicorn's heartbeat: a loop stuck in an app stops it, and
  gunicorn's ``--timeout`` kills the process ("WORKER TIMEOUT") and starts another;
* stops the server gracefully once ``worker.alive`` is False (gunicorn's ``--reload``
  saw a change, the worker was told to stop) or the arbiter is gone;
* stops it after ``worker.max_requests`` requests (``--max-requests`` plus gunicorn's
  ``--max-requests-jitter``), and gunicorn starts a new worker.

Graceful stop: gunicorn sends SIGTERM (``HUP`` reload, ``TTOU``, shutdown), which the
server's own handler turns into its graceful shutdown (stop accepting, finish in-flight
requests within ``graceful_timeout``, keep-alive connections closed between requests);
SIGQUIT/SIGINT stay gunicorn's quick exit.

Settings mapped: ``bind`` (the first socket; more are ignored with a warning),
``keepalive``, ``graceful_timeout``, ``max_requests``/``max_requests_jitter``,
``timeout`` (through the heartbeat), ``reload``, ``limit_request_fields`` (capped at
100), ``limit_request_field_size`` (applied to the whole header block, never below 64
KiB), ``worker_connections``, ``threads`` (the app threads of a server with
``ServerAdapter.app_threads``, WSGI's: 1, gunicorn's default, means our default pool; 0
runs the app on the poll thread, the inline mode),
``certfile``/``keyfile``/``ca_certs``/``cert_reqs``/``ciphers``/``ssl_version``,
``forwarded_allow_ips``, ``accesslog`` with ``access_log_format``, and the
``SCRIPT_NAME`` environment variable as ``root_path``.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from .accesslog import ACCESS_LOGGER_NAME
from .cli import ServerAdapter
from .config import ServerConfig, default_threads
from .watchdog import Watchdog

_DEFAULT_HEADER_BYTES = 65536


def _route_logging(log: Any, access_enabled: bool) -> None:
    """Send the ``cymongoose`` loggers to gunicorn's error and access log handlers."""
    error_log = getattr(log, "error_log", None)
    if error_log is not None:
        ours = logging.getLogger("cymongoose")
        ours.handlers = list(error_log.handlers)
        ours.setLevel(error_log.level)
        ours.propagate = False
    access = logging.getLogger(ACCESS_LOGGER_NAME)
    access_log = getattr(log, "access_log", None)
    if access_enabled and access_log is not None:
        access.handlers = list(access_log.handlers)
        access.setLevel(logging.INFO)
        access.propagate = False
        access.disabled = False
    else:
        access.disabled = True


def config_from_gunicorn(
    cfg: Any, sockets: list[Any], log: Any, *, app_threads: bool = False
) -> ServerConfig:
    """Map a gunicorn ``Config`` and its listeners onto a ServerConfig for one gunicorn
    worker process.

    ``app_threads``: the server runs the app in ``threads`` threads
    (``ServerAdapter.app_threads``), so gunicorn's default ``threads=1`` becomes
    :func:`~cymongoose.serving.config.default_threads`. ``log`` is gunicorn's logger (for
    warnings). Raises RuntimeError when gunicorn gave no socket.
    """
    if not sockets:
        raise RuntimeError("gunicorn gave this worker no listening socket")
    if len(sockets) > 1:
        log.warning("a cymongoose worker serves one socket; ignoring all but %s", sockets[0])
    listener = sockets[0]
    sock = getattr(listener, "sock", listener)
    sock.setblocking(False)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host, port = sock.getsockname()[:2]
    else:  # -b unix:PATH: the server finds the path from the descriptor
        host, port = "127.0.0.1", 0
    keepalive = float(getattr(cfg, "keepalive", 2) or 0)
    if keepalive <= 0:
        log.info("keepalive=0 is not supported; idle connections close after 1 s")
        keepalive = 1.0
    fields_limit = int(getattr(cfg, "limit_request_fields", 100) or 100)
    field_size = int(getattr(cfg, "limit_request_field_size", 0) or 0)
    threads = int(getattr(cfg, "threads", 1))
    if threads < 0:
        threads = 1
    if app_threads and threads == 1:
        threads = default_threads()
        log.info("threads=1 (gunicorn's default): running the app in %d threads", threads)
    certfile = getattr(cfg, "certfile", None) if getattr(cfg, "is_ssl", False) else None
    keyfile = getattr(cfg, "keyfile", None) if certfile else None
    allow = getattr(cfg, "forwarded_allow_ips", None)
    access_enabled = getattr(cfg, "accesslog", None) is not None
    _route_logging(log, access_enabled)
    return ServerConfig(
        host=host,
        port=port,
        fd=sock.fileno(),
        root_path=os.environ.get("SCRIPT_NAME", "").rstrip("/"),
        forwarded_allow_ips=list(allow) if isinstance(allow, (list, tuple)) else allow,
        access_log=access_enabled,
        # gunicorn's --access-logformat (its default included): the lines gunicorn would log.
        access_log_format=(getattr(cfg, "access_log_format", None) or None)
        if access_enabled else None,
        keep_alive_timeout_s=keepalive,
        graceful_timeout_s=float(getattr(cfg, "graceful_timeout", 30)),
        max_connections=int(getattr(cfg, "worker_connections", 0) or 0) or None,
        max_header_count=min(100, max(1, fields_limit)),
        max_header_bytes=max(_DEFAULT_HEADER_BYTES, field_size),
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        ssl_ca_certs=(getattr(cfg, "ca_certs", None) or None) if certfile else None,
        # gunicorn's own defaults (cert_reqs 0: no client certificate asked, even with
        # ca_certs), as gunicorn would serve.
        ssl_cert_reqs=int(getattr(cfg, "cert_reqs", 0) or 0) if certfile else None,
        ssl_ciphers=(getattr(cfg, "ciphers", None) or None) if certfile else None,
        ssl_version=getattr(cfg, "ssl_version", None) if certfile else None,
        threads=threads,
        workers=1,
    )


def worker_watchdog(worker: Any) -> Watchdog:
    """The :class:`~cymongoose.serving.watchdog.Watchdog` of one gunicorn worker: its
    heartbeat (``worker.notify``), its ``alive`` flag and parent (``worker.ppid``), and
    ``worker.max_requests`` (gunicorn adds the jitter) when ``--max-requests`` is set."""
    ppid = worker.ppid
    log = worker.log

    def keep_serving() -> bool:
        if not worker.alive:
            log.info("Worker no longer alive (reload or stop requested): stopping gracefully")
            return False
        if os.getppid() != ppid:
            log.info("Parent changed, shutting down: %s", worker)
            return False
        return True

    limit = int(getattr(worker, "max_requests", 0) or 0)
    enabled = int(getattr(worker.cfg, "max_requests", 0) or 0) > 0
    return Watchdog(max_requests=limit if enabled and limit > 0 else None,
                    heartbeat=worker.notify, keep_serving=keep_serving)


def run_worker(worker: Any, adapter: ServerAdapter) -> None:
    """Serve in a gunicorn worker process until gunicorn stops it, or it stops itself
    (``alive`` False, ``max_requests`` reached): build the ServerConfig of ``worker`` (a
    gunicorn ``Worker``; see :func:`config_from_gunicorn`), route logging, then
    ``adapter.serve(worker.wsgi, config=config, watchdog=worker_watchdog(worker))``
    (``worker.wsgi`` is the app gunicorn loaded, whatever its interface). Returns when the
    server has stopped; gunicorn then ends the process."""
    config = config_from_gunicorn(worker.cfg, worker.sockets, worker.log,
                                  app_threads=adapter.app_threads)
    adapter.serve(worker.wsgi, config=config, watchdog=worker_watchdog(worker))
