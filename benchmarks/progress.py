"""The bench's progress line on stderr: which cell runs, how long so far, about how long left.

    cell 12/130  uvicorn hello  round 1/3  elapsed 2m05s  ~21m40s left

A cell is one measurement: one server on one workload in one round (an MQTT consumer on
one server counts as one too). The time left is the mean time of the finished cells
(server start-up and checks included) times the cells still to run, so it settles after
the first few cells and is rough while cells differ (idle workloads take longer).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def duration(seconds: float) -> str:
    """``seconds`` (>= 0) as ``45s``, ``2m05s`` or ``1h02m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Counts cells over a run of ``total`` cells in ``rounds`` rounds and writes one line
    per cell to ``stream`` (stderr) as it starts. ``clock`` returns seconds (monotonic)."""

    def __init__(self, total: int, rounds: int, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.rounds = total, rounds
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.started = clock()
        self.finished = 0  # cells done; the one starting is number finished + 1

    def line(self, server: str, workload: str, round_no: int) -> str:
        """The line for the cell that starts now (``round_no`` counts from 1)."""
        elapsed = self.clock() - self.started
        k = self.finished + 1
        if self.finished:
            left = f"~{duration(elapsed / self.finished * (self.total - self.finished))} left"
        else:
            left = "~? left"
        return (f"cell {k}/{self.total}  {server} {workload}  round {round_no}/{self.rounds}"
                f"  elapsed {duration(elapsed)}  {left}")

    def cell(self, server: str, workload: str, round_no: int) -> None:
        """Report the cell starting now; the previous one (if any) has finished."""
        print(self.line(server, workload, round_no), file=self.stream, flush=True)
        self.finished += 1

    def skip(self, cells: int) -> None:
        """Count ``cells`` as done without running them (their server did not start)."""
        self.finished += cells
