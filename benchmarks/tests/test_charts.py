"""charts.py: one SVG and PNG per workload next to the run, a Charts section in its .md."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import charts
import pytest
from conftest import BENCH

pytest.importorskip("matplotlib")  # the bench session installs it

MD = """# cymongoose benchmark 2026-12-05 10:00 on h

2 CPUs (X), Python 3.11; 3 round(s) of 3 s after 1.0 s warm-up, median shown.

## hello: 13-byte plain text, 50 connections

| server | req/s |
|---|---:|
| cymongoose-asgi | 1500 |

## pipeline: 13-byte plain text, 16 requests pipelined per write, 50 connections

| server | req/s |
"""


def rounds(*rps):
    return [{"rps": r, "p50_us": 1.0, "p99_us": 2.0, "errors": 0, "timeouts": 0, "rss": 1}
            for r in rps]


def run_file(tmp_path, name="2026-12-05-1000-h"):
    rows = [
        {"workload": "hello", "server": "cymongoose-asgi", "kind": "asgi", "error": None,
         "rounds": rounds(1400.0, 1500.0, 1600.0), "rps": 1500.0, "p50_us": 600.0,
         "p99_us": 2500.0, "errors": 0, "timeouts": 0, "rss": 1},
        {"workload": "hello", "server": "uvicorn", "kind": "asgi", "error": None,
         "rounds": rounds(700.0, 800.0, 750.0), "rps": 750.0, "p50_us": 900.0,
         "p99_us": 4000.0, "errors": 2, "timeouts": 0, "rss": 1},
        {"workload": "pipeline", "server": "bjoern", "kind": "wsgi",
         "error": "RuntimeError: pipelined response 1/16: status 200", "rounds": []},
        {"workload": "pipeline", "server": "cymongoose-wsgi-inline", "kind": "wsgi",
         "error": None, "rounds": rounds(9000.0), "rps": 9000.0, "p50_us": 1.0,
         "p99_us": 3000.0, "errors": 0, "timeouts": 0, "rss": 1}]
    mqtt = [{"server": "mqttasgi", "consumer": "raw", "error": "", "msgs_per_s": 2000.0,
             "flood_p50_us": 1.0, "p50_us": 1.0, "p99_us": 9000.0, "lost": 0, "errors": 0}]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"meta": {"date": "2026-12-05 10:00", "host": "h", "cpus": 2,
                                         "cpu_model": "X", "rounds": 3, "duration": 3},
                                "rows": rows, "mqtt": mqtt}))
    (tmp_path / f"{name}.md").write_text(MD)
    return path


def svg_text(path):
    """Every text string of an SVG (charts.py keeps text as text, not glyph paths)."""
    return " ".join(el.text for el in ET.parse(path).iter()
                    if el.tag.endswith("}text") and el.text)


def test_one_chart_per_workload_as_svg_and_png(tmp_path):
    path = run_file(tmp_path)
    out = subprocess.run([sys.executable, str(BENCH / "charts.py"), str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    stem = "2026-12-05-1000-h"
    for workload in ("hello", "pipeline", "mqtt"):
        svg, png = tmp_path / f"{stem}-{workload}.svg", tmp_path / f"{stem}-{workload}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        text = svg_text(svg)
        assert f"{workload}:" in text, text[:200]
        assert "p99 latency" in text or "p99 round trip" in text
    hello = svg_text(tmp_path / f"{stem}-hello.svg")
    # the title from the .md heading, each server, its req/s; "!" for uvicorn's errors
    assert "13-byte plain text, 50 connections" in hello
    assert "cymongoose-asgi" in hello and "1,500" in hello and "750 !" in hello
    pipeline = svg_text(tmp_path / f"{stem}-pipeline.svg")
    assert "ERROR RuntimeError: pipelined response 1/16" in pipeline and "9,000" in pipeline
    assert "mqttasgi (raw)" in svg_text(tmp_path / f"{stem}-mqtt.svg")


def test_markdown_gets_one_charts_section_above_the_tables(tmp_path):
    path = run_file(tmp_path)
    charts.write_run(path)
    md = path.with_suffix(".md").read_text()
    first = md.index("![hello](2026-12-05-1000-h-hello.svg)")
    assert md.index("3 round(s) of 3 s") < md.index("## Charts") < first
    assert first < md.index("![pipeline](") < md.index("![mqtt](") < md.index("## hello:")
    charts.write_run(path)  # again: the section is replaced, not added twice
    assert path.with_suffix(".md").read_text() == md


def test_latest_run_is_the_newest_full_run(tmp_path):
    def result(name, date, rounds, workloads):
        rows = [{"workload": w, "server": "s"} for w in workloads]
        (tmp_path / name).write_text(json.dumps({"meta": {"date": date, "rounds": rounds},
                                                 "rows": rows}))
    full = ["hello", "big", "echo", "c1000", "ws1"]
    result("2026-12-05-0429-vm.json", "2026-12-05 04:29", 3, full)
    result("2026-12-04-vm.json", "2026-12-04 23:39", 3, full)
    # sorts after the 04:29 run by name, but is older and covers one workload only
    result("2026-12-05-vm.json", "2026-12-05 02:13", 3, ["https"])
    result("2026-12-05-0600-vm.json", "2026-12-05 06:00", 1, full)  # a quick run
    assert charts.latest_run(tmp_path).name == "2026-12-05-0429-vm.json"
    for p in tmp_path.glob("2026-12-0[45]-*"):
        if p.name != "2026-12-05-vm.json":
            p.unlink()
    assert charts.latest_run(tmp_path).name == "2026-12-05-vm.json"  # no full run: newest


def test_not_a_run(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2")
    out = subprocess.run([sys.executable, str(BENCH / "charts.py"), str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "x.json" in out.stderr
