# A response head (and body) written straight into a connection's send buffer: no
# intermediate bytes objects, one copy of each string. The common case only (bytes, or
# str of the 1-byte kind, in a list of 2-tuples or 2-lists); anything else returns -1 and
# the caller takes its general path, which encodes, checks and raises.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.ref cimport Py_XDECREF
from cpython.unicode cimport PyUnicode_KIND, PyUnicode_1BYTE_DATA, PyUnicode_GET_LENGTH
from libc.stdint cimport uint32_t, uint64_t

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


cdef extern from *:
    """
    /* No CR, LF or NUL in p[:n] (RFC 9112 section 4: nothing that could end the field
       early). Eight bytes at a time: (x - 0x0e..) & ~x & 0x80.. is non-zero exactly when
       some byte of x is below 14; only such a word is looked at byte by byte. */
    static inline int cym_clean_value(const char *p, Py_ssize_t n) {
        const uint64_t low = 0x0E0E0E0E0E0E0E0EULL, high = 0x8080808080808080ULL;
        Py_ssize_t i = 0, k;
        uint64_t x;
        if (n >= 8) {
            for (;; i += 8) {
                if (i > n - 8)
                    i = n - 8;  /* the last word overlaps the one before */
                memcpy(&x, p + i, 8);
                if ((x - low) & ~x & high) {
                    for (k = i; k < i + 8; k++)
                        if (p[k] == 13 || p[k] == 10 || p[k] == 0)
                            return 0;
                }
                if (i == n - 8)
                    return 1;
            }
        }
        if (n >= 4) {  /* two overlapping 4-byte words as one */
            uint32_t a, b;
            memcpy(&a, p, 4); memcpy(&b, p + n - 4, 4);
            x = (uint64_t)a | (uint64_t)b << 32;
            if (!((x - low) & ~x & high))
                return 1;
        }
        for (; i < n; i++)
            if (p[i] == 13 || p[i] == 10 || p[i] == 0)
                return 0;
        return 1;
    }
    /* memcpy for the short strings of a head (names, values, CRLF): up to 16 bytes
       with two possibly overlapping loads, no call. */
    static inline __attribute__((always_inline))
    char *cym_put(char *out, const char *p, Py_ssize_t n) {
        uint64_t a, b;
        uint32_t x, y;
        if (n >= 8 && n <= 16) {
            memcpy(&a, p, 8); memcpy(&b, p + n - 8, 8);
            memcpy(out, &a, 8); memcpy(out + n - 8, &b, 8);
        } else if (n >= 4 && n < 8) {
            memcpy(&x, p, 4); memcpy(&y, p + n - 4, 4);
            memcpy(out, &x, 4); memcpy(out + n - 4, &y, 4);
        } else if (n < 4) {
            Py_ssize_t i;
            for (i = 0; i < n; i++)
                out[i] = p[i];
        } else {
            memcpy(out, p, (size_t)n);
        }
        return out + n;
    }
    """
    bint _clean_value "cym_clean_value" (const char *p, Py_ssize_t n) noexcept nogil
    char *_put "cym_put" (char *out, const char *p, Py_ssize_t n) noexcept nogil


cdef inline bint _token(const char *p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    if n == 0:
        return False
    for i in range(n):
        if not _IS_TOKEN[<unsigned char>p[i]]:
            return False
    return True


# Header names found to be tokens, by identity: an app passes the same name objects
# (its literals) response after response, so a hit skips the per-byte check. A slot holds
# a reference to its name: the object cannot be freed, so its address is never another
# object's while it is in the cache. Bytes and exact str only (immutable).
cdef enum:
    _NAME_SLOTS = 64
    _NAME_TOKEN = 1
    _NAME_LENGTH = 2  # Content-Length, in any case
cdef PyObject *_name_slots[_NAME_SLOTS]
cdef unsigned char _name_kinds[_NAME_SLOTS]


cdef inline int _name_kind(object name, const char **p, Py_ssize_t *n) noexcept:
    # 0: not a token (or not bytes / latin-1 str), else _NAME_TOKEN | maybe _NAME_LENGTH;
    # p[:n] is its wire form.
    cdef size_t i = ((<size_t><PyObject *>name) >> 4) % _NAME_SLOTS
    cdef PyObject *old
    cdef int kind
    if not _wire_view(name, p, n):
        return 0
    if _name_slots[i] == <PyObject *>name:
        return _name_kinds[i]
    if not _token(p[0], n[0]):
        return 0
    kind = _NAME_TOKEN
    if n[0] == 14 and strncasecmp(p[0], "content-length", 14) == 0:
        kind |= _NAME_LENGTH
    old = _name_slots[i]
    Py_INCREF(name)
    _name_slots[i] = <PyObject *>name
    _name_kinds[i] = <unsigned char>kind
    Py_XDECREF(old)
    return kind


cdef inline int _decimal(char *out, Py_ssize_t value) noexcept nogil:
    # value >= 0 in decimal at out (up to 19 digits); the digit count.
    cdef char tmp[24]
    cdef int n = 0, i
    while True:
        tmp[n] = <char>(c'0' + value % 10)
        n += 1
        value //= 10
        if value == 0:
            break
    for i in range(n):
        out[i] = tmp[n - 1 - i]
    return n


cdef enum:
    _VIEWS = 16  # headers whose wire views the check pass keeps for the copy pass


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
    cdef int present = 0, kind
    cdef size_t defaults = 0
    cdef char digits[24]
    cdef int dlen = 0
    cdef char *out
    cdef const char *names[_VIEWS]
    cdef const char *values[_VIEWS]
    cdef Py_ssize_t name_lens[_VIEWS]
    cdef Py_ssize_t value_lens[_VIEWS]
    if not _wire_view(first, &fbuf, &flen) or not _wire_view(status, &sbuf, &slen) or \
            not _clean_value(fbuf, flen) or not _clean_value(sbuf, slen):
        return -1
    total = flen + slen + 2 + 2 + body_len  # status line CRLF ... CRLF body
    for i in range(count):
        pair = headers[i]
        if not _pair(pair):
            return -1
        kind = _name_kind(_first(pair), &p, &nlen)
        if not kind:
            return -1
        if kind & _NAME_LENGTH:
            has_len = True
        elif srv != NULL:
            present |= _default_bit(srv, p, nlen)
        if i < _VIEWS:
            names[i] = p
            name_lens[i] = nlen
        if not _wire_view(_second(pair), &p, &vlen) or not _clean_value(p, vlen):
            return -1
        if i < _VIEWS:
            values[i] = p
            value_lens[i] = vlen
        total += nlen + 2 + vlen + 2
    if srv != NULL:
        defaults = _defaults_size(srv, present)
        total += defaults
    if not has_len and content_length >= 0:
        dlen = _decimal(digits, content_length)
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
        if i < _VIEWS:
            out = _put(out, names[i], name_lens[i])
            out = _put(out, ": ", 2)
            out = _put(out, values[i], value_lens[i])
        else:
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
        memcpy(out, body, body_len)
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
