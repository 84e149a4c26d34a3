# The request head parser of the core's HTTP server (httpserver.pyx _srv_input): the
# common head in one pass, everything else judged by mongoose's mg_http_parse.
#
# mg_http_parse walks the head three times (mg_http_get_request_len, the request line
# and headers by UTF-8 character, five name compares per header for duplicate framing
# headers) and zeroes all MG_MAX_HTTP_HEADERS slots: 1.8k of the 12.7k instructions of
# an inline WSGI "hello" (callgrind). _parse_head takes a head that is plain ASCII with
# CRLF line ends, one space between method, target and "HTTP/d.d", a colon right after
# each header name and no repeated framing header, and fills ``hm`` as mg_http_parse
# would; for any other head (incomplete, non-ASCII, bare LF, tabs or several spaces in
# the request line, a target that starts with "?", lower-case "http/", a status line,
# more than MG_MAX_HTTP_HEADERS headers, a repeated Content-Length, Transfer-Encoding,
# Authorization, Cookie or Connection, Content-Length with Transfer-Encoding, or a
# Content-Length that is not 1 to 18 digits) it returns 0 and mg_http_parse decides, so
# what is accepted or refused is mongoose's rule, unchanged (checked against it by
# tests-fuzz, target http_head).


# Headers mg_http_parse refuses to see twice (bits of _parse_head's ``framing``).
cdef enum:
    _H_CONTENT_LENGTH = 1
    _H_TRANSFER_ENCODING = 2
    _H_AUTHORIZATION = 4
    _H_COOKIE = 8
    _H_CONNECTION = 16


cdef inline bint _visible(unsigned char ch) noexcept nogil:
    # VCHAR (RFC 5234): a byte mg_http_parse's clen() takes as one character
    return <unsigned char>(ch - 0x21) < 0x5E


cdef inline bint _field_byte(unsigned char ch) noexcept nogil:
    # VCHAR, SP or HTAB: field-value bytes (RFC 9110 section 5.5), obs-text aside
    return <unsigned char>(ch - 0x20) < 0x5F or ch == 0x09


cdef inline bint _field_is(const unsigned char *name, size_t n, const char *lower,
                        size_t m) noexcept nogil:
    return n == m and strncasecmp(<const char *>name, lower, m) == 0


cdef int _parse_head(const char *buf, size_t len, mg_http_message *hm) noexcept nogil:
    """The head length with ``hm`` filled as mg_http_parse(buf, len, hm) fills it, or 0
    when the head is not the common case (then ``hm`` holds nothing of use)."""
    cdef const unsigned char *s = <const unsigned char *>buf
    cdef const unsigned char *end = s + len
    cdef const unsigned char *q = s
    cdef const unsigned char *mark
    cdef const unsigned char *value
    cdef const unsigned char *vend
    cdef const unsigned char *qs
    cdef mg_http_header *h
    cdef size_t count = 0, head_len, body_len = 0, digits
    cdef int framing = 0, seen
    cdef mg_str *cl = NULL
    # Request line: method SP request-target SP HTTP/d.d CRLF
    while q < end and _visible(q[0]):
        q += 1
    if q == s or q >= end or q[0] != c' ':
        return 0
    if <size_t>(q - s) > 5 and strncasecmp(buf, "HTTP/", 5) == 0:
        return 0  # a status line: mg_http_parse's response rules
    hm.method.buf = <char *>s
    hm.method.len = <size_t>(q - s)
    q += 1
    mark = q
    while q < end and _visible(q[0]):
        q += 1
    if q == mark or q >= end or q[0] != c' ' or end - q < 11:
        return 0
    hm.uri.buf = <char *>mark
    hm.uri.len = <size_t>(q - mark)
    q += 1
    if (memcmp(q, b"HTTP/", 5) != 0 or not c'0' <= q[5] <= c'9' or q[6] != c'.'
            or not c'0' <= q[7] <= c'9' or q[8] != c'\r' or q[9] != c'\n'):
        return 0
    hm.proto.buf = <char *>q
    hm.proto.len = 8
    q += 10
    # Header fields: name ":" OWS value OWS CRLF, up to the empty line
    while True:
        if end - q < 2:
            return 0
        if q[0] == c'\r':
            if q[1] != c'\n':
                return 0
            q += 2
            break
        if count == MG_MAX_HTTP_HEADERS:
            return 0
        mark = q
        while q < end and _visible(q[0]) and q[0] != c':':
            q += 1
        if q == mark or q >= end or q[0] != c':':
            return 0
        h = &hm.headers[count]
        h.name.buf = <char *>mark
        h.name.len = <size_t>(q - mark)
        q += 1
        while q < end and (q[0] == c' ' or q[0] == c'\t'):
            q += 1
        value = q
        while q < end and _field_byte(q[0]):
            q += 1
        if end - q < 2 or q[0] != c'\r' or q[1] != c'\n':
            return 0
        vend = q
        while vend > value and (vend[-1] == c' ' or vend[-1] == c'\t'):
            vend -= 1
        h.value.buf = <char *>value
        h.value.len = <size_t>(vend - value)
        q += 2
        count += 1
        # mg_http_parse refuses a repeated framing header: those heads are its to judge
        seen = 0
        if _field_is(mark, h.name.len, "content-length", 14):
            seen = _H_CONTENT_LENGTH
            cl = &h.value
        elif _field_is(mark, h.name.len, "transfer-encoding", 17):
            seen = _H_TRANSFER_ENCODING
        elif _field_is(mark, h.name.len, "authorization", 13):
            seen = _H_AUTHORIZATION
        elif _field_is(mark, h.name.len, "cookie", 6):
            seen = _H_COOKIE
        elif _field_is(mark, h.name.len, "connection", 10):
            seen = _H_CONNECTION
        if framing & seen:
            return 0
        framing |= seen
    if framing & _H_CONTENT_LENGTH and framing & _H_TRANSFER_ENCODING:
        return 0
    if cl != NULL:
        if cl.len == 0 or cl.len > 18:
            return 0
        for digits in range(cl.len):
            if not c'0' <= cl.buf[digits] <= c'9':
                return 0
            body_len = body_len * 10 + <size_t>(cl.buf[digits] - c'0')
    head_len = <size_t>(q - s)
    if head_len > 0x7fffffff:
        return 0
    if count < MG_MAX_HTTP_HEADERS:
        hm.headers[count].name.buf = NULL
        hm.headers[count].name.len = 0
        hm.headers[count].value.buf = NULL
        hm.headers[count].value.len = 0
    qs = <const unsigned char *>memchr(hm.uri.buf, c'?', hm.uri.len)
    if qs != NULL:
        hm.query.buf = <char *>qs + 1
        hm.query.len = <size_t>(hm.uri.buf + hm.uri.len - <char *>qs - 1)
        hm.uri.len = <size_t>(<char *>qs - hm.uri.buf)
        if hm.uri.len == 0:
            return 0  # "?query" alone: mg_http_parse refuses an empty path
    else:
        hm.query.buf = NULL
        hm.query.len = 0
    hm.head.buf = buf
    hm.head.len = head_len
    hm.body.buf = <char *>q
    hm.body.len = body_len
    hm.message.buf = buf
    hm.message.len = head_len + body_len
    return <int>head_len


cdef inline bint _same(mg_str a, mg_str b) noexcept nogil:
    return a.len == b.len and (a.len == 0 or a.buf == b.buf)


def _http_head_agrees(bytes data) -> bool:
    """Whether ``_parse_head`` and mg_http_parse read ``data`` alike: True when the fast
    parser leaves it to mongoose, or fills every field as mongoose does (the same spans
    of ``data``). For tests-fuzz (target http_head); not part of the API."""
    cdef mg_http_message fast, ref
    cdef size_t i
    cdef int n = _parse_head(<char *>data, len(data), &fast)
    if n == 0:
        return True
    if mg_http_parse(<char *>data, len(data), &ref) != n:
        return False
    if not (_same(fast.method, ref.method) and _same(fast.uri, ref.uri)
            and _same(fast.query, ref.query) and _same(fast.proto, ref.proto)
            and _same(fast.body, ref.body) and _same(fast.head, ref.head)
            and _same(fast.message, ref.message)):
        return False
    for i in range(MG_MAX_HTTP_HEADERS):
        if not (_same(fast.headers[i].name, ref.headers[i].name)
                and _same(fast.headers[i].value, ref.headers[i].value)):
            return False
        if ref.headers[i].name.len == 0:
            break
    return True
