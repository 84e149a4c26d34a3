"""ASGI 3 server on the mongoose event loop (HTTP/1.1, WebSocket, lifespan).

from cymongoose.asgi import serve
serve(app, "http://127.0.0.1:8000")
"""

from __future__ import annotations

from .http import ClientDisconnected
from .server import ASGIServer, serve

__all__ = ["ASGIServer", "ClientDisconnected", "serve"]
__version__ = "0.1.0"
