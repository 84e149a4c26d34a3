"""TLS settings of both servers: the PEM files of a ServerConfig, read once at start-up."""

from __future__ import annotations

from cymongoose import TlsOpts

from .config import ServerConfig

__all__ = ["load_tls"]

# TlsOpts argument <- ServerConfig field
_FILES = (("cert", "ssl_certfile"), ("key", "ssl_keyfile"), ("ca", "ssl_ca_certs"))


def load_tls(config: ServerConfig) -> TlsOpts | None:
    """``TlsOpts`` from ``config``'s PEM files, or None when TLS is not configured.

    ``ssl_certfile`` and ``ssl_keyfile`` (and ``ssl_ca_certs``, which makes the server
    require client certificates signed by those CAs) are read here, so that a wrong path
    fails at start-up rather than at the first connection. Raises the OSError of
    ``open()`` (FileNotFoundError, PermissionError, IsADirectoryError, ...) with the
    setting's name added: ``[Errno 2] No such file or directory (ssl_certfile):
    'cert.pem'``; ValueError naming the setting when a file is empty.
    """
    if not config.is_ssl:
        return None
    pem: dict[str, bytes] = {}
    for arg, field in _FILES:
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
    return TlsOpts(**pem)
