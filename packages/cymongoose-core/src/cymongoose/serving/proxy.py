"""Proxy headers: the real client, scheme and host behind trusted reverse proxies.

Headers are honoured only when the immediate peer is trusted (``forwarded_allow_ips``).
Supported: ``X-Forwarded-For``, ``X-Forwarded-Proto``, ``X-Forwarded-Host`` and RFC 7239
``Forwarded`` (which wins when both are present). Lists are read right to left, each
proxy having appended its own view: the client is the rightmost address that is not itself
a trusted proxy, so a client cannot pose as anybody by sending these headers itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .config import parse_ip_list
from .httprules import PROXY_HEADER_NAMES, ascii_digits

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


class ProxyResult(NamedTuple):
    """What the proxies say about the request.

    ``client`` is ``(host, port)`` (port 0 when unknown) or None; ``scheme`` is ``"http"``
    or ``"https"`` (a WebSocket server maps them to ``ws``/``wss``); ``host`` is the
    ``Host`` the client asked for, or None when no proxy said so.
    """

    client: tuple[str, int] | None
    scheme: str
    host: str | None


def _parse_address(value: str) -> Address | None:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped  # "::ffff:10.0.0.1" from a dual-stack listener
    return addr


def _split_node(node: str) -> tuple[str, int]:
    """``"1.2.3.4:80"`` / ``"[::1]:80"`` / ``"::1"`` / ``"1.2.3.4"`` -> (host, port or 0)."""
    node = node.strip()
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif node.count(":") == 1:
        host, _, port = node.partition(":")
    else:
        host, port = node, ""
    return host, int(port) if ascii_digits(port) and int(port) <= 65535 else 0


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
        out, escape = [], False
        for ch in value:
            if escape or ch != "\\":
                out.append(ch)
                escape = False
            else:
                escape = True
        return "".join(out)
    return value


def _split_outside_quotes(value: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escape = False
    for ch in value:
        if escape:
            escape = False
        elif quoted and ch == "\\":
            escape = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """Parse an RFC 7239 ``Forwarded`` value into one dict per element (lower-case keys).

    ``'for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"'`` ->
    ``[{"for": "192.0.2.60", "proto": "http"}, {"for": "[2001:db8::1]:4711"}]``.
    Malformed pairs are skipped (RFC 7239 section 4).
    """
    elements = []
    for element in _split_outside_quotes(value, ","):
        pairs: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            name, eq, val = pair.partition("=")
            name = name.strip().lower()
            if eq and name:
                pairs[name] = _unquote(val)
        if pairs:
            elements.append(pairs)
    return elements


class ProxyHeaders:
    """Resolve proxy headers for requests coming from trusted addresses.

    ``trusted``: ``"*"`` (trust every peer), or IPs and CIDRs as a comma-separated str or a
    list (``"127.0.0.1, 10.0.0.0/8, ::1"``). Raises ValueError naming an entry that is
    neither. IPv4-mapped IPv6 peers (``::ffff:10.0.0.1``) match their IPv4 entries.
    """

    def __init__(self, trusted: str | Sequence[str]) -> None:
        entries = parse_ip_list(trusted if isinstance(trusted, str) else list(trusted))
        self.trust_all = "*" in entries
        self._addresses: set[Address] = set()
        self._networks: list[Network] = []
        for entry in entries:
            if entry == "*":
                continue
            try:
                if "/" in entry:
                    self._networks.append(ipaddress.ip_network(entry, strict=False))
                else:
                    addr = _parse_address(entry)
                    if addr is None:
                        raise ValueError(entry)
                    self._addresses.add(addr)
            except ValueError:
                raise ValueError(
                    f"forwarded_allow_ips entry {entry!r} is not an IP address, a CIDR "
                    f"network or '*'"
                ) from None

    def is_trusted(self, host: str | None) -> bool:
        """Whether the peer ``host`` (an IP address as a str) is a trusted proxy."""
        if self.trust_all:
            return True
        if not host:
            return False
        addr = _parse_address(host.strip("[]"))
        if addr is None:
            return False
        return addr in self._addresses or any(addr in net for net in self._networks)

    def resolve(
        self,
        headers: Iterable[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
        scheme: str = "http",
    ) -> ProxyResult:
        """Apply the proxy headers of one request.

        Args:
            headers: ASGI-style ``[(b"lower-case-name", b"value"), ...]``; repeated headers
                are read as one comma-separated list, in order.
            client: the immediate peer ``(host, port)``; None on a Unix socket, whose
                peers are trusted only with ``"*"``.
            scheme: ``"http"`` or ``"https"`` as seen on our socket.

        Returns a :class:`ProxyResult`; when the peer is not trusted, or no proxy header is
        present, it is ``(client, scheme, None)`` unchanged.
        """
        unchanged = ProxyResult(client, scheme, None)
        if not (self.trust_all if client is None else self.is_trusted(client[0])):
            return unchanged
        values: dict[bytes, list[str]] = {}
        for name, value in headers:
            if name in PROXY_HEADER_NAMES:
                values.setdefault(name, []).append(value.decode("latin-1"))
        if not values:
            return unchanged
        if b"forwarded" in values:
            return self._from_forwarded(", ".join(values[b"forwarded"]), client, scheme)
        return self._from_x_forwarded(values, client, scheme)

    def _pick(self, hops: list[str]) -> int:
        """Index of the rightmost hop that is not a trusted proxy (0 if all are trusted)."""
        for i in range(len(hops) - 1, -1, -1):
            if not self.is_trusted(_split_node(hops[i])[0]):
                return i
        return 0

    def _from_forwarded(
        self, value: str, client: tuple[str, int] | None, scheme: str
    ) -> ProxyResult:
        elements = parse_forwarded(value)
        with_for = [e for e in elements if "for" in e]
        if not with_for:
            # No client information; proto/host of the nearest proxy still apply.
            element = elements[-1] if elements else {}
        else:
            element = with_for[self._pick([e["for"] for e in with_for])]
            client = _split_node(element["for"])
        proto = _SCHEMES.get(element.get("proto", "").lower(), scheme)
        host = element.get("host") or None
        return ProxyResult(client, proto, host)

    def _from_x_forwarded(
        self, values: dict[bytes, list[str]], client: tuple[str, int] | None, scheme: str
    ) -> ProxyResult:
        hops = _split_list(", ".join(values.get(b"x-forwarded-for", [])))
        index = None
        if hops:
            index = self._pick(hops)
            client = _split_node(hops[index])

        def aligned(name: bytes) -> str | None:
            # Proxies that append to X-Forwarded-Proto/-Host keep it aligned with
            # X-Forwarded-For: take the chosen hop's entry; otherwise the nearest proxy's.
            items = _split_list(", ".join(values.get(name, [])))
            if not items:
                return None
            if index is not None and len(items) == len(hops):
                return items[index]
            return items[-1]

        proto = _SCHEMES.get((aligned(b"x-forwarded-proto") or "").lower(), scheme)
        return ProxyResult(client, proto, aligned(b"x-forwarded-host"))
