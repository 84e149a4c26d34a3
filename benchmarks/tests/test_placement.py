"""placement.py: the CPU placement probe, and measurements repeated until they are taken in
the run's usual placement."""

import os
import shutil
import subprocess

import placement
import pytest
from placement import Placement, matches


class Scripted(Placement):
    """The probe's answers given in advance (the retry rule, not the hypervisor)."""

    def __init__(self, answers):
        super().__init__(None, ("0", "1"))
        self.answers = list(answers)

    def probe(self):
        ns = self.answers.pop(0)
        self.seen.append(ns)
        return ns


def test_matches_within_tolerance_either_way():
    assert matches(360, 360) and matches(250, 360) and matches(530, 360)
    assert not matches(80, 360) and not matches(600, 360)


def test_measurement_in_usual_placement_is_taken_once():
    probe = Scripted([360] * placement.START_PROBES + [350, 370])
    probe.start(lambda seconds: None)
    runs = []
    result = probe.measure(lambda: runs.append(1) or {"rps": 1.0})
    assert runs == [1]
    assert result == {"rps": 1.0, "placement_ns": [350, 370], "tries": 1}


def test_measurement_is_repeated_until_both_probes_match():
    probe = Scripted([80, 360,  360, 90,  355, 365])  # moved before; moved during; settled
    probe.seen.extend([360] * 20)
    n = iter(range(1, 10))
    result = probe.measure(lambda: {"rps": float(next(n))})
    assert result == {"rps": 3.0, "placement_ns": [355, 365], "tries": 3}
    assert "placement_off" not in result


def test_last_try_outside_is_kept_and_marked():
    probe = Scripted([80, 80] * placement.TRIES)
    probe.seen.extend([360] * 20)
    result = probe.measure(lambda: {"rps": 5.0})
    assert result["tries"] == placement.TRIES and result["placement_off"] is True
    assert result["placement_ns"] == [80, 80]


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or not shutil.which("cc"),
                    reason="needs two CPUs and a C compiler")
def test_real_probe_between_two_cpus(tmp_path):
    probe = Placement.build(tmp_path, ("0", "1"))
    usual = probe.start(lambda s: None)
    assert 1 < usual < 100_000  # ns: a cache line's round trip, not a failure
    assert len(probe.seen) == placement.START_PROBES


def test_probe_on_a_missing_cpu_fails_cleanly(tmp_path):
    if not shutil.which("cc"):
        pytest.skip("needs a C compiler")
    probe = Placement.build(tmp_path, ("0", str(os.cpu_count() + 7)))
    with pytest.raises(subprocess.CalledProcessError) as info:
        probe.probe()
    assert "cannot run on CPU" in info.value.stderr
