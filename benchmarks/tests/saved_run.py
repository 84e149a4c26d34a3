"""What run.py keeps of a run, made up for the tests of the tools that read it back
(the median rule in test_placement, rereport.py)."""


def measured_round(rps: float, off: bool = False, client_cpu: float | None = None) -> dict:
    """One round of one cell; ``off``: measured outside the usual CPU placement;
    ``client_cpu``: the load generator's share of its CPU (absent in runs before it was
    measured)."""
    r = {"rps": rps, "p50_us": 100.0, "p99_us": 900.0, "errors": 0, "timeouts": 0,
         "rss": 1 << 20}
    if client_cpu is not None:
        r["client_cpu"] = client_cpu
    return {**r, "placement_off": True} if off else r


def run_meta(**extra) -> dict:
    """A run's ``meta`` with what run.markdown reads, plus ``extra``."""
    return {"date": "2026-12-05 14:53", "host": "h", "cpus": 2, "cpu_model": "m",
            "python": "3.11", "wrk": "wrk", "rounds": 3, "duration": 3, "warmup": 1,
            "loadavg": "0", "versions": {}, "tree": "t", "placement_usual_ns": 90.0, **extra}
