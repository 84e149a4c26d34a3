"""Pure-Python support shared by the cymongoose ASGI and WSGI servers.

``config`` (ServerConfig), ``cli`` (shared argparse flags), ``accesslog``, ``proxy``
(X-Forwarded-* / Forwarded), ``logconfig`` and ``workers`` (``--workers N``).
"""

from .config import ServerConfig

__all__ = ["ServerConfig"]
