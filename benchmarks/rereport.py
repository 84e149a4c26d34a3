"""Render a saved run's report again from the rounds its JSON keeps, by the current rules.

``python benchmarks/rereport.py results/<run>.json`` recomputes every row (medians, ratios,
marks) with run.py's ``summarise`` and rewrites the run's .md, .json rows and charts. For
a change in how rounds are summarised (e.g. rounds outside the usual CPU placement left out
of the median); nothing is measured again. The JSON's ``meta.rereported`` says when.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import charts
import run


def rereport(path: Path) -> None:
    """Rewrite ``path`` (a run.py results JSON) and its .md from its rows' rounds.
    Raises ValueError if ``path`` is not a results file of run.py."""
    result = charts.load(path)
    meta = result["meta"]
    if "date" not in meta:
        raise ValueError(f"{path}: not a results file of benchmarks/run.py")
    names = meta.get("workloads") or {r["workload"]: "" for r in result["rows"]}
    workloads = [w for w in run.WORKLOADS if w.name in names]
    cells = {(r["workload"], r["server"]): run.Cell(r["workload"], r["server"], r["kind"],
                                                    r.get("rounds", []), r.get("error"))
             for r in result["rows"]}
    short = meta.get("baseline", {}).get("short")
    servers = {r["server"] for r in result["rows"]}
    twins = {s: f"{s}@{short}" for s in servers if short and f"{s}@{short}" in servers}
    rows = run.summarise(cells, workloads, twins)
    meta["rereported"] = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    run.save(path, meta, rows, result["mqtt"],
             run.report_text(rows, meta, workloads, result["mqtt"]))
    charts.write_run(path)


def main(argv: list[str] | None = None) -> int:
    return charts.for_each_run(argv, __doc__.splitlines()[0],
                               lambda path: rereport(path) or "report rewritten")


if __name__ == "__main__":
    raise SystemExit(main())
