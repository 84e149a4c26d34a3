"""The cymongoose 0.2.x API that programs written for it rely on: keyword names, url_encode,
reply()/ws_upgrade() header errors, the top-level namespace (docs: spec core-api.md).

tests-integration/compat/ compares the same situations with cymongoose 0.2.5 itself.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time

import cymongoose
import pytest
from cymongoose import MG_EV_HTTP_MSG

# mongoose's unreserved characters (mg_is_url_safe); every other byte is %xx, lower case.
_URL_SAFE = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._-~")


def _url_encoded(text: str) -> str:
    return "".join(chr(b) if b in _URL_SAFE else f"%{b:02x}" for b in text.encode())


def test_utilities_take_0_2_keyword_names():
    assert cymongoose.base64_decode(data="YWJj") == b"abc"
    assert len(cymongoose.random_bytes(length=7)) == 7
    assert len(cymongoose.random_str(length=9)) == 9
    assert cymongoose.url_encode(data="a b") == "a%20b"
    assert cymongoose.crc32(data=b"x", initial=0) == cymongoose.crc32(b"x")
    assert cymongoose.json_get_long(data='{"a": 5}', path="$.a", default=0) == 5


@pytest.mark.parametrize("text", [" ", "@", "é", "/", "%", "\x00", "€", "a ", " a", "ab@"])
def test_url_encode_short_strings_needing_escapes(text):
    assert cymongoose.url_encode(text) == _url_encoded(text)


def test_url_encode_every_byte_and_long_input():
    for code in range(1, 0x800):
        assert cymongoose.url_encode(chr(code)) == _url_encoded(chr(code)), hex(code)
    assert cymongoose.url_encode("") == ""
    long_text = "".join(chr(c) for c in range(1, 0x800)) * 20
    assert cymongoose.url_encode(long_text) == _url_encoded(long_text)
    assert cymongoose.url_encode("é".encode()) == "%c3%a9"  # bytes: as their UTF-8 text


def _ask(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def test_connection_methods_take_0_2_keyword_names(serve):
    got = []

    def handler(c, ev, data):
        if ev == MG_EV_HTTP_MSG:
            c.set_handler(handler=handler)
            c.http_basic_auth(username="u", password="p")  # into the send buffer
            got.append(c.send_data())
            c.reply(status_code=200, body=b"x", headers={"X-A": "1"})

    srv = serve(handler)
    assert b"200 OK" in _ask(srv.port)
    assert got == [b"Authorization: Basic dTpw\r\n"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-A": "a\rb"}, "Header value contains illegal character (CR, LF, or NUL): 'a\\rb'"),
        ({"X-A": "a\nb"}, "Header value contains illegal character (CR, LF, or NUL): 'a\\nb'"),
        ({"X-A": "a\0b"}, "Header value contains illegal character (CR, LF, or NUL): 'a\\x00b'"),
        ({"X\r\nA": "v"}, "Header name contains illegal character (CR, LF, or NUL): 'X\\r\\nA'"),
        ({b"X-A": b"a\nb"}, "Header value contains illegal character (CR, LF, or NUL): b'a\\nb'"),
        ({b"X\0A": b"v"}, "Header name contains illegal character (CR, LF, or NUL): b'X\\x00A'"),
    ],
)
def test_header_errors_in_reply_and_ws_upgrade_as_0_2_5(serve, headers, message):
    errors = []

    def handler(c, ev, data):
        if ev == MG_EV_HTTP_MSG:
            for call in (lambda: c.reply(200, b"bad", headers),
                         lambda: c.reply_json({}, 200, headers),
                         lambda: c.ws_upgrade(data, headers)):
                try:
                    call()
                except ValueError as exc:
                    errors.append(str(exc))
            c.reply(200, b"clean")

    srv = serve(handler)
    raw = _ask(srv.port)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and b"bad" not in raw
    assert errors == [message] * 3


def test_reply_header_values_are_utf8_and_str_converted(serve):
    srv = serve(lambda c, ev, d: ev == MG_EV_HTTP_MSG and c.reply(
        200, b"", {"X-Text": "é", "X-Count": 5, b"X-Raw": b"\xff"}))
    raw = _ask(srv.port)
    assert b"\r\nX-Text: \xc3\xa9\r\n" in raw
    assert b"\r\nX-Count: 5\r\n" in raw and b"\r\nX-Raw: \xff\r\n" in raw


def test_all_lists_the_0_2_names_and_each_exists():
    names = cymongoose.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(cymongoose, name) is not None, name
    assert {"Manager", "Connection", "url_encode", "MG_EV_READ", "MG_LL_NONE"} <= set(names)


def _run(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env)


def test_import_does_not_import_any_other_distribution():
    out = _run("import sys, cymongoose; print(sorted(m for m in sys.modules "
               "if m.startswith('cymongoose.') and m != 'cymongoose._mongoose'))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_installed_metadata_names_no_adapter():
    # The core knows no adapter, not even as an extra: its adapters depend on it.
    from importlib.metadata import requires

    named = [r for r in requires("cymongoose-core") or [] if r.startswith("cymongoose")]
    assert named == []


@pytest.mark.skipif(importlib.util.find_spec("cymongoose.aio") is not None,
                    reason="cymongoose-aio is installed (tests-integration covers it)")
def test_async_manager_without_cymongoose_aio_names_the_package():
    with pytest.raises(ImportError, match="pip install cymongoose-aio"):
        cymongoose.AsyncManager  # noqa: B018
    assert "AsyncManager" not in cymongoose.__all__
    out = _run("from cymongoose import *; print(Manager.__name__)")
    assert out.returncode == 0 and out.stdout.strip() == "Manager", out.stderr


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        cymongoose.no_such_name  # noqa: B018


def test_consume_reads_is_inherited_by_accepted_connections(serve):
    flags = []
    srv = serve(lambda c, ev, d: ev == cymongoose.MG_EV_ACCEPT and flags.append(
        c.consume_reads), "tcp://127.0.0.1:0", consume_reads=True)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5):
        deadline = time.monotonic() + 10
        while not flags and time.monotonic() < deadline:
            time.sleep(0.005)
    assert flags == [True]
