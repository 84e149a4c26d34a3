# WebSocket permessage-deflate (RFC 7692): the negotiation of both sides and the
# per-connection compressor/decompressor (zlib). Connection.ws_upgrade/ws_accept agree
# as a server, Manager.ws_connect offers as a client; _dispatch inflates messages with
# RSV1 set and Connection.ws_send deflates text/binary messages once agreed.

import zlib as _zlib

# What ws_connect offers: the extension with our window left to the server (7.1.2.2).
_DEFLATE_OFFER = b"permessage-deflate; client_max_window_bits"
# 7.2.1: the tail every compressed message lost, put back before inflating.
# The largest inflated message where no server limit (ws_max_size) applies.
cdef size_t _WS_INFLATE_LIMIT = 16 * 1024 * 1024
cdef bytes _DEFLATE_TAIL = b"\x00\x00\xff\xff"
# Our compressor's window and memory: 2**12 bytes of history and memLevel 5 keep a
# connection at about 32 KiB (zlib's maximum is 256 KiB) for a small loss of ratio;
# RFC 7692 lets the sender use any window up to the agreed one.
cdef int _DEFLATE_OWN_BITS = 12
cdef int _DEFLATE_MEM_LEVEL = 5


class _DeflateTooBig(Exception):
    """An inflated message went past the limit (close 1009)."""


cdef class _WsDeflate:
    """The agreed permessage-deflate of one connection.

    ``send_bits``: the window our messages may use (0: we send uncompressed, as zlib
    cannot write raw deflate with an 8-bit window); ``send_reset``: we agreed not to
    keep our context between messages; ``response``: the agreed extension line.
    """

    cdef object _inflater
    cdef object _deflater
    cdef int send_bits
    cdef bint send_reset
    cdef readonly str response

    def __cinit__(self, int send_bits, bint send_reset, str response):
        self.send_bits = send_bits if send_bits >= 9 else 0
        self.send_reset = send_reset
        self.response = response
        self._inflater = None
        self._deflater = None

    cdef bytes inflate(self, const char *buf, size_t n, size_t limit):
        """One message's payload, inflated; at most ``limit`` bytes (0: unlimited),
        else _DeflateTooBig. Invalid data raises zlib.error."""
        cdef bytes out
        cdef bytes src = PyBytes_FromStringAndSize(NULL, n + 4)
        memcpy(<char *>src, buf, n)
        memcpy(<char *>src + n, <char *>_DEFLATE_TAIL, 4)
        if self._inflater is None:
            # The peer's window is at most 15 bits whatever was agreed: a larger window
            # than the sender's always decodes.
            self._inflater = _zlib.decompressobj(-15)
        # max_length bounds the memory a zip bomb can take: one byte past the limit.
        out = self._inflater.decompress(src, limit + 1 if limit else 0)
        if limit and <size_t>len(out) > limit:
            raise _DeflateTooBig()
        return out

    cdef bytes deflate(self, bytes data):
        """``data`` as one compressed message payload (7.2.1), or None to send it as
        it is (an 8-bit window)."""
        cdef bytes out
        if self.send_bits == 0:
            return None
        if self._deflater is None:  # made at the first message: idle sockets cost nothing
            self._deflater = _zlib.compressobj(
                _zlib.Z_DEFAULT_COMPRESSION, _zlib.DEFLATED,
                -min(self.send_bits, _DEFLATE_OWN_BITS), _DEFLATE_MEM_LEVEL)
        out = self._deflater.compress(data) + self._deflater.flush(
            _zlib.Z_FULL_FLUSH if self.send_reset else _zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(_DEFLATE_TAIL) else out


cdef list _deflate_offers(value):
    """The permessage-deflate offers of a Sec-WebSocket-Extensions value (RFC 6455 9.1):
    a list of parameter dicts (name -> value, None for a bare name; quotes removed), or
    None for a malformed one (a repeated name)."""
    cdef list offers = []
    cdef dict params
    text = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)
    for extension in text.split(","):
        parts = [p.strip() for p in extension.split(";")]
        if parts[0].lower() != "permessage-deflate":
            continue
        params = {}
        for part in parts[1:]:
            if not part:
                continue
            name, eq, v = part.partition("=")
            name = name.strip().lower()
            v = v.strip().strip('"') if eq else None
            if name in params:
                params = None
                break
            params[name] = v
        offers.append(params)
    return offers


cdef int _window_bits(params, str name, bint bare_ok) except -2:
    """The window bits parameter ``name``: 8..15, 0 when absent, 16 when bare (only if
    ``bare_ok``), -1 when invalid."""
    if name not in params:
        return 0
    v = params[name]
    if v is None:
        return 16 if bare_ok else -1
    if len(v) <= 2 and v.isdigit() and 8 <= int(v) <= 15:
        return int(v)
    return -1


cdef _WsDeflate _deflate_agree(value):
    """Server side (RFC 7692 section 5.1, 7.1): accept the first acceptable offer in the
    request's Sec-WebSocket-Extensions ``value``; None when there is none."""
    cdef int server_bits, client_bits
    cdef list response
    for params in _deflate_offers(value):
        if params is None or not set(params) <= {
                "server_no_context_takeover", "client_no_context_takeover",
                "server_max_window_bits", "client_max_window_bits"}:
            continue  # an offer we do not understand is declined (7.1)
        if (params.get("server_no_context_takeover", None) is not None
                or params.get("client_no_context_takeover", None) is not None):
            continue
        server_bits = _window_bits(params, "server_max_window_bits", False)
        client_bits = _window_bits(params, "client_max_window_bits", True)
        if server_bits < 0 or client_bits < 0:
            continue
        response = ["permessage-deflate"]
        if "server_no_context_takeover" in params:
            response.append("server_no_context_takeover")
        if "client_no_context_takeover" in params:
            response.append("client_no_context_takeover")
        if server_bits:
            response.append(f"server_max_window_bits={server_bits}")
        return _WsDeflate(server_bits or 15, "server_no_context_takeover" in params,
                          "; ".join(response))
    return None


cdef _WsDeflate _deflate_accepted(value):
    """Client side (RFC 7692 section 7.1): the server's Sec-WebSocket-Extensions
    ``value`` answering our offer; None when it agreed none. ValueError when the answer
    is not one we can take (RFC 6455 section 4.1: fail the connection)."""
    cdef list offers = _deflate_offers(value)
    cdef int server_bits, client_bits
    text = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)
    names = [e.split(";")[0].strip().lower() for e in text.split(",") if e.strip()]
    if not names:
        return None
    if names != ["permessage-deflate"] or offers[0] is None:
        raise ValueError(f"Sec-WebSocket-Extensions {text!r}: not the permessage-deflate "
                         f"offered")
    params = offers[0]
    if not set(params) <= {"server_no_context_takeover", "client_no_context_takeover",
                           "server_max_window_bits", "client_max_window_bits"} \
            or params.get("server_no_context_takeover", None) is not None \
            or params.get("client_no_context_takeover", None) is not None:
        raise ValueError(f"Sec-WebSocket-Extensions {text!r}: unknown parameter or value")
    server_bits = _window_bits(params, "server_max_window_bits", False)
    client_bits = _window_bits(params, "client_max_window_bits", False)
    if server_bits < 0 or client_bits < 0:
        raise ValueError(f"Sec-WebSocket-Extensions {text!r}: window bits not in 8..15")
    return _WsDeflate(client_bits or 15, "client_no_context_takeover" in params,
                      text.strip())
