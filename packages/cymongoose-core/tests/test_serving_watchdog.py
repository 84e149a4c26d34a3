"""`cymongoose.serving.watchdog`: what the servers check on their loop every tick."""

import pytest
from cymongoose.serving.config import ServerConfig
from cymongoose.serving.watchdog import (
    CONTINUE,
    RETIRING,
    STOP,
    Watchdog,
    max_requests_with_jitter,
)

pytestmark = pytest.mark.usefixtures("restore_loggers")


def test_no_limit_means_no_watchdog_of_its_own():
    assert Watchdog.for_config(ServerConfig()) is None
    assert max_requests_with_jitter(ServerConfig()) is None
    assert Watchdog.for_config(ServerConfig(limit_max_requests=7)).max_requests == 7


def test_jitter_adds_zero_to_j():
    config = ServerConfig(limit_max_requests=100, limit_max_requests_jitter=3)
    seen = {max_requests_with_jitter(config) for _ in range(400)}
    assert seen == {100, 101, 102, 103}


def test_stops_once_at_the_limit(caplog):
    dog = Watchdog(max_requests=3)
    assert [dog.tick(n) for n in (0, 2)] == [CONTINUE, CONTINUE]
    with caplog.at_level("INFO", logger="cymongoose.serving"):
        assert dog.tick(5) == STOP
    assert "Maximum request limit of 3 reached" in caplog.text
    assert dog.tick(9) == CONTINUE  # told once
    assert dog.retiring  # the stop leaves idle connections to end between requests


def test_retires_instead_of_stopping_when_someone_replaces_the_process():
    calls = []
    dog = Watchdog(max_requests=2, on_retire=lambda: calls.append("retire"),
                   on_ready=lambda: calls.append("ready"))
    dog.ready()
    assert dog.tick(2) == RETIRING and dog.tick(3) == CONTINUE
    assert calls == ["ready", "retire"]


def test_heartbeat_every_tick_and_keep_serving():
    beats = []
    alive = [True]
    dog = Watchdog(heartbeat=lambda: beats.append(1), keep_serving=lambda: alive[0])
    dog.ready()
    assert dog.tick(10**9) == CONTINUE  # no limit
    alive[0] = False
    assert dog.tick(0) == STOP and dog.tick(0) == CONTINUE
    assert len(beats) == 4  # ready() beats too: gunicorn times a worker out after one
    assert not dog.retiring  # a stop request, not max requests


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "5"])
def test_bad_limit(bad):
    with pytest.raises(ValueError, match="max_requests must be an int >= 1 or None"):
        Watchdog(max_requests=bad)
