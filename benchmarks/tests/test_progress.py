"""progress.py: the cell counter and the time left from the mean of the finished cells."""

import io

from progress import Progress, duration


def test_line_counts_cells_and_estimates_time_left():
    now = [100.0]
    out = io.StringIO()
    progress = Progress(total=6, rounds=2, stream=out, clock=lambda: now[0])
    progress.cell("uvicorn", "hello", 1)
    now[0] += 10  # the first cell took 10 s
    progress.cell("uvicorn", "pipeline", 1)
    now[0] += 20  # the second 20 s: 15 s a cell, 4 to go
    progress.cell("granian-asgi", "hello", 1)
    progress.skip(2)  # a server that did not start: its cells count as done
    now[0] += 30
    progress.cell("uvicorn", "hello", 2)
    assert out.getvalue().splitlines() == [
        "cell 1/6  uvicorn hello  round 1/2  elapsed 0s  ~? left",
        "cell 2/6  uvicorn pipeline  round 1/2  elapsed 10s  ~50s left",
        "cell 3/6  granian-asgi hello  round 1/2  elapsed 30s  ~1m00s left",
        "cell 6/6  uvicorn hello  round 2/2  elapsed 1m00s  ~12s left",
    ]


def test_duration():
    assert [duration(s) for s in (0, 59.4, 60, 125, 3599, 3600, 3725, -3)] == [
        "0s", "59s", "1m00s", "2m05s", "59m59s", "1h00m", "1h02m", "0s"]
