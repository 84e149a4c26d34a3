"""TLS of both servers: the ``TlsOpts`` of a ServerConfig, made once at start-up, and the
debug log line of a connection that failed (a TLS handshake, most often)."""

from __future__ import annotations

import logging
from typing import Any

from cymongoose import TlsOpts

from .config import ServerConfig

__all__ = ["ALPN_PROTOCOLS", "load_tls", "log_connection_error"]

logger = logging.getLogger("cymongoose.tls")

#: What the servers answer in ALPN (RFC 7301): HTTP/1.1 only, so a client offering
#: ``h2`` too (every browser) goes on with HTTP/1.1; HTTP/2 is not served.
ALPN_PROTOCOLS = ("http/1.1",)

# TlsOpts argument <- ServerConfig field; the first three are files read here.
_FIELD_OF_ARG = {"cert": "ssl_certfile", "key": "ssl_keyfile", "ca": "ssl_ca_certs",
                 "password": "ssl_keyfile_password", "ciphers": "ssl_ciphers",
                 "min_version": "ssl_version", "cert_reqs": "ssl_cert_reqs"}
_FILES = ("cert", "key", "ca")


def load_tls(config: ServerConfig) -> TlsOpts | None:
    """``TlsOpts`` from ``config``'s ``ssl_*`` settings, or None when TLS is not configured.

    The PEM files (``ssl_certfile``, ``ssl_keyfile``, ``ssl_ca_certs``) are read and the
    whole set checked here, so that a mistake fails at start-up rather than at the first
    connection. Raises the OSError of ``open()`` (FileNotFoundError, PermissionError,
    IsADirectoryError, ...) with the setting's name added: ``[Errno 2] No such file or
    directory (ssl_certfile): 'cert.pem'``; ValueError naming the setting for an empty
    file, a file without certificate or key, an encrypted key without
    ``ssl_keyfile_password`` or with a wrong one, a key that is not the certificate's, or
    an ``ssl_ciphers`` list OpenSSL does not know (``ssl_keyfile 'key.pem' is encrypted
    and no password was given``).
    """
    if not config.is_ssl:
        return None
    pem: dict[str, bytes] = {}
    for arg in _FILES:
        field = _FIELD_OF_ARG[arg]
        path = getattr(config, field)
        if path is None:
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            # Same type and errno; the message says which setting named the file.
            raise type(exc)(exc.errno, f"{exc.strerror} ({field})", path) from None
        if not data.strip():
            raise ValueError(f"{field} {path!r} is empty; it must hold PEM data")
        pem[arg] = data
    try:
        return TlsOpts(**pem, password=config.ssl_keyfile_password,
                       ciphers=config.ssl_ciphers, min_version=config.ssl_version or "TLSv1.2",
                       cert_reqs=config.ssl_cert_reqs, alpn=ALPN_PROTOCOLS)
    except ValueError as exc:
        field = _FIELD_OF_ARG.get(getattr(exc, "argument", ""))
        if field is None:
            raise
        path = getattr(config, field) if field in ("ssl_certfile", "ssl_keyfile",
                                                   "ssl_ca_certs") else None
        named = f"{field} {path!r}" if path is not None else field
        raise ValueError(f"{named} {getattr(exc, 'problem', exc)}") from None


def _peer(conn: Any) -> str:
    addr = conn.remote_addr
    if not addr:
        return "?"
    return f"[{addr[0]}]:{addr[1]}" if addr[2] else f"{addr[0]}:{addr[1]}"


def log_connection_error(conn: Any, message: str) -> None:
    """Log MG_EV_ERROR of a server connection at debug level on ``cymongoose.tls``, with
    the peer's address: ``TLS handshake with 127.0.0.1:50312 failed: no shared cipher``.

    The connection closes; the server goes on. Failed handshakes are the common case
    (a plain-HTTP request to the TLS port, an old client, a client certificate
    missing); they are the client's problem, hence debug, not warning.
    """
    if not logger.isEnabledFor(logging.DEBUG):
        return
    prefix = "TLS handshake: "
    if message.startswith(prefix):
        logger.debug("TLS handshake with %s failed: %s", _peer(conn), message[len(prefix):])
    else:
        logger.debug("connection with %s failed: %s", _peer(conn), message)
