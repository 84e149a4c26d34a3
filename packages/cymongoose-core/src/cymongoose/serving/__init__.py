"""Pure-Python support shared by the cymongoose ASGI and WSGI servers.

``config`` (ServerConfig), ``cli`` (the shared flags and the CLI flow, and
``ServerAdapter``: what a server package says about itself), ``gunicorn`` (what the
gunicorn worker classes share), ``accesslog``, ``proxy`` (X-Forwarded-* / Forwarded),
``httprules`` (the HTTP/1.x rules both servers apply), ``logconfig`` (the default
logging, ``--log-config``, what ``serve()`` sets up), ``lifecycle`` (the start and stop
lines), ``environment`` (``CYMONGOOSE_<FLAG>`` variables, ``--env-file``), ``supervisor``
(``--workers N`` server processes) with ``control`` (its SIGHUP/SIGTTIN/SIGTTOU),
``reload`` (``--reload``), ``watchdog`` (heartbeat, stop requests and max requests,
checked on a server's event loop), ``listen`` (the listening socket, ``--uds``, and why
it cannot be had) and ``tls`` (reading the PEM files). None of them names a server: the
servers import them.
"""

from .config import ServerConfig

__all__ = ["ServerConfig"]
