"""asyncio integration for cymongoose.

`AsyncManager` runs a `cymongoose.Manager` beside an asyncio event loop. This release
implements the *threaded* mode: the mongoose poll loop runs in a daemon thread and
``poll()`` releases the GIL while it waits, so both loops make progress.
"""

from __future__ import annotations

from ._manager import AsyncManager

__all__ = ["AsyncManager"]
__version__ = "0.1.0"
