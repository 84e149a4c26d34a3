"""`cymongoose.serving.proxy`: X-Forwarded-* and RFC 7239 Forwarded from trusted peers only."""

import pytest
from cymongoose.serving.proxy import ProxyHeaders, parse_forwarded

PEER = ("127.0.0.1", 40000)


def h(**headers):
    """``h(x_forwarded_for="1.2.3.4")`` -> ASGI-style header list."""
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


@pytest.mark.parametrize(
    ("trusted", "host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("10.0.0.0/8, ::1", "10.200.3.4", True),
        ("10.0.0.0/8, ::1", "::1", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("2001:db8::/32", "2001:db8:1::5", True),
        ("127.0.0.1", "::ffff:127.0.0.1", True),
        ("*", "203.0.113.9", True),
        (["192.0.2.1", "192.0.2.2"], "192.0.2.2", True),
        ("127.0.0.1", "not-an-ip", False),
        ("127.0.0.1", "", False),
    ],
)
def test_is_trusted(trusted, host, expected):
    assert ProxyHeaders(trusted).is_trusted(host) is expected


@pytest.mark.parametrize("entry", ["localhost", "10.0.0.0/33", "1.2.3"])
def test_invalid_entry_is_named(entry):
    with pytest.raises(ValueError, match=entry.replace(".", r"\.")):
        ProxyHeaders(f"127.0.0.1,{entry}")


def test_untrusted_peer_headers_are_ignored():
    proxy = ProxyHeaders("10.0.0.1")
    headers = h(x_forwarded_for="1.2.3.4", x_forwarded_proto="https", forwarded="for=5.6.7.8")
    assert proxy.resolve(headers, ("192.0.2.50", 1234)) == (("192.0.2.50", 1234), "http", None)


def test_trusted_peer_without_headers_is_unchanged():
    assert ProxyHeaders("127.0.0.1").resolve(h(host="a"), PEER, "https") == (PEER, "https", None)


def test_x_forwarded_for_single_hop():
    result = ProxyHeaders("127.0.0.1").resolve(
        h(x_forwarded_for="203.0.113.7", x_forwarded_proto="https",
          x_forwarded_host="shop.example"), PEER)
    assert result == (("203.0.113.7", 0), "https", "shop.example")


def test_x_forwarded_for_spoofed_prefix_is_skipped():
    # The client sent "X-Forwarded-For: 6.6.6.6"; our proxy appended the real address.
    result = ProxyHeaders("127.0.0.1").resolve(h(x_forwarded_for="6.6.6.6, 198.51.100.2"), PEER)
    assert result.client == ("198.51.100.2", 0)


def test_x_forwarded_for_skips_trusted_hops_right_to_left():
    proxy = ProxyHeaders("127.0.0.1, 10.0.0.0/8")
    headers = h(x_forwarded_for="6.6.6.6, 198.51.100.2, 10.0.0.5, 10.0.0.6")
    assert proxy.resolve(headers, PEER).client == ("198.51.100.2", 0)


def test_x_forwarded_for_all_trusted_takes_leftmost():
    proxy = ProxyHeaders("127.0.0.1, 10.0.0.0/8")
    assert proxy.resolve(h(x_forwarded_for="10.0.0.9, 10.0.0.5"), PEER).client == ("10.0.0.9", 0)


def test_x_forwarded_for_repeated_header_lines_are_one_list():
    headers = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"198.51.100.2")]
    assert ProxyHeaders("127.0.0.1").resolve(headers, PEER).client == ("198.51.100.2", 0)


def test_x_forwarded_for_with_ports_and_ipv6():
    proxy = ProxyHeaders("127.0.0.1")
    assert proxy.resolve(h(x_forwarded_for="[2001:db8::7]:4711"), PEER).client == (
        "2001:db8::7", 4711)
    assert proxy.resolve(h(x_forwarded_for="2001:db8::7"), PEER).client == ("2001:db8::7", 0)
    assert proxy.resolve(h(x_forwarded_for="192.0.2.1:80"), PEER).client == ("192.0.2.1", 80)


def test_x_forwarded_proto_aligned_with_hops():
    # client -> 10.0.0.5 (TLS) -> 127.0.0.1 (plain) -> us: each appended its view.
    proxy = ProxyHeaders("127.0.0.1, 10.0.0.5")
    headers = h(x_forwarded_for="203.0.113.7, 10.0.0.5", x_forwarded_proto="https, http")
    assert proxy.resolve(headers, PEER)[:2] == (("203.0.113.7", 0), "https")


@pytest.mark.parametrize(("proto", "scheme"),
                         [("https", "https"), ("HTTP", "http"), ("wss", "https"),
                          ("ws", "http"), ("gopher", "http")])
def test_x_forwarded_proto_values(proto, scheme):
    assert ProxyHeaders("*").resolve(h(x_forwarded_proto=proto), PEER).scheme == scheme


def test_x_forwarded_proto_alone_keeps_client():
    assert ProxyHeaders("*").resolve(h(x_forwarded_proto="https"), PEER) == (
        PEER, "https", None)


def test_forwarded_rfc7239_examples():
    assert parse_forwarded('for="_gazonk"') == [{"for": "_gazonk"}]
    assert parse_forwarded('For="[2001:db8:cafe::17]:4711"') == [
        {"for": "[2001:db8:cafe::17]:4711"}]
    assert parse_forwarded("for=192.0.2.60;proto=http;by=203.0.113.43") == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}]
    assert parse_forwarded("for=192.0.2.43, for=198.51.100.17") == [
        {"for": "192.0.2.43"}, {"for": "198.51.100.17"}]
    assert parse_forwarded('for="a,b;c";host="x\\"y"') == [{"for": "a,b;c", "host": 'x"y'}]


def test_forwarded_header_resolves_client_proto_host():
    headers = h(forwarded='for="[2001:db8::1]:4711";proto=https;host=shop.example')
    assert ProxyHeaders("127.0.0.1").resolve(headers, PEER) == (
        ("2001:db8::1", 4711), "https", "shop.example")


def test_forwarded_spoofed_element_is_skipped():
    headers = h(forwarded="for=6.6.6.6;proto=https, for=198.51.100.2;proto=http")
    result = ProxyHeaders("127.0.0.1").resolve(headers, PEER)
    assert result[:2] == (("198.51.100.2", 0), "http")


def test_forwarded_takes_precedence_over_x_forwarded():
    headers = h(x_forwarded_for="6.6.6.6", forwarded="for=198.51.100.2")
    assert ProxyHeaders("127.0.0.1").resolve(headers, PEER).client == ("198.51.100.2", 0)


def test_forwarded_from_untrusted_peer_is_ignored():
    headers = h(forwarded="for=198.51.100.2;proto=https")
    assert ProxyHeaders("10.0.0.1").resolve(headers, PEER) == (PEER, "http", None)


def test_no_client_a_unix_socket_peer_is_trusted_only_with_star():
    headers = h(x_forwarded_for="1.2.3.4", x_forwarded_proto="https")
    assert ProxyHeaders("127.0.0.1").resolve(headers, None) == (None, "http", None)
    assert ProxyHeaders("*").resolve(headers, None) == (("1.2.3.4", 0), "https", None)
    assert ProxyHeaders("*").resolve(h(x_forwarded_proto="https"), None) == (None, "https", None)


@pytest.mark.parametrize("port", [b"\xb9", b"\xb2\xb3", b"8o"])
def test_a_port_that_is_not_ascii_digits_counts_as_none(port):
    # Found by the fuzzer: b"\xb9" is "¹" in latin-1, which passes str.isdigit() but not int().
    headers = [(b"forwarded", b"for=203.0.113.7:" + port)]
    result = ProxyHeaders("127.0.0.1").resolve(headers, PEER)
    assert result.client == ("203.0.113.7", 0)
