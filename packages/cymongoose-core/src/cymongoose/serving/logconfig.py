"""Logging set-up for the ``cymongoose-asgi`` / ``cymongoose-wsgi`` command lines.

uvicorn-like output: ``INFO:     message`` on stderr for the servers' own loggers
(``cymongoose.*``) and ``INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK`` on stdout
for the access log. Library users who call the servers from Python configure logging
themselves; only the CLIs call :func:`configure_logging`.
"""

from __future__ import annotations

import http
import logging
import sys

from .accesslog import ACCESS_LOGGER_NAME

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

_MARK = "_cymongoose_cli_handler"


def _status_phrase(code: int) -> str:
    try:
        return f"{code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


class DefaultFormatter(logging.Formatter):
    """``LEVEL:`` padded to 9 columns, then the message (uvicorn's default layout)."""

    def __init__(self, fmt: str = "%(levelprefix)s %(message)s") -> None:
        super().__init__(fmt)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging API)
        record.__dict__["levelprefix"] = f"{record.levelname}:".ljust(9)
        return super().formatMessage(record)


class AccessFormatter(DefaultFormatter):
    """Formats ``cymongoose.access`` records, adding the reason phrase to the status."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[4], int):
            # A copy: other handlers of the same record see it unchanged.
            record = logging.makeLogRecord(record.__dict__)
            record.args = (*args[:4], _status_phrase(args[4]))
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


def configure_logging(log_level: str | None = "info", access_log: bool = True) -> None:
    """Send the ``cymongoose`` loggers to the terminal in uvicorn's format.

    Args:
        log_level: critical|error|warning|info|debug|trace (case-insensitive); None is info.
            Applies to the ``cymongoose`` loggers and the access log.
        access_log: when False the ``cymongoose.access`` logger is disabled.

    Raises ValueError for an unknown level. Calling it again replaces what an earlier call
    installed; handlers installed by others are left alone.
    """
    level = _level(log_level)
    default = logging.StreamHandler(sys.stderr)
    default.setFormatter(DefaultFormatter())
    root = logging.getLogger("cymongoose")
    _replace_handler(root, default)
    root.setLevel(level)
    root.propagate = False

    access = logging.getLogger(ACCESS_LOGGER_NAME)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(AccessFormatter())
    _replace_handler(access, handler)
    access.setLevel(level)
    access.propagate = False
    access.disabled = not access_log
