"""Where the hypervisor has put the bench's two CPUs, and measurements taken in one place.

On a VM the two virtual CPUs (the server's and the load generator's) are sometimes on
cores that share a last-level cache and sometimes not, and this changes by itself every
few seconds. Loopback TCP moves cache lines between the two CPUs on every request, so
the whole machine runs ~20% faster while they share a cache (measured on the 2-CPU VM
of the committed results: a line's round trip 77-110 ns against 340-400 ns; the same
server 166-179k against 130-143k req/s, bjoern 143-150k against 116-124k). A round
measured in the other placement than its neighbours moves a ratio by that much.

``Placement`` runs ``placement.c`` (built with ``cc`` at the start of a run) before and
after each measurement. A measurement counts when both probes are within
``TOLERANCE`` of the run's usual round trip (the median of every probe so far,
starting with a few seconds of probes at start-up); otherwise it is repeated, up to
``TRIES`` times, and the last one is kept and marked. Before each try it waits (up to
``SETTLE_S``) for a probe in the usual placement. A busy machine looks like another
placement (the probe's second thread waits for its CPU), so this also waits out load.
On a machine whose CPUs do not move, every probe matches and nothing is repeated.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBE_MS = 50  # one probe: this many milliseconds of round trips
START_PROBES = 40  # probes at start-up (with pauses: ~4 s) before the first measurement
TOLERANCE = 1.5  # a probe matches the usual placement within this factor either way
TRIES = 3  # measurements of one cell at most, until one is in the usual placement
SETTLE_S = 15.0  # before a try, wait up to this long for the usual placement


def matches(ns: float, usual: float) -> bool:
    """Whether a probe's round trip ``ns`` is in the placement whose round trip is
    ``usual`` (both nanoseconds, > 0)."""
    return usual / TOLERANCE <= ns <= usual * TOLERANCE


class Placement:
    """The probe between ``cpus`` (two CPU numbers), run from ``binary``."""

    def __init__(self, binary: Path, cpus: tuple[str, str]) -> None:
        self.binary, self.cpus = binary, cpus
        self.seen: list[float] = []  # every probe of the run, ns

    @classmethod
    def build(cls, directory: Path, cpus: tuple[str, str]) -> Placement:
        """Compile placement.c into ``directory``; raises CalledProcessError (or
        FileNotFoundError without a C compiler)."""
        out = directory / "placement"
        cc = os.environ.get("CC", "cc")
        subprocess.run([cc, "-O2", "-pthread", "-o", str(out), str(HERE / "placement.c")],
                       check=True, capture_output=True)
        return cls(out, cpus)

    def probe(self, record: bool = True) -> float:
        """One probe: the mean round trip of a cache line between the CPUs, ns; counted
        towards the usual placement if ``record``."""
        out = subprocess.run([str(self.binary), *self.cpus, str(PROBE_MS)],
                             capture_output=True, text=True, check=True, timeout=30)
        ns = float(out.stdout)
        if record:
            self.seen.append(ns)
        return ns

    def start(self, pause: Callable[[float], None]) -> float:
        """The start-up probes, ``pause(0.05)`` between them; returns the usual round
        trip."""
        for _ in range(START_PROBES):
            self.probe()
            pause(0.05)
        return self.usual

    @property
    def usual(self) -> float:
        """The run's usual round trip so far: the median of its probes, ns."""
        return statistics.median(self.seen)

    def settle(self, pause: Callable[[float], None], clock: Callable[[], float]) -> float:
        """Probe (``pause(0.1)`` between probes) until a probe is in the usual placement
        or SETTLE_S seconds of ``clock`` went by; returns the last probe, ns."""
        deadline = clock() + SETTLE_S
        ns = self.probe()
        while not matches(ns, self.usual) and clock() < deadline:
            pause(0.1)
            # not recorded: a long wait in the other placement must not become the usual
            ns = self.probe(record=False)
        return ns

    def measure(self, run: Callable[[], dict],
                pause: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> dict:
        """``run()`` (one measurement, a dict) until it is taken in the usual placement,
        at most TRIES times, each try once the placement is usual (``settle``). Adds
        ``placement_ns`` (the probes before and after) and ``tries`` to the returned
        dict, and ``placement_off`` (True) when the last try was still outside it."""
        tries = 0
        while True:
            tries += 1
            before = self.settle(pause, clock)
            result = run()
            after = self.probe()
            inside = matches(before, self.usual) and matches(after, self.usual)
            if inside or tries == TRIES:
                break
        result["placement_ns"] = [round(before, 1), round(after, 1)]
        result["tries"] = tries
        if not inside:
            result["placement_off"] = True
        return result
