"""The access log of both servers: one INFO record per response on ``cymongoose.access``.

By default the record has uvicorn's message format and arguments::

    '%s - "%s %s HTTP/%s" %d'  % (client "host:port", method, path?query, http_version, status)

so ``127.0.0.1:53012 - "GET /items/5?q=x HTTP/1.1" 200``. The CLI's formatter
(`cymongoose.serving.logconfig`) appends the reason phrase (``200 OK``), as uvicorn does.

With ``ServerConfig.access_log_format`` (``--access-log-format``) the record is
gunicorn's instead: the format as the message and an :class:`AccessAtoms` mapping as its
arguments (``%(h)s %(r)s %(s)s ...``, see :data:`ATOMS`); only then is the mapping made.

Every response goes through it: the app's, the 500 a server makes for a failing app,
the answers the core's HTTP server makes by itself (400, 408, 413, 431, 501, 503, 505:
:func:`log_refused`), and WebSocket handshakes (101, or the refusal's status).

Servers keep it cheap when disabled: they check :func:`access_log_enabled` once (per
request, or once at start) and only then call :func:`log_access`.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

ACCESS_LOGGER_NAME = "cymongoose.access"
ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'
# A refused request whose request line never arrived (a 503 at accept, a 408).
_NO_REQUEST_FORMAT = '%s - "-" %d'

access_logger = logging.getLogger(ACCESS_LOGGER_NAME)

#: gunicorn's access-log atoms, as ``%(name)s`` in ``access_log_format``.
ATOMS = {
    "h": "remote address",
    "l": "'-'",
    "u": "user name (HTTP Basic authentication), or '-'",
    "t": "date of the request, [10/Oct/2000:13:55:36 -0700]",
    "r": "request line (GET /path?q=1 HTTP/1.1)",
    "m": "request method",
    "U": "URL path without query string (percent-decoded)",
    "q": "query string",
    "H": "protocol (HTTP/1.1)",
    "s": "status",
    "B": "response body length",
    "b": "response body length, or '-' when unknown",
    "f": "referrer (the Referer header)",
    "a": "user agent",
    "T": "request time in seconds",
    "M": "request time in milliseconds",
    "D": "request time in microseconds",
    "L": "request time in decimal seconds",
    "p": "process ID (<1234>)",
    "{header}i": "request header (lower case name)",
    "{header}o": "response header (lower case name)",
    "{variable}e": "WSGI environ variable (ASGI: the process environment)",
}


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
    """Emit one access record (INFO) in the default format on ``cymongoose.access``.

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


class AccessAtoms(dict):  # type: ignore[type-arg]
    """The arguments of one gunicorn-format access record: ``atoms["h"]``, ``atoms["r"]``,
    ``atoms["{user-agent}i"]`` ... (see :data:`ATOMS`), each made when a formatter asks
    for it; an unknown name gives ``"-"``, as gunicorn's do.

    Args:
        client: ``(host, port)``, a str, or None.
        method, path, query, http_version: the request (``path`` as sent, ``query``
            without ``?``; bytes are decoded as latin-1), or all ``"-"`` when unknown.
        status: the response status.
        request_headers: the request's ``(name, value)`` pairs (ASGI: lower-case bytes).
        response_headers: the response's ``(name, value)`` pairs (bytes or str).
        length: response body bytes, None when unknown.
        duration_s: seconds from the request's arrival to this record, None if unknown.
        environ: the WSGI environ: request headers and ``{variable}e`` come from it.
    """

    def __init__(self, client: Any, method: str | bytes, path: str | bytes,
                 query: str | bytes, http_version: str, status: int, *,
                 request_headers: Iterable[tuple[Any, Any]] = (),
                 response_headers: Iterable[tuple[Any, Any]] = (),
                 length: int | None = None, duration_s: float | None = None,
                 environ: Mapping[str, Any] | None = None) -> None:
        # Non-empty: logging takes a single non-empty mapping argument as the mapping.
        super().__init__(l="-", s=status)
        self.client = client
        self.method = _text(method)
        self.path = _text(path)
        self.query = _text(query)
        self.http_version = http_version
        self.request_headers = request_headers
        self.response_headers = response_headers
        self.length = length
        self.duration_s = duration_s
        self.environ = environ

    def __missing__(self, key: str) -> Any:
        value = self._atom(key)
        return "-" if value is None or value == "" and key not in ("q", "U") else value

    def _atom(self, key: str) -> Any:
        if key.startswith("{") and len(key) > 3 and key[-2] == "}":
            name, kind = key[1:-2].lower(), key[-1]
            if kind == "i":
                return self.request_header(name)
            if kind == "o":
                return _find(self.response_headers, name)
            if kind == "e":
                return self._variable(name)
            return None
        if key == "h":
            client = self.client
            return client if isinstance(client, str) or client is None else client[0]
        if key == "r":
            return (f"{self.method} {self._target()} HTTP/{self.http_version}"
                    if self.method != "-" else "-")
        if key == "m":
            return self.method
        if key == "U":
            return unquote(self.path, encoding="latin-1") if self.method != "-" else "-"
        if key == "q":
            return self.query
        if key == "H":
            return f"HTTP/{self.http_version}" if self.method != "-" else "-"
        if key in ("B", "b"):
            return self.length
        if key == "t":
            return time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime())
        if key == "p":
            return f"<{os.getpid()}>"
        if key == "f":
            return self.request_header("referer")
        if key == "a":
            return self.request_header("user-agent")
        if key == "u":
            return _basic_user(self.request_header("authorization"))
        duration = self.duration_s
        if duration is None or key not in ("T", "M", "D", "L"):
            return None
        if key == "L":
            return f"{duration:.6f}"
        return int(duration * {"T": 1, "M": 1000, "D": 1000000}[key])

    def _target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    def request_header(self, name: str) -> str | None:
        """The request header ``name`` (lower case), None when absent."""
        environ = self.environ
        if environ is not None:
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            value = environ.get(key)
            return None if value is None else str(value)
        return _find(self.request_headers, name)

    def _variable(self, name: str) -> str | None:
        if self.environ is not None:
            for key, value in self.environ.items():
                if key.lower() == name:
                    return str(value)
            return None
        return os.environ.get(name, os.environ.get(name.upper()))


def _find(headers: Iterable[tuple[Any, Any]], name: str) -> str | None:
    found = [_text(value) for key, value in headers if _text(key).lower() == name]
    return ", ".join(found) if found else None


def _basic_user(authorization: str | None) -> str | None:
    if not authorization or not authorization[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("latin-1")
    except ValueError:
        return None
    return decoded.split(":", 1)[0] or None


class AccessLogFormat:
    """A gunicorn ``access_log_format`` (``%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s``).

    Raises ValueError naming ``access_log_format`` when ``fmt`` is not a ``%``-format
    with only ``%(name)s``-style fields (or ``%%``).
    """

    def __init__(self, fmt: str) -> None:
        if not isinstance(fmt, str):
            raise TypeError(f"access_log_format must be a str, got {fmt!r}")
        try:
            fmt % AccessAtoms(("127.0.0.1", 1), "GET", "/", "", "1.1", 200)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(
                f"access_log_format must use gunicorn's %(name)s fields (e.g. "
                f"'%(h)s \"%(r)s\" %(s)s'), got {fmt!r}: {exc}") from None
        self.fmt = fmt

    def log(self, atoms: AccessAtoms) -> None:
        """Emit one access record (INFO): ``fmt`` with ``atoms`` as its mapping."""
        access_logger.info(self.fmt, atoms)


def parse_request_line(line: str | None) -> tuple[str, str, str] | None:
    """``"GET /a?b=1 HTTP/1.1"`` -> ``("GET", "/a?b=1", "1.1")``; None when ``line`` is
    None or not a request line."""
    if not line:
        return None
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    return parts[0], parts[1], parts[2][5:]


def log_refused(client: Any, status: int, request: tuple[str, str, str] | None,
                fmt: AccessLogFormat | None = None) -> None:
    """Log a response the core's HTTP server made by itself (``Connection.refused``).

    ``request`` is ``(method, target, http_version)`` (:func:`parse_request_line`), or
    None when no request line was received: the record then shows ``"-"`` for it.
    """
    if not access_logger.isEnabledFor(logging.INFO):
        return
    if request is None:
        if fmt is None:
            access_logger.info(_NO_REQUEST_FORMAT, format_client(client), status)
        else:
            fmt.log(AccessAtoms(client, "-", "-", "", "-", status))
        return
    method, target, version = request
    path, _, query = target.partition("?")
    if fmt is None:
        log_access(client, method, path, query, version, status)
    else:
        fmt.log(AccessAtoms(client, method, path, query, version, status))
