"""compare.py on results files of run.py's shape, through its command line."""

import json
import subprocess
import sys

from conftest import BENCH

RESULTS = BENCH / "results"


def row(workload, server, rps, p99_us=2000.0, **extra):
    return {"workload": workload, "server": server, "kind": "asgi", "error": None,
            "rounds": [], "rps": rps, "p50_us": 500.0, "p99_us": p99_us, "errors": 0,
            "timeouts": 0, "rss": 1, **extra}


def write(path, rows, mqtt=None, **meta):
    path.write_text(json.dumps({"meta": {"date": "2026-12-05 10:00", "host": "h", "rounds": 3,
                                         "duration": 3, **meta},
                                "rows": rows, "mqtt": mqtt or []}))
    return path


def compare(*args):
    return subprocess.run([sys.executable, str(BENCH / "compare.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def test_rows_in_both_files_get_ratios_sorted_by_workload(tmp_path):
    a = write(tmp_path / "a.json", [
        row("hello", "cymongoose-asgi", 1000.0), row("hello", "uvicorn", 500.0),
        row("big", "cymongoose-asgi", 200.0, p99_us=4000.0),
        row("echo", "uvicorn", 10.0)], tree="aaaaaaa")
    b = write(tmp_path / "b.json", [
        row("big", "cymongoose-asgi", 300.0, p99_us=3000.0),
        row("hello", "uvicorn", 400.0), row("hello", "cymongoose-asgi", 1500.0),
        {"workload": "pipeline", "server": "bjoern", "kind": "wsgi", "error": "RuntimeError: x",
         "rounds": []}], tree="bbbbbbb")
    out = compare(a, b)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "tree aaaaaaa" in lines[0] and "tree bbbbbbb" in lines[1]
    table = [line.split() for line in lines if line.startswith(("big ", "hello "))]
    # sorted by workload; within one, in A's order; B/A for req/s and for p99
    assert table == [
        ["big", "cymongoose-asgi", "200", "300", "1.50x", "4.00", "3.00", "0.75x"],
        ["hello", "cymongoose-asgi", "1,000", "1,500", "1.50x", "2.00", "2.00", "1.00x"],
        ["hello", "uvicorn", "500", "400", "0.80x", "2.00", "2.00", "1.00x"],
    ]
    text = out.stdout
    assert text.index("only in A:") < text.index("echo") < text.index("only in B:")
    assert "pipeline" in text.split("only in B:")[1] and "ERROR" in text.split("only in B:")[1]


def test_error_rows_and_mqtt_rows(tmp_path):
    mqtt = [{"server": "cymongoose-asgi", "consumer": "raw", "error": "", "msgs_per_s": 100.0,
             "flood_p50_us": 1.0, "p50_us": 1.0, "p99_us": 1000.0, "lost": 0, "errors": 0}]
    a = write(tmp_path / "a.json", [row("hello", "bjoern", 100.0, errors=3)], mqtt)
    b = write(tmp_path / "b.json", [{"workload": "hello", "server": "bjoern", "kind": "wsgi",
                                     "error": "server: exited", "rounds": []}],
              [{**mqtt[0], "msgs_per_s": 250.0}])
    out = compare(a, b)
    assert out.returncode == 0, out.stderr
    hello = next(line for line in out.stdout.splitlines() if line.startswith("hello"))
    assert hello.split()[:5] == ["hello", "bjoern", "100", "!", "ERROR"]
    mq = next(line for line in out.stdout.splitlines() if line.startswith("mqtt"))
    assert "cymongoose-asgi (raw)" in mq and "2.50x" in mq


def test_committed_results_files():
    """Every shape of file in benchmarks/results/ (oldest has no tree, no mqtt)."""
    files = sorted(RESULTS.glob("*.json"))
    assert len(files) >= 2
    out = compare(files[0], files[-1])
    assert out.returncode == 0, out.stderr
    a = json.loads(files[0].read_text())["rows"]
    b = {(r["workload"], r["server"]): r for r in json.loads(files[-1].read_text())["rows"]}
    shared = [(r["workload"], r["server"]) for r in a if (r["workload"], r["server"]) in b]
    lines = out.stdout.splitlines()
    for workload, server in shared:
        assert any(line.split()[:2] == [workload, server] for line in lines), (workload, server)


def test_not_a_results_file(tmp_path):
    bad = tmp_path / "run.md"
    bad.write_text("# not json\n")
    out = compare(bad, bad)
    assert out.returncode == 2
    assert "run.md" in out.stderr and "JSON" in out.stderr
    other = tmp_path / "other.json"
    other.write_text('{"rows": 3}')
    out = compare(other, other)
    assert out.returncode == 2 and "'rows' list" in out.stderr
