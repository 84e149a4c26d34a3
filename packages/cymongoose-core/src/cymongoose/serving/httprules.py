"""HTTP/1.x rules both servers apply, written once (RFC 9110, RFC 9112).

The ASGI and WSGI servers translate between mongoose and their interface; what HTTP itself
decides (which headers a proxy sets, when a connection stays open, which responses carry
no content, what a valid Content-Length is) lives here.
"""

from __future__ import annotations

__all__ = [
    "PROXY_HEADER_NAMES",
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
