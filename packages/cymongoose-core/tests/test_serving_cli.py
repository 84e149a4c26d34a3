"""`cymongoose.serving.cli`: the shared flags, their mapping onto ServerConfig, run_cli.

The servers' own flags come from their adapters (tested in their packages); here a test
adapter adds two of the same kind.
"""

import errno
import os
import sys

import pytest
from cymongoose.serving.cli import (
    ServerAdapter,
    config_from_args,
    reload_config_from_args,
    run_cli,
)
from cymongoose.serving.config import ServerConfig
from cymongoose.serving.listen import ListenError

pytestmark = pytest.mark.usefixtures("restore_loggers")  # the code under test sets them up


def add_test_arguments(parser):
    group = parser.add_argument_group("TEST")
    group.add_argument("--threads", type=int, metavar="COUNT", help="app threads")
    group.add_argument("--ws-ping-interval", type=float, metavar="SECONDS", help="pings")


def must_not_serve(app, *, config):
    raise AssertionError("must not serve")


def adapter(serve=must_not_serve, own_flags=True):
    if not own_flags:
        return ServerAdapter("cymongoose-test", "A test server.", "cymongoose_test", serve)
    return ServerAdapter("cymongoose-test", "A test server.", "cymongoose_test", serve,
                         add_arguments=add_test_arguments)


def parse(*argv, own_flags=True):
    parser = adapter(own_flags=own_flags).build_parser()
    return config_from_args(parser.parse_args(["main:app", *argv]), parser)


def test_no_flags_gives_serverconfig_defaults(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    # Every field is ServerConfig's default (log_level None: info, or --log-config's).
    assert parse() == ServerConfig()
    assert parse(own_flags=False) == ServerConfig()


def test_every_shared_flag_maps_to_its_field():
    config = parse(
        "--host", "::", "--port", "9001", "--fd", "7", "--workers", "3", "--backlog", "64",
        "--log-level", "DEBUG", "--no-access-log", "--root-path", "/api",
        "--no-proxy-headers", "--forwarded-allow-ips", "10.0.0.1,10.2.0.0/16",
        "--ssl-keyfile", "k.pem", "--ssl-certfile", "c.pem", "--ssl-ca-certs", "ca.pem",
        "--timeout-keep-alive", "2.5", "--timeout-graceful-shutdown", "0",
        "--limit-concurrency", "50", "--limit-request-fields", "20",
        "--limit-request-header-size", "8192", "--limit-request-body", "1048576",
        "--uds", "/run/app.sock", "--limit-max-requests", "1000",
        "--limit-max-requests-jitter", "50",
    )
    assert config == ServerConfig(
        uds="/run/app.sock", limit_max_requests=1000, limit_max_requests_jitter=50,
        host="::", port=9001, fd=7, workers=3, backlog=64, log_level="debug",
        access_log=False,
        root_path="/api", proxy_headers=False, forwarded_allow_ips=["10.0.0.1", "10.2.0.0/16"],
        ssl_keyfile="k.pem", ssl_certfile="c.pem", ssl_ca_certs="ca.pem",
        keep_alive_timeout_s=2.5, graceful_timeout_s=0.0, max_connections=50,
        max_header_count=20, max_header_bytes=8192, max_body_size=1048576,
    )


def test_tls_flags_map_to_their_fields():
    config = parse("--ssl-keyfile", "k.pem", "--ssl-certfile", "c.pem", "--ssl-ca-certs",
                   "ca.pem", "--ssl-keyfile-password", "pw", "--ssl-version", "TLSv1.3",
                   "--ssl-cert-reqs", "1", "--ssl-ciphers", "ECDHE+AESGCM")
    assert (config.ssl_keyfile_password, config.ssl_version, config.ssl_cert_reqs,
            config.ssl_ciphers) == ("pw", "TLSv1.3", 1, "ECDHE+AESGCM")
    assert parse("--ssl-version", "17").ssl_version == "TLSv1.2"  # uvicorn's default


def test_bad_tls_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        parse("--ssl-version", "SSLv3")
    assert "ssl_version must be TLSv1.2 or TLSv1.3" in capsys.readouterr().err


def test_the_adapters_flags_map_to_their_fields(capsys):
    config = parse("--threads", "7", "--ws-ping-interval", "0")
    assert config.threads == 7 and config.ws_ping_interval_s is None  # 0 = never
    assert parse("--ws-ping-interval", "2.5").ws_ping_interval_s == 2.5


def test_only_the_adapters_own_flags_are_added(capsys):
    with pytest.raises(SystemExit) as exc:
        parse("--threads", "7", own_flags=False)
    assert exc.value.code == 2
    assert "unrecognized arguments: --threads 7" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--lifespan", "off")


def test_help_names_the_server_and_ends_with_its_own_flags(capsys):
    with pytest.raises(SystemExit):
        adapter().build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: cymongoose-test ") and "A test server." in text
    # The adapter's group comes last, after every shared group.
    assert text.index("timeouts and limits:") < text.index("TEST:\n  --threads COUNT")
    assert text.split("\n\nEvery flag")[0].rstrip().endswith("pings")


def test_zero_means_unlimited_for_limits():
    config = parse("--limit-concurrency", "0", "--limit-request-body", "0",
                   "--limit-max-requests", "0")
    assert config.max_connections is None and config.max_body_size is None
    assert config.limit_max_requests is None


def test_invalid_value_exits_2_naming_the_field(capsys):
    with pytest.raises(SystemExit) as exc:
        parse("--port", "70000")
    assert exc.value.code == 2
    assert "port must be in 0..65535" in capsys.readouterr().err


def test_only_cert_or_key_is_an_error(capsys):
    with pytest.raises(SystemExit):
        parse("--ssl-certfile", "c.pem")
    assert "ssl_keyfile" in capsys.readouterr().err


def test_without_parser_errors_raise():
    args = adapter().build_parser().parse_args(["m:a", "--workers", "0"])
    with pytest.raises(ValueError, match="workers"):
        config_from_args(args)


def test_web_concurrency_sets_default_workers(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert parse().workers == 4
    assert parse("--workers", "1").workers == 1


def test_help_gives_units(capsys):
    with pytest.raises(SystemExit):
        adapter().build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ["--timeout-keep-alive SECONDS", "--limit-request-body BYTES",
                 "--limit-request-header-size BYTES", "--forwarded-allow-ips"]:
        assert flag in text


@pytest.fixture
def app_dir(tmp_path, monkeypatch):
    (tmp_path / "cli_probe_app.py").write_text(
        "def app(environ, start_response):\n    pass\n\n"
        "def make():\n    return app\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # restored afterwards
    return tmp_path


def test_run_cli_imports_app_and_calls_serve_with_config(app_dir):
    calls = []

    def serve(app, *, config):
        calls.append((app, config))

    status = adapter(serve).main(["cli_probe_app:make", "--factory", "--app-dir",
                                  str(app_dir), "--port", "0", "--threads", "2",
                                  "--log-level", "warning"])
    assert status == 0
    (app, config), = calls
    assert app.__name__ == "app" and app.__module__ == "cli_probe_app"
    assert (config.port, config.threads, config.log_level) == (0, 2, "warning")


def test_the_adapters_options_reach_serve_as_keywords(app_dir):
    calls, seen = [], []

    def options(args, parser, given):
        seen.append(list(given))
        if args.threads == 3:
            parser.error("--threads 3 is refused by the adapter")
        return {"extra": args.threads}

    def serve(app, *, config, extra):
        calls.append(extra)

    probe = ServerAdapter("cymongoose-test", "A test server.", "cymongoose_test", serve,
                          add_arguments=add_test_arguments, options=options)
    argv = ["cli_probe_app:app", "--threads", "2", "--log-level", "warning"]
    assert probe.main(argv) == 0
    assert calls == [2] and seen == [argv]
    # In a process started by --workers: what the supervisor appended is not "given".
    assert probe.main([*argv, "--workers", "1", "--fd", "99", "--worker-process"]) == 0
    assert seen[-1] == argv
    with pytest.raises(SystemExit) as exc:
        probe.main(["cli_probe_app:app", "--threads", "3"])
    assert exc.value.code == 2


@pytest.mark.parametrize(("spec", "said"), [
    ("cli_probe_app:missing", "attribute 'missing' not found in module 'cli_probe_app'"),
    ("no_such_module_xyz:app", "No module named 'no_such_module_xyz'"),
    ("bad", "'module:attribute'"),
])
def test_run_cli_app_import_error_is_one_line_and_status_1(app_dir, spec, said, capsys):
    assert run_cli(adapter(), [spec, "--log-level", "error"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("cymongoose-test: error: ") and said in line and repr(spec) in line


def test_a_worker_process_that_cannot_start_returns_exit_startup_failed(app_dir, capsys):
    from cymongoose.serving.supervisor import EXIT_STARTUP_FAILED

    status = run_cli(adapter(), ["no_such_module_xyz:app", "--worker-process"])
    assert status == EXIT_STARTUP_FAILED
    assert "No module named" in capsys.readouterr().err


@pytest.mark.parametrize("error", [
    ListenError(errno.EADDRINUSE, "Address already in use", "http://127.0.0.1:8000"),
    FileNotFoundError(errno.ENOENT, "No such file or directory (ssl_certfile)", "c.pem"),
    ImportError("loop 'uvloop' needs the uvloop package"),
    ValueError("fd 3 is a Unix socket"),
])
def test_start_up_errors_of_serve_are_the_exception_in_one_line(app_dir, capsys, error):
    def serve(app, *, config):
        raise error

    assert run_cli(adapter(serve), ["cli_probe_app:app"]) == 1
    assert capsys.readouterr().err == f"cymongoose-test: error: {error}\n"


def test_debug_log_level_also_shows_the_traceback(app_dir, capsys):
    def serve(app, *, config):
        raise ValueError("fd 3 is a Unix socket")

    assert run_cli(adapter(serve), ["cli_probe_app:app", "--log-level", "debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("cymongoose-test: error: fd 3 is a Unix socket\n")


def test_other_errors_of_serve_are_not_hidden(app_dir):
    def serve(app, *, config):
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run_cli(adapter(serve), ["cli_probe_app:app"])


@pytest.mark.parametrize(("argv", "said"), [
    (["--work", "2"], "unrecognized arguments: --work 2 (did you mean --workers?)"),
    (["--ws", "websockets"], "unrecognized arguments: --ws websockets"),
    (["--ssl-cert=c.pem"], "(did you mean --ssl-certfile"),
])
def test_flags_are_not_abbreviated_and_typos_get_a_suggestion(app_dir, capsys, argv, said):
    with pytest.raises(SystemExit) as exc:
        run_cli(adapter(), ["cli_probe_app:app", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert said in err and "ambiguous" not in err


# -- --reload ---------------------------------------------------------------------------


def reload_config(*argv):
    parser = adapter().build_parser()
    return reload_config_from_args(parser.parse_args(["main:app", *argv]), parser)


def test_reload_flags_build_the_reload_config(tmp_path):
    config = reload_config("--reload", "--reload-dir", str(tmp_path), "--reload-dir", ".",
                           "--reload-include", "*.txt", "--reload-exclude", "skip_*")
    assert config.dirs == (str(tmp_path), os.getcwd())
    assert config.includes == ("*.py", "*.txt")
    assert config.excludes[-1] == "skip_*" and ".*" in config.excludes
    assert reload_config("--reload").dirs == (os.getcwd(),)
    assert reload_config("--reload-dir", str(tmp_path)) is None  # no --reload


def test_reload_dir_that_is_not_a_directory_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        reload_config("--reload", "--reload-dir", str(tmp_path / "nope"))
    assert exc.value.code == 2
    assert f"--reload-dir {str(tmp_path / 'nope')!r} is not a directory" in \
        capsys.readouterr().err


def test_reload_without_watchfiles_says_what_to_install(app_dir, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "watchfiles", None)  # not importable
    assert run_cli(adapter(), ["cli_probe_app:app", "--reload", "--port", "0"]) == 1
    assert capsys.readouterr().err.endswith(
        "cymongoose-test: error: --reload needs the watchfiles package: "
        "pip install 'cymongoose-test[reload]'\n")


def test_reload_flags_without_reload_are_warned_about(app_dir, capsys):
    served = []
    status = adapter(lambda app, *, config: served.append(app)).main(
        ["cli_probe_app:app", "--reload-include", "*.txt"])
    assert status == 0 and served
    assert "--reload-include and --reload-exclude do nothing without --reload" in \
        capsys.readouterr().err


def test_response_header_flags():
    config = parse("--no-server-header", "--no-date-header", "--header", "X-A: 1",
                   "--header", "X-B:two words")
    assert (config.server_header, config.date_header) == (False, False)
    assert config.headers == [("X-A", "1"), ("X-B", "two words")]
    assert (parse().server_header, parse().date_header, parse().headers) == (True, True, [])


def test_bad_header_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        parse("--header", "no colon here")
    assert info.value.code == 2
    assert "headers entry 'no colon here' must be 'Name: value'" in capsys.readouterr().err
