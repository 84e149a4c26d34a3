# The core's HTTP/1.1 server protocol: mongoose's request parser (mg_http_parse, with
# httpparse.pyx's one-pass parse of the common head in front) driven by our own loop,
# so that limits, streamed request bodies and errors are answered in C.
#
# mongoose's http_cb buffers a whole request (up to MG_MAX_RECV_SIZE) before the handler
# sees it and drops malformed requests without a response. Accepted connections of a
# listener set up with Connection.configure_http_server() get _srv_pfn instead: it
# answers 400/413/431/501/503 itself, sends 100 Continue, streams large and chunked bodies
# as EV_HTTP_BODY events, and a sweep timer closes idle keep-alive connections.

# Its events, _EV_HTTP_BODY and _EV_WRITABLE, are declared in state.pxd.
cdef enum:
    _BODY_CHUNK = 65536         # chunked bodies: most bytes gathered per EV_HTTP_BODY
    _BODY_GATHER = 1048576      # Content-Length bodies: bytes per EV_HTTP_BODY (at most)
    _FILE_WINDOW = 262144       # Connection.send_file: bytes kept queued
    _SENDFILE_BURST = 4194304   # sendfile(2): most bytes per visit, so others get a turn
    _FILE_PRIMER = 16384        # queued after sendfile(2) would block (see _srv_file_pump)
    _IDLE_BUFFERS_MS = 1000     # idle this long: the sweep frees a connection's buffers
    _CHUNK_LINE_MAX = 4096      # chunk-size line and trailer field limits
    _REFUSED_LINE_MAX = 8192    # longest refused request line kept for the access log
    _CS_SIZE = 0
    _CS_DATA = 1
    _CS_DATA_CRLF = 2
    _CS_TRAILER = 3

cdef extern from *:
    """
    #if defined(__GLIBC__)
    #include <malloc.h>
    static void cym_give_back_memory(void) { malloc_trim(0); }
    #else
    static void cym_give_back_memory(void) {}
    #endif
    """
    # glibc keeps freed small blocks in its heap: RSS would not fall after the sweep
    # frees thousands of idle buffers (16 KiB each) without this.
    void cym_give_back_memory() nogil

cdef extern from *:
    """
    #if defined(__GLIBC__)
    #include <malloc.h>
    #include <stdlib.h>
    #include <string.h>
    static int cym_malloc_tuned = 0;
    /* Once per process, for HTTP servers: blocks up to 4 MiB from the heap, and up to
       16 MiB of free heap top kept (the sweep's malloc_trim gives it back: see
       _srv_give_back).
       glibc's default mmap()s every block of its threshold or more (128 KiB at first,
       raised only by freeing a larger one) and munmap()s it on free: each 1 MiB request
       body or response then cost 256 page faults (half the CPU of a 1 MiB echo).
       Left alone when the user tuned malloc (MALLOC_*_ variables, GLIBC_TUNABLES). */
    static void cym_tune_malloc(void) {
        static int done = 0;
        const char *t = getenv("GLIBC_TUNABLES");
        if (done) return;
        done = 1;
        if (getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TRIM_THRESHOLD_") ||
            (t != NULL && strstr(t, "glibc.malloc.") != NULL)) return;
        mallopt(M_MMAP_THRESHOLD, 4 << 20);
        mallopt(M_TRIM_THRESHOLD, 16 << 20);
        cym_malloc_tuned = 1;
    }
    #else
    static const int cym_malloc_tuned = 0;
    static void cym_tune_malloc(void) {}
    #endif
    """
    void cym_tune_malloc() nogil
    const int cym_malloc_tuned

cdef extern from *:
    """
    #include <errno.h>
    #if defined(__linux__)
    #include <sys/sendfile.h>
    /* sendfile(2) from file to socket; -2: would block (or interrupted), -1: failed. */
    static long cym_sendfile(int sock, int fd, unsigned long long *offset, size_t n) {
        off_t off = (off_t) *offset;
        ssize_t got = sendfile(sock, fd, &off, n);
        if (got < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -2 : -1;
        *offset = (unsigned long long) off;
        return (long) got;
    }
    #else
    static long cym_sendfile(int sock, int fd, unsigned long long *offset, size_t n) {
        (void) sock; (void) fd; (void) offset; (void) n;
        return -1;
    }
    #endif
    """
    long cym_sendfile(int sock, int fd, unsigned long long *offset, size_t n) nogil

cdef extern from *:
    """
    #include <sys/socket.h>
    #include <sys/uio.h>
    /* One sendmsg(2) of a (maybe empty) head and a body: bytes sent; -2: would block
       (or interrupted), -1: failed. MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE. */
    static long cym_send2(int sock, const char *a, size_t alen, const char *b, size_t blen) {
        struct iovec iov[2];
        struct msghdr msg;
        ssize_t n;
        int k = 0;
        if (alen) { iov[k].iov_base = (void *) a; iov[k].iov_len = alen; k++; }
        if (blen) { iov[k].iov_base = (void *) b; iov[k].iov_len = blen; k++; }
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = iov;
        msg.msg_iovlen = k;
        n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -2 : -1;
        return (long) n;
    }
    """
    long cym_send2(int sock, const char *a, size_t alen, const char *b, size_t blen) nogil

cdef extern from "Python.h":
    # The bytes of a referenced bytes object: immutable, so readable without the GIL
    # (and writable while a body piece is received into one nobody else sees yet).
    char *_bytes_buf "PyBytes_AS_STRING"(PyObject *) nogil
    int _PyBytes_Resize(PyObject **, Py_ssize_t)
    void PyErr_Clear()

cdef enum:
    _TRIM_AFTER_BYTES = 1 << 20  # a sweep that freed this much gives memory back to the OS
    _TRIM_BUSY_MS = 1000         # a busy server with tuned malloc gives it back this often

cdef uint64_t _trimmed_ms = 0            # when a sweep last gave memory back (mg_millis)
cdef bint _accepted_since_trim = False   # a connection came (and may have gone) since

cdef mg_event_handler_t _mg_http_cb = NULL   # mongoose's static http_cb, seen on listeners
cdef mg_event_handler_t _mg_ws_cb = NULL     # mongoose's static mg_ws_cb, after upgrade


cdef const char *_reason(int status) noexcept nogil:
    if status == 400:
        return "Bad Request"
    if status == 408:
        return "Request Timeout"
    if status == 413:
        return "Content Too Large"
    if status == 431:
        return "Request Header Fields Too Large"
    if status == 500:
        return "Internal Server Error"
    if status == 501:
        return "Not Implemented"
    if status == 505:
        return "HTTP Version Not Supported"
    return "Service Unavailable"


cdef void _srv_reject(mg_connection *c, int status) noexcept nogil:
    """Answer ``status`` with Connection: close and stop reading this connection."""
    cdef char buf[256]
    cdef const char *reason = _reason(status)
    cdef ServerOpts *srv = _server_of(c)
    cdef size_t defaults = _defaults_size(srv, 0) if srv != NULL else 0
    cdef int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %d %s\r\n", status, reason)
    mg_send(c, buf, <size_t>n)
    if defaults and (c.send.size - c.send.len >= defaults or
                     mg_iobuf_resize(&c.send, c.send.len + defaults)):
        c.send.len = <size_t>(_put_defaults(<char *>c.send.buf + c.send.len, srv, 0) -
                              <char *>c.send.buf)
    n = snprintf(buf, sizeof(buf),
                 "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Length: %d\r\nConnection: close\r\n\r\n%s\n",
                 <int>strlen(reason) + 1, reason)
    mg_send(c, buf, <size_t>n)
    c.recv.len = 0
    c.is_draining = 1
    c.is_resp = 0
    if c.fn_data != NULL and (<ConnState *>c.fn_data).c == c:
        (<ConnState *>c.fn_data).refused = status
        # Out now: nothing else would wake an integrated (asyncio-driven) loop for it.
        _srv_flush_now(c, <ConnState *>c.fn_data)


cdef void _srv_refuse(mg_connection *c, int status, const char *head, size_t n) noexcept nogil:
    """_srv_reject, keeping the first line of ``head`` (``n`` bytes of the refused
    request received) for Connection.refused: the access log shows what was refused."""
    cdef ConnState *st = <ConnState *>c.fn_data
    cdef const char *nl
    cdef size_t k
    if head != NULL and n and st != NULL and st.c == c and st.refused_line == NULL:
        nl = <const char *>memchr(head, c'\n', n if n < _REFUSED_LINE_MAX else _REFUSED_LINE_MAX)
        if nl != NULL:
            k = <size_t>(nl - head)
            if k and head[k - 1] == c'\r':
                k -= 1
            st.refused_line = <char *>malloc(k + 1)
            if st.refused_line != NULL:
                memcpy(st.refused_line, head, k)
                st.refused_line_len = k
    _srv_reject(c, status)


cdef inline void _consume(mg_iobuf *io, size_t n) noexcept nogil:
    # mg_iobuf_del(io, 0, n) without zeroing the bytes freed at the end: that pass over
    # the buffer (a 1 MiB body: 1 MiB more written per request) was a fifth of the CPU
    # of a 1 MiB upload or download. The buffer is zeroed when mongoose frees it.
    if n >= io.len:
        io.len = 0
        return
    memmove(io.buf, io.buf + n, io.len - n)
    io.len -= n


cdef inline void _deliver(mg_connection *c, int ev, const char *buf, size_t n) noexcept nogil:
    cdef mg_str s
    s.buf = <char *>buf
    s.len = n
    with gil:
        _dispatch(c, ev, &s)


cdef inline bint _alive(mg_connection *c, ConnState *st) noexcept nogil:
    return c.fn_data == <void *>st and not c.is_closing and not c.is_draining


cdef size_t _header_lines(const char *p, size_t n) noexcept nogil:
    cdef size_t i, lines = 0
    for i in range(n):
        if p[i] == c'\n':
            lines += 1
    return lines - 2 if lines >= 2 else 0   # minus request line and blank line


cdef inline bint _ascii(mg_str s) noexcept nogil:
    cdef size_t i
    for i in range(s.len):
        if <unsigned char>s.buf[i] >= 0x80:
            return False
    return True


cdef int _request_error(mg_http_message *hm, size_t count) noexcept nogil:
    """0 for an acceptable request line and Host, else the status that refuses it."""
    cdef size_t i, hosts = 0
    cdef char ch
    # mg_http_parse guarantees "HTTP/d.d"; only 1.0 and 1.1 are spoken here (RFC 9110 15.6.6)
    if hm.proto.buf[5] != c'1' or (hm.proto.buf[7] != c'0' and hm.proto.buf[7] != c'1'):
        return 505
    for i in range(hm.method.len):   # method = token (RFC 9110 section 9.1, 5.6.2)
        ch = hm.method.buf[i]
        if not (c'a' <= ch <= c'z' or c'A' <= ch <= c'Z' or c'0' <= ch <= c'9'
                or memchr("!#$%&'*+-.^_`|~", ch, 15) != NULL):
            return 400
    # RFC 9112 section 3.2: origin-form ("/..."), absolute-form, or asterisk-form ("*",
    # left to the app: OPTIONS, and SSDP's M-SEARCH).
    if hm.uri.buf[0] != c'/' and not (hm.uri.len == 1 and hm.uri.buf[0] == c'*'):
        if not ((hm.uri.len > 7 and strncasecmp(hm.uri.buf, "http://", 7) == 0) or
                  (hm.uri.len > 8 and strncasecmp(hm.uri.buf, "https://", 8) == 0)):
            return 400
    # RFC 9112 section 3.2 / RFC 3986: the request-target is ASCII (others percent-encode)
    if not _ascii(hm.uri) or not _ascii(hm.query):
        return 400
    for i in range(count if count < MG_MAX_HTTP_HEADERS else MG_MAX_HTTP_HEADERS):
        if hm.headers[i].name.len == 4 and strncasecmp(hm.headers[i].name.buf, "Host", 4) == 0:
            hosts += 1
    # RFC 9112 section 3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0
    if hosts > 1 or (hosts == 0 and hm.proto.buf[7] == c'1'):
        return 400
    return 0


cdef PyObject *_new_piece(size_t size) noexcept:
    # An uninitialised bytes object of ``size`` bytes (owned), or NULL when out of memory.
    try:
        piece = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>size)
    except MemoryError:
        return NULL
    Py_INCREF(piece)
    return <PyObject *>piece


cdef bint _srv_piece_start(mg_connection *c, ConnState *st, size_t skip, size_t k,
                           size_t size) noexcept nogil:
    # The next ``size`` bytes of a Content-Length body are read straight into the bytes
    # object that goes to the app: c.recv points into it (mongoose's read_conn fills
    # recv.buf[len:size], and grows recv only when it is full, which never happens: a
    # full piece goes at once) and mongoose's own buffer waits aside until the piece goes
    # (_srv_piece_take) or the connection closes (_srv_piece_drop). The k body bytes
    # already received, after ``skip`` bytes of head, are copied in. False: no memory.
    cdef PyObject *piece
    if c.pfn != _srv_pfn or c.is_websocket:
        return False  # handed over (upgraded): the reads are not ours to place
    with gil:
        piece = _new_piece(size)
    if piece == NULL:
        return False
    if k:
        memcpy(_bytes_buf(piece), c.recv.buf + skip, k)
    st.piece = piece
    st.saved_recv_buf = c.recv.buf
    st.saved_recv_size = c.recv.size
    c.recv.buf = <unsigned char *>_bytes_buf(piece)
    c.recv.size = size
    c.recv.len = k
    st.decoded = 0
    return True


cdef PyObject *_srv_piece_take(mg_connection *c, ConnState *st) noexcept nogil:
    # The piece (owned) out of c.recv, mongoose's buffer back in, empty.
    cdef PyObject *piece = st.piece
    st.piece = NULL
    c.recv.buf = st.saved_recv_buf
    c.recv.size = st.saved_recv_size
    c.recv.len = 0
    st.saved_recv_buf = NULL
    st.saved_recv_size = 0
    return piece


cdef void _srv_piece_drop(mg_connection *c) noexcept:
    # The connection closes (_forget) or becomes a WebSocket while its request body
    # streams (_ws_guard): mongoose must not grow or free the piece's memory. (Handing
    # the connection over during the head's event needs nothing: the piece starts after
    # it, and _srv_piece_start leaves a connection that is no longer ours alone.)
    cdef ConnState *st = <ConnState *>c.fn_data
    if st != NULL and st.piece != NULL:
        Py_DECREF(<object>_srv_piece_take(c, st))


cdef bint _srv_piece_deliver(mg_connection *c, ConnState *st, size_t k) noexcept nogil:
    # The piece goes to the app, cut to the k bytes received (a shrink in place).
    # False: no memory for that; the connection closes.
    cdef size_t size = c.recv.size
    cdef PyObject *piece = _srv_piece_take(c, st)
    st.body_left -= k
    st.body_total += k
    with gil:
        if k < size and _PyBytes_Resize(&piece, <Py_ssize_t>k) < 0:
            PyErr_Clear()  # the piece is gone (NULL): the body cannot be handed over
            c.is_closing = 1
            return False
        _dispatch(c, _EV_HTTP_PIECE, piece)
        Py_DECREF(<object>piece)
    return True


cdef inline size_t _piece_size(ConnState *st) noexcept nogil:
    return st.body_left if st.body_left < _BODY_GATHER else _BODY_GATHER


cdef inline bint _body_due(ConnState *st, size_t k, size_t size) noexcept nogil:
    # The one rule for when received body bytes go to the app: k are in, of the ``size``
    # gathered at most (a piece; _BODY_CHUNK of a chunked body). They go when that many
    # are there, or as soon as the socket has nothing more for now (the last read did not
    # fill its room), as uvicorn and granian hand over each read: an app reading a
    # streamed upload (a client sending as it goes, then waiting for an answer) sees each
    # part when it arrives. A fast upload still goes in large pieces: its reads fill them.
    return k >= size or (st.read_short and k != 0)


cdef void _srv_body_length(mg_connection *c, ConnState *st) noexcept nogil:
    # A Content-Length body goes to the app in pieces of _BODY_GATHER bytes (the whole
    # body when smaller), each read straight into its bytes object (_srv_piece_start):
    # no copy out of a receive buffer, and no growing of one. A piece goes before it is
    # full when the socket has nothing more for now (_body_due).
    # st.decoded: bytes of the request head still in front of the body.
    cdef size_t gather, skip, k
    if st.piece != NULL:
        k = c.recv.len
        if not _body_due(st, k, c.recv.size):
            return
        if not _srv_piece_deliver(c, st, k):
            return
    else:
        gather = _piece_size(st)
        skip = st.decoded if st.decoded < c.recv.len else c.recv.len
        k = c.recv.len - skip
        if k > st.body_left:
            k = st.body_left
        if not _body_due(st, k, gather):
            if not _srv_piece_start(c, st, skip, k, gather) and c.recv.size < skip + gather:
                mg_iobuf_resize(&c.recv, skip + gather)  # if refused, mongoose's steps go on
            return
        st.body_left -= k
        st.body_total += k
        _deliver(c, _EV_HTTP_BODY, <char *>c.recv.buf + skip, k)
        if c.fn_data != <void *>st:
            return
        st.decoded = 0
        _consume(&c.recv, skip + k)
    if c.fn_data != <void *>st:
        return
    if st.body_left == 0:
        st.body_mode = 0
        _deliver(c, _EV_HTTP_BODY, NULL, 0)
    elif c.recv.len == 0 and _alive(c, st):
        # The next read lands in the next piece.
        _srv_piece_start(c, st, 0, 0, _piece_size(st))


cdef int _hexval(char ch) noexcept nogil:
    if c'0' <= ch <= c'9':
        return ch - c'0'
    if c'a' <= ch <= c'f':
        return ch - c'a' + 10
    if c'A' <= ch <= c'F':
        return ch - c'A' + 10
    return -1


cdef void _srv_body_chunked(mg_connection *c, ConnState *st) noexcept nogil:
    # RFC 9112 section 7.1. Decoded data is moved to the front of recv ([0, decoded));
    # raw bytes still to parse follow it. Strict: CRLF line ends, hex sizes only.
    cdef char *buf = <char *>c.recv.buf
    cdef size_t pos = st.decoded, end = c.recv.len, k, size
    cdef char *nl
    cdef int d, digits
    cdef bint finished = False, bad = False, too_large = False
    while pos < end and not finished:
        if st.chunk_state == _CS_SIZE or st.chunk_state == _CS_TRAILER:
            nl = <char *>memchr(buf + pos, c'\n', end - pos)
            if nl == NULL:
                bad = end - pos > _CHUNK_LINE_MAX
                break
            k = <size_t>(nl - (buf + pos))   # line length without \n
            if k == 0 or buf[pos + k - 1] != c'\r':
                bad = True
                break
            if st.chunk_state == _CS_TRAILER:
                pos += k + 1
                if k == 1:
                    finished = True
                continue
            size = 0
            digits = 0
            while digits < <int>k - 1:
                d = _hexval(buf[pos + digits])
                if d < 0:
                    break
                if digits >= 15:
                    bad = True
                    break
                size = size * 16 + <size_t>d
                digits += 1
            if bad or digits == 0 or (digits < <int>k - 1 and buf[pos + digits] != c';'):
                bad = True
                break
            pos += k + 1
            if size == 0:
                st.chunk_state = _CS_TRAILER
            else:
                if st.srv.max_body_size and st.body_total + size > st.srv.max_body_size:
                    too_large = True
                    break
                st.body_left = size
                st.chunk_state = _CS_DATA
        elif st.chunk_state == _CS_DATA:
            k = end - pos if end - pos < st.body_left else st.body_left
            if pos != st.decoded:
                memmove(buf + st.decoded, buf + pos, k)
            st.decoded += k
            st.body_total += k
            st.body_left -= k
            pos += k
            if st.body_left == 0:
                st.chunk_state = _CS_DATA_CRLF
        else:
            if end - pos < 2:
                break
            if buf[pos] != c'\r' or buf[pos + 1] != c'\n':
                bad = True
                break
            pos += 2
            st.chunk_state = _CS_SIZE
    if too_large and not st.resp_written:
        # Nothing of the response is out yet: answer 413 (the app sees the close).
        st.body_mode = 0
        _srv_reject(c, 413)
        return
    if bad or too_large:
        # The app already has the request: closing is the only honest signal.
        st.body_mode = 0
        c.recv.len = 0
        c.is_closing = 1
        return
    if pos > st.decoded:
        mg_iobuf_del(&c.recv, st.decoded, pos - st.decoded)
    if st.decoded and (finished or _body_due(st, st.decoded, _BODY_CHUNK)):
        k = st.decoded
        st.decoded = 0
        _deliver(c, _EV_HTTP_BODY, <char *>c.recv.buf, k)
        if c.fn_data != <void *>st:
            return
        _consume(&c.recv, k)
    if finished:
        st.body_mode = 0
        _deliver(c, _EV_HTTP_BODY, NULL, 0)


cdef inline void _srv_body(mg_connection *c, ConnState *st) noexcept nogil:
    if st.body_mode == 1:
        _srv_body_length(c, st)
    else:
        _srv_body_chunked(c, st)


cdef inline void _srv_count(ServerOpts *srv) noexcept nogil:
    # One more request; at request_limit the listener hears of it before the request is
    # dispatched, so a server stopping there can already answer it with Connection: close.
    srv.requests += 1
    if srv.requests == srv.request_limit and srv.listener != NULL:
        mg_call(srv.listener, _EV_REQUEST_LIMIT, NULL)


#: Pipelined requests are parsed only while the send buffer holds less than this: a
#: client that pipelines and does not read stops being read (TCP flow control then stops
#: it) instead of the server buffering every answer. One answer may exceed it.
cdef size_t _PIPELINE_SEND_MAX = 1 << 20


cdef inline bint _pipeline_held(mg_connection *c, ConnState *st) noexcept nogil:
    # True: the client has not taken what was answered; reading pauses (paused == 2) and
    # the next request waits in recv until the send buffer drains (MG_EV_POLL retries).
    if c.send.len < _PIPELINE_SEND_MAX:
        if st.paused == 2:
            st.paused = 0
            _set_reading(c, True)
        return False
    st.need_parse = 1
    if st.paused == 0:
        st.paused = 2
        _set_reading(c, False)
    return True


cdef void _srv_input(mg_connection *c, ConnState *st) noexcept nogil:
    cdef ServerOpts *srv = st.srv
    cdef mg_http_message hm
    cdef size_t ofs = 0, avail, count, here
    cdef const char *buf
    cdef mg_str *h
    cdef int n, status
    cdef bint chunked
    st.need_parse = 0
    if st.body_mode:
        _srv_body(c, st)
        if st.body_mode or not _alive(c, st):
            return
    while not c.is_resp and _alive(c, st) and ofs < c.recv.len:
        if _pipeline_held(c, st):
            break
        buf = <char *>c.recv.buf + ofs
        avail = c.recv.len - ofs
        n = _parse_head(buf, avail, &hm)
        if n == 0:
            n = mg_http_parse(buf, avail, &hm)  # not the common head (httpparse.pyx)
        if n == 0:
            if mg_http_get_request_len(<unsigned char *>buf, avail) > 0:
                # The head is complete, yet mg_http_parse wants more: it is malformed
                # (e.g. a bare CR in the request line).
                _srv_refuse(c, 400, buf, avail)
                return
            if avail > srv.max_header_bytes:
                _srv_refuse(c, 431, buf, avail)
            elif st.request_start_ms == 0:
                st.request_start_ms = mg_millis()
            break
        st.request_start_ms = 0
        if n < 0:
            _srv_refuse(c, 431 if _header_lines(buf, avail) > srv.max_header_count else 400,
                        buf, avail)
            return
        if hm.method.len > 5 and strncasecmp(hm.method.buf, "HTTP/", 5) == 0:
            # mg_http_parse took a status line for a response (body until EOF): not a request
            _srv_refuse(c, 400, buf, avail)
            return
        count = 0
        while count < MG_MAX_HTTP_HEADERS and hm.headers[count].name.len:
            count += 1
        if count == MG_MAX_HTTP_HEADERS:
            count = _header_lines(buf, <size_t>n)
        if <size_t>n > srv.max_header_bytes or count > srv.max_header_count:
            _srv_refuse(c, 431, buf, avail)
            return
        status = _request_error(&hm, count)
        if status:
            _srv_refuse(c, status, buf, avail)
            return
        chunked = False
        h = mg_http_get_header(&hm, "Transfer-Encoding")
        if h != NULL:
            if hm.proto.len == 8 and strncasecmp(hm.proto.buf, "HTTP/1.0", 8) == 0:
                _srv_refuse(c, 400, buf, avail)
                return
            if h.len != 7 or strncasecmp(h.buf, "chunked", 7) != 0:
                _srv_refuse(c, 501, buf, avail)
                return
            chunked = True
        if srv.max_body_size and hm.body.len > srv.max_body_size:
            _srv_refuse(c, 413, buf, avail)
            return
        here = avail - <size_t>n
        # RFC 9110 section 10.1.1: a 100-continue expectation in HTTP/1.0 is ignored
        if (chunked or hm.body.len > here) and hm.proto.buf[7] == c'1':
            h = mg_http_get_header(&hm, "Expect")
            if h != NULL and h.len == 12 and strncasecmp(h.buf, "100-continue", 12) == 0:
                mg_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25)
        if chunked or (hm.body.len > srv.stream_threshold and hm.body.len > here):
            st.body_mode = 2 if chunked else 1
            st.body_left = 0 if chunked else hm.body.len
            st.body_total = 0
            st.decoded = 0
            st.chunk_state = _CS_SIZE
            hm.body.len = 0
            hm.message.len = <size_t>n
            c.is_resp = 1
            st.resp_written = 0
            st.more_body = 1
            _srv_count(srv)
            mg_call(c, MG_EV_HTTP_MSG, &hm)
            if c.fn_data != <void *>st:
                return
            st.more_body = 0
            if chunked:
                _consume(&c.recv, ofs + <size_t>n)
            else:
                # The head stays in front of the body until the first piece goes: moving
                # the body (maybe a whole MiB read with the head) is a copy saved.
                st.decoded = ofs + <size_t>n
            ofs = 0
            if _alive(c, st):
                _srv_body(c, st)
            if st.body_mode:
                return
            continue
        if hm.body.len > here:
            break  # a small body still arriving: buffer it
        ofs += <size_t>n + hm.body.len
        c.is_resp = 1
        st.resp_written = 0
        _srv_count(srv)
        mg_call(c, MG_EV_HTTP_MSG, &hm)
        if c.fn_data != <void *>st:
            return
        if c.pfn != _srv_pfn:
            break  # upgraded (ws_accept) or handed to mongoose: what follows is not HTTP
    if ofs:
        _consume(&c.recv, ofs)
    if c.is_websocket and c.pfn != _srv_pfn and c.pfn != NULL and c.recv.len \
            and _alive(c, st):
        c.pfn(c, MG_EV_READ, NULL)  # frames sent right behind the upgrade request


cdef void _set_reading(mg_connection *c, bint on) noexcept nogil:
    # is_full is mongoose's "read nothing": applied to epoll now, not at mongoose's next
    # MG_EPOLL_MOD (patch 0005 makes that macro leave EPOLLIN out while is_full: a paused
    # socket with data or a FIN waiting would otherwise wake epoll_wait on every iteration).
    c.is_full = not on
    if c.mgr.epoll_fd < 0 or c.fd == NULL:
        return
    MG_EPOLL_MOD(c, c.send.len != 0)


cdef void _srv_pfn(mg_connection *c, int ev, void *ev_data) noexcept nogil:
    cdef ConnState *st = <ConnState *>c.fn_data
    if st == NULL or st.c != c or st.srv == NULL:
        return
    if ev == MG_EV_READ:
        st.last_io_ms = mg_millis()
        # recv() returned less than the room it had: the socket is drained for now.
        st.read_short = ev_data != NULL and \
            c.recv.size - (c.recv.len - <size_t>(<long *>ev_data)[0]) > \
            <size_t>(<long *>ev_data)[0]
        if c.is_draining:
            c.recv.len = 0  # rejected: discard what the client still sends
        else:
            _srv_input(c, st)
    elif ev == MG_EV_POLL:
        if st.need_parse and not c.is_resp and c.recv.len:
            _srv_input(c, st)
        if st.file_left:
            _srv_file_pump(c, st)
    elif ev == MG_EV_WRITE:
        st.last_io_ms = mg_millis()
        if st.file_left:
            _srv_file_pump(c, st)
        elif st.paused == 2 and st.need_parse and not c.is_resp and c.recv.len:
            _srv_input(c, st)  # the client took its answers: go on (else: next MG_EV_POLL)


cdef inline void _flush_later(mg_connection *c, ConnState *st) noexcept nogil:
    # A complete response goes to the socket when this poll iteration's handlers are
    # done (Manager.poll calls _flush_queued): the app's work for every ready request
    # first, then the send()s together. Sending each at once interleaved the kernel's
    # loopback/TCP work with the app's and cost a framework app about a quarter of its
    # throughput; leaving it to mongoose costs two epoll_ctl calls and an iteration.
    if st.flush_queued or c.is_tls or not c.is_accepted:
        return
    st.flush_queued = 1
    st.flush_next = <ConnState *>c.mgr.userdata
    c.mgr.userdata = <void *>st


cdef void _flush_queued(mg_mgr *mgr) noexcept nogil:
    cdef ConnState *st = <ConnState *>mgr.userdata
    cdef ConnState *nxt
    mgr.userdata = NULL
    while st != NULL:
        nxt = st.flush_next
        st.flush_next = NULL
        st.flush_queued = 0
        if st.c != NULL:
            _srv_flush_now(st.c, st)
        st = nxt


cdef void _flush_forget(mg_mgr *mgr, ConnState *st) noexcept nogil:
    # ``st`` is about to be freed: out of the list.
    cdef ConnState **link = <ConnState **>&mgr.userdata
    while link[0] != NULL:
        if link[0] == st:
            link[0] = st.flush_next
            break
        link = &link[0].flush_next
    st.flush_queued = 0
    st.flush_next = NULL


cdef void _srv_flush_now(mg_connection *c, ConnState *st) noexcept nogil:
    # A complete response goes to the socket at once instead of at the next poll: saves
    # the EPOLLOUT arm/disarm (two epoll_ctl calls) and a loop iteration per response.
    # What the socket does not take now is sent by the poll loop as before.
    cdef long n
    if c.send.len == 0 or c.is_closing or c.is_tls or not c.is_accepted:
        return
    n = mg_io_send(c, c.send.buf, c.send.len)
    if n > 0:
        _consume(&c.send, <size_t>n)
        st.last_io_ms = mg_millis()
        if c.send.len == 0:
            # epoll may have reported the socket writable in this iteration: mongoose
            # would then send the empty buffer, read send()'s 0 as an error and close.
            c.is_writable = 0
    elif n == MG_IO_ERR:
        c.is_closing = 1  # as mongoose does on a failed write


cdef void _srv_file_pump(mg_connection *c, ConnState *st) noexcept nogil:
    # Connection.send_file. On plain TCP with nothing queued, sendfile(2) hands the file to
    # the socket in the kernel, until the socket is full or _SENDFILE_BURST bytes went.
    # Otherwise (TLS, bytes queued, sendfile unavailable) read about _FILE_WINDOW bytes
    # straight into the send buffer. After sendfile a little is always queued while the
    # file goes on: that arms the socket's writability, whose MG_EV_WRITE calls this again
    # (mongoose would not wake for an empty buffer), and a draining connection does not
    # close before the end. The response completes (pipelined requests go on) after the
    # last byte.
    cdef size_t want, burst = 0
    cdef long got
    cdef unsigned long long offset
    if st.body_ref != NULL:
        _srv_body_pump(c, st)
        return
    if c.is_closing or c.send.len >= _FILE_WINDOW:
        return
    if c.send.len == 0 and not c.is_tls and c.is_accepted and c.fd != NULL:
        while st.file_left and burst < _SENDFILE_BURST:
            want = _SENDFILE_BURST - burst
            if want > st.file_left:
                want = <size_t>st.file_left
            offset = st.file_offset
            got = cym_sendfile(<int><size_t>c.fd, st.file_fd, &offset, want)
            if got <= 0:
                break  # full (-2), or failed (-1) / file shrank (0): pread below tells
            burst += <size_t>got
            st.file_offset += <uint64_t>got
            st.file_left -= <uint64_t>got
            st.last_io_ms = mg_millis()
        if st.file_left == 0:
            _srv_pump_done(c, st)
            return
        want = _FILE_PRIMER
    else:
        want = _FILE_WINDOW - c.send.len
    if want > st.file_left:
        want = <size_t>st.file_left
    if c.send.size - c.send.len < want and not mg_iobuf_resize(&c.send, c.send.len + want):
        return
    offset = st.file_offset
    got = posix_pread(st.file_fd, c.send.buf + c.send.len, want, <long>offset)
    if got <= 0:
        # The file shrank or failed under us: the promised length cannot be kept.
        _srv_file_end(st)
        c.is_closing = 1
        return
    c.send.len += <size_t>got
    st.file_offset += <uint64_t>got
    st.file_left -= <uint64_t>got
    if st.file_left == 0:
        _srv_pump_done(c, st)


cdef inline void _srv_pump_done(mg_connection *c, ConnState *st) noexcept nogil:
    # The last byte of a file or a body by reference is out or queued: the response is
    # complete and the next pipelined request may be parsed.
    _srv_file_end(st)
    c.is_resp = 0
    st.need_parse = 1


cdef inline void _srv_file_end(ConnState *st) noexcept nogil:
    if st.body_ref != NULL:
        _srv_body_release(st)
        return
    if st.file_fd >= 0:
        posix_close(st.file_fd)
    st.file_fd = -1
    st.file_left = 0


cdef void _srv_body_release(ConnState *st) noexcept nogil:
    cdef PyObject *ref = st.body_ref
    st.body_ref = NULL
    st.file_left = 0
    with gil:
        Py_DECREF(<object>ref)


cdef void _srv_body_by_ref(mg_connection *c, ConnState *st, bytes body) noexcept:
    """Send ``body`` after what is queued (the response head) from the bytes object
    itself, holding a reference until its last byte is out, and complete the response
    then (as send_file does). Instead of one copy into the send buffer and, per partial
    send, a memmove of the unsent tail: on plain TCP sendmsg(2) takes the head and the
    body together and later the rest straight from the object; only when the socket is
    full is a little (_FILE_PRIMER) copied into the send buffer, to arm mongoose's wait
    for writability. TLS copies windows of _FILE_WINDOW (mongoose's TLS layer encrypts
    from the send buffer). Also on an app thread of the pooled WSGI server: it holds the
    GIL, which mongoose's loop gives up only while it waits for I/O, touching no buffer;
    leaving the start to the poll thread's next visit cost 3x the CPU per response."""
    Py_INCREF(body)
    st.body_ref = <PyObject *>body
    st.file_fd = -1
    st.file_offset = 0
    st.file_left = <uint64_t>len(body)
    c.is_resp = 1
    _srv_body_pump(c, st)


cdef void _srv_body_spill(mg_connection *c, ConnState *st) noexcept:
    """Something else is written while a body by reference is pending (Connection.send
    and the like): queue the rest of the body first, so that the bytes keep their order."""
    cdef size_t left
    if st == NULL or st.body_ref == NULL:
        return
    left = <size_t>st.file_left
    if mg_send(c, _bytes_buf(st.body_ref) + st.file_offset, left):
        st.file_offset += left
        st.file_left = 0
    _srv_body_release(st)
    c.is_resp = 0
    st.need_parse = 1


cdef void _srv_body_pump(mg_connection *c, ConnState *st) noexcept nogil:
    # Connection.send_response/send_wsgi_response with a large bytes body: see
    # _srv_body_by_ref. Called again on MG_EV_WRITE and MG_EV_POLL while bytes are left.
    cdef const char *body = _bytes_buf(st.body_ref)
    cdef size_t want, burst = 0
    cdef long got
    if c.is_closing or c.send.len >= _FILE_WINDOW:
        return
    # Straight from the object with nothing queued, or with the head before the body;
    # not past a queued primer (the socket was full: mongoose waits for writability).
    if (c.send.len == 0 or (st.file_offset == 0 and c.send.len <= _FILE_PRIMER)) \
            and not c.is_tls and c.is_accepted and c.fd != NULL:
        while st.file_left and burst < _SENDFILE_BURST:
            want = _SENDFILE_BURST - burst
            if want > st.file_left:
                want = <size_t>st.file_left
            got = cym_send2(<int><size_t>c.fd, <char *>c.send.buf, c.send.len,
                            body + st.file_offset, want)
            if got == -1:
                c.is_closing = 1  # as mongoose does on a failed write
                return
            if got < 0:
                break
            st.last_io_ms = mg_millis()
            if <size_t>got < c.send.len:
                _consume(&c.send, <size_t>got)
                break
            got -= <long>c.send.len
            c.send.len = 0
            burst += <size_t>got
            st.file_offset += <uint64_t>got
            st.file_left -= <uint64_t>got
            if <size_t>got < want:
                break  # the socket is full
        if st.file_left == 0:
            if c.send.len == 0:
                c.is_writable = 0  # see _srv_flush_now
            _srv_pump_done(c, st)
            return
        if c.send.len:
            return  # the head is still queued: mongoose arms writability for it
        want = _FILE_PRIMER
    else:
        want = _FILE_WINDOW - c.send.len
    if want > st.file_left:
        want = <size_t>st.file_left
    if not mg_send(c, body + st.file_offset, want):
        return  # no memory now: tried again at the next poll
    st.file_offset += <uint64_t>want
    st.file_left -= <uint64_t>want
    if st.file_left == 0:
        _srv_pump_done(c, st)


cdef void _ws_fail(mg_connection *c, int code) noexcept nogil:
    # Fail the WebSocket connection (RFC 6455 section 7.1.7): a close frame with ``code``,
    # nothing more read, and the handler told (MG_EV_WS_CTL carrying that close payload).
    cdef char payload[2]
    cdef mg_ws_message m
    payload[0] = <char>(code >> 8)
    payload[1] = <char>(code & 255)
    mg_ws_send(c, payload, 2, WEBSOCKET_OP_CLOSE)
    c.recv.len = 0
    c.pfn_data = NULL  # mongoose's fragment offset into the emptied buffer
    c.is_draining = 1
    m.data.buf = payload
    m.data.len = 2
    m.flags = 128 | WEBSOCKET_OP_CLOSE
    mg_call(c, MG_EV_WS_CTL, &m)


cdef int _ws_frame_error(const unsigned char *f, size_t avail, size_t hlen, size_t plen,
                         bint in_message, bint deflate) noexcept nogil:
    """0, or the close code for a client frame that breaks RFC 6455 section 5 (1002) or
    whose close reason is not UTF-8 (1007, section 8.1). ``f``: the frame, ``avail``
    bytes of it received; ``in_message``: a fragmented message is open; ``deflate``:
    permessage-deflate is agreed (RFC 7692 section 6: RSV1 on a message's first frame)."""
    cdef int op = f[0] & 15
    cdef unsigned int code
    cdef size_t i
    cdef unsigned char reason[123]
    if not f[1] & 128:                   # unmasked (5.1)
        return 1002
    if f[0] & 0x70 and (f[0] & 0x70 != 0x40 or not deflate or op == WEBSOCKET_OP_CONTINUE
                        or op >= 8):     # RSV bits of no agreed extension (5.2)
        return 1002
    if op >= 8:                          # control frames: whole and short (5.5)
        if op > WEBSOCKET_OP_PONG or not f[0] & 128 or plen > 125:
            return 1002
        if op == WEBSOCKET_OP_CLOSE and avail >= hlen and plen <= avail - hlen:
            if plen == 1:
                return 1002
            if plen >= 2:                # a status code a peer may send (7.4.1, 7.4.2)
                code = ((f[hlen] ^ f[hlen - 4]) << 8) | (f[hlen + 1] ^ f[hlen - 3])
                if not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
                    return 1002
                for i in range(plen - 2):  # the reason, unmasked (mask key before data)
                    reason[i] = f[hlen + 2 + i] ^ f[hlen - 4 + ((i + 2) & 3)]
                if not _utf8_valid(reason, plen - 2):
                    return 1007
        return 0
    # data frames: a continuation only inside a fragmented message, a new one only outside
    if op > WEBSOCKET_OP_BINARY or (op == WEBSOCKET_OP_CONTINUE) != in_message:
        return 1002
    return 0


cdef bint _utf8_valid(const unsigned char *s, size_t n) noexcept nogil:
    """``s[:n]`` is well-formed UTF-8 (RFC 3629 section 4: no overlong forms, no
    surrogates, nothing above U+10FFFF)."""
    cdef size_t i = 0, k, more
    cdef unsigned int b, lo, hi
    while i < n:
        b = s[i]
        if b < 0x80:
            i += 1
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= b <= 0xDF:
            more = 1
        elif 0xE0 <= b <= 0xEF:
            more = 2
            if b == 0xE0:
                lo = 0xA0
            elif b == 0xED:
                hi = 0x9F
        elif 0xF0 <= b <= 0xF4:
            more = 3
            if b == 0xF0:
                lo = 0x90
            elif b == 0xF4:
                hi = 0x8F
        else:
            return False
        if i + more >= n:
            return False
        for k in range(1, more + 1):
            b = s[i + k]
            if b < lo or b > hi:
                return False
            lo = 0x80
            hi = 0xBF
        i += more + 1
    return True


cdef void _ws_pfn(mg_connection *c, int ev, void *ev_data) noexcept nogil:
    # In front of mongoose's mg_ws_cb: refuse frames beyond ws_max_size before they are
    # buffered whole (RFC 6455 section 7.4.1, code 1009) and frames that break the
    # protocol (1002).
    cdef ConnState *st = <ConnState *>c.fn_data
    cdef size_t limit, pos, plen, hlen, frag, size
    cdef unsigned char *p
    cdef int i, err
    cdef bint in_msg
    if ev == MG_EV_READ and c.is_draining:
        # Closing: what still arrives (e.g. the rest of a refused frame's payload) must
        # not be parsed as frames.
        c.recv.len = 0
        return
    if ev == MG_EV_READ and st != NULL and st.c == c and st.srv != NULL \
            and st.srv.ws_max_size:
        st.last_io_ms = mg_millis()
        limit = st.srv.ws_max_size
        if st.ws_deflate == 1:
            # Compressed, incompressible data grows a little (5 bytes per 16 KiB stored
            # block): the exact limit applies after inflating (_ws_inflate, manager.pyx).
            limit += (limit >> 10) + 64
        # mg_ws_cb keeps a fragmented message at the front of recv as its first frame's
        # flags byte plus the data so far; pfn_data is that length, where new frames start.
        pos = <size_t>c.pfn_data
        frag = pos - 1 if pos else 0   # data bytes of the fragmented message so far
        in_msg = pos != 0              # a fragmented message is open
        p = c.recv.buf
        while pos + 2 <= c.recv.len:
            plen = p[pos + 1] & 127
            hlen = 2
            if plen == 126:
                hlen = 4
                if pos + hlen > c.recv.len:
                    break
                plen = (<size_t>p[pos + 2] << 8) | p[pos + 3]
            elif plen == 127:
                hlen = 10
                if pos + hlen > c.recv.len:
                    break
                plen = 0
                for i in range(8):
                    if plen >> 56:
                        plen = <size_t>-1
                        break
                    plen = (plen << 8) | p[pos + 2 + i]
            if p[pos + 1] & 128:
                hlen += 4
            err = _ws_frame_error(p + pos, c.recv.len - pos, hlen, plen, in_msg,
                                  st.ws_deflate == 1)
            # control frames (opcode bit 8) may come between fragments and do not add up
            size = plen if p[pos] & 8 or plen > limit else frag + plen
            if err or size > limit:
                _ws_fail(c, err if err else 1009)   # handlers see the close code
                return
            if pos + hlen > c.recv.len or plen > c.recv.len - pos - hlen:
                break
            if not p[pos] & 8:
                frag = 0 if p[pos] & 128 else frag + plen
                in_msg = not p[pos] & 128
            pos += hlen + plen
    if _mg_ws_cb != NULL:
        _mg_ws_cb(c, ev, ev_data)
        if st != NULL and st.c == c and st.ws_failed:
            # _ws_refuse failed the connection inside mg_ws_cb's loop: now that the loop
            # is done, drop what is left of recv (mongoose's fragment offset included).
            c.recv.len = 0
            c.pfn_data = NULL


cdef void _srv_sweep(void *arg) noexcept nogil:
    # Timer: close keep-alive connections idle too long and heads that never complete.
    cdef mg_mgr *mgr = <mg_mgr *>arg
    cdef mg_connection *c = mgr.conns
    cdef ConnState *st
    cdef uint64_t now = mg_millis()
    cdef size_t freed = 0
    cdef bint busy = False
    while c != NULL:
        if c.fn == _on_event and c.is_accepted and not c.is_closing:
            st = <ConnState *>c.fn_data
            if st != NULL and st.c == c and st.srv != NULL and not c.is_websocket:
                if st.last_io_ms > _trimmed_ms:
                    busy = True
                if (st.body_mode and not st.paused and c.pfn == _srv_pfn
                        and now - st.last_io_ms > st.srv.header_timeout_ms):
                    # A streamed request body that stopped arriving: the app sees the close.
                    c.is_closing = 1
                    mg_attend(c)
                elif st.request_start_ms and now - st.request_start_ms > st.srv.header_timeout_ms:
                    if c.pfn == _srv_pfn and not c.is_resp:
                        _srv_refuse(c, 408, <char *>c.recv.buf, c.recv.len)
                        mg_attend(c)  # quiet connections: visit it on the next poll
                elif (not c.is_resp and st.body_mode == 0 and c.pfn == _srv_pfn
                      and c.send.len == 0
                      and now - st.last_io_ms > st.srv.keep_alive_timeout_ms):
                    c.is_closing = 1
                    mg_attend(c)
            if (st != NULL and st.c == c and st.srv != NULL and not c.is_closing
                    and c.recv.len == 0 and c.send.len == 0 and not c.is_resp
                    and st.body_mode == 0 and st.file_left == 0
                    and now - st.last_io_ms > _IDLE_BUFFERS_MS):
                # Idle a while: give the empty buffers back (memory per idle connection).
                # Not per request: freeing zeroes them.
                freed += c.recv.size + c.send.size
                if c.recv.size:
                    mg_iobuf_free(&c.recv)
                if c.send.size:
                    mg_iobuf_free(&c.send)
        c = c.next
    _srv_give_back(now, freed, busy)


cdef inline void _srv_give_back(uint64_t now, size_t freed, bint busy) noexcept nogil:
    """Give the heap's free pages back to the OS (malloc_trim): when the sweep freed idle
    buffers, and at most once a second while a server with tuned malloc is busy. With
    blocks up to 4 MiB kept in the heap, the free ones between live ones are given back
    by nothing else: under a mix of body sizes RSS crept up (soak, 3,000,000 requests to
    pooled WSGI: +45%). Once a second costs a 1 MiB echo ~1 page fault per request (the
    ~8 MiB given back each second are taken again), against 256 with malloc's defaults."""
    global _trimmed_ms, _accepted_since_trim
    if freed >= _TRIM_AFTER_BYTES or (
            cym_malloc_tuned and (busy or _accepted_since_trim)
            and now - _trimmed_ms >= _TRIM_BUSY_MS):
        cym_give_back_memory()
        _trimmed_ms = now
        _accepted_since_trim = False


cdef void _srv_accepted(mg_connection *c, ConnState *st) noexcept nogil:
    """A connection accepted by a configured listener: switch to the server protocol."""
    global _accepted_since_trim
    cdef ServerOpts *srv = st.srv
    _accepted_since_trim = True
    srv.refs += 1
    srv.connections += 1
    st.last_io_ms = mg_millis()
    if c.pfn != NULL and c.pfn != _srv_pfn:
        _mg_http_cb_set(c.pfn)
        c.pfn = _srv_pfn
    if srv.max_connections and srv.connections > srv.max_connections:
        _srv_reject(c, 503)


cdef inline void _mg_http_cb_set(mg_event_handler_t fn) noexcept nogil:
    global _mg_http_cb
    if _mg_http_cb == NULL:
        _mg_http_cb = fn


cdef void _srv_release(ConnState *st) noexcept nogil:
    cdef ServerOpts *srv = st.srv
    if st.file_left:
        _srv_file_end(st)
    if st.refused_line != NULL:
        free(st.refused_line)
        st.refused_line = NULL
    if srv == NULL:
        return
    st.srv = NULL
    if st.c != NULL and st.c == srv.listener:
        srv.listener = NULL
    if st.c != NULL and st.c.is_accepted and srv.connections:
        srv.connections -= 1
    srv.refs -= 1
    if srv.refs <= 0:
        free(srv.defaults)
        free(srv)
