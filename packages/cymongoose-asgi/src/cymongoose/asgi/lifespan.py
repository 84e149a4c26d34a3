"""ASGI lifespan sub-protocol (ASGI spec, "Lifespan Protocol", version 2.0)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger("cymongoose.asgi")


class Lifespan:
    """Drive an app's ``lifespan`` scope: `startup` before listening, `shutdown` after.

    Apps that do not implement lifespan (they raise, or return without sending a message,
    on a ``lifespan`` scope) are detected and treated as having nothing to do.

    Args:
        app: the ASGI 3 application.
        state: the dict shared as ``scope["state"]``; requests get a shallow copy.
    """

    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        self._app = app
        self._state = state
        self._receive_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._startup_event = asyncio.Event()
        self._shutdown_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: str | None = None
        self.supported = True

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the answer.

        Raises RuntimeError with the app's message on ``lifespan.startup.failed`` or if the
        app raised after having taken part in the protocol.
        """
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._receive_queue.put({"type": "lifespan.startup"})
        await self._startup_event.wait()
        if self._error is not None:
            raise RuntimeError(f"ASGI lifespan startup failed: {self._error}")

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the answer; failures are logged."""
        if self._task is None or not self.supported or self._task.done():
            return
        await self._receive_queue.put({"type": "lifespan.shutdown"})
        await self._shutdown_event.wait()
        if self._error is not None:
            logger.error("ASGI lifespan shutdown failed: %s", self._error)

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self._state,
        }
        self._spoke = False
        try:
            await self._app(scope, self._receive, self._send)
        except BaseException as exc:
            if not self._spoke:
                # The app does not implement lifespan: that is allowed (ASGI spec).
                self.supported = False
                logger.info("ASGI 'lifespan' not supported by the app (%r)", exc)
            else:
                self._error = self._error or repr(exc)
                logger.error("exception in ASGI lifespan", exc_info=exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if not self._spoke:
                self.supported = False
        finally:
            self._startup_event.set()
            self._shutdown_event.set()

    async def _receive(self) -> dict[str, Any]:
        self._spoke = True
        return await self._receive_queue.get()

    async def _send(self, message: dict[str, Any]) -> None:
        self._spoke = True
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._startup_event.set()
        elif kind == "lifespan.startup.failed":
            self._error = message.get("message") or "lifespan.startup.failed"
            self._startup_event.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_event.set()
        elif kind == "lifespan.shutdown.failed":
            self._error = message.get("message") or "lifespan.shutdown.failed"
            self._shutdown_event.set()
        else:
            raise RuntimeError(f"unexpected ASGI lifespan message type {kind!r}")
