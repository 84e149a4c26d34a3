"""Issue 17's acceptance for cymongoose-wsgi, checked against one benchmark run's rows.

The targets: inline hello >= 1.2x bjoern, pooled hello >= 1.6x granian-wsgi, Flask in both
modes >= 1.3x granian-wsgi, and no WSGI row more than 5% below the same run's figure for
the commit before the change (``run.py --baseline REF``).
"""

from __future__ import annotations

# Issue 17's acceptance: (workload, cymongoose server, peer, minimum req/s ratio), and the
# least a WSGI row may keep of its baseline twin's req/s.
ACCEPTANCE = [
    ("hello", "cymongoose-wsgi-inline", "bjoern", 1.2),
    ("hello", "cymongoose-wsgi", "granian-wsgi", 1.6),
    ("flask", "cymongoose-wsgi", "granian-wsgi", 1.3),
    ("flask", "cymongoose-wsgi-inline", "granian-wsgi", 1.3),
]
ACCEPTANCE_VS_BASE = 0.95
MODES = {"cymongoose-wsgi": "pooled, --threads 4", "cymongoose-wsgi-inline": "inline, --threads 0"}


def acceptance_markdown(rows: list[dict], meta: dict) -> list[str]:
    """Issue 17's WSGI targets, checked against this run's medians (when WSGI rows exist)."""
    by = {(r["workload"], r["server"]): r for r in rows}
    if not any(server in MODES for _, server in by):
        return []
    lines = ["## acceptance: cymongoose-wsgi against its peers and its baseline (issue 17)", "",
             "Ratios of this run's median req/s. `cymongoose-wsgi` is the pooled mode "
             "(`--threads 4`), `cymongoose-wsgi-inline` runs the app on the poll thread "
             "(`--threads 0`). A `--quick` run is one 1-second sample: indicative only.", "",
             "| check | ratio | target | result |", "|---|---:|---:|---|"]

    def check(label: str, row: dict | None, other: dict | None, target: float) -> None:
        if not row or not other or not row.get("rps") or not other.get("rps"):
            failed = any(r and r["error"] for r in (row, other))
            lines.append(f"| {label} | | ≥ {target:.2f}× | "
                         f"{'**ERROR**' if failed else 'not measured'} |")
            return
        ratio = row["rps"] / other["rps"]
        clean = not any(r["error"] or r["errors"] or r["timeouts"] for r in (row, other))
        result = ("ok" if ratio >= target else "**BELOW**") if clean else "**errors in run**"
        lines.append(f"| {label} | {ratio:.2f}× | ≥ {target:.2f}× | {result} |")

    for workload, server, peer, target in ACCEPTANCE:
        check(f"{workload}: {server} ({MODES[server]}) / {peer}", by.get((workload, server)),
              by.get((workload, peer)), target)
    short = meta.get("baseline", {}).get("short")
    for (workload, server), row in by.items():
        if server in MODES and short:
            check(f"{workload}: {server} / {server}@{short}", row,
                  by.get((workload, f"{server}@{short}")), ACCEPTANCE_VS_BASE)
    if not short:
        lines.append("| every WSGI row / the commit before the change | | "
                     f"≥ {ACCEPTANCE_VS_BASE:.2f}× | not measured: run with `--baseline REF` |")
    lines.append("")
    return lines
