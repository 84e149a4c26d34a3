"""`cymongoose.serving.environment`: every flag from ``CYMONGOOSE_<FLAG>``, ``--env-file``,
and the CLI's ``--version``."""

import argparse
import re

import pytest
from cymongoose.serving.cli import ServerAdapter, config_from_args, parse_args
from cymongoose.serving.config import ServerConfig
from cymongoose.serving.environment import apply_environment, env_name, load_env_file


def add_test_arguments(parser):
    group = parser.add_argument_group("TEST")
    group.add_argument("--threads", type=int)
    # A kind the shared parser has none of: the rule must cover it too.
    group.add_argument("-v", "--verbose", action="count")


def parse(argv, environ):
    parser = ServerAdapter("cymongoose-test", "A test server.", "cymongoose_test",
                           lambda app, *, config: None,
                           add_arguments=add_test_arguments).build_parser()
    env = apply_environment(parser, argv, environ)
    args = parse_args(parser, argv)
    return args, config_from_args(args, parser, env)


def test_every_flag_has_its_variable():
    parser = ServerAdapter("t", "t", "t", lambda app, *, config: None,
                           add_arguments=add_test_arguments).build_parser()
    names = {env_name(a) for a in parser._actions}
    assert {"CYMONGOOSE_APP", "CYMONGOOSE_PORT", "CYMONGOOSE_ACCESS_LOG",
            "CYMONGOOSE_LIMIT_CONCURRENCY", "CYMONGOOSE_LOG_CONFIG", "CYMONGOOSE_THREADS",
            "CYMONGOOSE_RELOAD_DIR", "CYMONGOOSE_VERBOSE"} <= names
    # Not from the environment: --help, --version, the hidden --worker-process and
    # --supervisor-pipe, --env-file.
    assert not {"CYMONGOOSE_HELP", "CYMONGOOSE_VERSION", "CYMONGOOSE_WORKER_PROCESS",
                "CYMONGOOSE_SUPERVISOR_PIPE", "CYMONGOOSE_ENV_FILE"} & names
    for action in parser._actions:
        name = env_name(action)
        assert name is None or re.fullmatch(r"CYMONGOOSE_[A-Z0-9_]+", name)


def test_values_of_every_kind_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    args, config = parse([], {
        "CYMONGOOSE_APP": "main:app", "CYMONGOOSE_PORT": "9000",
        "CYMONGOOSE_PROXY_HEADERS": "false", "CYMONGOOSE_ACCESS_LOG": "0",
        "CYMONGOOSE_WORKERS": "3", "CYMONGOOSE_LOG_LEVEL": "DEBUG",
        "CYMONGOOSE_TIMEOUT_KEEP_ALIVE": "2.5", "CYMONGOOSE_FACTORY": "yes",
        "CYMONGOOSE_THREADS": "7", "CYMONGOOSE_RELOAD_DIR": "src  lib",
        "CYMONGOOSE_RELOAD": "on", "CYMONGOOSE_VERBOSE": "2",
        "UNRELATED": "x",
    })
    assert args.app == "main:app" and args.factory is True
    assert (args.reload_dir, args.reload, args.verbose) == (["src", "lib"], True, 2)
    assert config == ServerConfig(port=9000, proxy_headers=False, access_log=False,
                                  workers=3, log_level="debug", keep_alive_timeout_s=2.5,
                                  threads=7)


def test_the_command_line_beats_the_environment():
    environ = {"CYMONGOOSE_PORT": "9000", "CYMONGOOSE_ACCESS_LOG": "false",
               "CYMONGOOSE_APP": "env:app", "CYMONGOOSE_RELOAD_DIR": "a b"}
    args, config = parse(["cli:app", "--port=9001", "--access-log", "--reload-dir", "c"],
                         environ)
    assert (args.app, config.port, config.access_log) == ("cli:app", 9001, True)
    assert args.reload_dir == ["c"]
    _, config = parse(["cli:app", "--no-access-log"], {"CYMONGOOSE_ACCESS_LOG": "true"})
    assert config.access_log is False


def test_a_false_store_true_variable_leaves_the_flag_off():
    args, _ = parse(["m:a"], {"CYMONGOOSE_FACTORY": "False"})
    assert args.factory is False


@pytest.mark.parametrize(("environ", "said"), [
    ({"CYMONGOOSE_PORT": "abc"}, "environment variable CYMONGOOSE_PORT: invalid int value: 'abc'"),
    ({"CYMONGOOSE_PROXY_HEADERS": "maybe"},
     "environment variable CYMONGOOSE_PROXY_HEADERS: expected true or false"),
    ({"CYMONGOOSE_LOG_LEVEL": "loud"}, "CYMONGOOSE_LOG_LEVEL: invalid choice: 'loud'"),
    ({"CYMONGOOSE_PORT": "70000"},
     "port must be in 0..65535, got 70000 (from the environment variable CYMONGOOSE_PORT)"),
])
def test_a_bad_value_exits_2_naming_the_variable(capsys, environ, said):
    with pytest.raises(SystemExit) as exc:
        parse(["m:a"], environ)
    assert exc.value.code == 2
    assert said in capsys.readouterr().err


def test_without_app_or_its_variable_the_app_is_still_required(capsys):
    with pytest.raises(SystemExit):
        parse([], {})
    assert "required: app" in capsys.readouterr().err


def test_env_file_feeds_the_variables_without_replacing_set_ones(tmp_path, monkeypatch):
    pytest.importorskip("dotenv")
    path = tmp_path / ".env"
    path.write_text("CYMONGOOSE_PORT=9100\nCYMONGOOSE_HOST=0.0.0.0\nPROBE_FROM_FILE=1\n")
    monkeypatch.setenv("CYMONGOOSE_HOST", "127.0.0.2")
    for name in ("CYMONGOOSE_PORT", "PROBE_FROM_FILE"):
        monkeypatch.delenv(name, raising=False)
    load_env_file(str(path))
    import os
    try:
        assert os.environ["PROBE_FROM_FILE"] == "1"
        _, config = parse(["m:a"], os.environ)
        assert (config.host, config.port) == ("127.0.0.2", 9100)
    finally:
        for name in ("CYMONGOOSE_PORT", "PROBE_FROM_FILE"):
            os.environ.pop(name, None)


def test_env_file_errors_name_the_flag(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="--env-file: no such file: 'nope.env'"):
        load_env_file("nope.env")
    path = tmp_path / ".env"
    path.write_text("A=1\n")
    monkeypatch.setitem(__import__("sys").modules, "dotenv", None)  # not installed
    with pytest.raises(ValueError, match=r"--env-file needs the python-dotenv package: "
                                         r"pip install 'cymongoose-core\[dotenv\]'"):
        load_env_file(str(path))


def test_version(capsys):
    parser = ServerAdapter("cymongoose-core", "t", "t", lambda app, *, config: None
                           ).build_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--version"])
    assert exc.value.code == 0
    line = capsys.readouterr().out
    assert re.fullmatch(r"cymongoose-core \S+ \(cymongoose-core \S+, mongoose 7\.23, "
                        r"\S+ \d+\.\d+\.\d+\S* on \S+\)\n", line), line


def test_bool_words():
    from cymongoose.serving.environment import parse_bool

    assert [parse_bool(w) for w in ("TRUE", " yes", "On", "1")] == [True] * 4
    assert [parse_bool(w) for w in ("false", "NO", "off", "0")] == [False] * 4
    with pytest.raises(ValueError, match="'2'"):
        parse_bool("2")
    assert isinstance(argparse.BooleanOptionalAction, type)
