"""HTTP/1.x rules both servers apply, written once (RFC 9110, RFC 9112).

The ASGI and WSGI servers translate between mongoose and their interface; what HTTP itself
decides (which headers a proxy sets, when a connection stays open, which responses carry
no content, what a valid Content-Length is) lives here.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PROXY_HEADER_NAMES",
    "SERVER_HEADER",
    "default_headers",
    "parse_header_list",
    "response_defaults",
    "STOP_IDLE_S",
    "ascii_digits",
    "keep_alive",
    "no_content",
    "parse_content_length",
]

#: The request headers a trusted proxy sets (RFC 7239 ``Forwarded`` and the de-facto
#: ``X-Forwarded-*``), lower-case as ASGI carries header names.
PROXY_HEADER_NAMES: tuple[bytes, ...] = (
    b"forwarded",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
)

#: On a graceful stop, a keep-alive connection is closed once it has been idle this long
#: (seconds): no request in flight, no byte of the next one received. One whose next
#: request is on its way gets it answered (with ``Connection: close``) instead, so no
#: client sends a request into a socket that closes.
STOP_IDLE_S = 0.25


def ascii_digits(text: str) -> bool:
    """True for a non-empty run of ASCII digits: ``str.isdigit()`` alone also accepts
    ones such as ``'¹'`` that ``int()`` refuses."""
    return text.isascii() and text.isdigit()


def keep_alive(http_version: str, connection: str | None) -> bool:
    """Whether the connection stays open after this exchange (RFC 9112 section 9.3).

    ``http_version``: ``"1.1"`` or ``"1.0"`` (``"HTTP/1.1"`` is accepted too);
    ``connection``: the request's Connection header value, or None when absent.
    HTTP/1.1 persists unless ``close`` is listed; HTTP/1.0 only with ``keep-alive``.
    """
    if http_version.endswith("1.1"):
        return connection is None or "close" not in connection.lower()
    return connection is not None and "keep-alive" in connection.lower()


def no_content(code: int, is_head: bool = False) -> bool:
    """True when a response carries no content on the wire: to HEAD (RFC 9110 section
    9.3.2), and 1xx, 204 and 304 responses (sections 15.2, 15.3.5, 15.4.5)."""
    return is_head or code < 200 or code == 204 or code == 304


def parse_content_length(value: str | bytes) -> int:
    """A Content-Length field value as an int (RFC 9110 section 8.6).

    Surrounding whitespace is ignored. Raises ValueError naming the value when it is not
    ASCII digits.
    """
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not ascii_digits(text):
        raise ValueError(f"invalid Content-Length: {value!r}")
    return int(text)


#: The ``Server`` field both servers send unless ``server_header`` is off (RFC 9110
#: section 10.2.4): the product only, no version (nothing for a scanner to match).
SERVER_HEADER = ("Server", "cymongoose")

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def parse_header_list(value: Any) -> list[tuple[str, str]]:
    """``ServerConfig.headers`` normalised: ``"Name: value"`` strings (uvicorn's
    ``--header``; whitespace around the value is dropped) or ``(name, value)`` str pairs
    -> ``[(name, value), ...]``. Raises TypeError for another type, ValueError naming
    ``headers`` for a name that is not a token (RFC 9110 section 5.6.2), a missing ``:``
    or CR/LF/NUL in a value (RFC 9112 section 4)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"headers must be a list of 'Name: value' str or (name, value) "
                        f"pairs, got {value!r}")
    out = []
    for item in value:
        if isinstance(item, str):
            name, colon, field_value = item.partition(":")
            if not colon:
                raise ValueError(f"headers entry {item!r} must be 'Name: value'")
        elif (isinstance(item, (tuple, list)) and len(item) == 2
              and all(isinstance(x, str) for x in item)):
            name, field_value = item
        else:
            raise TypeError(f"headers entries must be 'Name: value' str or (name, value) "
                            f"str pairs, got {item!r}")
        name, field_value = name.strip(" \t"), field_value.strip(" \t")  # OWS only
        if not name or not _TOKEN.issuperset(name):
            raise ValueError(f"headers entry {item!r}: the name {name!r} is not a token "
                             f"(RFC 9110 section 5.6.2)")
        if any(ch in field_value for ch in "\r\n\0"):
            raise ValueError(f"headers entry {item!r}: the value contains CR, LF or NUL")
        out.append((name, field_value))
    return out


def default_headers(server_header: bool, date_header: bool,
                    headers: list[tuple[str, str]]) -> tuple[bool, list[tuple[str, str]]]:
    """What every response gets unless it has a field of that name (the core's
    ``configure_http_server(date_header=, default_headers=)``): ``(date, pairs)``.
    ``headers`` (``--header``) come after ``Server``; one named ``Server`` or ``Date``
    replaces the server's own (as uvicorn)."""
    names = {name.lower() for name, _ in headers}
    pairs = [SERVER_HEADER] if server_header and "server" not in names else []
    return date_header and "date" not in names, pairs + list(headers)


def response_defaults(config: Any) -> dict[str, Any]:
    """The ``date_header`` and ``default_headers`` keywords of the core's
    ``configure_http_server`` for a :class:`~cymongoose.serving.config.ServerConfig`."""
    date, pairs = default_headers(config.server_header, config.date_header, config.headers)
    return {"date_header": date, "default_headers": pairs}
