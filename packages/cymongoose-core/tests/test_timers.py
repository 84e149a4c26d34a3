"""Timers: one-shot, repeat, cancel (same thread, other thread, after firing)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest
from cymongoose import Manager


def pump(mgr, seconds, until=None):
    """Poll for ``seconds``, or until ``until()`` (then True; ``seconds`` is a safety bound)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        mgr.poll(5)
        if until is not None and until():
            return True
    return False


@pytest.fixture
def errors():
    return []


@pytest.fixture
def mgr(errors):
    m = Manager(error_handler=errors.append)
    yield m
    m.close()


def test_one_shot_fires_once(mgr):
    calls = []
    t = mgr.timer_add(20, lambda: calls.append(time.monotonic()))
    assert t.active
    start = time.monotonic()
    assert pump(mgr, 30, until=lambda: calls)
    assert calls[0] - start >= 0.015
    pump(mgr, 0.15)
    assert len(calls) == 1
    assert not t.active


def test_one_shot_run_now(mgr):
    calls = []
    mgr.timer_add(10_000, lambda: calls.append(1), run_now=True)
    mgr.poll(0)
    assert calls == [1]
    pump(mgr, 0.05)
    assert calls == [1]


def test_repeat_fires_repeatedly_and_cancel_stops(mgr):
    calls = []
    t = mgr.timer_add(10, lambda: calls.append(1), repeat=True)
    assert pump(mgr, 30, until=lambda: len(calls) >= 5)
    t.cancel()
    assert not t.active
    n = len(calls)
    pump(mgr, 0.1)
    assert len(calls) == n


def test_repeat_cancel_inside_own_callback(mgr):
    calls = []

    def cb():
        calls.append(1)
        if len(calls) == 3:
            t.cancel()

    t = mgr.timer_add(5, cb, repeat=True)
    assert pump(mgr, 30, until=lambda: len(calls) >= 3)
    pump(mgr, 0.1)
    assert len(calls) == 3


def test_cancel_before_fire(mgr):
    calls = []
    t = mgr.timer_add(30, lambda: calls.append(1))
    mgr.poll(0)
    t.cancel()
    pump(mgr, 0.15)
    assert calls == []


def test_cancel_after_fire_is_noop(mgr):
    calls = []
    t = mgr.timer_add(0, lambda: calls.append(1))
    assert pump(mgr, 30, until=lambda: calls)
    t.cancel()
    t.cancel()
    pump(mgr, 0.05)
    assert calls == [1]
    assert not t.active
    # The manager's timer list is intact: a new timer still fires.
    mgr.timer_add(0, lambda: calls.append(2))
    assert pump(mgr, 30, until=lambda: len(calls) == 2)


def test_cancel_one_shot_due_in_same_poll():
    # Regression: a one-shot timer cancelled by another callback in the poll that
    # fires it used to be freed twice (mongoose auto-deletes it). Run in a child so
    # that a crash is a test failure rather than a dead test run.
    code = textwrap.dedent(
        """
        import cymongoose as cm
        m = cm.Manager()
        fired = []
        b = m.timer_add(0, lambda: fired.append("b"))
        a = m.timer_add(0, lambda: (fired.append("a"), b.cancel()))
        for _ in range(3):
            m.poll(0)
        for _ in range(5):
            m.timer_add(0, lambda: fired.append("n"))
        for _ in range(3):
            m.poll(0)
        b.cancel()
        m.close()
        print(fired)
        """
    )
    r = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(["a"] + ["n"] * 5)


def test_cancel_from_other_thread():
    calls = []
    m = Manager(enable_wakeup=True)
    t = m.timer_add(2, lambda: calls.append(1), repeat=True)
    stop = threading.Event()
    polls = [0]

    def loop():
        while not stop.is_set():
            m.poll(10)
            polls[0] += 1

    def after_polls(n: int) -> None:  # the poll thread has finished n more poll() calls
        target = polls[0] + n
        deadline = time.monotonic() + 30
        while polls[0] < target:
            assert time.monotonic() < deadline, "the poll thread made no progress"
            time.sleep(0.005)

    th = threading.Thread(target=loop)
    th.start()
    try:
        deadline = time.monotonic() + 30
        while len(calls) < 5 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(calls) >= 5
        t.cancel()
        assert not t.active
        # A callback already running on the poll thread may still finish; none start later.
        after_polls(2)
        n = len(calls)
        after_polls(10)
        assert len(calls) == n
    finally:
        stop.set()
        th.join()
        m.close()


def test_timer_exception_goes_to_error_handler(mgr, errors):
    calls = []

    def cb():
        calls.append(1)
        raise ValueError("timer boom")

    t = mgr.timer_add(5, cb, repeat=True)
    assert pump(mgr, 30, until=lambda: len(calls) >= 3)
    t.cancel()
    assert len(errors) == len(calls)
    assert all(isinstance(e, ValueError) for e in errors)


def test_default_error_handler_prints_traceback(capfd):
    with Manager() as m:
        m.timer_add(0, lambda: 1 / 0)
        for _ in range(3):
            m.poll(0)
    err = capfd.readouterr().err
    assert "Traceback" in err
    assert "ZeroDivisionError" in err


def test_timer_add_rejects_non_callable(mgr):
    with pytest.raises(TypeError):
        mgr.timer_add(10, "not callable")


def test_cancel_after_manager_close():
    m = Manager()
    t1 = m.timer_add(1000, lambda: None)
    t2 = m.timer_add(1000, lambda: None, repeat=True)
    m.close()
    t1.cancel()
    t2.cancel()
    assert not t1.active and not t2.active
