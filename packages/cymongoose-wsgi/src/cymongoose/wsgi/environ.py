"""Build PEP 3333 ``environ`` dicts from mongoose HTTP messages.

Everything here runs on the poll thread while the ``HttpMessage`` is still valid: the
environ is made of plain Python objects only, so the worker thread never touches C memory.
"""

from __future__ import annotations

import io
import sys
from typing import Any, BinaryIO
from urllib.parse import unquote_to_bytes

__all__ = ["FileWrapper", "base_environ", "request_environ"]

# Headers that PEP 3333 (and CGI) put in the environ without the HTTP_ prefix.
_UNPREFIXED = {"CONTENT_TYPE", "CONTENT_LENGTH"}

# Precomputed "Header-Name" -> "HTTP_HEADER_NAME" for the names seen so far. Bounded so
# that a client sending random header names cannot grow it without limit.
_KEY_CACHE: dict[str, str | None] = {}
_KEY_CACHE_MAX = 512


def _environ_key(name: str) -> str | None:
    """Return the environ key for header ``name``, or None to drop the header.

    Names containing ``_`` are dropped: they would be indistinguishable from ``-`` once
    converted, which lets a client spoof headers set by a proxy (``X-Forwarded_For``).
    """
    key = _KEY_CACHE.get(name)
    if key is not None or name in _KEY_CACHE:
        return key
    if "_" in name:
        key = None
    else:
        upper = name.upper().replace("-", "_")
        key = upper if upper in _UNPREFIXED else "HTTP_" + upper
    if len(_KEY_CACHE) < _KEY_CACHE_MAX:
        _KEY_CACHE[name] = key
    return key


def _native(value: str) -> str:
    """Turn a str decoded from the wire into a PEP 3333 "native string" (latin-1 code points).

    The core decodes header bytes as UTF-8; PEP 3333 wants each byte as one latin-1 code point.
    """
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("latin-1")


class FileWrapper:
    """``wsgi.file_wrapper`` (PEP 3333, "Optional Platform-Specific File Handling").

    Iterates over ``filelike`` in blocks of ``blksize`` bytes; ``close()`` closes the file.
    """

    def __init__(self, filelike: BinaryIO, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


def base_environ(
    local_addr: tuple[str, int, bool],
    remote_addr: tuple[str, int, bool],
    url_scheme: str,
    multithread: bool = True,
) -> dict[str, Any]:
    """The part of the environ that is the same for every request on one connection."""
    return {
        "SERVER_NAME": local_addr[0],
        "SERVER_PORT": str(local_addr[1]),
        "REMOTE_ADDR": remote_addr[0],
        "REMOTE_PORT": str(remote_addr[1]),
        "SCRIPT_NAME": "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url_scheme,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
    }


def request_environ(base: dict[str, Any], msg: Any) -> dict[str, Any]:
    """Return a new environ for the ``HttpMessage`` ``msg`` on top of ``base``.

    PATH_INFO is percent-decoded and given as latin-1 code points (PEP 3333, "Unicode
    Issues"); repeated headers are joined with ``", "`` (RFC 9110 section 5.3).
    """
    environ = base.copy()
    body = msg.body_bytes
    environ["REQUEST_METHOD"] = msg.method
    environ["PATH_INFO"] = unquote_to_bytes(msg.uri).decode("latin-1")
    environ["QUERY_STRING"] = _native(msg.query)
    environ["SERVER_PROTOCOL"] = msg.proto or "HTTP/1.0"
    environ["wsgi.input"] = io.BytesIO(body)
    for name, value in msg.headers():
        key = _environ_key(name)
        if key is None:
            continue
        value = _native(value)
        if key in environ and key.startswith("HTTP_"):
            sep = "; " if key == "HTTP_COOKIE" else ", "
            environ[key] = environ[key] + sep + value
        else:
            environ[key] = value
    if body:
        # mongoose has already de-chunked and buffered the whole body.
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ
