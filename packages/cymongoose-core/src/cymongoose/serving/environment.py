"""Flags from environment variables: ``CYMONGOOSE_<FLAG>``, and ``--env-file``.

One rule for every flag of a parser, read from its actions (so flags added later, by
either server or in the core, are covered without a list to keep): ``--limit-concurrency``
is ``CYMONGOOSE_LIMIT_CONCURRENCY``, ``--access-log/--no-access-log`` is
``CYMONGOOSE_ACCESS_LOG``, the ``app`` argument is ``CYMONGOOSE_APP``. Precedence:
command line > environment variable > default; ``--env-file`` (python-dotenv) adds
variables to the environment first, without replacing those already set.

Values: booleans are ``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case); a flag
taking a value gets the text as if given on the command line (its type and choices
apply); a flag taking several values (``append``, ``nargs``) gets them split on
whitespace. A bad value is an error naming the variable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

ENV_PREFIX = "CYMONGOOSE_"
ENV_FILE_FLAG = "--env-file"
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")

ENVIRONMENT_HELP = (
    "Every flag can also be set by an environment variable: CYMONGOOSE_ and the flag's "
    "name in capitals with '_' for '-' (CYMONGOOSE_PORT=9000, CYMONGOOSE_PROXY_HEADERS="
    "false, CYMONGOOSE_APP=main:app). The command line wins over the environment."
)


def env_name(action: argparse.Action) -> str | None:
    """The environment variable of ``action``: ``CYMONGOOSE_`` + its first long flag
    (its dest for an argument); None for actions the environment does not set
    (``--help``, ``--version``, hidden flags, ``--env-file`` itself)."""
    if action.help == argparse.SUPPRESS or action.dest == argparse.SUPPRESS or \
            isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
        return None
    if not action.option_strings:
        return ENV_PREFIX + action.dest.upper()
    longs = [s for s in action.option_strings if s.startswith("--")]
    if not longs or longs[0] == ENV_FILE_FLAG:
        return None
    return ENV_PREFIX + longs[0][2:].upper().replace("-", "_")


def parse_bool(text: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case, spaces ignored);
    ValueError otherwise."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"expected true or false (or 1/0, yes/no, on/off), got {text!r}")


def _convert(action: argparse.Action, text: str) -> Any:
    kind = action.type
    try:
        value = kind(text) if callable(kind) else text
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        name = getattr(kind, "__name__", repr(kind))
        raise ValueError(f"invalid {name} value: {text!r}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ValueError(f"invalid choice: {text!r} (choose from {choices})")
    return value


def _env_value(action: argparse.Action, text: str) -> tuple[bool, Any]:
    """(apply, value) for ``action`` from ``text``: the new default, if any."""
    if isinstance(action, argparse.BooleanOptionalAction):
        return True, parse_bool(text)
    if isinstance(action, (argparse._StoreConstAction, argparse._AppendConstAction)):
        # store_true/store_false/store_const: true means "given", false "not given".
        given = parse_bool(text)
        if isinstance(action, argparse._AppendConstAction):
            return given, [action.const]
        return given, action.const
    if isinstance(action, argparse._CountAction):
        try:
            return True, int(text)
        except ValueError:
            raise ValueError(f"invalid int value: {text!r}") from None
    many = isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+") or \
        isinstance(action.nargs, int)
    if many:
        return True, [_convert(action, word) for word in text.split()]
    return True, _convert(action, text)


def _on_command_line(action: argparse.Action, argv: Sequence[str]) -> bool:
    # allow_abbrev is off: a flag is given by one of its exact names (or "name=value").
    return any(arg == flag or arg.startswith(flag + "=")
               for arg in argv for flag in action.option_strings)


def apply_environment(parser: argparse.ArgumentParser, argv: Sequence[str],
                      environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Make each ``CYMONGOOSE_<FLAG>`` in ``environ`` (default ``os.environ``) the default
    of its flag in ``parser``, unless ``argv`` gives that flag.

    Returns ``{dest: variable}`` for the defaults set. A bad value exits through
    ``parser.error`` (status 2) naming the variable.
    """
    env = os.environ if environ is None else environ
    applied: dict[str, str] = {}
    for action in parser._actions:
        name = env_name(action)
        if name is None or name not in env:
            continue
        if action.option_strings and _on_command_line(action, argv):
            continue
        try:
            apply, value = _env_value(action, env[name])
        except ValueError as exc:
            parser.error(f"environment variable {name}: {exc}")
        if not apply:
            continue
        action.default = value
        if not action.option_strings:  # the app argument: now optional
            action.nargs = argparse.OPTIONAL
            action.required = False
        applied[action.dest] = name
    return applied


def env_file_of(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> str | None:
    """The ``--env-file`` of ``argv`` (the last one given), else ``CYMONGOOSE_ENV_FILE``."""
    env = os.environ if environ is None else environ
    found: str | None = None
    for i, arg in enumerate(argv):
        if arg == ENV_FILE_FLAG and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith(ENV_FILE_FLAG + "="):
            found = arg.partition("=")[2]
    if found is None:
        found = env.get(ENV_PREFIX + "ENV_FILE") or None
    return found


def load_env_file(path: str) -> None:
    """Add the variables of the ``.env`` file ``path`` to ``os.environ`` (python-dotenv's
    ``load_dotenv``; variables already set keep their value).

    Raises ValueError naming ``--env-file`` when the file does not exist or
    python-dotenv is not installed.
    """
    if not os.path.isfile(path):
        raise ValueError(f"{ENV_FILE_FLAG}: no such file: {path!r}")
    try:
        from dotenv import load_dotenv
    except ImportError:
        raise ValueError(f"{ENV_FILE_FLAG} needs the python-dotenv package: pip install "
                         "'cymongoose-core[dotenv]' (or python-dotenv)") from None
    load_dotenv(path, override=False)
