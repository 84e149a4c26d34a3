"""Inline mode (``threads=0``): the app runs on mongoose's poll thread.

No pool, no hand-off, no wakeup per response: for a plain request the cost is one event,
the environ built in one C call, the app, and one write (the core's fast path does all of
it). This suits apps that do not block (CPU-bound work, data in memory), one such process
per core. An app that waits (a database, an upstream HTTP call, ``time.sleep``) stalls
every connection of the process meanwhile: use the pooled mode for those.

The request cycle is the same as in the pooled mode (:mod:`.cycle`); this writer adapts
it to a loop that must never wait:

* ``wsgi.input``: a body above the core's stream threshold (and every chunked body) is
  received in full before the app is called, into a :class:`~.environ.SpooledBody`.
* A streamed block is written to the socket at once (``Connection.flush``), before the
  app is asked for the next. When the client falls behind (``SEND_HIGH_WATER_BYTES``
  queued), the iteration is suspended until the socket has taken the data down to
  ``SEND_LOW_WATER_BYTES`` (``EV_WRITABLE``); a client that takes nothing for
  ``stream_timeout_s`` seconds is disconnected.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .cycle import Cycle
from .environ import SpooledBody
from .rules import SEND_HIGH_WATER_BYTES, SEND_LOW_WATER_BYTES

__all__ = ["InlineWriter"]

logger = logging.getLogger("cymongoose.wsgi")

#: A streamed request body keeps this many bytes in memory, the rest in a temporary file.
BODY_MEMORY_BYTES = 1 << 20


class InlineWriter:
    """The writer of an inline server: the cycle writes straight into the connection."""

    def __init__(self, stream_timeout_s: float) -> None:
        self.stream_timeout_s = stream_timeout_s
        self.stopping = False  # responses say "Connection: close" from now on

    @staticmethod
    def idle() -> bool:
        return True

    # -- protocol side -------------------------------------------------------------------

    @staticmethod
    def start(cycle: Cycle) -> None:
        cycle.run()

    @staticmethod
    def new_body(cycle: Cycle) -> SpooledBody:
        return SpooledBody(BODY_MEMORY_BYTES, cycle.environ)  # sets wsgi.input

    @staticmethod
    def cancel(cycle: Cycle) -> None:
        cycle.cancelled = True
        if cycle.iterator is not None:  # a suspended stream: its close() is due now
            cycle.iterator = None
            cycle.close_result()

    def sweep(self, protocol: Any, cycle: Cycle, now: float) -> None:
        if cycle.deadline and cycle.iterator is not None and cycle.deadline < now:
            logger.error(
                "closing connection %d: the client took no data for %s s",
                protocol.conn.id, self.stream_timeout_s,
            )
            protocol.conn.close()  # MG_EV_CLOSE calls the iterable's close()

    @staticmethod
    def writable(protocol: Any) -> None:
        cycle = protocol.current
        if cycle is not None and cycle.iterator is not None:
            cycle.deadline = 0.0
            cycle.pump()

    # -- cycle side ----------------------------------------------------------------------

    @staticmethod
    def adopt(cycle: Cycle) -> None:
        cycle.protocol.adopt(cycle)

    @staticmethod
    def response(cycle: Cycle, status: str, headers: list[tuple[str, str]], body: bytes,
                 head_only: bool) -> None:
        cycle.put_response(status, headers, body, head_only)

    @staticmethod
    def head(cycle: Cycle, status: str, headers: list[tuple[str, str]]) -> None:
        if not cycle.put_head(status, headers):
            cycle.cancelled = True  # the app's iteration stops at its next block

    @staticmethod
    def data(cycle: Cycle, data: bytes) -> None:
        if cycle.cancelled:
            return
        conn = cycle.conn
        if cycle.chunked:
            conn.http_chunk(data)
        else:
            conn.send(data)
        if cycle.eager:
            conn.flush()  # PEP 3333: out before the app is asked for the next block

    def pause(self, cycle: Cycle) -> bool:
        conn = cycle.conn
        if cycle.cancelled or conn.send_len <= SEND_HIGH_WATER_BYTES:
            return False
        conn.notify_writable(SEND_LOW_WATER_BYTES)
        cycle.deadline = time.monotonic() + self.stream_timeout_s
        return True

    @staticmethod
    def end(cycle: Cycle) -> None:
        conn = cycle.conn
        if cycle.chunked:
            conn.http_chunk(b"")
        conn.finish_response()
        cycle.protocol.finish(cycle)

    @staticmethod
    def abort(cycle: Cycle, hard: bool) -> None:
        cycle.protocol.abort(cycle, hard)

    @staticmethod
    def file(cycle: Cycle, status: str, headers: list[tuple[str, str]], fd: int, offset: int,
             length: int, wrapper: Any) -> None:
        cycle.put_file(status, headers, fd, offset, length, wrapper)

    @staticmethod
    def stalled(exc: BaseException | None) -> bool:
        return False
