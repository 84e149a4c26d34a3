"""`cymongoose.serving.gunicorn`: gunicorn settings -> ServerConfig (no gunicorn needed)."""

import logging
import os
import socket
import sys
from types import SimpleNamespace

import pytest
from cymongoose.serving.config import default_threads
from cymongoose.serving.gunicorn import config_from_gunicorn, worker_watchdog
from cymongoose.serving.watchdog import CONTINUE, STOP

pytestmark = pytest.mark.usefixtures("restore_loggers")  # the code under test sets them up


class Log:
    def __init__(self):
        self.lines = []
        self.error_log = logging.getLogger("test.gunicorn.error")
        self.access_log = logging.getLogger("test.gunicorn.access")

    def info(self, msg, *args):
        self.lines.append(msg % args)

    warning = info


def gunicorn_cfg(**overrides):
    values = dict(keepalive=2, graceful_timeout=30, limit_request_fields=100,
                  limit_request_field_size=8190, worker_connections=1000, threads=1,
                  max_requests=0, is_ssl=False, certfile=None, keyfile=None, ca_certs=None,
                  forwarded_allow_ips=["127.0.0.1", "::1"], accesslog=None)
    values.update(overrides)
    return SimpleNamespace(**values)


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def test_defaults_map_onto_the_socket(listener):
    config = config_from_gunicorn(gunicorn_cfg(), [listener], Log())
    assert config.fd == listener.fileno() and not listener.getblocking()
    assert (config.host, config.port) == listener.getsockname()
    assert config.keep_alive_timeout_s == 2.0 and config.graceful_timeout_s == 30.0
    assert config.max_header_count == 100 and config.max_connections == 1000
    assert config.forwarded_allow_ips == ["127.0.0.1", "::1"]
    assert config.access_log is False and config.workers == 1 and config.ssl_certfile is None


def test_settings_are_mapped(listener):
    cfg = gunicorn_cfg(keepalive=7, graceful_timeout=3, limit_request_fields=500,
                       limit_request_field_size=200_000, worker_connections=50, threads=6,
                       is_ssl=True, certfile="c.pem", keyfile="k.pem", ca_certs="ca.pem",
                       forwarded_allow_ips="*", accesslog="-")
    config = config_from_gunicorn(cfg, [listener], Log(), app_threads=True)
    assert config.keep_alive_timeout_s == 7.0 and config.graceful_timeout_s == 3.0
    assert config.max_header_count == 100  # mongoose's ceiling
    assert config.max_header_bytes == 200_000 and config.max_connections == 50
    assert config.threads == 6
    assert (config.ssl_certfile, config.ssl_keyfile, config.ssl_ca_certs) == (
        "c.pem", "k.pem", "ca.pem")
    # gunicorn's cert_reqs default (0) is kept: gunicorn asks no client certificate
    assert (config.ssl_cert_reqs, config.ssl_ciphers, config.ssl_version) == (0, None, None)
    assert config.forwarded_allow_ips == ["*"] and config.access_log is True
    assert not logging.getLogger("cymongoose.access").disabled


def test_tls_options_are_mapped(listener):
    cfg = gunicorn_cfg(is_ssl=True, certfile="c.pem", keyfile="k.pem", ca_certs="ca.pem",
                       cert_reqs=2, ciphers="ECDHE+AESGCM", ssl_version=17)
    config = config_from_gunicorn(cfg, [listener], Log())
    assert (config.ssl_cert_reqs, config.ssl_ciphers, config.ssl_version) == (
        2, "ECDHE+AESGCM", "TLSv1.2")


def test_gunicorn_threads_default_means_our_pool_with_app_threads(listener):
    log = Log()
    config = config_from_gunicorn(gunicorn_cfg(), [listener], log, app_threads=True)
    assert config.threads == default_threads()
    assert any("threads=1" in line for line in log.lines)
    # A server without app threads (ASGI) is told what gunicorn said, and nothing is logged.
    log = Log()
    assert config_from_gunicorn(gunicorn_cfg(), [listener], log).threads == 1
    assert not any("threads=1" in line for line in log.lines)


def test_unsupported_settings_are_logged(listener):
    log = Log()
    config = config_from_gunicorn(gunicorn_cfg(keepalive=0), [listener], log)
    assert config.keep_alive_timeout_s > 0
    assert any("keepalive=0" in line for line in log.lines)


def test_a_unix_socket_is_served_through_its_descriptor(tmp_path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "g.sock"))
    sock.listen()
    with sock:
        log = Log()
        config = config_from_gunicorn(gunicorn_cfg(), [sock], log)
        assert config.fd == sock.fileno() and log.lines == []


class Worker:
    """The parts of a gunicorn Worker that worker_watchdog reads."""

    def __init__(self, max_requests, cfg_max_requests):
        self.cfg = gunicorn_cfg(max_requests=cfg_max_requests)
        self.max_requests = max_requests  # gunicorn's, jitter added
        self.ppid = os.getppid()
        self.alive = True
        self.log = Log()
        self.beats = 0

    def notify(self):
        self.beats += 1


def test_worker_watchdog_beats_and_stops_when_not_alive():
    worker = Worker(sys.maxsize, 0)
    dog = worker_watchdog(worker)
    assert dog.max_requests is None  # --max-requests not set
    dog.ready()
    assert dog.tick(10**6) == CONTINUE and worker.beats == 2
    worker.alive = False  # gunicorn's reloader saw a change
    assert dog.tick(0) == STOP
    assert any("no longer alive" in line for line in worker.log.lines)


def test_worker_watchdog_takes_gunicorns_max_requests_with_jitter():
    dog = worker_watchdog(Worker(1037, 1000))
    assert dog.max_requests == 1037
    assert dog.tick(1036) == CONTINUE and dog.tick(1037) == STOP


def test_extra_sockets_are_ignored_with_a_warning(listener):
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen()
    try:
        log = Log()
        config = config_from_gunicorn(gunicorn_cfg(), [listener, other], log)
        assert config.fd == listener.fileno()
        assert any("one socket" in line for line in log.lines)
    finally:
        other.close()


def test_logging_goes_to_gunicorns_handlers(listener):
    log = Log()
    handler = logging.NullHandler()
    log.error_log.handlers[:] = [handler]
    log.error_log.setLevel(logging.DEBUG)
    config_from_gunicorn(gunicorn_cfg(), [listener], log)
    ours = logging.getLogger("cymongoose")
    assert ours.handlers == [handler] and ours.level == logging.DEBUG
    assert logging.getLogger("cymongoose.access").disabled  # no --access-logfile


def test_no_socket_is_an_error():
    with pytest.raises(RuntimeError, match="no listening socket"):
        config_from_gunicorn(gunicorn_cfg(), [], Log())


def test_gunicorn_threads_zero_is_inline_mode(listener):
    log = Log()
    config = config_from_gunicorn(gunicorn_cfg(threads=0), [listener], log, app_threads=True)
    assert config.threads == 0


def test_access_log_format_is_gunicorns_when_the_access_log_is_on(listener):
    fmt = '%(h)s "%(r)s" %(s)s %(b)s %(D)s'
    config = config_from_gunicorn(gunicorn_cfg(accesslog="-", access_log_format=fmt),
                                  [listener], Log())
    assert config.access_log_format == fmt
    config = config_from_gunicorn(gunicorn_cfg(access_log_format=fmt), [listener], Log())
    assert config.access_log is False and config.access_log_format is None
