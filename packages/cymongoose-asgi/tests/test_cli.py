"""The cymongoose-asgi command line: argument parsing and app import."""

from __future__ import annotations

import pytest
from cymongoose.asgi.main import build_parser, import_app


def test_parser_defaults_and_flags():
    args = build_parser().parse_args(["pkg.mod:app"])
    assert (args.app, args.host, args.port, args.log_level, args.factory) == (
        "pkg.mod:app",
        "127.0.0.1",
        8000,
        "info",
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
