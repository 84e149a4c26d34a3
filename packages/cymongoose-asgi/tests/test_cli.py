"""The cymongoose-asgi command line: argument parsing and app import."""

from __future__ import annotations

import pytest
from cymongoose.asgi.main import build_parser, import_app
from cymongoose.serving.cli import config_from_args


def parse(*argv):
    parser = build_parser()
    return config_from_args(parser.parse_args(["main:app", *argv]), parser)


def test_parser_defaults_and_flags():
    args = build_parser().parse_args(["pkg.mod:app"])
    assert (args.app, args.host, args.port, args.log_level, args.factory) == (
        "pkg.mod:app",
        "127.0.0.1",
        8000,
        None,  # not given: info, or what --log-config sets
        False,
    )
    args = build_parser().parse_args(
        ["m:f", "--host", "0.0.0.0", "--port", "9000", "--log-level", "debug", "--factory"]
    )
    assert (args.host, args.port, args.log_level, args.factory) == (
        "0.0.0.0",
        9000,
        "debug",
        True,
    )


def test_import_app_and_factory():
    assert import_app("cymongoose.asgi:ASGIServer").__name__ == "ASGIServer"
    assert import_app("collections:OrderedDict", factory=True) == {}


@pytest.mark.parametrize("spec", ["no_colon", ":app", "mod:"])
def test_import_app_rejects_bad_spec(spec):
    with pytest.raises(ValueError, match="module:attribute"):
        import_app(spec)


def test_asgi_flags_map_to_their_fields():
    config = parse("--lifespan", "off", "--loop", "asyncio", "--ws-max-size", "1000",
                   "--ws-ping-interval", "0", "--ws-ping-timeout", "3")
    assert (config.lifespan, config.loop, config.ws_max_size) == ("off", "asyncio", 1000)
    assert (config.ws_ping_interval_s, config.ws_ping_timeout_s) == (None, 3.0)  # 0 = never
    assert parse().loop == "auto" and parse().lifespan == "auto"


@pytest.mark.parametrize(("argv", "on"), [
    ([], True),  # on by default, as uvicorn's --ws-per-message-deflate
    (["--no-ws-per-message-deflate"], False),
    (["--ws-per-message-deflate"], True),
])
def test_ws_per_message_deflate_flag(argv, on):
    assert parse(*argv).ws_per_message_deflate is on


@pytest.mark.parametrize("argv", [["--loop", "trio"], ["--threads", "7"]])
def test_bad_loop_and_the_wsgi_flag_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_help_names_the_asgi_flags_with_units(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: cymongoose-asgi ")
    for flag in ["--ws-max-size BYTES", "--ws-ping-interval SECONDS",
                 "--ws-ping-timeout SECONDS", "--lifespan {auto,on,off}", "ASGI:",
                 "--ws-per-message-deflate, --no-ws-per-message-deflate"]:
        assert flag in text
