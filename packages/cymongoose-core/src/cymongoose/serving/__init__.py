"""Pure-Python support shared by the cymongoose ASGI and WSGI servers.

``config`` (ServerConfig), ``cli`` (shared argparse flags), ``accesslog``, ``proxy``
(X-Forwarded-* / Forwarded), ``httprules`` (the HTTP/1.x rules both
servers apply), ``logconfig``, ``workers`` (``--workers N``), ``listen``
(the listening socket and why it cannot be had) and ``tls`` (reading the PEM files).
"""

from .config import ServerConfig

__all__ = ["ServerConfig"]
