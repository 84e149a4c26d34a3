# A response head (and body) written straight into a connection's send buffer: no
# intermediate bytes objects, one copy of each string. The common case only (bytes, or
# str of the 1-byte kind, in a list of 2-tuples or 2-lists); anything else returns -1 and
# the caller takes its general path, which encodes, checks and raises.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_KIND, PyUnicode_1BYTE_DATA, PyUnicode_GET_LENGTH

# RFC 9110 section 5.6.2: a field name is a token. (Also used by connection.pyx.)
cdef bytes _TOKEN_CHARS = (b"!#$%&'*+-.^_`|~0123456789"
                           b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
cdef unsigned char _IS_TOKEN[256]
memset(_IS_TOKEN, 0, sizeof(_IS_TOKEN))
for _ch in _TOKEN_CHARS:
    _IS_TOKEN[_ch] = 1


cdef extern from *:
    """
    #include <time.h>
    /* RFC 9110 section 5.6.7 IMF-fixdate, "Date: Sun, 06 Nov 1994 08:49:37 GMT\\r\\n",
       remade once a second. Two buffers: a writer (any thread, GIL or not) fills the
       one readers are not using, then publishes it; a reader copies the 37 bytes. */
    #define CYM_DATE_LINE_LEN 37
    static char cym_date_bufs[2][CYM_DATE_LINE_LEN + 1];
    static const char *volatile cym_date_cur = NULL;
    static volatile time_t cym_date_sec = 0;
    static const char *cym_date_line(void) {
        static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        time_t now = time(NULL);
        const char *cur = cym_date_cur;
        if (cur != NULL && now == cym_date_sec)
            return cur;
        char *buf = cym_date_bufs[cur == cym_date_bufs[0] ? 1 : 0];
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(buf, CYM_DATE_LINE_LEN + 1, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\\r\\n",
                 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                 (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min, tm.tm_sec);
        __atomic_store_n(&cym_date_cur, buf, __ATOMIC_RELEASE);
        cym_date_sec = now;
        return buf;
    }
    """
    const int CYM_DATE_LINE_LEN
    const char *cym_date_line() noexcept nogil


cdef enum:
    _MAX_DEFAULTS = 16  # ServerOpts.default_off's size
    _DATE_BIT = 1 << 16


cdef inline ServerOpts *_server_of(mg_connection *c) noexcept nogil:
    # The defaults of a connection accepted by a configure_http_server listener, or NULL.
    cdef ConnState *st = <ConnState *>c.fn_data
    if st == NULL or st.c != c:
        return NULL
    return st.srv


cdef inline int _default_bit(ServerOpts *srv, const char *p, Py_ssize_t n) noexcept nogil:
    # Which default header (its bit) the response field named p[:n] replaces; 0: none.
    cdef int i
    if srv.date_header and n == 4 and strncasecmp(p, "date", 4) == 0:
        return _DATE_BIT
    for i in range(srv.default_count):
        if <size_t>n == srv.default_name_len[i] and \
                strncasecmp(p, srv.defaults + srv.default_off[i], n) == 0:
            return 1 << i
    return 0


cdef inline size_t _defaults_size(ServerOpts *srv, int present) noexcept nogil:
    cdef size_t total = 0
    cdef int i
    if srv.date_header and not (present & _DATE_BIT):
        total += CYM_DATE_LINE_LEN
    for i in range(srv.default_count):
        if not (present & (1 << i)):
            total += _default_line_len(srv, i)
    return total


cdef inline size_t _default_line_len(ServerOpts *srv, int i) noexcept nogil:
    cdef size_t end = srv.default_off[i + 1] if i + 1 < srv.default_count \
        else srv.defaults_len
    return end - srv.default_off[i]


cdef inline char *_put_defaults(char *out, ServerOpts *srv, int present) noexcept nogil:
    """The default header lines the response has no field of (``present``: the bits of
    _default_bit it has) at ``out``; _defaults_size bytes."""
    cdef int i
    if srv.date_header and not (present & _DATE_BIT):
        out = _put(out, cym_date_line(), CYM_DATE_LINE_LEN)
    for i in range(srv.default_count):
        if not (present & (1 << i)):
            out = _put(out, srv.defaults + srv.default_off[i], _default_line_len(srv, i))
    return out


cdef inline bint _latin1_view(object s, const char **buf, Py_ssize_t *n) noexcept:
    # PEP 3333 native strings: a 1-byte-kind str is its latin-1 encoding already.
    if type(s) is not str or PyUnicode_KIND(s) != 1:
        return False
    buf[0] = <const char *>PyUnicode_1BYTE_DATA(s)
    n[0] = PyUnicode_GET_LENGTH(s)
    return True


cdef inline bint _wire_view(object s, const char **buf, Py_ssize_t *n) noexcept:
    # bytes as they are, or a str as its latin-1 bytes (_latin1_view).
    if type(s) is bytes:
        buf[0] = PyBytes_AS_STRING(s)
        n[0] = PyBytes_GET_SIZE(s)
        return True
    return _latin1_view(s, buf, n)


cdef inline bint _pair(object item) noexcept:
    if type(item) is tuple:
        return len(<tuple>item) == 2
    return type(item) is list and len(<list>item) == 2


cdef inline object _first(object pair):
    # The name of a pair _pair() accepted.
    return (<tuple>pair)[0] if type(pair) is tuple else (<list>pair)[0]


cdef inline object _second(object pair):
    return (<tuple>pair)[1] if type(pair) is tuple else (<list>pair)[1]


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


cdef int _emit(mg_connection *c, object first, object status, list headers,
               const char *body, Py_ssize_t body_len, Py_ssize_t content_length,
               bint close) except -2:
    """Append ``first`` + ``status`` (the status line without CRLF, in two parts), the
    headers, ``Content-Length: <content_length>`` (if >= 0 and the headers have none),
    ``Connection: close`` (if ``close``), the blank line and ``body`` to ``c.send``; on
    a connection of a `configure_http_server` listener also its default headers (Date,
    Server, ...) that ``headers`` has no field of.
    Returns 0, or -1 (nothing written) when the general path must do it: a string that
    is not bytes or latin-1 str, a field name that is not a token, CR/LF/NUL in a value,
    an item that is not a pair. Raises MemoryError if the buffer cannot grow."""
    cdef const char *fbuf
    cdef const char *sbuf
    cdef const char *p
    cdef Py_ssize_t flen, slen, n, nlen, vlen, total, i, count = len(headers)
    cdef bint has_len = False
    cdef ServerOpts *srv = _server_of(c)
    cdef int present = 0
    cdef size_t defaults = 0
    cdef char digits[24]
    cdef int dlen = 0
    cdef char *out
    if not _wire_view(first, &fbuf, &flen) or not _wire_view(status, &sbuf, &slen) or \
            not _clean_value(fbuf, flen) or not _clean_value(sbuf, slen):
        return -1
    total = flen + slen + 2 + 2 + body_len  # status line CRLF ... CRLF body
    for i in range(count):
        pair = headers[i]
        if not _pair(pair):
            return -1
        if not _wire_view(_first(pair), &p, &nlen) or not _token(p, nlen):
            return -1
        if nlen == 14 and strncasecmp(p, "content-length", 14) == 0:
            has_len = True
        elif srv != NULL:
            present |= _default_bit(srv, p, nlen)
        if not _wire_view(_second(pair), &p, &vlen) or not _clean_value(p, vlen):
            return -1
        total += nlen + 2 + vlen + 2
    if srv != NULL:
        defaults = _defaults_size(srv, present)
        total += defaults
    if not has_len and content_length >= 0:
        dlen = snprintf(digits, sizeof(digits), "%zd", content_length)
        total += 16 + dlen + 2
    if close:
        total += 19
    if c.send.size - c.send.len < <size_t>total and \
            not mg_iobuf_resize(&c.send, c.send.len + <size_t>total):
        raise MemoryError(f"connection {c.id}: send buffer allocation failed")
    out = <char *>c.send.buf + c.send.len
    out = _put(out, fbuf, flen)
    out = _put(out, sbuf, slen)
    out = _put(out, "\r\n", 2)
    if defaults:
        out = _put_defaults(out, srv, present)
    for i in range(count):
        pair = headers[i]
        _wire_view(_first(pair), &p, &n)
        out = _put(out, p, n)
        out = _put(out, ": ", 2)
        _wire_view(_second(pair), &p, &n)
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


cdef bytes _HTTP11 = b"HTTP/1.1 "


cdef inline int _wsgi_emit(mg_connection *c, object status, list headers, const char *body,
                           Py_ssize_t body_len, Py_ssize_t content_length,
                           bint close) except -2:
    # A PEP 3333 response: str status ("200 OK") and str header pairs.
    if type(status) is not str:
        return -1
    return _emit(c, _HTTP11, status, headers, body, body_len, content_length, close)
