"""The access log of both servers: one INFO record per response on ``cymongoose.access``.

The record has uvicorn's message format and arguments::

    '%s - "%s %s HTTP/%s" %d'  % (client "host:port", method, path?query, http_version, status)

so ``127.0.0.1:53012 - "GET /items/5?q=x HTTP/1.1" 200``. The CLI's formatter
(`cymongoose.serving.logconfig`) appends the reason phrase (``200 OK``), as uvicorn does.

Servers keep it cheap when disabled: they check :func:`access_log_enabled` once (per
request, or once at start) and only then call :func:`log_access`.
"""

from __future__ import annotations

import logging
from typing import Any

ACCESS_LOGGER_NAME = "cymongoose.access"
ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'

access_logger = logging.getLogger(ACCESS_LOGGER_NAME)


def access_log_enabled(access_log: bool = True) -> bool:
    """True when ``access_log`` (the ServerConfig field) is set and the logger takes INFO."""
    return access_log and access_logger.isEnabledFor(logging.INFO)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value


def format_client(client: Any) -> str:
    """``("10.0.0.1", 5000)`` -> ``"10.0.0.1:5000"``; a str is kept; None -> ``"-"``."""
    if client is None:
        return "-"
    if isinstance(client, str):
        return client
    return f"{client[0]}:{client[1]}"


def log_access(
    client: Any,
    method: str | bytes,
    path: str | bytes,
    query_string: str | bytes,
    http_version: str,
    status: int,
) -> None:
    """Emit one access record (INFO) on the ``cymongoose.access`` logger.

    Args:
        client: the peer as ``(host, port)`` (after proxy-header resolution), a str, or None.
        method: request method, e.g. ``"GET"``.
        path: the request path as sent (``raw_path``; bytes are decoded as latin-1).
        query_string: the query without ``?`` (empty for none).
        http_version: ``"1.0"`` or ``"1.1"``.
        status: the response status code sent.
    """
    query = _text(query_string)
    target = _text(path)
    if query:
        target = f"{target}?{query}"
    access_logger.info(
        ACCESS_FORMAT, format_client(client), _text(method), target, http_version, status
    )
