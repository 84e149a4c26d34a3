"""Charts of a saved bench run: one per workload, req/s per server with its p99 latency.

    python benchmarks/charts.py benchmarks/results/2026-12-05-0429-vm.json

For RESULT.json (what run.py saves) this writes ``<stem>-<workload>.svg`` and ``.png`` next
to it, ``<stem>`` being the file's name without ``.json``, and puts a "Charts" section
that shows the SVGs into ``<stem>.md`` (if there is one) above its tables; running it again
replaces the charts and that section. run.py calls it after saving a run.

Each chart: a horizontal bar per server, its median req/s over the rounds, with whiskers
from the lowest to the highest round (runs of 2+ rounds), the value written at its end;
a diamond for its p99 latency on the top axis (ms). Blue: cymongoose; light blue: a
``--baseline`` twin; grey: plain C mongoose; orange: the other servers. A row without a
result shows ERROR. The MQTT rows (msgs/s) get a chart of their own.

Only this module's drawing needs matplotlib (imported when drawing), so the docs build can
import ``latest_run`` and ``chart_paths`` without it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BEGIN, END = "<!-- charts: written by benchmarks/charts.py -->", "<!-- /charts -->"
COLORS = {"ours": "#1f6fb4", "baseline": "#9cc3e6", "c": "#8c8c8c", "peer": "#f28e2b"}
LABELS = {"ours": "cymongoose", "baseline": "cymongoose at --baseline", "c": "plain C mongoose",
          "peer": "other servers"}
P99_COLOR = "#b3001b"
# A full run (the docs show the newest): 3+ rounds of at least these workloads.
FULL_RUN_WORKLOADS = {"hello", "big", "echo", "c1000"}


@dataclass
class Bar:
    """One server's result in one workload's chart. ``rps`` None: no result (``error``)."""

    label: str
    group: str  # a key of COLORS
    rps: float | None
    low: float | None = None  # lowest and highest round (None: fewer than 2 rounds)
    high: float | None = None
    p99_ms: float | None = None
    note: str = ""  # " !" for errors/timeouts, or the error text


def load(path: Path) -> dict:
    """A result file as ``{"meta": ..., "rows": [...], "mqtt": [...]}``; raises ValueError
    (naming ``path``) for a file of another shape."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON results file: {exc}") from None
    if isinstance(data, list):  # rows only
        data = {"meta": {}, "rows": data}
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'rows' list (run.py's result)")
    data.setdefault("meta", {})
    data["mqtt"] = data.get("mqtt") or []
    return data


def group_of(server: str) -> str:
    if server.startswith("cymongoose"):
        return "baseline" if "@" in server else "ours"
    return "c" if server == "mongoose-c" else "peer"


def bars_by_workload(result: dict) -> dict[str, list[Bar]]:
    """``{workload: [Bar, ...]}`` in the order of the result's rows; MQTT rows as ``mqtt``."""
    out: dict[str, list[Bar]] = {}
    for row in result["rows"]:
        rps = row.get("rps")
        rounds = [r["rps"] for r in row.get("rounds") or [] if "rps" in r]
        bar = Bar(row["server"], group_of(row["server"]), rps)
        if rps is None:
            bar.note = str(row.get("error") or "no result")
        else:
            if len(rounds) > 1:
                bar.low, bar.high = min(rounds), max(rounds)
            if row.get("p99_us"):
                bar.p99_ms = row["p99_us"] / 1000
            if row.get("errors") or row.get("timeouts") or row.get("error"):
                bar.note = " !"
        out.setdefault(row["workload"], []).append(bar)
    for row in result["mqtt"]:
        rate = row.get("msgs_per_s")
        bar = Bar(f"{row['server']} ({row['consumer']})", group_of(row["server"]), rate)
        if rate is None:
            bar.note = str(row.get("error") or "no result")
        else:
            bar.p99_ms = row["p99_us"] / 1000 if row.get("p99_us") else None
            if row.get("lost") or row.get("errors") or row.get("error"):
                bar.note = " !"
        out.setdefault("mqtt", []).append(bar)
    return out


def titles(result: dict, markdown: str = "") -> dict[str, str]:
    """Workload descriptions: from the run's meta (run.py since issue 21), else from the
    ``## name: description`` headings of its .md."""
    found = dict(re.findall(r"^## ([\w-]+): (.+)$", markdown, flags=re.M))
    found.update(result["meta"].get("workloads") or {})
    found.setdefault("mqtt", "ASGI over MQTT through mosquitto, QoS 1 echo")
    return found


def chart_paths(json_path: Path, workload: str) -> tuple[Path, Path]:
    """The SVG and PNG of ``workload``'s chart for the run saved as ``json_path``."""
    stem = json_path.with_suffix("")
    return (stem.parent / f"{stem.name}-{workload}.svg",
            stem.parent / f"{stem.name}-{workload}.png")


def draw(bars: list[Bar], title: str, caption: str, unit: str, svg: Path, png: Path,
         latency: str = "p99 latency, ms") -> None:
    """One chart as ``svg`` and ``png`` (matplotlib, Agg). ``unit``: the bars' quantity;
    ``latency``: the top axis's label."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rc = {"svg.fonttype": "none", "svg.hashsalt": "cymongoose-bench", "font.size": 9}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(9, 1.5 + 0.3 * len(bars)), layout="constrained")
        ax = fig.add_subplot()
        ys = range(len(bars))
        values = [b.rps or 0 for b in bars]
        ax.barh(ys, values, color=[COLORS[b.group] for b in bars], height=0.7)
        for y, b in zip(ys, bars, strict=True):
            if b.low is not None:
                ax.errorbar(b.rps, y, xerr=[[b.rps - b.low], [b.high - b.rps]], fmt="none",
                            ecolor="#333333", elinewidth=1, capsize=3)
        top = max([*values, *(b.high or 0 for b in bars)]) or 1
        for y, b in zip(ys, bars, strict=True):
            if b.rps is None:
                error = " ".join(b.note.split())  # tracebacks span lines
                ax.text(top * 0.01, y, f"ERROR {error}"[:80], va="center", color=P99_COLOR,
                        fontsize=8, in_layout=False)  # may run past the axes, not squeeze them
            else:
                ax.text((b.high or b.rps) + top * 0.01, y, f"{b.rps:,.0f}{b.note}",
                        va="center", fontsize=8)
        ax.set_yticks(list(ys), [b.label for b in bars])
        ax.invert_yaxis()  # the first row at the top, as in the table
        ax.set_xlim(0, top * 1.18)
        ax.set_xlabel(f"{unit} (bars: median over rounds; whiskers: lowest to highest round)")
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        p99 = [(y, b.p99_ms) for y, b in zip(ys, bars, strict=True) if b.p99_ms]
        handles = [Patch(color=COLORS[g], label=LABELS[g])
                   for g in COLORS if any(b.group == g for b in bars)]
        if p99:
            lat = ax.twiny()
            lat.scatter([ms for _, ms in p99], [y for y, _ in p99], marker="D", s=18,
                        color=P99_COLOR, zorder=3, label="p99 latency (top axis)")
            lat.set_xlim(0, max(ms for _, ms in p99) * 1.15)
            lat.set_xlabel(latency, color=P99_COLOR)
            lat.tick_params(axis="x", colors=P99_COLOR)
            handles.append(lat.collections[0])
        fig.legend(handles=handles, loc="outside right upper",
                   fontsize=7, frameon=False)
        fig.suptitle(title, x=0.01, ha="left", fontsize=10, fontweight="bold")
        fig.supxlabel(caption, fontsize=7, color="#555555")
        fig.savefig(svg, format="svg", metadata={"Date": None})
        fig.savefig(png, format="png", dpi=100)


def caption_of(meta: dict) -> str:
    parts = [f"{meta.get('host', '?')} {meta.get('date', '')}",
             f"{meta.get('cpus', '?')} CPUs ({meta.get('cpu_model', '?')})",
             f"{meta.get('rounds', '?')} round(s) of {meta.get('duration', '?')} s"]
    if meta.get("tree"):
        parts.append(f"tree {meta['tree']}")
    return "; ".join(parts) + ". Compare ratios within one run only."


def markdown_section(json_path: Path, workloads: list[str]) -> str:
    """The .md's "Charts" section: one SVG per workload, linked relative to the .md."""
    lines = [BEGIN, "## Charts", "",
             "One chart per workload: req/s per server (bars: median over the rounds; "
             "whiskers: the lowest and highest round) and its p99 latency (red diamonds, top "
             "axis). Blue: cymongoose; grey: plain C mongoose; orange: the other servers. "
             "PNG copies sit next to the SVGs (same names, `.png`).", ""]
    for w in workloads:
        lines += [f"![{w}]({chart_paths(json_path, w)[0].name})", ""]
    return "\n".join([*lines, END])


def with_section(markdown: str, section: str) -> str:
    """``markdown`` with ``section`` in place of an earlier one, or before its first
    ``## `` heading (after the run's header: machine, method, versions)."""
    if BEGIN in markdown and END in markdown:
        head, _, rest = markdown.partition(BEGIN)
        return head + section + rest.partition(END)[2]
    match = re.search(r"^## ", markdown, flags=re.M)
    at = match.start() if match else len(markdown)
    return markdown[:at] + section + "\n\n" + markdown[at:]


def write_run(json_path: Path) -> list[Path]:
    """Charts of the run saved as ``json_path``, and its .md's Charts section; returns the
    files written. Raises ValueError for a file that is not a run, ImportError without
    matplotlib."""
    json_path = Path(json_path)
    result = load(json_path)
    md = json_path.with_suffix(".md")
    markdown = md.read_text() if md.exists() else ""
    names = titles(result, markdown)
    caption = caption_of(result["meta"])
    written = []
    charts = bars_by_workload(result)
    for workload, bars in charts.items():
        svg, png = chart_paths(json_path, workload)
        title = f"{workload}: {names.get(workload, '')}".rstrip(": ")
        if workload == "mqtt":  # msgs/s at full load; the latency at a fixed rate
            from mqtt_bench import RATE

            draw(bars, title, caption, "msgs/s", svg, png,
                 f"p99 round trip at {RATE:,} msgs/s, ms")
        else:
            draw(bars, title, caption, "requests/s", svg, png)
        written += [svg, png]
    if markdown and charts:
        md.write_text(with_section(markdown, markdown_section(json_path, list(charts))))
        written.append(md)
    return written


def latest_run(results: Path) -> Path | None:
    """The newest full run's JSON in ``results`` (3+ rounds of at least FULL_RUN_WORKLOADS,
    not interrupted; newest by its recorded date), else the newest run; None if none."""
    runs = []
    for path in sorted(Path(results).glob("*.json")):
        try:
            result = load(path)
        except ValueError:
            continue
        meta = result["meta"]
        workloads = {r.get("workload") for r in result["rows"]}
        full = (meta.get("rounds", 0) >= 3 and not meta.get("interrupted")
                and FULL_RUN_WORKLOADS <= workloads)
        runs.append((full, meta.get("date", ""), path.name, path))
    return max(runs)[3] if runs else None


def for_each_run(argv: list[str] | None, description: str,
                 action: Callable[[Path], str]) -> int:
    """The command line of a tool that works on saved runs (charts.py, rereport.py):
    ``action(path)`` for each results JSON named, printing what it says; exit status 2 at
    the first file that is not a run (``action`` raised ValueError), else 0."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("results", nargs="+", type=Path, help="results JSON file(s) of run.py")
    args = parser.parse_args(argv)
    for path in args.results:
        try:
            said = action(path)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(f"{path}: {said}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return for_each_run(argv, __doc__.splitlines()[0],
                        lambda path: f"wrote {len(write_run(path))} files")


if __name__ == "__main__":
    raise SystemExit(main())
