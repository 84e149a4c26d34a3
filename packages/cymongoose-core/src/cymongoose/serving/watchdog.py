"""What a server process checks on its own event loop: heartbeat, stop requests and the
max-requests limit, for both servers.

A server given a :class:`Watchdog` calls :meth:`Watchdog.ready` once it accepts
connections, then :meth:`Watchdog.tick` every :data:`TICK_MS` milliseconds *from the
event loop that runs the app* (a timer on its manager; ASGI: through the asyncio loop),
with the number of requests it has received (``Connection.request_count`` of its
listeners), and acts on what it returns:

* :data:`STOP`: stop gracefully now (stop accepting, finish in-flight requests within
  ``graceful_timeout_s``, close keep-alive connections between requests; once the
  max-requests limit is reached, ``retiring``, only after a response that says
  ``Connection: close`` or at their keep-alive timeout);
* :data:`RETIRING`: keep accepting, but answer every request with ``Connection: close``,
  so that clients move their keep-alive connections to the process that replaces this
  one (a STOP follows, by SIGTERM);
* :data:`CONTINUE`.

Because the heartbeat rides on the loop, a loop stuck in an app (``time.sleep`` in an
ASGI app or in an inline WSGI app) stops the heartbeat, and gunicorn's ``--timeout``
kills the process.

Who makes one: the servers make :meth:`Watchdog.for_config` when none is given (only
``limit_max_requests`` matters there: the process exits after that many requests, as
uvicorn's does); the gunicorn worker classes pass gunicorn's heartbeat and ``alive`` flag
(:mod:`cymongoose.serving.gunicorn`); the ``--workers`` supervisor's server processes
report readiness and ask to be replaced instead of stopping
(:mod:`cymongoose.serving.supervisor`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from .config import ServerConfig

__all__ = ["CONTINUE", "RETIRING", "STOP", "TICK_MS", "Watchdog", "max_requests_with_jitter"]

logger = logging.getLogger("cymongoose.serving")

#: Period of :meth:`Watchdog.tick` (milliseconds): how late a stop request or the
#: max-requests limit is acted on at most, and the heartbeat period.
TICK_MS = 200
#: What :meth:`Watchdog.tick` tells the server to do (see the module docstring).
CONTINUE, RETIRING, STOP = 0, 1, 2


def max_requests_with_jitter(config: ServerConfig) -> int | None:
    """``config.limit_max_requests`` plus a random 0..``limit_max_requests_jitter``
    (inclusive, drawn once per call: once per process), or None without a limit."""
    if config.limit_max_requests is None:
        return None
    return config.limit_max_requests + random.randint(0, config.limit_max_requests_jitter)


class Watchdog:
    """The checks a server runs on its event loop every :data:`TICK_MS` ms.

    Args:
        max_requests: stop (or retire, see ``on_retire``) once this many requests have
            been received; None: no limit.
        heartbeat: called at every tick (gunicorn's ``Worker.notify``).
        keep_serving: called at every tick; False means stop gracefully now (gunicorn's
            ``alive`` flag: reload, max_requests, parent gone). Returns bool.
        on_ready: called once the server accepts connections.
        on_retire: called once when ``max_requests`` is reached, *instead of* stopping
            (the tick says RETIRING): whoever runs the process replaces it and then stops
            it with SIGTERM (the ``--workers`` supervisor). Without it the server stops by
            itself.

    Raises nothing itself; exceptions of the callbacks propagate to the server's loop.
    """

    def __init__(
        self,
        *,
        max_requests: int | None = None,
        heartbeat: Callable[[], object] | None = None,
        keep_serving: Callable[[], bool] | None = None,
        on_ready: Callable[[], object] | None = None,
        on_retire: Callable[[], object] | None = None,
    ) -> None:
        if max_requests is not None and (isinstance(max_requests, bool)
                                         or not isinstance(max_requests, int)
                                         or max_requests < 1):
            raise ValueError(f"max_requests must be an int >= 1 or None, got {max_requests!r}")
        self.max_requests = max_requests
        self.heartbeat = heartbeat
        self.keep_serving = keep_serving
        self.on_ready = on_ready
        self.on_retire = on_retire
        self.limit_reached = False
        self.stopping = False
        # The max-requests limit was reached: the server's graceful stop then closes no
        # idle connection itself (each ends after its next response, which says
        # Connection: close, or at its keep-alive timeout), so that no client sends a
        # request into a socket being closed while another process takes over.
        self.retiring = False

    @classmethod
    def for_config(cls, config: ServerConfig) -> Watchdog | None:
        """The watchdog a server makes for itself: the max-requests limit of ``config``
        (with its jitter), or None when there is nothing to watch."""
        limit = max_requests_with_jitter(config)
        return None if limit is None else cls(max_requests=limit)

    def ready(self) -> None:
        """The server accepts connections (called once, after it listens): the first
        heartbeat (gunicorn watches a worker's ``--timeout`` only once it has had one)
        and ``on_ready``."""
        if self.heartbeat is not None:
            self.heartbeat()
        if self.on_ready is not None:
            self.on_ready()

    def tick(self, requests: int) -> int:
        """One check; ``requests``: received so far by this server. Returns STOP once
        (when the server should stop gracefully now), RETIRING once (``on_retire`` was
        called), CONTINUE otherwise."""
        if self.heartbeat is not None:
            self.heartbeat()
        if self.stopping:
            return CONTINUE
        if self.keep_serving is not None and not self.keep_serving():
            self.stopping = True
            return STOP
        if self.max_requests is None or self.limit_reached or requests < self.max_requests:
            return CONTINUE
        self.limit_reached = True
        self.retiring = True
        if self.on_retire is not None:
            logger.info("Maximum request limit of %d reached; closing keep-alive "
                        "connections until a new process replaces this one",
                        self.max_requests)
            self.on_retire()
            return RETIRING
        logger.info("Maximum request limit of %d reached. Terminating process.",
                    self.max_requests)
        self.stopping = True
        return STOP
