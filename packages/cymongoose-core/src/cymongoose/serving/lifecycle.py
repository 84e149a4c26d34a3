"""The lines a server logs as it starts and stops: the same for both servers, in every mode.

uvicorn's words, on the server's logger (``cymongoose.asgi`` / ``cymongoose.wsgi``)::

    INFO:     Started server process [4242]
    INFO:     Waiting for application startup.          (ASGI lifespan)
    INFO:     Application startup complete.
    INFO:     cymongoose running on http://127.0.0.1:8000 (Press CTRL+C to quit)
    INFO:     Shutting down
    INFO:     Waiting for application shutdown.         (ASGI lifespan)
    INFO:     Application shutdown complete.            (ASGI lifespan)
    INFO:     Finished server process [4242]

The "running on" line comes from whoever bound the socket: ``serve()`` when it listens on
``host``/``port`` itself; the supervisor for ``--workers N`` (its server processes, and
gunicorn's workers, print the rest); the CLI for ``--fd``.
"""

from __future__ import annotations

import logging
import os
import socket


def display_url(scheme: str, host: str, port: int) -> str:
    """``"http://127.0.0.1:8000"``; an IPv6 host in brackets (``http://[::1]:8000``)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def listen_url(scheme: str, host: str, port: int, unix_path: str | None = None) -> str:
    """What the "running on" line names: ``"unix socket /run/app.sock"`` when
    ``unix_path`` is given, else :func:`display_url` of ``scheme``, ``host``, ``port``."""
    if unix_path is not None:
        return f"unix socket {unix_path}"
    return display_url(scheme, host, port)


def socket_url(sock: socket.socket, scheme: str) -> str:
    """:func:`listen_url` of the listening socket ``sock`` (TCP or Unix)."""
    name = sock.getsockname()
    if sock.family == getattr(socket, "AF_UNIX", None):
        return listen_url(scheme, "", 0, name if isinstance(name, str)
                          else name.decode("utf-8", "replace"))
    return listen_url(scheme, name[0], name[1])


def process_started(log: logging.Logger) -> None:
    log.info("Started server process [%d]", os.getpid())


def app_starting(log: logging.Logger) -> None:
    log.info("Waiting for application startup.")


def app_started(log: logging.Logger) -> None:
    log.info("Application startup complete.")


def running(log: logging.Logger, url: str) -> None:
    """The address line; ``url`` from :func:`display_url`."""
    log.info("cymongoose running on %s (Press CTRL+C to quit)", url)


def shutting_down(log: logging.Logger) -> None:
    log.info("Shutting down")


def app_stopping(log: logging.Logger) -> None:
    log.info("Waiting for application shutdown.")


def app_stopped(log: logging.Logger) -> None:
    log.info("Application shutdown complete.")


def process_finished(log: logging.Logger) -> None:
    log.info("Finished server process [%d]", os.getpid())
