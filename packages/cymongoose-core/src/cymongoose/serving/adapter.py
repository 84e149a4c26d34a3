"""What a server package tells the shared command line and gunicorn support about itself.

The core's serving modules name no server: ``cymongoose-asgi`` and ``cymongoose-wsgi``
each describe what is theirs in one :class:`ServerAdapter` (in their ``main.py``), and
:mod:`~cymongoose.serving.cli` and :mod:`~cymongoose.serving.gunicorn` apply it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import ServerConfig


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A server with no flags of its own."""


@dataclass(frozen=True)
class ServerAdapter:
    """One server package, as the shared CLI and gunicorn worker support see it.

    Fields:
        prog: the command's name (``"cymongoose-asgi"``): argparse's ``prog``, and the
            prefix of start-up error lines (``cymongoose-asgi: error: ...``).
        description: the line under the usage in ``--help``.
        module: the package ``python -m`` runs to start one of the ``--workers N``
            server processes (``"cymongoose.asgi"``).
        serve: ``serve(app, config)``: serve ``app`` with a validated ServerConfig until
            SIGINT/SIGTERM (blocks). Called once per server process, after the flags are
            parsed, so it may import the server lazily.
        add_arguments: adds the server's own flags to the parser (after the shared ones,
            in a group of its own, e.g. ``--threads``); none by default.
        app_threads: the server runs the app in a pool of ``ServerConfig.threads``
            threads (WSGI). gunicorn's default ``--threads 1`` then means the server's
            default pool (:func:`~cymongoose.serving.config.default_threads`).
    """

    prog: str
    description: str
    module: str
    serve: Callable[[Any, ServerConfig], None]
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    app_threads: bool = False
