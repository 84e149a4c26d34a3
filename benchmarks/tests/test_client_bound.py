"""run.py: rows whose load generator ran out of CPU are marked (the big workload's wrk)."""

import run
from saved_run import measured_round, run_meta


def _rows(rounds_by_server: dict[str, list[dict]]) -> list[dict]:
    big = next(w for w in run.WORKLOADS if w.name == "big")
    cells = {("big", name): run.Cell("big", name, "asgi", rounds)
             for name, rounds in rounds_by_server.items()}
    return run.summarise(cells, [big], {})


def test_a_row_with_its_client_near_full_cpu_is_marked():
    rows = _rows({
        "cymongoose-asgi": [measured_round(4600.0, client_cpu=c) for c in (0.97, 0.95, 0.5)],
        "uvicorn": [measured_round(3900.0, client_cpu=c) for c in (0.6, 0.7, 0.95)]})
    by = {r["server"]: r for r in rows}
    assert by["cymongoose-asgi"]["client_cpu"] == 0.95 and by["cymongoose-asgi"]["client_bound"]
    assert by["uvicorn"]["client_cpu"] == 0.7 and not by["uvicorn"]["client_bound"]
    text = run.markdown(rows, run_meta(), [w for w in run.WORKLOADS if w.name == "big"])
    assert "| cymongoose-asgi | 4600 § |" in text and "| uvicorn | 3900 |" in text
    assert "**§** marks a row whose load generator" in text


def test_a_run_saved_before_the_client_was_measured_has_no_mark():
    rows = _rows({"uvicorn": [measured_round(3900.0)] * 3})
    assert "client_cpu" not in rows[0] and "client_bound" not in rows[0]
    text = run.markdown(rows, run_meta(), [w for w in run.WORKLOADS if w.name == "big"])
    assert "| uvicorn | 3900 |" in text
