"""rereport.py: a saved run's report rendered again from its rounds by today's rules."""

import json

import pytest
import rereport
from saved_run import measured_round, run_meta


def test_a_saved_run_gets_medians_by_the_current_rule(tmp_path):
    pytest.importorskip("matplotlib")
    meta = run_meta(workloads={"hello": "GET / 13 bytes"},
                    baseline={"ref": "r", "commit": "c", "short": "abc", "subject": "s",
                              "versions": {}})
    rows = [  # as saved by the old rule: the round outside the placement counted
        {"workload": "hello", "server": "cymongoose-wsgi", "kind": "wsgi", "error": None,
         "rps": 200.0, "rounds": [measured_round(100.0, off=True), measured_round(200.0),
                                  measured_round(220.0)]},
        {"workload": "hello", "server": "cymongoose-wsgi@abc", "kind": "wsgi",
         "error": None, "rps": 200.0, "rounds": [measured_round(200.0)] * 3}]
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows, "mqtt": []}))
    assert rereport.main([str(path)]) == 0
    saved = json.loads(path.read_text())
    row = next(r for r in saved["rows"] if r["server"] == "cymongoose-wsgi")
    assert row["rps"] == 210.0 and row["vs_base"] == pytest.approx(1.05)
    assert saved["meta"]["rereported"]
    text = (tmp_path / "run.md").read_text()
    assert "| cymongoose-wsgi | 210 † |" in text and "![hello](run-hello.svg)" in text


def test_not_a_results_file(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text("[]")
    assert rereport.main([str(path)]) == 2
    assert "not a results file" in capsys.readouterr().err
