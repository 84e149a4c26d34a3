# A WSGI response head (and body) written straight into a connection's send buffer:
# no intermediate bytes objects, one copy of each string. The common case only (str
# status and header pairs of 1-byte-kind strings); anything else returns -1 and the
# caller takes the general path (_wsgi_head), which encodes, checks and raises.

from cpython.unicode cimport PyUnicode_KIND, PyUnicode_1BYTE_DATA, PyUnicode_GET_LENGTH

# RFC 9110 section 5.6.2: a field name is a token. (Also used by connection.pyx.)
cdef bytes _TOKEN_CHARS = (b"!#$%&'*+-.^_`|~0123456789"
                           b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
cdef unsigned char _IS_TOKEN[256]
memset(_IS_TOKEN, 0, sizeof(_IS_TOKEN))
for _ch in _TOKEN_CHARS:
    _IS_TOKEN[_ch] = 1


cdef inline bint _latin1_view(object s, const char **buf, Py_ssize_t *n) noexcept:
    # PEP 3333 native strings: a 1-byte-kind str is its latin-1 encoding already.
    if type(s) is not str or PyUnicode_KIND(s) != 1:
        return False
    buf[0] = <const char *>PyUnicode_1BYTE_DATA(s)
    n[0] = PyUnicode_GET_LENGTH(s)
    return True


cdef inline bint _clean_value(const char *p, Py_ssize_t n) noexcept nogil:
    # No CR, LF or NUL: nothing that could end the field early (RFC 9112 section 4).
    cdef Py_ssize_t i
    cdef unsigned char ch
    for i in range(n):
        ch = <unsigned char>p[i]
        if ch < 14 and (ch == 13 or ch == 10 or ch == 0):
            return False
    return True


cdef inline bint _token(const char *p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    if n == 0:
        return False
    for i in range(n):
        if not _IS_TOKEN[<unsigned char>p[i]]:
            return False
    return True


cdef inline char *_put(char *out, const char *p, Py_ssize_t n) noexcept nogil:
    memcpy(out, p, n)
    return out + n


cdef int _wsgi_emit(mg_connection *c, object status, list headers, const char *body,
                    Py_ssize_t body_len, Py_ssize_t content_length, bint close) except -2:
    """Append ``HTTP/1.1 <status>``, the headers, ``Content-Length: <content_length>``
    (if >= 0 and the app gave none), ``Connection: close`` (if ``close``), the blank
    line and ``body`` to ``c.send``. Returns 0, or -1 (nothing written) when the
    general path must do it: a non-str or non-latin-1 string, an invalid character,
    a pair that is not a 2-tuple. Raises MemoryError if the buffer cannot grow."""
    cdef const char *sbuf
    cdef const char *p
    cdef Py_ssize_t slen, n, nlen, vlen, total, i, count = len(headers)
    cdef bint has_len = False
    cdef char digits[24]
    cdef int dlen = 0
    cdef char *out
    if not _latin1_view(status, &sbuf, &slen) or not _clean_value(sbuf, slen):
        return -1
    total = 9 + slen + 2 + 2 + body_len  # "HTTP/1.1 " status CRLF ... CRLF body
    for i in range(count):
        pair = headers[i]
        if type(pair) is not tuple or len(<tuple>pair) != 2:
            return -1
        if not _latin1_view((<tuple>pair)[0], &p, &nlen) or not _token(p, nlen):
            return -1
        if nlen == 14 and strncasecmp(p, "content-length", 14) == 0:
            has_len = True
        if not _latin1_view((<tuple>pair)[1], &p, &vlen) or not _clean_value(p, vlen):
            return -1
        total += nlen + 2 + vlen + 2
    if not has_len and content_length >= 0:
        dlen = snprintf(digits, sizeof(digits), "%zd", content_length)
        total += 16 + dlen + 2
    if close:
        total += 19
    if c.send.size - c.send.len < <size_t>total and \
            not mg_iobuf_resize(&c.send, c.send.len + <size_t>total):
        raise MemoryError(f"connection {c.id}: send buffer allocation failed")
    out = <char *>c.send.buf + c.send.len
    out = _put(out, "HTTP/1.1 ", 9)
    out = _put(out, sbuf, slen)
    out = _put(out, "\r\n", 2)
    for i in range(count):
        pair = headers[i]
        _latin1_view((<tuple>pair)[0], &p, &n)
        out = _put(out, p, n)
        out = _put(out, ": ", 2)
        _latin1_view((<tuple>pair)[1], &p, &n)
        out = _put(out, p, n)
        out = _put(out, "\r\n", 2)
    if dlen:
        out = _put(out, "Content-Length: ", 16)
        out = _put(out, digits, dlen)
        out = _put(out, "\r\n", 2)
    if close:
        out = _put(out, "Connection: close\r\n", 19)
    out = _put(out, "\r\n", 2)
    if body_len:
        out = _put(out, body, body_len)
    c.send.len += <size_t>total
    return 0
