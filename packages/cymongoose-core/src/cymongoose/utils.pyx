# Module-level utilities.


def millis() -> int:
    """Milliseconds from mongoose's monotonic clock (``mg_millis``)."""
    return mg_millis()


cdef void _log_char(char c, void *param) noexcept nogil:
    # mongoose's log output. Its hex dumps (mg_hexdump: a request that does not parse, an
    # unexpected DNS answer) are written whatever the level; at MG_LL_NONE nothing is.
    if mg_log_level > MG_LL_NONE:
        mg_pfn_stdout(c, param)


mg_log_set_fn(_log_char, NULL)


def log_set(int level) -> None:
    """Set mongoose's log level (``MG_LL_NONE`` .. ``MG_LL_VERBOSE``)."""
    if level < MG_LL_NONE or level > MG_LL_VERBOSE:
        raise ValueError(f"log level {level} is not in {MG_LL_NONE}..{MG_LL_VERBOSE}")
    mg_log_set(level)


def log_get() -> int:
    """Current mongoose log level."""
    return mg_log_level


# --- helpers -----------------------------------------------------------------

cdef inline bytes _path_arg(object path):
    cdef bytes p = _cstr_arg(path, "path")
    if not p.startswith(b"$"):
        raise ValueError(f"path must start with '$' (JSONPath root), got {path!r}")
    return p


# --- JSON (mongoose's zero-allocation JSON reader) ----------------------------

def json_get(data, path):
    """Raw JSON token at ``path`` (``"$.a.b[0]"``) of ``data`` (bytes/str) as str, or None.

    String tokens keep their quotes and escapes (``mg_json_get_tok``). Raises
    ValueError when ``path`` does not start with ``$``.
    """
    cdef bytes d = _as_bytes(data, "data")
    cdef bytes p = _path_arg(path)
    cdef mg_str tok = mg_json_get_tok(_mgs(d), p)
    if tok.buf == NULL:
        return None
    return _str(tok)


def json_get_num(data, path, default=None):
    """Number at ``path`` as float, or ``default`` when missing or not a number (``mg_json_get_num``)."""
    cdef bytes d = _as_bytes(data, "data")
    cdef bytes p = _path_arg(path)
    cdef double v = 0
    if mg_json_get_num(_mgs(d), p, &v):
        return v
    return default


def json_get_bool(data, path, default=None):
    """Boolean at ``path``, or ``default`` when missing or not a boolean (``mg_json_get_bool``)."""
    cdef bytes d = _as_bytes(data, "data")
    cdef bytes p = _path_arg(path)
    cdef bint v = 0
    if mg_json_get_bool(_mgs(d), p, &v):
        return bool(v)
    return default


def json_get_long(data, path, long default=0) -> int:
    """Number at ``path`` as int (C long), or ``default`` (``mg_json_get_long``)."""
    cdef bytes d = _as_bytes(data, "data")
    cdef bytes p = _path_arg(path)
    return mg_json_get_long(_mgs(d), p, default)


def json_get_str(data, path):
    """Unescaped string at ``path`` as str, or None when missing / not a string.

    Located with ``mg_json_get_tok``; escapes (including ``\\uXXXX`` and surrogate
    pairs, which ``mg_json_get_str`` reduces to single bytes) are decoded by the
    standard ``json`` module. Raises ValueError on a malformed string token.
    """
    cdef bytes d = _as_bytes(data, "data")
    cdef bytes p = _path_arg(path)
    cdef mg_str tok = mg_json_get_tok(_mgs(d), p)
    if tok.buf == NULL or tok.len < 2 or tok.buf[0] != 34:  # '"'
        return None
    try:
        return _json_loads(_str(tok))
    except ValueError as exc:
        raise ValueError(f"malformed JSON string at {path!r}: {exc}") from None


# --- URLs -----------------------------------------------------------------------

def url_encode(data) -> str:
    """Percent-encode ``data`` (str, UTF-8, or bytes); unreserved characters kept
    (``mg_url_encode``): ``url_encode("a b@é") == "a%20b%40%c3%a9"``."""
    cdef bytes b = _as_bytes(data, "data")
    # mg_url_encode stops (returns 0) unless 4 bytes stay free before each input byte.
    cdef size_t cap = 3 * len(b) + 5
    cdef char *buf = <char *>malloc(cap)
    cdef size_t n
    if buf == NULL:
        raise MemoryError()
    try:
        n = mg_url_encode(<char *>b, len(b), buf, cap)
        return PyUnicode_DecodeLatin1(buf, n, NULL)
    finally:
        free(buf)


def url_decode(s, bint form=False) -> str:
    """Percent-decode ``s``; ``form=True`` also turns ``+`` into space (``mg_url_decode``).

    Raises ValueError on a malformed escape.
    """
    cdef bytes b = _as_bytes(s, "s")
    cdef size_t cap = len(b) + 1
    cdef char *buf = <char *>malloc(cap)
    cdef int n
    if buf == NULL:
        raise MemoryError()
    try:
        n = mg_url_decode(<char *>b, len(b), buf, cap, form)
        if n < 0:
            raise ValueError(f"cannot URL-decode {s!r}")
        return PyUnicode_DecodeUTF8(buf, n, "surrogateescape")
    finally:
        free(buf)


def url_port(url) -> int:
    """Port of ``url``; scheme default (http/ws 80, https/wss 443, mqtt 1883, mqtts 8883) or 0."""
    cdef bytes u = _cstr_arg(url, "url")
    return mg_url_port(u)


def url_host(url) -> str:
    """Host of ``url`` without the port; an IPv6 address keeps its brackets (``mg_url_host``)."""
    cdef bytes u = _cstr_arg(url, "url")
    return _str(mg_url_host(u))


def url_user(url) -> str:
    """User name of ``url`` (``user:pass@host``), or "" (``mg_url_user``)."""
    cdef bytes u = _cstr_arg(url, "url")
    return _str(mg_url_user(u))


def url_pass(url) -> str:
    """Password of ``url`` (``user:pass@host``), or "" (``mg_url_pass``)."""
    cdef bytes u = _cstr_arg(url, "url")
    return _str(mg_url_pass(u))


def url_uri(url) -> str:
    """Path (with query) of ``url``, "/" when it has none (``mg_url_uri``)."""
    cdef bytes u = _cstr_arg(url, "url")
    cdef const char *p = mg_url_uri(u)
    return (<bytes>p).decode("utf-8", "surrogateescape")


def url_is_ssl(url) -> bool:
    """True when ``url``'s scheme uses TLS (https, wss, mqtts, ssl, tls, tcps)."""
    cdef bytes u = _cstr_arg(url, "url")
    return bool(mg_url_is_ssl(u))


# --- matching and HTTP parsing --------------------------------------------------

def match(s, pattern):
    """Glob-match all of ``s`` against ``pattern`` (``mg_match``).

    ``?`` matches one character, ``*`` anything except ``/``, ``#`` anything.
    Returns ``(matched: bool, captures: list[str])``, one capture per wildcard
    (empty list when not matched).
    """
    cdef bytes b = _as_bytes(s, "s")
    cdef bytes p = _as_bytes(pattern, "pattern")
    cdef Py_ssize_t nwild = p.count(b"?") + p.count(b"*") + p.count(b"#")
    cdef mg_str *caps = <mg_str *>malloc((nwild + 1) * sizeof(mg_str))
    cdef Py_ssize_t i
    if caps == NULL:
        raise MemoryError()
    try:
        for i in range(nwild + 1):
            caps[i].buf = NULL
            caps[i].len = 0
        if not mg_match(_mgs(b), _mgs(p), caps):
            return (False, [])
        return (True, [_str(caps[i]) if caps[i].buf != NULL else "" for i in range(nwild)])
    finally:
        free(caps)


def http_var(buf, name):
    """Value of ``name`` in a query string / form body ``buf``, URL-decoded, or None.

    Follows ``mg_http_var`` (first occurrence); ``+`` decodes to space.
    """
    cdef bytes b = _as_bytes(buf, "buf")
    cdef bytes n = _as_bytes(name, "name")
    cdef mg_str v = mg_http_var(_mgs(b), _mgs(n))
    if v.buf == NULL:
        return None
    return url_decode(PyBytes_FromStringAndSize(v.buf, v.len), True)


def http_parse_multipart(body, Py_ssize_t offset=0):
    """Parse the multipart/form-data part of ``body`` at ``offset`` (``mg_http_next_multipart``).

    Returns ``(next_offset, part)`` where ``part`` is a dict
    ``{"name": str, "filename": str, "body": bytes}``, or ``(0, None)`` when no
    part follows. Raises ValueError for a negative or out-of-range ``offset``.
    """
    cdef bytes b = _as_bytes(body, "body")
    cdef mg_http_part part
    cdef size_t nxt
    if offset < 0 or offset > len(b):
        raise ValueError(f"offset {offset} is outside 0..{len(b)}")
    nxt = mg_http_next_multipart(_mgs(b), <size_t>offset, &part)
    if nxt == 0:
        return (0, None)
    return (nxt, {"name": _str(part.name), "filename": _str(part.filename),
                  "body": _bytes(part.body)})


# --- digests and encodings -------------------------------------------------------

def md5(data) -> bytes:
    """MD5 digest (16 bytes) of ``data`` (RFC 1321; mongoose's ``mg_md5_*``)."""
    cdef bytes b = _as_bytes(data, "data")
    cdef const unsigned char *p = <const unsigned char *><char *>b
    cdef size_t n = len(b)
    cdef mg_md5_ctx ctx
    cdef unsigned char out[16]
    with nogil:
        mg_md5_init(&ctx)
        mg_md5_update(&ctx, p, n)
        mg_md5_final(&ctx, out)
    return PyBytes_FromStringAndSize(<char *>out, 16)


def sha1(data) -> bytes:
    """SHA-1 digest (20 bytes) of ``data`` (``mg_sha1_*``)."""
    cdef bytes b = _as_bytes(data, "data")
    cdef const unsigned char *p = <const unsigned char *><char *>b
    cdef size_t n = len(b)
    cdef mg_sha1_ctx ctx
    cdef unsigned char out[20]
    with nogil:
        mg_sha1_init(&ctx)
        mg_sha1_update(&ctx, p, n)
        mg_sha1_final(out, &ctx)
    return PyBytes_FromStringAndSize(<char *>out, 20)


def sha256(data) -> bytes:
    """SHA-256 digest (32 bytes) of ``data`` (``mg_sha256``)."""
    cdef bytes b = _as_bytes(data, "data")
    cdef uint8_t *p = <uint8_t *><char *>b
    cdef size_t n = len(b)
    cdef uint8_t out[32]
    with nogil:
        mg_sha256(out, p, n)
    return PyBytes_FromStringAndSize(<char *>out, 32)


def hmac_sha256(key, data) -> bytes:
    """HMAC-SHA-256 (RFC 2104, 32 bytes) of ``data`` under ``key`` (``mg_hmac_sha256``)."""
    cdef bytes k = _as_bytes(key, "key")
    cdef bytes b = _as_bytes(data, "data")
    cdef uint8_t *kp = <uint8_t *><char *>k
    cdef uint8_t *p = <uint8_t *><char *>b
    cdef size_t kn = len(k), n = len(b)
    cdef uint8_t out[32]
    with nogil:
        mg_hmac_sha256(out, kp, kn, p, n)
    return PyBytes_FromStringAndSize(<char *>out, 32)


def base64_encode(data) -> str:
    """Standard base64 (RFC 4648, with padding) of ``data`` (``mg_base64_encode``)."""
    cdef bytes b = _as_bytes(data, "data")
    cdef size_t cap = 4 * ((len(b) + 2) // 3) + 1
    cdef char *buf = <char *>malloc(cap)
    cdef size_t n
    if buf == NULL:
        raise MemoryError()
    try:
        n = mg_base64_encode(<const unsigned char *><char *>b, len(b), buf, cap)
        return PyUnicode_DecodeLatin1(buf, n, NULL)
    finally:
        free(buf)


def base64_decode(data) -> bytes:
    """Decode standard base64 ``data`` (str or bytes) (``mg_base64_decode``).

    Raises ValueError when ``data`` is not valid base64.
    """
    cdef bytes b = _as_bytes(data, "data")
    cdef size_t cap = len(b) * 3 // 4 + 4
    cdef char *buf
    cdef size_t n
    if len(b) == 0:
        return b""
    buf = <char *>malloc(cap)
    if buf == NULL:
        raise MemoryError()
    try:
        n = mg_base64_decode(<char *>b, len(b), buf, cap)
        if n == 0:
            raise ValueError(f"invalid base64: {data!r:.60}")
        return PyBytes_FromStringAndSize(buf, n)
    finally:
        free(buf)


def crc32(data, unsigned long initial=0) -> int:
    """CRC-32 (IEEE 802.3, as ``binascii.crc32``) of ``data``, continuing from ``initial``."""
    cdef bytes b = _as_bytes(data, "data")
    cdef const char *p = <char *>b
    cdef size_t n = len(b)
    cdef uint32_t crc = <uint32_t>(initial & 0xFFFFFFFF)
    with nogil:
        crc = mg_crc32(crc, p, n)
    return crc


def random_bytes(Py_ssize_t length) -> bytes:
    """``length`` random bytes from the OS's strong source (``mg_random``).

    ValueError if ``length`` < 0.
    """
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    cdef bytes out = PyBytes_FromStringAndSize(NULL, length)
    if length:
        mg_random(<char *>out, length)
    return out


def random_str(Py_ssize_t length) -> str:
    """``length`` random characters from ``[a-zA-Z0-9]`` (``mg_random_str``).

    ValueError if ``length`` < 0.
    """
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    cdef char *buf = <char *>malloc(length + 1)
    if buf == NULL:
        raise MemoryError()
    try:
        mg_random_str(buf, length + 1)
        return PyUnicode_DecodeLatin1(buf, length, NULL)
    finally:
        free(buf)
