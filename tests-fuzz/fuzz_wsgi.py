"""Fuzz target: cymongoose.wsgi's request -> environ and app response -> wire translation.

    python tests-fuzz/fuzz_wsgi.py CORPUS_DIR... [libFuzzer flags]

One long-lived ``WSGIServer`` (``cymongoose.wsgi.testing.ServerThread``) per process.
Each input is an HTTP request (format and oracle: ``adapter_common.py``): it goes over
loopback; the app checks the environ it gets (``wsgiref.validate.check_environ``, every
``str`` value latin-1 as PEP 3333 "Unicode Issues" requires, ``SCRIPT_NAME`` +
``PATH_INFO`` the percent-decoded path and ``QUERY_STRING`` the query, as latin-1) and
answers with the status, headers and body pieces the input's directives ask for. Fails
when the environ is wrong, the answer breaks the oracle, or the server stops answering
(30 s without a close).

The environ is built by the server's own path (``request_environ`` over the core's
``HttpMessage``), so the harness only talks to it over a socket: it stays valid while
those functions change.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import warnings
from typing import Any
from urllib.parse import unquote_to_bytes
from wsgiref.validate import WSGIWarning, check_environ

import adapter_common as ac
import atheris
import feedback

with atheris.instrument_imports(include=["cymongoose"]):
    from cymongoose.wsgi.testing import ServerThread

DIRECTIVES: dict[str, ac.Directives] = {}
SEEN: set[str] = set()
PROBLEMS: list[str] = []
_lock = threading.Lock()
_ids = itertools.count(1)


class AppRaised(Exception):
    """Raised by the app on purpose (``x-raise``)."""


def check_environ_ok(environ: dict[str, Any], where: str) -> None:
    """Record (in PROBLEMS) what is wrong with ``environ`` by PEP 3333."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", WSGIWarning)
            if environ.get("PATH_INFO") == "*":
                # The asterisk-form target (RFC 9112 section 3.2.4: OPTIONS *, SSDP's
                # M-SEARCH *), which the core passes on: PATH_INFO "*" as gunicorn gives
                # it; wsgiref's check wants every PATH_INFO to start with "/".
                check_environ({**environ, "PATH_INFO": "/"})
            else:
                check_environ(environ)
    except AssertionError as exc:
        PROBLEMS.append(f"{where}: check_environ: {exc}")
    for key, value in environ.items():
        if type(key) is not str:
            PROBLEMS.append(f"{where}: environ key {key!r} is not a str")
        elif isinstance(value, str):
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                PROBLEMS.append(f"{where}: environ[{key!r}] = {value!r} is not latin-1")


def app(environ: dict[str, Any], start_response: Any) -> Any:
    check_environ_ok(environ, "server")
    request_id = environ.get("HTTP_X_FUZZ_ID", "")
    d = DIRECTIVES.get(request_id, ac.Directives())
    if d.target is not None:
        path, query = d.target
        want = unquote_to_bytes(path).decode("latin-1")
        got = environ["SCRIPT_NAME"] + environ["PATH_INFO"]
        if environ["REQUEST_METHOD"] != d.method.decode("latin-1"):
            PROBLEMS.append(f"environ: REQUEST_METHOD {environ['REQUEST_METHOD']!r} "
                            f"for {d.method!r}")
        if got != want or environ["QUERY_STRING"] != query.decode("latin-1"):
            PROBLEMS.append(f"environ: SCRIPT_NAME + PATH_INFO {got!r}, QUERY_STRING "
                            f"{environ['QUERY_STRING']!r} for the target {path!r} ? {query!r}")
    with _lock:
        SEEN.add(request_id)
    body = environ["wsgi.input"].read()
    if d.raise_at == "before":
        raise AppRaised("before start_response")
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in d.headers]
    start_response(d.status.decode("latin-1"), headers)
    step = max(1, -(-len(body) // d.pieces))
    pieces = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
    if d.raise_at == "after":
        return _raise_after(pieces)
    return iter(pieces) if d.pieces > 1 else pieces


def _raise_after(pieces: list[bytes]) -> Any:
    yield pieces[0]
    raise AppRaised("after the first body piece")


SERVER: ServerThread | None = None


def test_one_input(data: bytes) -> None:
    global SERVER
    if SERVER is None:
        # FUZZ_WSGI_THREADS=0 (run.py's wsgi_inline target): the inline mode.
        inline = os.environ.get("FUZZ_WSGI_THREADS") == "0"
        SERVER = ServerThread(app, **({"threads": 0} if inline else {"workers": 2}),
                              access_log=False, keep_alive_timeout_s=1).__enter__()
    request_id = str(next(_ids))
    request, method, body, d = ac.build_request(data, int(request_id))
    DIRECTIVES[request_id] = d
    try:
        raw = ac.exchange(SERVER.port, request)
        with _lock:
            seen = request_id in SEEN
            SEEN.discard(request_id)
        status = ac.check_answer(raw, method, body, d, "wsgi", seen)
        feedback.observe("status", (status, seen, d.valid_for("wsgi")))
        if PROBLEMS:
            problems = list(PROBLEMS)
            PROBLEMS.clear()
            raise AssertionError("; ".join(problems))
    finally:
        DIRECTIVES.pop(request_id, None)


def main() -> None:
    # The app raises on purpose: keep the server's error log quiet.
    logging.getLogger("cymongoose").setLevel(logging.CRITICAL)
    atheris.Setup(sys.argv, atheris.instrument_func(test_one_input))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
