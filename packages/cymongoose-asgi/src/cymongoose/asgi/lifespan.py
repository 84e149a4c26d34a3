"""ASGI lifespan sub-protocol (ASGI spec, "Lifespan Protocol", version 2.0).

Modes, as uvicorn's ``--lifespan``:

- ``"auto"``: an app that is not lifespan-aware (it has not yet sent a lifespan message of
  the right type) and fails the scope in any way (raises, before or after ``receive()``;
  sends a message of another type; returns without answering ``lifespan.startup``) is
  served without lifespan, after one INFO line on the ``cymongoose.asgi`` logger.
- ``"on"``: the same failures make `Lifespan.startup` raise RuntimeError.

In both modes an explicit ``lifespan.startup.failed`` makes `Lifespan.startup` raise.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger("cymongoose.asgi")

_STARTUP_ANSWERS = ("lifespan.startup.complete", "lifespan.startup.failed")
_SHUTDOWN_ANSWERS = ("lifespan.shutdown.complete", "lifespan.shutdown.failed")


class Lifespan:
    """Drive an app's ``lifespan`` scope: `startup` before listening, `shutdown` after.

    Args:
        app: the ASGI 3 application.
        state: the dict shared as ``scope["state"]``; requests get a shallow copy.
        mode: ``"auto"`` or ``"on"`` (see the module docstring).
    """

    def __init__(self, app: Any, state: dict[str, Any], mode: str = "auto") -> None:
        self._app = app
        self._state = state
        self._mode = mode
        self._receive_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._startup_event = asyncio.Event()
        self._shutdown_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: str | None = None
        self._aware = False  # the app sent a lifespan message of the right type
        self._phase = "startup"  # "running" once startup completed, then "shutdown"
        self.supported = True

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the answer.

        Raises RuntimeError with the app's message on ``lifespan.startup.failed`` (both
        modes), or naming the failure when an app that is not lifespan-aware fails the
        scope in ``"on"`` mode.
        """
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._receive_queue.put({"type": "lifespan.startup"})
        await self._startup_event.wait()
        if self._error is not None:
            raise RuntimeError(f"ASGI lifespan startup failed: {self._error}")

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the answer; failures are logged.

        If startup failed, or the app is served without lifespan, nothing is sent: a
        lifespan call still running is cancelled instead.
        """
        task = self._task
        if task is None or task.done():
            return
        if not self.supported or self._phase != "running":
            task.cancel()
            await asyncio.wait([task])
            return
        self._phase = "shutdown"
        await self._receive_queue.put({"type": "lifespan.shutdown"})
        await self._shutdown_event.wait()
        if self._error is not None:
            logger.error("ASGI lifespan shutdown failed: %s", self._error)

    def _unsupported(self, why: str) -> None:
        """The app is not lifespan-aware and failed the scope: serve without lifespan
        (auto) or fail startup (on). Only the first failure counts."""
        if self._startup_event.is_set():
            return
        if self._mode == "on":
            self._error = why
        else:
            self.supported = False
            logger.info("ASGI 'lifespan' protocol appears unsupported (%s): "
                        "serving without lifespan", why)
        self._startup_event.set()

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self._state,
        }
        try:
            await self._app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise  # the server is going away (or dropped an unsupported lifespan call)
        except BaseException as exc:
            if not self.supported:
                pass  # already reported once
            elif not self._aware:
                if self._mode == "on":
                    logger.error("exception in ASGI lifespan", exc_info=exc)
                self._unsupported(f"the app raised {exc!r}")
            else:
                if self._phase != "running":  # while answering startup or shutdown
                    self._error = self._error or repr(exc)
                logger.error("exception in ASGI lifespan", exc_info=exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if self.supported and not self._aware:
                self._unsupported("the app returned without answering 'lifespan.startup'")
        finally:
            self._startup_event.set()
            self._shutdown_event.set()

    async def _receive(self) -> dict[str, Any]:
        return await self._receive_queue.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        expected = _STARTUP_ANSWERS if self._phase == "startup" else _SHUTDOWN_ANSWERS
        if kind not in expected:
            error = f"unexpected ASGI lifespan message type {kind!r} (expected one of " \
                    f"{', '.join(expected)})"
            if self.supported and not self._aware:
                self._unsupported(f"the app sent {kind!r}")
            raise RuntimeError(error)
        self._aware = True
        if kind == "lifespan.startup.complete":
            self._phase = "running"  # a later exception no longer fails startup
            self._startup_event.set()
        elif kind == "lifespan.startup.failed":
            self._error = message.get("message") or "lifespan.startup.failed"
            logger.error("ASGI lifespan startup failed: %s", self._error)
            self._startup_event.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_event.set()
        else:
            self._error = message.get("message") or "lifespan.shutdown.failed"
            self._shutdown_event.set()
