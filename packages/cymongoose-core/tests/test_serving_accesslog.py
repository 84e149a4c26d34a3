"""`cymongoose.serving.accesslog` (both formats) and `cymongoose.serving.logconfig` (the
CLI layout, log config files, what serve() sets up)."""

import io
import logging

import pytest
from cymongoose.serving import accesslog, logconfig
from cymongoose.serving.config import ServerConfig


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


# -- gunicorn's access_log_format --------------------------------------------------------

def _atoms(**kw):
    args = dict(client=("10.0.0.7", 51000), method="GET", path=b"/a%20b", query=b"x=1",
                http_version="1.1", status=200)
    args.update(kw)
    return accesslog.AccessAtoms(args.pop("client"), args.pop("method"), args.pop("path"),
                                 args.pop("query"), args.pop("http_version"),
                                 args.pop("status"), **args)


def test_gunicorns_atoms():
    atoms = _atoms(
        request_headers=[(b"user-agent", b"curl/8"), (b"referer", b"http://r/"),
                         (b"authorization", b"Basic Ym9iOnB3"), (b"x-in", b"a"),
                         (b"x-in", b"b")],
        response_headers=[(b"X-Out", b"yes")], length=5, duration_s=1.5)
    line = ('%(h)s %(l)s %(u)s "%(r)s" %(s)s %(b)s %(B)s "%(f)s" "%(a)s" %(m)s %(U)s %(q)s '
            '%(H)s %(T)s %(M)s %(D)s %(L)s %({x-in}i)s %({X-OUT}o)s %({nope}i)s %(zz)s')
    assert line % atoms == (
        '10.0.0.7 - bob "GET /a%20b?x=1 HTTP/1.1" 200 5 5 "http://r/" "curl/8" GET /a b x=1 '
        'HTTP/1.1 1 1500 1500000 1.500000 a, b yes - -')
    assert atoms["p"] == f"<{__import__('os').getpid()}>"
    stamp = atoms["t"]  # [05/Dec/2026:00:46:15 +0000]
    assert stamp.startswith("[") and stamp.endswith("]") and stamp.count(":") == 3


def test_atoms_from_a_wsgi_environ_and_unknowns():
    environ = {"HTTP_USER_AGENT": "ua", "CONTENT_TYPE": "text/plain", "PATH_INFO": "/p"}
    atoms = _atoms(environ=environ, query=b"", length=None, duration_s=None)
    line = "%(a)s|%({content-type}i)s|%({path_info}e)s|%(q)s|%(b)s|%(D)s|%(u)s"
    assert line % atoms == "ua|text/plain|/p||-|-|-"


def test_a_format_is_checked_once_naming_the_setting():
    with pytest.raises(ValueError, match="access_log_format"):
        accesslog.AccessLogFormat("%s %d")
    with pytest.raises(ValueError, match="access_log_format"):
        accesslog.AccessLogFormat("%(h")
    with pytest.raises(ValueError, match="access_log_format"):
        ServerConfig(access_log_format="%(h)s %d")
    assert ServerConfig(access_log_format='%(h)s "%(r)s" %%').access_log_format


def test_a_custom_format_line_is_printed_as_it_is(monkeypatch, restore_loggers):
    out, _ = _capture(monkeypatch)
    accesslog.AccessLogFormat('%(h)s "%(r)s" %(s)s').log(_atoms())
    accesslog.log_refused(("10.0.0.7", 1), 503, None)
    accesslog.log_refused(("10.0.0.7", 1), 413, accesslog.parse_request_line(
        "POST /up?a=1 HTTP/1.1"), accesslog.AccessLogFormat('%(m)s %(U)s %(q)s %(s)s'))
    assert out.getvalue() == ('10.0.0.7 "GET /a%20b?x=1 HTTP/1.1" 200\n'
                              'INFO:     10.0.0.7:1 - "-" 503 Service Unavailable\n'
                              'POST /up a=1 413\n')


def test_request_lines():
    assert accesslog.parse_request_line("GET /a?b HTTP/1.0") == ("GET", "/a?b", "1.0")
    for bad in (None, "", "GET /", "GET / FTP/1", "a b c d"):
        assert accesslog.parse_request_line(bad) is None


# -- log config files ----------------------------------------------------------------------

JSON_CONFIG = """{"version": 1,
 "formatters": {"f": {"format": "JSON %(name)s %(message)s"}},
 "handlers": {"file": {"class": "logging.FileHandler", "filename": "FILE", "formatter": "f"}},
 "loggers": {"cymongoose": {"handlers": ["file"], "level": "INFO"}}}"""
YAML_CONFIG = """version: 1
formatters: {f: {format: "YAML %(name)s %(message)s"}}
handlers: {file: {class: logging.FileHandler, filename: FILE, formatter: f}}
loggers: {cymongoose: {handlers: [file], level: INFO}}
"""
INI_CONFIG = """[loggers]
keys=root,cym
[handlers]
keys=file
[formatters]
keys=f
[logger_root]
handlers=
[logger_cym]
level=INFO
handlers=file
propagate=0
qualname=cymongoose
[handler_file]
class=FileHandler
args=('FILE', 'a')
formatter=f
[formatter_f]
format=INI %(name)s %(message)s
"""


@pytest.mark.parametrize(("name", "text", "tag"), [
    ("log.json", JSON_CONFIG, "JSON"), ("log.yaml", YAML_CONFIG, "YAML"),
    ("log.ini", INI_CONFIG, "INI"),
])
def test_log_config_files_route_our_loggers(tmp_path, monkeypatch, restore_loggers,
                                            name, text, tag):
    pytest.importorskip("yaml") if tag == "YAML" else None
    target = tmp_path / "out.log"
    path = tmp_path / name
    path.write_text(text.replace("FILE", str(target)))
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    try:
        logconfig.configure_logging(None, True, str(path))
        logging.getLogger("cymongoose.wsgi").info("hello")
    finally:
        for handler in logging.getLogger("cymongoose").handlers:
            handler.close()
    assert target.read_text() == f"{tag} cymongoose.wsgi hello\n"
    assert err.getvalue() == ""  # the default stderr handler was replaced


def test_an_explicit_level_beats_the_log_config(tmp_path, restore_loggers):
    path = tmp_path / "log.json"
    path.write_text('{"version": 1, "loggers": {"cymongoose": {"level": "ERROR"}}}')
    logconfig.configure_logging(None, True, path)
    assert logging.getLogger("cymongoose").level == logging.ERROR
    logconfig.configure_logging("debug", True, path)
    assert logging.getLogger("cymongoose").level == logging.DEBUG


def test_log_config_errors_name_the_file(tmp_path, monkeypatch, restore_loggers):
    with pytest.raises(logconfig.LogConfigError, match="no such file: 'nope.json'"):
        logconfig.configure_logging(None, True, "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(logconfig.LogConfigError, match="cannot read .*bad.json"):
        logconfig.configure_logging(None, True, str(bad))
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}')
    with pytest.raises(logconfig.LogConfigError, match="cannot apply .*wrong.json"):
        logconfig.configure_logging(None, True, str(wrong))
    yml = tmp_path / "log.yml"
    yml.write_text("version: 1\n")
    monkeypatch.setitem(__import__("sys").modules, "yaml", None)  # PyYAML not installed
    with pytest.raises(logconfig.LogConfigError, match="needs the PyYAML package"):
        logconfig.configure_logging(None, True, str(yml))


def test_setup_logging_keeps_a_programs_own_logging(restore_loggers):
    root = logging.getLogger()
    theirs = logging.StreamHandler(io.StringIO())
    root.addHandler(theirs)
    try:
        ours = logging.getLogger("cymongoose")
        before = ours.handlers[:]
        logconfig.setup_logging(ServerConfig())  # "default": the program has logging
        assert ours.handlers == before
    finally:
        root.removeHandler(theirs)


def test_setup_logging_none_leaves_logging_alone(restore_loggers):
    ours = logging.getLogger("cymongoose")
    before = (ours.handlers[:], ours.level, ours.propagate)
    logconfig.setup_logging(ServerConfig(log_config=None))
    assert (ours.handlers, ours.level, ours.propagate) == before
    with pytest.raises(TypeError, match="log_config"):
        ServerConfig(log_config=42)
