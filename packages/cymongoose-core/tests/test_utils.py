"""Utility functions checked against Python's standard library."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import urllib.parse

import cymongoose as m
import pytest

SAMPLES = [b"", b"a", b"abc", b"hello world" * 100, os.urandom(1 << 16)]


@pytest.mark.parametrize("data", SAMPLES)
def test_digests(data):
    assert m.md5(data) == hashlib.md5(data).digest()
    assert m.sha1(data) == hashlib.sha1(data).digest()
    assert m.sha256(data) == hashlib.sha256(data).digest()
    for key in (b"", b"k", b"x" * 100):
        assert m.hmac_sha256(key, data) == hmac.new(key, data, "sha256").digest()


def test_digest_str_is_utf8():
    assert m.sha256("é") == hashlib.sha256("é".encode()).digest()
    with pytest.raises(TypeError, match="data"):
        m.md5(123)


@pytest.mark.parametrize("data", SAMPLES)
def test_base64_and_crc32(data):
    enc = m.base64_encode(data)
    assert enc == base64.b64encode(data).decode()
    assert m.base64_decode(enc) == data
    assert m.base64_decode(enc.encode()) == data
    assert m.crc32(data) == binascii.crc32(data)
    assert m.crc32(data, 12345) == binascii.crc32(data, 12345)


def test_crc32_incremental():
    assert m.crc32(b"world", m.crc32(b"hello ")) == binascii.crc32(b"hello world")


def test_base64_invalid():
    with pytest.raises(ValueError):
        m.base64_decode("!!!!")


def test_random():
    assert len(m.random_bytes(0)) == 0
    assert len(m.random_bytes(33)) == 33
    assert m.random_bytes(16) != m.random_bytes(16)
    s = m.random_str(40)
    assert len(s) == 40 and re.fullmatch(r"[A-Za-z0-9]+", s)
    assert m.random_str(0) == ""
    for f in (m.random_bytes, m.random_str):
        with pytest.raises(ValueError, match="n"):
            f(-1)


DOC = '{"a": {"b": [1, 2.5, "x\\ny"]}, "t": true, "f": false, "s": "h\\u00e9", "big": 1e3}'


def test_json():
    assert m.json_get(DOC, "$.a.b") == '[1, 2.5, "x\\ny"]'
    assert m.json_get(DOC, "$.a.b[2]") == '"x\\ny"'
    assert m.json_get(DOC, "$.nope") is None
    assert m.json_get_num(DOC, "$.a.b[1]") == 2.5
    assert m.json_get_num(DOC, "$.big") == 1000.0
    assert m.json_get_num(DOC, "$.nope") is None
    assert m.json_get_num(DOC, "$.t", 7) == 7
    assert m.json_get_bool(DOC, "$.t") is True
    assert m.json_get_bool(DOC, "$.f") is False
    assert m.json_get_bool(DOC, "$.a", "d") == "d"
    assert m.json_get_long(DOC, "$.a.b[0]") == 1
    assert m.json_get_long(DOC, "$.nope", -4) == -4
    assert m.json_get_str(DOC, "$.a.b[2]") == "x\ny"
    assert m.json_get_str(DOC, "$.s") == "hé"
    assert m.json_get_str(DOC, "$.t") is None
    assert m.json_get_str(DOC.encode(), "$.s") == "hé"
    with pytest.raises(ValueError, match="path"):
        m.json_get(DOC, "a.b")


@pytest.mark.parametrize("s", ["", "plain", "a b&c=d/e?f", "ünï ✓", "~-._*'()"])
def test_url_encode(s):
    enc = m.url_encode(s)
    assert re.fullmatch(r"[A-Za-z0-9~._%-]*", enc)
    assert urllib.parse.unquote(enc) == s
    assert enc.upper() == urllib.parse.quote(s, safe="~-._").upper()


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a/b?c=1",
        "https://user:secret@example.com:8443/x",
        "ws://127.0.0.1:9000",
        "wss://h.example/p",
        "mqtt://broker",
        "mqtts://broker:1234/",
    ],
)
def test_url_parts(url):
    p = urllib.parse.urlsplit(url)
    defaults = {"http": 80, "ws": 80, "https": 443, "wss": 443, "mqtt": 1883, "mqtts": 8883}
    assert m.url_port(url) == (p.port or defaults[p.scheme])
    assert m.url_host(url) == p.hostname
    assert m.url_user(url) == (p.username or "")
    assert m.url_pass(url) == (p.password or "")
    expect_uri = (p.path or "/") + (f"?{p.query}" if p.query else "")
    assert m.url_uri(url) == expect_uri
    assert m.url_is_ssl(url) is (p.scheme in ("https", "wss", "mqtts"))


def test_url_nul_refused():
    with pytest.raises(ValueError, match="url"):
        m.url_host("http://a\0b")


def test_match():
    assert m.match("/api/v1/users", "/api/*/#") == (True, ["v1", "users"])
    assert m.match("abc", "a?c") == (True, ["b"])
    assert m.match("/a/b", "/*") == (False, [])
    assert m.match("/a/b", "/#") == (True, ["a/b"])
    assert m.match("x", "x") == (True, [])


def test_http_var():
    q = "a=1&b=hello+w%20x&c=&d=%C3%A9"
    parsed = dict(urllib.parse.parse_qsl(q, keep_blank_values=True))
    for name in "abcd":
        assert m.http_var(q, name) == parsed[name]
    assert not m.http_var(q, "zz")


def test_http_parse_multipart():
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nDATA\x00\xff\r\n"
        b'--XyZ\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue 2\r\n'
        b"--XyZ--\r\n"
    )
    parts = []
    ofs = 0
    while True:
        ofs, part = m.http_parse_multipart(body, ofs)
        if part is None:
            break
        parts.append(part)
    assert ofs == 0
    assert parts == [
        {"name": "file", "filename": "a.txt", "body": b"DATA\x00\xff"},
        {"name": "field", "filename": "", "body": b"value 2"},
    ]
    with pytest.raises(ValueError, match="offset"):
        m.http_parse_multipart(body, len(body) + 1)
