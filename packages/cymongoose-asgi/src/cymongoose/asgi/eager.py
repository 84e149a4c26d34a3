"""Eager start of request coroutines, without a Task for those that never suspend.

Most ASGI calls of a fast app finish without waiting for anything: for those, a Task per
request (its object, its registration, a ``call_soon`` and a loop iteration before the
first step) is the largest cost left. `EagerRunner.start` runs a coroutine's first step
at once, in a fresh copy of the server's context (a Task would copy the current one:
that of whichever callback polled, maybe one a previous request scheduled), while
``asyncio.current_task()`` answers a real Task: the *host*, an idle Task waiting in the
runner. A coroutine that finishes in that step never touches the host. One that
suspends is handed to the host, which drives it to its end (each step in the
coroutine's own context) and is then done; the next call gets a new host. So an app
sees one Task from its first line to its last (anyio's cancel scopes and Starlette's
task groups check that), exceptions and cancellation reach the coroutine as with
`asyncio.Task`, and Python 3.12's ``eager_task_factory`` is matched on every Python and
event loop (uvloop included) at less cost.
"""

from __future__ import annotations

import asyncio
import operator
import types
from asyncio.tasks import _enter_task, _leave_task  # type: ignore[attr-defined]
from collections.abc import Callable, Coroutine, Generator
from contextvars import Context, copy_context
from typing import Any

__all__ = ["EagerRunner"]


class EagerRunner:
    """Start coroutines eagerly on one event loop (its thread only), each in a copy of
    ``context`` (default: a copy of the current context when the runner is made)."""

    __slots__ = ("_context", "_host", "_inbox", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 context: Context | None = None) -> None:
        self._loop = loop
        self._context = context if context is not None else copy_context()
        self._host: asyncio.Task[Any] | None = None  # idle, waiting on _inbox
        self._inbox: asyncio.Future[Any] | None = None

    def start(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
        """Run ``coro`` until it first suspends or ends.

        Returns None when it ended (its result is dropped; an exception goes to the
        loop's exception handler, as for a Task whose exception nobody retrieved;
        KeyboardInterrupt and SystemExit leave the event loop, as from a Task), else
        the Task that runs the rest of it. Inside another running Task (no eager step
        possible there), ``coro`` becomes a plain Task.
        """
        loop = self._loop
        host = self._host
        if host is None:
            self._inbox = loop.create_future()
            host = self._host = self.create_task(_host(self._inbox))
        try:
            _enter_task(loop, host)
        except RuntimeError:  # another Task is running (e.g. a poll made by stop())
            return self.create_task(coro)
        ctx = self._context.copy()
        try:
            value = ctx.run(coro.send, None)
        except _ENDED:  # done, or cancelled (as a cancelled Task that nobody awaits)
            _leave_task(loop, host)
            if _cancelling(host):  # by the step itself: the host can drive nothing more
                self._host = self._inbox = None
            return None
        except BaseException as exc:  # noqa: BLE001 (reported as a Task would be)
            _leave_task(loop, host)
            if _cancelling(host):
                self._host = self._inbox = None
            self._report(exc)
            return None
        _leave_task(loop, host)
        # Suspended: the host drives the rest; the next start() makes a new host.
        inbox = self._inbox
        assert inbox is not None
        self._host = self._inbox = None
        throw: BaseException | None = None
        if _cancelling(host):  # a new host delivers the cancellation at the await
            throw = asyncio.CancelledError()
            inbox = loop.create_future()
            host = self.create_task(_host(inbox))
        inbox.set_result((coro, ctx, value, throw))
        return host

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A plain Task for ``coro``, in a copy of the runner's context."""
        return self._context.copy().run(self._loop.create_task, coro)

    def close(self) -> None:
        """Cancel the idle host (the loop must not end with it pending)."""
        if self._host is not None:
            self._host.cancel()
            self._host = self._inbox = None

    def _report(self, exc: BaseException) -> None:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            self._loop.call_soon(_reraise, exc)  # out of run_forever(), as from a Task
            return
        self._loop.call_exception_handler({
            "message": "exception in an eagerly started coroutine", "exception": exc})


def _cancel_requested(task: asyncio.Task[Any]) -> bool:
    # Python 3.10: a host cancelled before its first step has _must_cancel set; after
    # it, the future it waits on (its inbox) is cancelled.
    waiter = getattr(task, "_fut_waiter", None)
    return bool(getattr(task, "_must_cancel", False)) or (
        waiter is not None and waiter.cancelled())


# Whether the host was asked to cancel: task.cancelling() (Python 3.11+; counts every
# request, whatever the task waits on) as one C call, since it is asked per request.
_cancelling: Callable[[asyncio.Task[Any]], Any] = \
    operator.methodcaller("cancelling") if hasattr(asyncio.Task, "cancelling") \
    else _cancel_requested
_ENDED = (StopIteration, asyncio.CancelledError)


def _reraise(exc: BaseException) -> None:
    raise exc


async def _host(inbox: asyncio.Future[Any]) -> Any:
    # A coroutine (not the generator itself): Task accepts only these from Python 3.12.
    return await _drive(inbox)


@types.coroutine
def _drive(inbox: asyncio.Future[Any]) -> Generator[Any, Any, Any]:
    """The host Task's body: wait for a suspended coroutine, then pass every send/throw
    of the Task through to it, in its context, until it returns."""
    pending: BaseException | None = None
    try:
        yield from inbox
    except asyncio.CancelledError as exc:
        if not inbox.done() or inbox.cancelled():
            raise  # cancelled while idle: nothing to run
        pending = exc  # cancelled after the hand-over: it is the coroutine's
    coro, ctx, value, throw = inbox.result()
    throw = throw or pending
    send = coro.send
    while True:
        sent = None
        if throw is None:
            try:
                sent = yield value  # what the coroutine awaits, to the Task
            except GeneratorExit:
                ctx.run(coro.close)
                raise
            except BaseException as exc:  # noqa: BLE001 (all of them belong to coro)
                throw = exc
        try:
            if throw is None:
                value = ctx.run(send, sent)
            else:
                exc, throw = throw, None
                value = ctx.run(coro.throw, exc)
        except StopIteration as stop:
            return stop.value
