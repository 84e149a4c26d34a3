"""Fuzz target: cymongoose.asgi's request -> scope and app messages -> wire translation.

    python tests-fuzz/fuzz_asgi.py CORPUS_DIR... [libFuzzer flags]

One long-lived ``ASGIServer`` (``cymongoose.asgi.testing.ServerThread``) per process.
Each input is an HTTP request (format and oracle: ``adapter_common.py``) sent over
loopback; the app checks the scope it gets (ASGI HTTP connection scope, spec version
2.4: types, lower-cased header names, ``raw_path`` and ``query_string`` exactly the
request target's bytes, ``path`` the percent-decoded ``raw_path``) and answers with the
status, headers and body pieces (``more_body``) the input's directives ask for; an
``x-status`` that is not an int is sent as a str (the server must refuse it with a 500).
Fails when the scope is wrong, the answer breaks the oracle, or the server stops
answering.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
from typing import Any
from urllib.parse import unquote

import adapter_common as ac
import atheris
import feedback

with atheris.instrument_imports(include=["cymongoose"]):
    from cymongoose.asgi.testing import ServerThread

DIRECTIVES: dict[bytes, ac.Directives] = {}
SEEN: set[bytes] = set()
PROBLEMS: list[str] = []
_lock = threading.Lock()
_ids = itertools.count(1)


class AppRaised(Exception):
    """Raised by the app on purpose (``x-raise``)."""


def check_scope(scope: dict[str, Any]) -> None:
    """Record (in PROBLEMS) what is wrong with an ``http`` scope by the ASGI spec."""
    def problem(text: str) -> None:
        PROBLEMS.append(f"scope: {text} (scope {scope!r})")

    expected_types = {"type": str, "http_version": str, "method": str, "scheme": str,
                      "path": str, "raw_path": bytes, "query_string": bytes,
                      "root_path": str, "headers": list}
    for key, kind in expected_types.items():
        if type(scope.get(key)) is not kind:
            problem(f"{key} is {type(scope.get(key)).__name__}, not {kind.__name__}")
            return
    if scope["http_version"] not in ("1.0", "1.1"):
        problem(f"http_version {scope['http_version']!r}")
    for item in scope["headers"]:
        if not (type(item) in (tuple, list) and len(item) == 2
                and type(item[0]) is bytes and type(item[1]) is bytes):
            problem(f"header {item!r} is not a pair of bytes")
        elif item[0] != item[0].lower():
            problem(f"header name {item[0]!r} is not lower-cased")
    raw = scope["raw_path"]
    if b"?" in raw:
        problem("raw_path contains the query string")
    if raw[:1] == b"/":
        # Bytes that are not UTF-8 once decoded: U+FFFD or surrogate escapes both pass.
        text = raw.decode("utf-8", "surrogateescape")
        wants = {unquote(text), unquote(text, errors="surrogateescape")}
        if scope["path"] not in {scope["root_path"] + w for w in wants}:
            problem(f"path {scope['path']!r} is not the decoded raw_path {wants!r}")
    for key in ("client", "server"):
        value = scope.get(key)
        if value is not None and not (len(value) == 2 and type(value[0]) is str
                                      and type(value[1]) is int):
            problem(f"{key} {value!r} is not (host: str, port: int)")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        PROBLEMS.append(f"unexpected scope type {scope['type']!r}")
        return
    check_scope(scope)
    request_id = b""
    for name, value in scope["headers"]:
        if name == b"x-fuzz-id":
            request_id = value
    d = DIRECTIVES.get(request_id, ac.Directives())
    # Methods are case-sensitive tokens (RFC 9110 section 9.1): passed on as sent.
    if d.target is not None and scope["method"] != d.method.decode("latin-1"):
        PROBLEMS.append(f"scope: method {scope['method']!r} for {d.method!r}")
    if d.target is not None and (scope["raw_path"], scope["query_string"]) != d.target:
        PROBLEMS.append(f"scope: raw_path {scope['raw_path']!r}, query_string "
                        f"{scope['query_string']!r} for the target {d.target!r}")
    with _lock:
        SEEN.add(request_id)
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if d.raise_at == "before":
        raise AppRaised("before http.response.start")
    status: Any = d.status_code
    if status is None:
        status = d.status.decode("latin-1")  # not an int: the server must refuse it
    await send({"type": "http.response.start", "status": status, "headers": d.headers})
    step = max(1, -(-len(body) // d.pieces))
    pieces = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
    for i, piece in enumerate(pieces):
        await send({"type": "http.response.body", "body": piece,
                    "more_body": i < len(pieces) - 1})
        if d.raise_at == "after":
            raise AppRaised("after the first body piece")


SERVER: ServerThread | None = None


def test_one_input(data: bytes) -> None:
    global SERVER
    if SERVER is None:
        SERVER = ServerThread(app, access_log=False, keep_alive_timeout_s=1).__enter__()
    request_id = next(_ids)
    request, method, body, d = ac.build_request(data, request_id)
    key = b"%d" % request_id
    DIRECTIVES[key] = d
    try:
        raw = ac.exchange(SERVER.port, request)
        with _lock:
            seen = key in SEEN
            SEEN.discard(key)
        status = ac.check_answer(raw, method, body, d, "asgi", seen)
        feedback.observe("status", (status, seen, d.valid_for("asgi")))
        if PROBLEMS:
            problems = list(PROBLEMS)
            PROBLEMS.clear()
            raise AssertionError("; ".join(problems))
    finally:
        DIRECTIVES.pop(key, None)


def main() -> None:
    # The app raises on purpose: keep the server's error log quiet.
    logging.getLogger("cymongoose").setLevel(logging.CRITICAL)
    atheris.Setup(sys.argv, atheris.instrument_func(test_one_input))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
