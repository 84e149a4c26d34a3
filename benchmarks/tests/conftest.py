"""The bench tools' tests (compare.py, charts.py, progress.py, pipelining.py): fast, on
loopback only; ``nox -s bench`` runs them before measuring."""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))
