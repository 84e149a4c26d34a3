"""Logging set-up of both servers: the CLIs' and ``serve()``'s default, and log config files.

The default is uvicorn's output: ``INFO:     message`` on stderr for the servers' own
loggers (``cymongoose.*``) and ``INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK`` on
stdout for the access log (``cymongoose.access``; a gunicorn ``access_log_format`` line
is printed as it is). A log config (``--log-config``, ``ServerConfig.log_config``) is
applied after the default, as uvicorn does: a ``.json``, ``.yaml``/``.yml`` (needs
PyYAML) or ``dict`` through :func:`logging.config.dictConfig`, any other file (``.ini``,
``.conf``) through :func:`logging.config.fileConfig`; loggers that exist and that it does
not name are left alone unless it says ``disable_existing_loggers: true``.

``serve()`` calls :func:`setup_logging`: the default only where the program has not set
up logging itself (see there); ``log_config=None`` leaves logging alone.
"""

from __future__ import annotations

import http
import json
import logging
import logging.config
import os
import sys
from collections.abc import Mapping
from typing import Any

from .accesslog import ACCESS_LOGGER_NAME

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

#: ``ServerConfig.log_config``'s default: the servers' default logging, where the program
#: has set up none.
DEFAULT_LOG_CONFIG = "default"

_MARK = "_cymongoose_cli_handler"


class LogConfigError(ValueError):
    """A log config that cannot be read or applied; the message names the file."""


def _status_phrase(code: int) -> str:
    try:
        return f"{code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


class DefaultFormatter(logging.Formatter):
    """``LEVEL:`` padded to 9 columns, then the message (uvicorn's default layout)."""

    def __init__(self, fmt: str = "%(levelprefix)s %(message)s", datefmt: str | None = None,
                 style: Any = "%") -> None:
        super().__init__(fmt, datefmt, style)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging API)
        record.__dict__["levelprefix"] = f"{record.levelname}:".ljust(9)
        return super().formatMessage(record)


class AccessFormatter(DefaultFormatter):
    """Formats ``cymongoose.access`` records: the reason phrase after the status (``200
    OK``); a line in a gunicorn ``access_log_format`` (a mapping as its arguments) is
    left as it is, without the level prefix, as gunicorn prints it."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, Mapping):
            return record.getMessage()
        if isinstance(args, tuple) and args and isinstance(args[-1], int):
            # A copy: other handlers of the same record see it unchanged.
            record = logging.makeLogRecord(record.__dict__)
            record.args = (*args[:-1], _status_phrase(args[-1]))
            record.msg = str(record.msg).replace("%d", "%s")
        return super().format(record)


def _level(log_level: str | None) -> int:
    if log_level is None:
        return logging.INFO
    name = log_level.upper()
    level = logging.getLevelName(name)
    if not isinstance(level, int):
        raise ValueError(
            f"log_level must be critical, error, warning, info, debug or trace, got {log_level!r}"
        )
    return level


def _replace_handler(logger: logging.Logger, handler: logging.Handler) -> None:
    for old in list(logger.handlers):
        if getattr(old, _MARK, False):
            logger.removeHandler(old)
    setattr(handler, _MARK, True)
    logger.addHandler(handler)


def load_log_config(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Read the log config file ``path``: the dict of a ``.json``/``.yaml``/``.yml`` file,
    None for a :func:`logging.config.fileConfig` file (any other name).

    Raises :class:`LogConfigError` naming the file when it is missing, cannot be parsed,
    or is YAML without PyYAML installed.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise LogConfigError(f"no such file: {name!r}")
    ext = os.path.splitext(name)[1].lower()
    if ext not in (".json", ".yaml", ".yml"):
        return None
    try:
        with open(name, encoding="utf-8") as f:
            if ext == ".json":
                loaded = json.load(f)
            else:
                try:
                    import yaml
                except ImportError:
                    raise LogConfigError(f"{name!r} is YAML, which needs the PyYAML package: "
                                         "pip install PyYAML (or use a .json or .ini file)"
                                         ) from None
                loaded = yaml.safe_load(f)
    except LogConfigError:
        raise
    except Exception as exc:  # OSError, json/yaml syntax errors
        raise LogConfigError(f"cannot read {name!r}: {exc}") from None
    if not isinstance(loaded, dict):
        raise LogConfigError(f"{name!r} must hold a logging.config.dictConfig mapping, "
                             f"got {type(loaded).__name__}")
    return loaded


def apply_log_config(log_config: Mapping[str, Any] | str | os.PathLike[str]) -> None:
    """Apply a dictConfig mapping or a log config file (see :func:`load_log_config`).

    ``disable_existing_loggers`` defaults to False, for files and mappings alike. Raises
    :class:`LogConfigError` naming the file (or "log_config") with the reason.
    """
    where = "log_config"
    if isinstance(log_config, Mapping):
        loaded: dict[str, Any] | None = dict(log_config)
    else:
        where = repr(os.fspath(log_config))
        loaded = load_log_config(log_config)
    try:
        if loaded is None:
            logging.config.fileConfig(os.fspath(log_config),  # type: ignore[arg-type]
                                      disable_existing_loggers=False)
        else:
            loaded.setdefault("disable_existing_loggers", False)
            logging.config.dictConfig(loaded)
    except Exception as exc:  # what dictConfig/fileConfig raise for a bad config varies
        raise LogConfigError(f"cannot apply {where}: {type(exc).__name__}: {exc}") from None


def configure_logging(log_level: str | None = None, access_log: bool = True,
                      log_config: Mapping[str, Any] | str | os.PathLike[str] | None = None
                      ) -> None:
    """Send the ``cymongoose`` loggers to the terminal in uvicorn's format, then apply
    ``log_config``.

    Args:
        log_level: critical|error|warning|info|debug|trace (case-insensitive), for the
            ``cymongoose`` loggers and the access log; None: info, or with ``log_config``
            the levels it sets.
        access_log: when False the ``cymongoose.access`` logger is disabled.
        log_config: a dictConfig mapping or a file (see :func:`apply_log_config`).

    Raises ValueError for an unknown level, :class:`LogConfigError` for a log config that
    cannot be read or applied. Calling it again replaces what an earlier call installed;
    handlers installed by others are left alone.
    """
    level = _level(log_level)
    default = logging.StreamHandler(sys.stderr)
    default.setFormatter(DefaultFormatter())
    ours = logging.getLogger("cymongoose")
    _replace_handler(ours, default)
    ours.setLevel(level)
    ours.propagate = False

    access = logging.getLogger(ACCESS_LOGGER_NAME)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(AccessFormatter())
    _replace_handler(access, handler)
    access.setLevel(level)
    access.propagate = False
    if log_config is not None:
        apply_log_config(log_config)
        if log_level is not None:  # given explicitly: it beats the file, as in uvicorn
            ours.setLevel(level)
            access.setLevel(level)
    access.disabled = not access_log


def logging_configured_elsewhere() -> bool:
    """True when the program has set up logging itself: the root logger, ``cymongoose``
    or ``cymongoose.access`` has a handler that :func:`configure_logging` did not install
    (``logging.basicConfig``, a dictConfig, a test runner's capture, gunicorn)."""
    for name in ("", "cymongoose", ACCESS_LOGGER_NAME):
        if any(not getattr(h, _MARK, False) for h in logging.getLogger(name).handlers):
            return True
    return False


def setup_logging(config: Any) -> None:
    """What the servers' ``serve()`` does first, from a ServerConfig's ``log_config``,
    ``log_level`` and ``access_log``.

    ``log_config``: :data:`DEFAULT_LOG_CONFIG` sets up the default (as the CLIs do)
    unless :func:`logging_configured_elsewhere`: a program that set up logging keeps it,
    and the servers' records reach its handlers through the root logger at the levels it
    chose. None leaves logging alone. A mapping or a file: the default, then that config.
    Raises as :func:`configure_logging`.
    """
    log_config = config.log_config
    if log_config is None:
        return
    if isinstance(log_config, str) and log_config == DEFAULT_LOG_CONFIG:
        if logging_configured_elsewhere():
            return
        log_config = None
    configure_logging(config.log_level, config.access_log, log_config)
