"""Compare two saved bench runs row by row: req/s and p99 latency of A and B, and B/A.

    python benchmarks/compare.py benchmarks/results/A.json benchmarks/results/B.json

Prints one line per (workload, server) present in both files, sorted by workload (then
in A's server order): A's and B's req/s (msgs/s for the MQTT rows, named ``mqtt`` with the
consumer after the server), their ratio B/A (above 1: B is faster), then A's and B's p99
latency in ms and their ratio B/A (below 1: B answers faster). A row without a result
shows ERROR; ``!`` marks errors or timeouts during its measurement. Rows found in only one
file are listed after the table. Ratios between runs on different machines or days mean
little (see benchmarks/README.md); compare within one machine and keep the load alike.
Exit status 2 if a file is not a results file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load_rows(path: Path) -> tuple[dict, dict[tuple[str, str], dict]]:
    """``(meta, {(workload, server): row})`` from a results JSON file of run.py (any version:
    ``{"meta", "rows", "mqtt"?}`` or a bare list of rows). MQTT rows become workload
    ``mqtt``, server ``<server> (<consumer>)``, with ``rps`` = msgs/s.
    Raises ValueError naming ``path`` for anything else."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON results file: {exc}") from None
    if isinstance(data, list):
        data = {"rows": data}
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'rows' list (run.py's result)")
    rows: dict[tuple[str, str], dict] = {}
    for row in data["rows"]:
        try:
            rows[row["workload"], row["server"]] = row
        except (TypeError, KeyError):
            raise ValueError(f"{path}: a row without 'workload' and 'server': {row!r:.80}")\
                from None
    for row in data.get("mqtt") or []:
        mqtt = {"rps": row.get("msgs_per_s"), "p99_us": row.get("p99_us"),
                "errors": (row.get("lost") or 0) + (row.get("errors") or 0),
                "error": row.get("error")}
        rows["mqtt", f"{row.get('server')} ({row.get('consumer')})"] = mqtt
    return data.get("meta") or {}, rows


def _rate(row: dict) -> str:
    if row.get("rps") is None:
        return "ERROR"
    bad = row.get("errors") or row.get("timeouts") or row.get("error")
    return f"{row['rps']:,.0f}" + (" !" if bad else "")


def _ms(row: dict) -> str:
    return f"{row['p99_us'] / 1000:.2f}" if row.get("p99_us") else "-"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{b / a:.2f}x" if a and b is not None else "-"


def describe(label: str, path: Path, meta: dict) -> str:
    extra = [f"{meta[k]}" for k in ("date", "host") if meta.get(k)]
    if meta.get("rounds"):
        extra.append(f"{meta['rounds']} round(s) of {meta.get('duration', '?')} s")
    if meta.get("tree"):
        extra.append(f"tree {meta['tree']}")
    return f"{label}: {path}" + (f" ({', '.join(extra)})" if extra else "")


def compare(a_path: Path, b_path: Path) -> list[str]:
    """The report's lines for files ``a_path`` and ``b_path``; raises ValueError."""
    a_meta, a_rows = load_rows(a_path)
    b_meta, b_rows = load_rows(b_path)
    order = {key: i for i, key in enumerate(a_rows)}
    both = sorted((k for k in a_rows if k in b_rows), key=lambda k: (k[0], order[k]))
    table = [("workload", "server", "A req/s", "B req/s", "B/A", "A p99 ms", "B p99 ms",
              "B/A p99")]
    for key in both:
        a, b = a_rows[key], b_rows[key]
        table.append((*key, _rate(a), _rate(b), _ratio(a.get("rps"), b.get("rps")),
                      _ms(a), _ms(b), _ratio(a.get("p99_us"), b.get("p99_us"))))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [describe("A", a_path, a_meta), describe("B", b_path, b_meta), ""]
    for n, r in enumerate(table):
        cells = [c.ljust(w) if i < 2 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if len(table) == 1:
        lines.append("(no (workload, server) row in both files)")
    for label, rows, other in (("A", a_rows, b_rows), ("B", b_rows, a_rows)):
        only = sorted((k for k in rows if k not in other), key=lambda k: k[0])
        if only:
            ww, sw = (max(len(k[i]) for k in only) for i in (0, 1))
            lines += ["", f"only in {label}:"]
            lines += [f"  {w:{ww}}  {s:{sw}}  {_rate(rows[w, s])}" for w, s in only]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="results JSON of the first run (A)")
    parser.add_argument("b", type=Path, help="results JSON of the second run (B)")
    args = parser.parse_args(argv)
    try:
        lines = compare(args.a, args.b)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
