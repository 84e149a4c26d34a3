"""`cymongoose.serving.accesslog` and the CLI log layout of `cymongoose.serving.logconfig`."""

import io
import logging

import pytest
from cymongoose.serving import accesslog, logconfig


def test_record_has_uvicorns_message_and_args(caplog):
    with caplog.at_level(logging.INFO, logger=accesslog.ACCESS_LOGGER_NAME):
        accesslog.log_access(("10.0.0.7", 51000), "GET", b"/items/5", b"q=x&y=1", "1.1", 200)
        accesslog.log_access(("::1", 9), b"POST", "/upload", "", "1.0", 413)
    first, second = caplog.records
    assert first.name == "cymongoose.access" and first.levelno == logging.INFO
    assert first.msg == '%s - "%s %s HTTP/%s" %d'
    assert first.getMessage() == '10.0.0.7:51000 - "GET /items/5?q=x&y=1 HTTP/1.1" 200'
    assert second.getMessage() == '::1:9 - "POST /upload HTTP/1.0" 413'


def test_client_forms():
    assert accesslog.format_client(None) == "-"
    assert accesslog.format_client("unix") == "unix"
    assert accesslog.format_client(("1.2.3.4", 5)) == "1.2.3.4:5"


def test_enabled_follows_flag_and_logger_level(restore_loggers):
    logger = logging.getLogger(accesslog.ACCESS_LOGGER_NAME)
    logger.setLevel(logging.INFO)
    assert accesslog.access_log_enabled(True)
    assert not accesslog.access_log_enabled(False)
    logger.setLevel(logging.WARNING)
    assert not accesslog.access_log_enabled(True)


def _capture(monkeypatch, log_level="info", access_log=True):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    logconfig.configure_logging(log_level, access_log)
    return out, err


def test_cli_layout(monkeypatch, restore_loggers):
    out, err = _capture(monkeypatch)
    accesslog.log_access(("127.0.0.1", 5000), "GET", "/", "", "1.1", 404)
    logging.getLogger("cymongoose.asgi").info("Started server process [%d]", 42)
    logging.getLogger("cymongoose.wsgi").warning("careful")
    logging.getLogger("cymongoose.asgi").debug("not shown at info")
    assert out.getvalue() == 'INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 404 Not Found\n'
    assert err.getvalue() == "INFO:     Started server process [42]\nWARNING:  careful\n"


def test_unknown_status_has_no_phrase(monkeypatch, restore_loggers):
    out, _ = _capture(monkeypatch)
    accesslog.log_access(("127.0.0.1", 5000), "GET", "/", "", "1.1", 599)
    assert out.getvalue().endswith('"GET / HTTP/1.1" 599\n')


def test_no_access_log_disables_it(monkeypatch, restore_loggers):
    out, _ = _capture(monkeypatch, access_log=False)
    assert not accesslog.access_log_enabled(True)
    accesslog.log_access(("127.0.0.1", 5000), "GET", "/", "", "1.1", 200)
    assert out.getvalue() == ""


def test_level_applies_and_reconfiguring_does_not_duplicate(monkeypatch, restore_loggers):
    _capture(monkeypatch, "debug")
    out, err = _capture(monkeypatch, "warning")
    logging.getLogger("cymongoose.asgi").info("hidden")
    logging.getLogger("cymongoose.asgi").error("boom")
    accesslog.log_access(("127.0.0.1", 1), "GET", "/", "", "1.1", 200)
    assert err.getvalue() == "ERROR:    boom\n" and out.getvalue() == ""


def test_trace_level_exists(monkeypatch, restore_loggers):
    _, err = _capture(monkeypatch, "trace")
    logging.getLogger("cymongoose.asgi").log(logconfig.TRACE, "bytes")
    assert err.getvalue() == "TRACE:    bytes\n"


def test_unknown_level_raises():
    with pytest.raises(ValueError, match="loud"):
        logconfig.configure_logging("loud")
