"""Coverage feedback for behaviour atheris cannot see (code in C, or in another thread).

atheris measures coverage of instrumented Python bytecode. :func:`observe` turns a value
(for example the tuple of status codes a server answered) into a hit on one of
``BUCKETS`` distinct branches of an instrumented function, so that an input making the
server do something new counts as new coverage and is kept in the corpus.
"""

from __future__ import annotations

import re
import zlib

import atheris

BUCKETS = 2048
_PER_FUNCTION = 64  # instrumenting one function costs time quadratic in its size
#: Status codes at the start of each response line in a raw answer.
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})")


def _make_branches(count: int):  # noqa: ANN202 - generated code
    # One ``if`` per bucket: each is a separate branch in atheris's coverage map.
    lines = ["def branches(k):"]
    lines += [f"    if k == {i}:\n        return {i}" for i in range(count)]
    lines.append("    return -1")
    namespace: dict[str, object] = {}
    exec(compile("\n".join(lines), "<feedback>", "exec"), namespace)  # noqa: S102
    return atheris.instrument_func(namespace["branches"])


_branches = [_make_branches(_PER_FUNCTION) for _ in range(BUCKETS // _PER_FUNCTION)]


def observe(kind: str, value: object) -> None:
    """Record that ``value`` was seen for ``kind`` (deterministic across processes)."""
    bucket = zlib.crc32(f"{kind}={value!r}".encode()) % BUCKETS
    _branches[bucket // _PER_FUNCTION](bucket % _PER_FUNCTION)
