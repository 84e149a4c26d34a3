# Connection: the Python face of one ``struct mg_connection``.

cdef bytes _CRLF = b"\r\n"
cdef dict _REASONS = {s.value: s.phrase.encode("latin-1") for s in HTTPStatus}


cdef bytes json_dumps(obj):
    return _json_dumps(obj, separators=(",", ":")).encode("utf-8")


cdef inline bytes _header_bytes(object v, str what):
    cdef bytes b = _as_bytes(v, what)
    if b"\r" in b or b"\n" in b or b"\0" in b:
        raise ValueError(f"{what} {b!r} contains CR, LF or NUL (response splitting)")
    return b


cdef inline bytes _header_name(object v):
    cdef bytes b = _as_bytes(v, "header name")
    if not b or b.translate(None, _TOKEN_CHARS):
        raise ValueError(f"header name {b!r} is not a token (RFC 9110 section 5.6.2)")
    return b


cdef list _header_dict(object headers):
    """``(name, value)`` bytes pairs of a reply()/ws_upgrade() header dict (0.2.x API).

    str is UTF-8 encoded, bytes kept, other values converted with ``str()``. CR, LF or
    NUL raise ValueError in 0.2.5's wording (RFC 9112 section 4: no response
    splitting); a name that is not a token raises ValueError too.
    """
    cdef list pairs = []
    cdef bytes n, v
    for name, value in headers.items():
        n = _as_bytes(name, "header name")
        if b"\r" in n or b"\n" in n or b"\0" in n:
            raise ValueError(
                f"Header name contains illegal character (CR, LF, or NUL): {name!r}")
        v = _as_bytes(value if isinstance(value, (bytes, str, bytearray, memoryview))
                      else str(value), "header value")
        if b"\r" in v or b"\n" in v or b"\0" in v:
            raise ValueError(
                f"Header value contains illegal character (CR, LF, or NUL): {value!r}")
        pairs.append((_header_name(n), v))
    return pairs


cdef inline mg_http_message *_message_arg(HttpMessage message) except NULL:
    # A request view handed to a Connection method; 0.2.5's error when it is stale.
    if message is None or message._hm == NULL:
        raise ValueError("HttpMessage is not valid for this event")
    return message._hm


cdef list _STATUS_LINES = [None] * 600  # status -> b"HTTP/1.1 200 OK" (no CRLF)


cdef list _checked_pairs(object headers, bint native):
    """``headers`` as ``(name, value)`` bytes pairs, checked (the general path of the
    send_* methods, for what _emit does not take as it is). ``native``: PEP 3333 str
    (latin-1). Raises ValueError for a name that is not a token, CR/LF/NUL in a value
    or a value that is not latin-1 (native), TypeError for another type."""
    cdef list pairs = []
    for name, value in headers:
        if native:
            pairs.append((_header_name(_native(name, "header name")),
                          _native(value, "header value")))
        else:
            pairs.append((_header_name(name), _header_bytes(value, "header value")))
    return pairs


cdef int _emit_checked(mg_connection *c, bytes first, bytes status, list pairs, bytes body,
                       Py_ssize_t content_length, bint close) except -1:
    # _emit of checked pairs: the one writer of response heads (default headers included).
    if _emit(c, first, status, pairs, <char *>body, len(body), content_length, close) != 0:
        raise ValueError(f"status line {first + status!r} contains CR, LF or NUL")
    return 0


cdef bytes _status_text(int status):
    if status < 100 or status > 599:  # RFC 9110 section 15: 1xx to 5xx
        raise ValueError(f"HTTP status {status} is not in 100..599")
    line = _STATUS_LINES[status]
    if line is None:
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s" % (
            status, _REASONS.get(status, b"Unknown"))
    return <bytes>line


cdef inline void _response_done(mg_connection *c) noexcept:
    # Lets the next pipelined request be parsed (mongoose: on MG_EV_POLL; ours: need_parse).
    cdef ConnState *st = <ConnState *>c.fn_data
    c.is_resp = 0
    if st != NULL:
        st.need_parse = 1
        st.last_io_ms = mg_millis()  # keep-alive idle time counts from here


cdef enum:
    # A response body this large (bytes) goes out from its object (_srv_body_by_ref):
    # below it, one copy into the send buffer costs less than the bookkeeping.
    _BODY_BY_REF_MIN = 65536


cdef inline ConnState *_by_ref(mg_connection *c, object body) noexcept:
    # The state of ``c`` if ``body`` may be sent by reference on it, else NULL.
    cdef ConnState *st = <ConnState *>c.fn_data
    if type(body) is not bytes or len(<bytes>body) < _BODY_BY_REF_MIN:
        return NULL
    if st == NULL or st.c != c or st.srv == NULL or not c.is_accepted or st.file_left \
            or c.is_closing:
        return NULL
    return st


cdef inline void _spill(mg_connection *c) noexcept:
    # Before anything else is written: the rest of a body sent by reference goes first.
    cdef ConnState *st = <ConnState *>c.fn_data
    if st != NULL and st.c == c and st.body_ref != NULL:
        _srv_body_spill(c, st)


cdef inline void _response_written(mg_connection *c, bint complete) noexcept:
    # Bookkeeping after a response (or its head) went into the send buffer.
    cdef ConnState *st = <ConnState *>c.fn_data
    if st != NULL:
        st.resp_written = 1
    if complete:
        _response_done(c)
        if st != NULL and st.srv != NULL:
            _flush_later(c, st)


cdef inline void _ws_guard(mg_connection *c) noexcept:
    # After mg_ws_upgrade: remember mongoose's mg_ws_cb, put the size check in front.
    global _mg_ws_cb
    cdef ConnState *st = <ConnState *>c.fn_data
    _srv_piece_drop(c)  # frames must not land in a request body's piece
    if not c.is_websocket or c.pfn == NULL or c.pfn == _ws_pfn:
        return
    if _mg_ws_cb == NULL:
        _mg_ws_cb = c.pfn
    if st != NULL and st.srv != NULL and st.srv.ws_max_size and c.pfn == _mg_ws_cb:
        c.pfn = _ws_pfn


cdef void _deflate_on(Connection conn, mg_connection *c, _WsDeflate deflate) noexcept:
    # permessage-deflate agreed: ws_send compresses, _dispatch inflates, _ws_pfn lets
    # RSV1 through on first frames.
    cdef ConnState *st = <ConnState *>c.fn_data
    if st != NULL:
        conn._ws_deflate = deflate
        st.ws_deflate = 1


cdef void _drop_socket(mg_connection *c) noexcept:
    # mg_resolve() gives the connection a new socket without closing the one it has,
    # which would stay in epoll pointing at c after c is freed (a crash on its next
    # event): close it the way mongoose's close_conn() does.
    cdef int fd = <int><size_t>c.fd
    if c.mgr.epoll_fd >= 0:
        epoll_ctl(c.mgr.epoll_fd, EPOLL_CTL_DEL, fd, NULL)
    posix_close(fd)
    c.fd = <void *><size_t>-1
    c.is_connecting = 0
    c.is_readable = 0
    c.is_writable = 0


cdef inline str _ip_str(mg_addr *a):
    if a.is_ip6:
        return inet_ntop(AF_INET6, PyBytes_FromStringAndSize(<char *>a.addr.ip, 16))
    return inet_ntop(AF_INET, PyBytes_FromStringAndSize(<char *>a.addr.ip, 4))


cdef object _tls_text(char *text, size_t n):
    # A malloc'd string of tls_openssl.c as str (ASCII: PEM, RFC 4514), freed; or None.
    if text == NULL:
        return None
    try:
        return PyUnicode_DecodeLatin1(text, n, NULL)
    finally:
        free(text)


cdef class Connection:
    """One mongoose connection (``struct mg_connection``).

    The same object is passed to every event of the connection. Once it is closed
    (after its MG_EV_CLOSE), it behaves as in cymongoose 0.2.5: ``id`` is 0,
    ``local_addr``/``remote_addr`` are None, ``is_closing`` is True and the other flags
    False, buffer sizes 0, ``recv_data()``/``send_data()`` return b"", ``close()`` and
    ``drain()`` do nothing, and every other method raises
    ``RuntimeError("Connection has been closed")``.
    """

    # Fields and C methods are declared in connection.pxd.

    def __cinit__(self):
        self._c = NULL
        self._want_io = 1

    cdef inline mg_connection *_get(self) except NULL:
        if self._c == NULL:
            raise RuntimeError("Connection has been closed")  # 0.2.5's wording
        _touch(self._c)  # a quiet connection is visited on the next poll (manager.pyx)
        return self._c

    cdef inline bint _alive(self) noexcept:
        return self._c != NULL

    @property
    def id(self) -> int:
        """The connection's id (mongoose's ``c->id``); 0 once closed (as 0.2.5)."""
        return self._id if self._alive() else 0

    @property
    def handler(self):
        return self._handler

    @handler.setter
    def handler(self, h):
        self.set_handler(h)

    def set_handler(self, handler) -> None:
        """Set the event handler ``handler(conn, ev, data)`` of this connection (None: the
        manager's). Raises TypeError if ``handler`` is not callable."""
        if handler is not None and not callable(handler):
            raise TypeError(f"handler must be callable or None, not {type(handler).__name__}")
        self._handler = handler

    @property
    def io_events(self) -> bool:
        """Whether MG_EV_POLL, MG_EV_READ and MG_EV_WRITE reach the Python handler.

        True by default (mongoose semantics); servers turn it off on a listener so
        that accepted connections cost no Python call per loop iteration.
        Accepted connections inherit their listener's setting.
        """
        return bool(self._want_io)

    @io_events.setter
    def io_events(self, bint value):
        self._want_io = value
        if self._c != NULL:
            _touch(self._c)
        if self._c != NULL and self._c.fn_data != NULL:
            (<ConnState *>self._c.fn_data).want_io = value

    @property
    def consume_reads(self) -> bool:
        """Whether raw TCP/UDP reads leave the receive buffer (False by default).

        On a raw TCP/UDP connection MG_EV_READ's ``data`` is the bytes just received.
        False (cymongoose 0.2.x contract): they also stay in the receive buffer, which
        grows until the connection closes; ``recv_data()`` peeks at all of it. True: they
        are taken out of the buffer before the handler runs (memory stays bounded; the
        handler keeps what it needs of ``data``). Connections speaking a protocol (HTTP,
        WebSocket, MQTT, SNTP) get None: their protocol has consumed the bytes. Set it on
        a listener before it accepts: accepted connections inherit it.
        """
        return self._consume_reads

    @consume_reads.setter
    def consume_reads(self, bint value):
        self._consume_reads = value

    # Reading state needs no _touch: only changes must wake a quiet connection.
    @property
    def local_addr(self):
        """``(ip, port, is_ipv6)`` of this end, None once closed; ``("", 0, False)`` on a
        Unix socket (a listener of ``Manager.listen(fd=)`` and what it accepted)."""
        cdef mg_connection *c = self._c
        if c == NULL:
            return None
        if c.fn_data != NULL and (<ConnState *>c.fn_data).is_unix:
            return ("", 0, False)
        return (_ip_str(&c.loc), ntohs(c.loc.port), bool(c.loc.is_ip6))

    @property
    def remote_addr(self):
        """``(ip, port, is_ipv6)`` of the peer, None once closed; ``("", 0, False)`` on a
        Unix socket."""
        cdef mg_connection *c = self._c
        if c == NULL:
            return None
        if c.fn_data != NULL and (<ConnState *>c.fn_data).is_unix:
            return ("", 0, False)
        return (_ip_str(&c.rem), ntohs(c.rem.port), bool(c.rem.is_ip6))

    # Flags are False and sizes 0 once closed, except is_closing (True).
    @property
    def is_listening(self): return self._c != NULL and bool(self._c.is_listening)
    @property
    def is_closing(self): return self._c == NULL or bool(self._c.is_closing)
    @property
    def is_client(self): return self._c != NULL and bool(self._c.is_client)
    @property
    def is_tls(self): return self._c != NULL and bool(self._c.is_tls)
    @property
    def is_udp(self): return self._c != NULL and bool(self._c.is_udp)
    @property
    def is_websocket(self): return self._c != NULL and bool(self._c.is_websocket)
    @property
    def is_readable(self): return self._c != NULL and bool(self._c.is_readable)
    @property
    def is_writable(self): return self._c != NULL and bool(self._c.is_writable)
    @property
    def is_full(self): return self._c != NULL and bool(self._c.is_full)
    @property
    def is_draining(self): return self._c != NULL and bool(self._c.is_draining)
    @property
    def recv_len(self): return self._c.recv.len if self._c != NULL else 0
    @property
    def send_len(self): return self._c.send.len if self._c != NULL else 0
    @property
    def recv_size(self): return self._c.recv.size if self._c != NULL else 0
    @property
    def send_size(self): return self._c.send.size if self._c != NULL else 0

    def recv_data(self, Py_ssize_t length=-1) -> bytes:
        """Peek at up to ``length`` bytes (all when -1) of the receive buffer, without
        consuming them; b"" once closed."""
        cdef mg_connection *c = self._c
        if c == NULL:
            return b""
        cdef size_t n = c.recv.len if length < 0 or <size_t>length > c.recv.len else <size_t>length
        return PyBytes_FromStringAndSize(<char *>c.recv.buf, n)

    def send_data(self, Py_ssize_t length=-1) -> bytes:
        """Peek at up to ``length`` bytes (all when -1) of the send buffer; b"" once closed."""
        cdef mg_connection *c = self._c
        if c == NULL:
            return b""
        cdef size_t n = c.send.len if length < 0 or <size_t>length > c.send.len else <size_t>length
        return PyBytes_FromStringAndSize(<char *>c.send.buf, n)

    def send(self, data) -> bool:
        """Append ``data`` (bytes or str, UTF-8) to the send buffer (``mg_send``)."""
        cdef mg_connection *c = self._get()
        cdef bytes b = _as_bytes(data, "data")
        _spill(c)
        return bool(mg_send(c, <char *>b, len(b)))

    def send_response(self, int status, headers, body=b"") -> None:
        """Write a complete HTTP/1.1 response in one buffer append.

        On a connection of `configure_http_server`, a ``bytes`` body of 64 KiB or more
        is not copied: the socket takes it from the object (held until its last byte is
        out; not counted in ``send_len``), and the response completes then.
        ``headers``: iterable of ``(name, value)`` pairs, bytes or str.
        ``Content-Length`` is added unless present (not for 204 and 304). Raises ValueError for a header
        containing CR/LF/NUL or a status outside 100..599 (RFC 9112 section 4).
        """
        cdef bytes b = _as_bytes(body, "body")
        cdef bytes line = _status_text(status)
        cdef mg_connection *c = self._get()
        cdef Py_ssize_t length = -1 if status == 204 or status == 304 else len(b)
        cdef ConnState *st
        _spill(c)
        st = _by_ref(c, b) if length >= 0 else NULL
        if st != NULL and type(headers) is list and _emit(c, line, b"", <list>headers, NULL,
                                                           0, length, False) == 0:
            _response_written(c, False)
            _srv_body_by_ref(c, st, b)  # completes the response after its last byte
            return
        if type(headers) is not list or _emit(c, line, b"", <list>headers, <char *>b,
                                               len(b), length, False) != 0:
            _emit_checked(c, line, b"", _checked_pairs(headers, False), b, length, False)
        _response_written(c, True)

    def send_response_head(self, int status, headers) -> None:
        """Write only the status line and headers; the body follows (e.g. ``http_chunk``)."""
        cdef bytes line = _status_text(status)
        cdef mg_connection *c = self._get()
        _spill(c)
        if type(headers) is not list or _emit(c, line, b"", <list>headers, NULL, 0, -1,
                                               False) != 0:
            _emit_checked(c, line, b"", _checked_pairs(headers, False), b"", -1, False)
        _response_written(c, False)

    def send_wsgi_response(self, str status not None, list headers not None, body=b"",
                           bint close=False) -> None:
        """Write a complete response in one buffer append and mark it complete.

        ``status``: PEP 3333 status string (``"200 OK"``); ``headers``: list of
        ``(name, value)`` str pairs; ``body``: bytes or a list/tuple of bytes (joined).
        ``Content-Length`` is added unless present; ``close`` adds ``Connection: close``
        and closes after sending. A large ``bytes`` body is sent from the object, as in
        `send_response`. Raises ValueError for CR/LF/NUL in status or headers
        (RFC 9112 section 4), TypeError for a non-bytes body part.
        """
        cdef mg_connection *c = self._get()
        cdef bytes b
        cdef ConnState *st
        if isinstance(body, bytes):
            b = <bytes>body
        elif isinstance(body, (list, tuple)):
            b = b"".join(body)  # one bytes part: that object itself, no copy
        else:
            b = _as_bytes(body, "body")
        _spill(c)
        st = _by_ref(c, b)
        if st != NULL and _wsgi_emit(c, status, headers, NULL, 0, len(b), close) == 0:
            _response_written(c, False)
            _srv_body_by_ref(c, st, b)  # completes the response after its last byte
            if close:
                c.is_draining = 1
            return
        if _wsgi_emit(c, status, headers, <char *>b, len(b), len(b), close) != 0:
            _emit_checked(c, _HTTP11, _native(status, "status"),
                          _checked_pairs(headers, True), b, len(b), close)
        _response_written(c, True)
        if close:
            c.is_draining = 1

    def send_wsgi_head(self, str status not None, list headers not None,
                       bint chunked=False, bint close=False) -> None:
        """Write the status line and headers of a streamed response (the body follows with
        ``send``, or ``http_chunk`` when ``chunked`` adds ``Transfer-Encoding: chunked``);
        end it with `finish_response`. Errors as `send_wsgi_response`."""
        if chunked:
            headers = headers + [("Transfer-Encoding", "chunked")]
        cdef mg_connection *c = self._get()
        _spill(c)
        if _wsgi_emit(c, status, headers, NULL, 0, -1, close) != 0:
            _emit_checked(c, _HTTP11, _native(status, "status"),
                          _checked_pairs(headers, True), b"", -1, close)
        _response_written(c, False)

    def send_file(self, int fd, unsigned long long offset, unsigned long long length) -> None:
        """Send ``length`` bytes of the open file ``fd`` from ``offset``, after what is
        already queued, and complete the response when the last byte is queued.

        The file never passes through Python: on plain TCP the kernel sends it
        (``sendfile(2)``, Linux) whenever nothing else is queued, otherwise (TLS, or a
        full socket) C reads it (``pread``) into the send buffer as the socket drains.
        ``fd`` is duplicated, so the caller may close its file at once; the duplicate is
        closed when the file is sent or the connection closes. Pipelined requests
        wait until the file is sent. Only on connections of a listener set up with
        `configure_http_server`. Raises RuntimeError otherwise or while another file is
        being sent, OSError if ``fd`` cannot be duplicated.
        """
        cdef mg_connection *c = self._get()
        cdef ConnState *st = <ConnState *>c.fn_data
        cdef int dupfd
        if st == NULL or st.srv == NULL or not c.is_accepted:
            raise RuntimeError("send_file() needs a connection of configure_http_server()")
        _spill(c)
        if st.file_left:
            raise RuntimeError(f"connection {self._id} is already sending a file")
        if length == 0:
            _response_done(c)
            return
        dupfd = posix_dup(fd)
        if dupfd < 0:
            import os
            raise OSError(f"cannot duplicate file descriptor {fd}")
        st.file_fd = dupfd
        st.file_offset = offset
        st.file_left = length
        c.is_resp = 1
        _srv_flush_now(c, st)  # the head first: with nothing queued, sendfile(2) can go
        _srv_file_pump(c, st)

    def finish_response(self) -> None:
        """Mark a response whose body was written by hand (``send``) as complete."""
        cdef mg_connection *c = self._get()
        cdef ConnState *st = <ConnState *>c.fn_data
        _response_done(c)
        if st != NULL and st.srv != NULL:
            _flush_later(c, st)

    def flush(self) -> None:
        """Write what the send buffer holds to the socket now, as far as it takes it,
        instead of at the next poll (PEP 3333: a streamed block goes out before the app
        is asked for the next). What the socket does not take is sent by the poll loop.
        Only connections of a listener set up with `configure_http_server`, not TLS ones:
        elsewhere it does nothing. Raises RuntimeError once the connection is closed."""
        cdef mg_connection *c = self._get()
        cdef ConnState *st = <ConnState *>c.fn_data
        if st != NULL and st.srv != NULL:
            _srv_flush_now(c, st)

    def reply(self, int status_code, body=b"", headers=None) -> None:
        """Send a full HTTP response (like ``mg_http_reply``).

        ``headers``: dict of str (UTF-8) or bytes names and values (other values are
        converted with ``str()``); ``Content-Type: text/plain`` is added unless present
        (case-insensitive). Raises ValueError for CR, LF or NUL in a header name or
        value (``"Header value contains illegal character (CR, LF, or NUL): ..."``) or
        a name that is not a token, RuntimeError once the connection is closed.
        """
        cdef list pairs = _header_dict(headers) if headers else []
        for name, _ in pairs:
            if (<bytes>name).lower() == b"content-type":
                break
        else:
            pairs.append((b"Content-Type", b"text/plain"))
        self.send_response(status_code, pairs, body)

    def reply_json(self, data, int status_code=200, headers=None) -> None:
        """Send ``data`` serialised as JSON with ``Content-Type: application/json``."""
        h = dict(headers) if headers else {}
        h.setdefault("Content-Type", "application/json")
        self.reply(status_code, json_dumps(data), h)

    def http_chunk(self, data) -> None:
        """Send one chunk of a chunked response (RFC 9112 section 7.1); empty data ends it."""
        cdef mg_connection *c = self._get()
        cdef bytes b = _as_bytes(data, "data")
        _spill(c)
        mg_http_write_chunk(c, <char *>b, len(b))

    def http_sse(self, event_type, data) -> None:
        """Send one Server-Sent Event as a chunk (``event:``/``data:`` lines)."""
        self.http_chunk(b"event: %s\ndata: %s\n\n" % (
            _header_bytes(event_type, "event_type"), _as_bytes(data, "data")))

    def ws_upgrade(self, HttpMessage message, extra_headers=None, *,
                   bint per_message_deflate=False) -> None:
        """Answer a WebSocket upgrade request (RFC 6455 section 4.2.2, ``mg_ws_upgrade``).

        ``extra_headers``: dict (checked as in `reply`) or preformatted str/bytes of
        ``Name: value\\r\\n`` lines. ``per_message_deflate``: agree to the client's
        permessage-deflate offer, if it made one we accept (RFC 7692; off by default, as
        in 0.2.x): messages are then inflated before the handler sees them and
        `ws_send` compresses; `ws_extensions` tells what was agreed. Raises
        ValueError("HttpMessage is not valid for this event") when ``message`` is None
        or its handler returned.
        """
        cdef mg_connection *c = self._get()
        cdef mg_http_message *hm = _message_arg(message)
        cdef bytes extra
        cdef mg_str *offer
        cdef _WsDeflate deflate = None
        if extra_headers is None:
            extra = b""
        elif isinstance(extra_headers, dict):
            extra = b"".join(n + b": " + v + _CRLF for n, v in _header_dict(extra_headers))
        else:
            extra = _as_bytes(extra_headers, "extra_headers")
        if per_message_deflate:
            offer = mg_http_get_header(hm, "Sec-WebSocket-Extensions")
            if offer != NULL:
                deflate = _deflate_agree(_bytes(offer[0]))
            if deflate is not None:
                extra += b"Sec-WebSocket-Extensions: " + deflate.response.encode() + _CRLF
        if extra:
            mg_ws_upgrade(c, hm, "%s", <char *>extra)
        else:
            mg_ws_upgrade(c, hm, NULL)
        _ws_guard(c)
        if deflate is not None and c.is_websocket:
            _deflate_on(self, c, deflate)

    @property
    def ws_extensions(self) -> str:
        """The WebSocket extension agreed on this connection (RFC 6455 section 9), as its
        Sec-WebSocket-Extensions line, e.g. ``"permessage-deflate"``; "" when none."""
        return "" if self._ws_deflate is None else (<_WsDeflate>self._ws_deflate).response

    def ws_accept(self, key, headers=(), *, deflate_offer=None) -> None:
        """Complete a WebSocket upgrade after the request's message is gone (RFC 6455 4.2.2).

        ``key``: the request's ``Sec-WebSocket-Key`` value (str or bytes); ``headers``:
        ``(name, value)`` pairs added to the 101 response, e.g. the chosen
        ``Sec-WebSocket-Protocol``. ``deflate_offer``: the request's
        Sec-WebSocket-Extensions value(s), joined with commas (str or bytes): its first
        acceptable permessage-deflate offer is agreed (RFC 7692 section 7.1), as in
        `ws_upgrade`; None agrees nothing. The connection then speaks WebSocket
        (MG_EV_WS_OPEN, MG_EV_WS_MSG ...). Raises ValueError for CR/LF/NUL in the key or
        a header.
        """
        cdef mg_connection *c = self._get()
        cdef bytes k = _header_bytes(key, "Sec-WebSocket-Key")
        cdef _WsDeflate deflate = None
        if deflate_offer is not None:
            deflate = _deflate_agree(_header_bytes(deflate_offer, "deflate_offer"))
            if deflate is not None:
                headers = [*headers, (b"sec-websocket-extensions", deflate.response)]
        cdef bytes extra = b"".join(
            _header_name(n) + b": " + _header_bytes(v, "header value") + _CRLF
            for n, v in headers)
        cdef mg_http_message hm
        memset(&hm, 0, sizeof(hm))
        hm.headers[0].name.buf = <char *>"Sec-WebSocket-Key"
        hm.headers[0].name.len = 17
        hm.headers[0].value = _mgs(k)
        mg_ws_upgrade(c, &hm, "%s", <char *>extra)
        _ws_guard(c)
        if deflate is not None:
            _deflate_on(self, c, deflate)
        cdef ConnState *st = <ConnState *>c.fn_data
        if st != NULL and st.srv != NULL:
            # Most WebSockets sit idle: send the 101 now and hold no empty buffers
            # (16 KiB each) meanwhile; the next frame allocates again.
            _srv_flush_now(c, st)
            if c.send.len == 0 and c.send.size:
                mg_iobuf_free(&c.send)
            if c.recv.len == 0 and c.recv.size:
                mg_iobuf_free(&c.recv)

    def configure_http_server(self, *, int max_header_count=100,
                              Py_ssize_t max_header_bytes=65536, Py_ssize_t max_body_size=0,
                              Py_ssize_t stream_threshold=65536,
                              Py_ssize_t keep_alive_timeout_ms=5000,
                              Py_ssize_t header_timeout_ms=30000,
                              Py_ssize_t max_connections=0, Py_ssize_t ws_max_size=0,
                              bint date_header=False, default_headers=None) -> None:
        """Serve this HTTP listener's connections with the core's HTTP/1.1 server protocol.

        Accepted connections then get, in C: 400 for a malformed request, 431 beyond
        ``max_header_count`` headers (1..100) or ``max_header_bytes`` of request line and
        headers, 413 when Content-Length exceeds ``max_body_size`` bytes, 501 for a
        Transfer-Encoding other than chunked, 503 beyond ``max_connections`` open
        connections, 408 when a request head takes longer than ``header_timeout_ms``
        (each answered with ``Connection: close``); ``100 Continue`` for
        ``Expect: 100-continue``; keep-alive connections idle (no request in progress)
        for ``keep_alive_timeout_ms`` ms are closed; WebSocket messages above
        ``ws_max_size`` bytes are refused with close code 1009 (RFC 6455 section 7.4.1).
        Every response written on them (``send_response``, ``send_wsgi_response``, the
        heads, the fast paths and the errors above) gets ``Date`` (RFC 9110 section
        6.6.1, IMF-fixdate, remade once a second) when ``date_header`` is True, and the
        ``default_headers`` (``(name, value)`` pairs, bytes or str, at most 16), each
        unless the response has its own field of that name. Bodies up to
        ``stream_threshold`` bytes arrive whole with MG_EV_HTTP_MSG; larger or chunked
        ones arrive as MG_EV_HTTP_MSG with ``more_body`` True, then
        EV_HTTP_BODY events (bytes; an empty one ends the body). MG_EV_HTTP_HDRS is not
        delivered. 0 means unlimited for the size and count limits. Raises ValueError for
        an out-of-range value or a default header that is not a valid field (a name
        that is not a token, CR/LF/NUL in a value), TypeError for one that is not a
        pair, RuntimeError if this is not an HTTP listener.
        """
        cdef mg_connection *c = self._get()
        cdef ConnState *st = <ConnState *>c.fn_data
        cdef bytes block = b""
        cdef list offsets = [], name_lens = []
        if not c.is_listening or c.pfn == NULL or st == NULL:
            raise RuntimeError("configure_http_server() needs an HTTP listener (listen(http=True))")
        if not 1 <= max_header_count <= MG_MAX_HTTP_HEADERS:
            raise ValueError(f"max_header_count must be in 1..{MG_MAX_HTTP_HEADERS}, "
                             f"got {max_header_count}")
        for name, value in (("max_header_bytes", max_header_bytes),
                            ("keep_alive_timeout_ms", keep_alive_timeout_ms),
                            ("header_timeout_ms", header_timeout_ms)):
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name, value in (("max_body_size", max_body_size),
                            ("stream_threshold", stream_threshold),
                            ("max_connections", max_connections), ("ws_max_size", ws_max_size)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        for pair in default_headers or ():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"default_headers items must be (name, value) pairs, "
                                f"got {pair!r}")
            name_b = _header_name(pair[0])
            offsets.append(len(block))
            name_lens.append(len(name_b))
            block += name_b + b": " + _header_bytes(pair[1], "default header value") + _CRLF
        if len(offsets) > _MAX_DEFAULTS:
            raise ValueError(f"default_headers takes at most 16 headers, got {len(offsets)}")
        cdef char *defaults = NULL
        if block:
            defaults = <char *>malloc(len(block))
            if defaults == NULL:
                raise MemoryError()
            memcpy(defaults, <char *>block, len(block))
        cdef ServerOpts *srv = st.srv
        if srv == NULL:
            cym_tune_malloc()
            srv = <ServerOpts *>malloc(sizeof(ServerOpts))
            if srv == NULL:
                free(defaults)
                raise MemoryError()
            memset(srv, 0, sizeof(ServerOpts))
            srv.refs = 1
            srv.listener = c
            st.srv = srv
        srv.max_header_count = max_header_count
        srv.max_header_bytes = max_header_bytes
        srv.max_body_size = max_body_size
        srv.stream_threshold = stream_threshold
        srv.keep_alive_timeout_ms = keep_alive_timeout_ms
        srv.header_timeout_ms = header_timeout_ms
        srv.max_connections = max_connections
        srv.ws_max_size = ws_max_size
        srv.date_header = date_header
        free(srv.defaults)
        srv.defaults = defaults
        srv.defaults_len = len(block)
        srv.default_count = len(offsets)
        for i, off in enumerate(offsets):
            srv.default_off[i] = off
            srv.default_name_len[i] = name_lens[i]
        _mg_http_cb_set(c.pfn)
        self._mgr._start_sweep(min(keep_alive_timeout_ms, header_timeout_ms))

    @property
    def refused(self):
        """What the core's HTTP server (`configure_http_server`) answered on this
        connection by itself, for an access log: ``(status, request_line)``, or None.

        ``status`` is 400, 408, 413, 431, 501, 503 or 505 (or 500 after a handler raised
        on MG_EV_HTTP_MSG); ``request_line`` is the refused request's first line as
        received (str, latin-1, without CRLF), or None when there was none to keep: a 503
        is sent at accept, a 408 or 431 may end a line still arriving, a 413 to a chunked
        body comes after the request went to the handler. The connection closes after
        such an answer; read it in the MG_EV_CLOSE handler at the latest.
        """
        cdef mg_connection *c = self._c
        if c == NULL or c.fn_data == NULL:
            return None
        cdef ConnState *st = <ConnState *>c.fn_data
        if st.c != c or st.refused == 0:
            return None
        if st.refused_line == NULL:
            return (st.refused, None)
        return (st.refused, PyUnicode_DecodeLatin1(st.refused_line, st.refused_line_len, NULL))

    @property
    def request_count(self) -> int:
        """HTTP requests the core's server protocol has delivered (MG_EV_HTTP_MSG, the
        fast handlers' included) on the connections of this connection's listener since
        `configure_http_server`: one count shared by the listener and the connections it
        accepted. Requests answered in C with an error (400, 413, 431 ...) are not counted.
        0 for other connections and once closed. Read by the servers' max-requests limit.
        """
        cdef mg_connection *c = self._c
        if c == NULL or c.fn_data == NULL or (<ConnState *>c.fn_data).srv == NULL:
            return 0
        return (<ConnState *>c.fn_data).srv.requests

    @property
    def request_limit(self) -> int:
        """When `request_count` reaches this many requests, the listener's handler gets
        one EV_REQUEST_LIMIT event (data None), just before that request's MG_EV_HTTP_MSG;
        0 (the default): never. Set it on a listener of `configure_http_server`
        (RuntimeError otherwise; ValueError below 0); reads 0 elsewhere and once closed.
        """
        cdef mg_connection *c = self._c
        if c == NULL or c.fn_data == NULL or (<ConnState *>c.fn_data).srv == NULL:
            return 0
        return (<ConnState *>c.fn_data).srv.request_limit

    @request_limit.setter
    def request_limit(self, value) -> None:
        cdef mg_connection *c = self._get()
        cdef ConnState *st = <ConnState *>c.fn_data
        if not c.is_listening or st == NULL or st.srv == NULL:
            raise RuntimeError("request_limit needs a listener set up with "
                               "configure_http_server()")
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"request_limit must be an int, got {value!r}")
        if value < 0:
            raise ValueError(f"request_limit must be >= 0, got {value}")
        st.srv.request_limit = value

    @property
    def more_body(self) -> bool:
        """True while a streamed request body is still arriving (EV_HTTP_BODY events)."""
        cdef mg_connection *c = self._get()
        cdef ConnState *st = <ConnState *>c.fn_data
        return st != NULL and st.body_mode != 0

    def pause_reading(self) -> None:
        """Stop reading from the socket (bounded memory while a consumer is slow)."""
        cdef mg_connection *c = self._get()
        cdef ConnState *st = <ConnState *>c.fn_data
        if st != NULL:
            st.paused = 1
        _set_reading(c, False)

    def resume_reading(self) -> None:
        """Read from the socket again after `pause_reading`."""
        cdef mg_connection *c = self._get()
        cdef ConnState *st = <ConnState *>c.fn_data
        if st != NULL:
            st.paused = 0
        _set_reading(c, True)

    def notify_writable(self, Py_ssize_t low_water_bytes=0) -> None:
        """Ask for one EV_WRITABLE event (data None) once the send buffer holds at most
        ``low_water_bytes`` bytes: at the next poll if it already does. For response
        backpressure on connections whose I/O events are off (``io_events`` False)."""
        cdef mg_connection *c = self._get()
        cdef ConnState *st = <ConnState *>c.fn_data
        if low_water_bytes < 0:
            raise ValueError(f"low_water_bytes must be >= 0, got {low_water_bytes}")
        if st == NULL:
            raise RuntimeError(f"connection {self._id} has no event state")
        st.low_water = low_water_bytes
        st.want_writable = 1

    def ws_send(self, data, int op=WEBSOCKET_OP_TEXT) -> int:
        """Send one WebSocket frame with opcode ``op`` (``mg_ws_send``); returns bytes queued.

        Once permessage-deflate is agreed (`ws_extensions`), a text or binary message is
        sent compressed (RFC 7692 section 6: RSV1 set); control frames never are.
        """
        cdef mg_connection *c = self._get()
        cdef bytes b = _as_bytes(data, "data")
        cdef bytes z
        if self._ws_deflate is not None and (op == WEBSOCKET_OP_TEXT or
                                             op == WEBSOCKET_OP_BINARY):
            z = (<_WsDeflate>self._ws_deflate).deflate(b)
            if z is not None:
                return mg_ws_send(c, <char *>z, len(z), op | 0x40)  # RSV1: compressed
        return mg_ws_send(c, <char *>b, len(b), op)

    def serve_dir(self, HttpMessage message, root_dir, extra_headers="", mime_types="",
                  page404="") -> None:
        """Answer ``message`` from the files under ``root_dir`` (``mg_http_serve_dir``).

        ``extra_headers``: ``"Name: value\\r\\n"`` lines; ``mime_types``:
        ``"ext1=type1,ext2=type2"``; ``page404``: path of a custom 404 page. URIs
        escaping ``root_dir`` (``/../``) are refused by mongoose. The file is streamed
        over the following polls. Raises ValueError for NUL in any argument or a stale
        ``message`` (as `ws_upgrade`).
        """
        cdef mg_connection *c = self._get()
        cdef mg_http_message *hm = _message_arg(message)
        cdef bytes root = _cstr_arg(root_dir, "root_dir")
        cdef bytes extra = _cstr_arg(extra_headers, "extra_headers")
        cdef bytes mime = _cstr_arg(mime_types, "mime_types")
        cdef bytes p404 = _cstr_arg(page404, "page404")
        cdef mg_http_serve_opts opts
        memset(&opts, 0, sizeof(opts))
        opts.root_dir = root
        if extra:
            opts.extra_headers = extra
        if mime:
            opts.mime_types = mime
        if p404:
            opts.page404 = p404
        mg_http_serve_dir(c, hm, &opts)

    def serve_file(self, HttpMessage message, path, extra_headers="", mime_types="") -> None:
        """Answer ``message`` with the file at ``path`` (``mg_http_serve_file``).

        Handles Range, If-None-Match/ETag and 404 for a missing file.
        Raises ValueError for NUL in any argument or a stale ``message`` (as `ws_upgrade`).
        """
        cdef mg_connection *c = self._get()
        cdef mg_http_message *hm = _message_arg(message)
        cdef bytes fpath = _cstr_arg(path, "path")
        cdef bytes extra = _cstr_arg(extra_headers, "extra_headers")
        cdef bytes mime = _cstr_arg(mime_types, "mime_types")
        cdef mg_http_serve_opts opts
        memset(&opts, 0, sizeof(opts))
        if extra:
            opts.extra_headers = extra
        if mime:
            opts.mime_types = mime
        mg_http_serve_file(c, hm, fpath, &opts)

    def http_basic_auth(self, username, password) -> None:
        """Append an ``Authorization: Basic`` header line to the send buffer (``mg_http_bauth``).

        Call while writing a client request, between the request line and the
        blank line. Raises ValueError for NUL in ``username`` or ``password``.
        """
        cdef mg_connection *c = self._get()
        cdef bytes u = _cstr_arg(username, "username")
        cdef bytes p = _cstr_arg(password, "password")
        mg_http_bauth(c, u, p)

    def resolve(self, url) -> None:
        """Connect this client connection to ``url``, resolving its host first (``mg_resolve``).

        A socket the connection already has is closed first and a pending lookup is
        cancelled, so a second call reconnects. MG_EV_RESOLVE then MG_EV_CONNECT follow,
        or MG_EV_ERROR. Raises RuntimeError on a listener, an accepted or a closing
        connection, and on MG_EV_OPEN (mongoose connects to the URL given to ``connect``
        as soon as that event returns), ValueError for NUL in ``url``.
        """
        cdef mg_connection *c = self._get()
        cdef bytes u = _cstr_arg(url, "url")
        if not c.is_client:
            raise RuntimeError(
                f"connection {self._id}: resolve() needs a client connection (Manager.connect)")
        if c.is_closing:
            raise RuntimeError(f"connection {self._id} is closing")
        if c.is_resolving:
            mg_resolve_cancel(c)
        elif <size_t>c.fd == <size_t>-1:  # MG_INVALID_SOCKET: only during MG_EV_OPEN
            raise RuntimeError(f"connection {self._id}: resolve() on MG_EV_OPEN; mongoose "
                               "connects to the URL given to connect() when it returns")
        else:
            _drop_socket(c)
        mg_resolve(c, u)

    def resolve_cancel(self) -> None:
        """Cancel a pending DNS resolution of this connection (``mg_resolve_cancel``).

        A no-op when no lookup is pending, and on a closing connection (closing cancels).
        """
        cdef mg_connection *c = self._get()
        # mongoose's DNS code calls the handler (MG_EV_RESOLVE, MG_EV_CONNECT, MG_EV_ERROR)
        # while it still holds the lookup it would free here: only cancel a lookup that
        # is pending, never one being answered.
        if c.is_resolving and not c.is_closing:
            mg_resolve_cancel(c)

    # --- MQTT ----------------------------------------------------------------

    def mqtt_pub(self, topic, message, int qos=0, bint retain=False, *,
                 properties=None) -> int:
        """Publish ``message`` on ``topic`` (``mg_mqtt_pub``); returns the packet id (0 for QoS 0).

        ``properties`` (keyword-only; sent on an MQTT 5 connection only, see
        ``Manager.mqtt_connect(version=5)``): ``(id, value)`` pairs (MQTT 5.0 section
        2.2.2.2), e.g. ``[(0x02, 60), (0x03, "application/json"), (0x09, b"req-1"),
        (0x26, ("key", "value"))]``: an int for byte/short/int/variable-int properties,
        str or bytes for string and binary ones, a (key, value) pair for the user
        property (0x26, repeatable). Raises ValueError for a qos outside 0..2, an empty
        topic, an unknown property id or a value its type cannot hold; TypeError for
        properties that are not pairs.
        """
        cdef mg_connection *c = self._get()
        cdef bytes t = _as_bytes(topic, "topic")
        cdef bytes m = _as_bytes(message, "message")
        cdef mg_mqtt_opts opts
        cdef list items = _prop_items(properties) if properties else []
        cdef mg_mqtt_prop *props = NULL
        _check_qos(qos)
        if not t:
            raise ValueError("topic must not be empty")
        memset(&opts, 0, sizeof(opts))
        opts.topic = _mgs(t)
        opts.message = _mgs(m)
        opts.qos = <uint8_t>qos
        opts.retain = retain
        if items:
            props = opts.props = _prop_array(items)
            opts.num_props = len(items)
        try:
            return mg_mqtt_pub(c, &opts)
        finally:
            free(props)

    def mqtt_sub(self, topic, int qos=0) -> None:
        """Subscribe to ``topic`` (wildcards ``+``/``#``) with ``qos`` (``mg_mqtt_sub``)."""
        cdef mg_connection *c = self._get()
        cdef bytes t = _as_bytes(topic, "topic")
        cdef mg_mqtt_opts opts
        _check_qos(qos)
        if not t:
            raise ValueError("topic must not be empty")
        memset(&opts, 0, sizeof(opts))
        opts.topic = _mgs(t)
        opts.qos = <uint8_t>qos
        mg_mqtt_sub(c, &opts)

    def mqtt_unsub(self, topic) -> None:
        """Unsubscribe from ``topic`` (``mg_mqtt_unsub``)."""
        cdef mg_connection *c = self._get()
        cdef bytes t = _as_bytes(topic, "topic")
        cdef mg_mqtt_opts opts
        if not t:
            raise ValueError("topic must not be empty")
        memset(&opts, 0, sizeof(opts))
        opts.topic = _mgs(t)
        mg_mqtt_unsub(c, &opts)

    def mqtt_ping(self) -> None:
        """Send PINGREQ (``mg_mqtt_ping``)."""
        mg_mqtt_ping(self._get())

    def mqtt_pong(self) -> None:
        """Send PINGRESP (``mg_mqtt_pong``)."""
        mg_mqtt_pong(self._get())

    def mqtt_disconnect(self) -> None:
        """Send DISCONNECT (``mg_mqtt_disconnect``); the connection stays open until closed."""
        cdef mg_mqtt_opts opts
        memset(&opts, 0, sizeof(opts))
        mg_mqtt_disconnect(self._get(), &opts)

    def mqtt_send_header(self, int cmd, int flags, unsigned long length) -> None:
        """Send an MQTT fixed header (``mg_mqtt_send_header``); ``length`` payload bytes follow
        via ``send``. For brokers built on ``mqtt_listen`` (CONNACK, SUBACK, ...).
        """
        cdef mg_connection *c = self._get()
        if cmd < 1 or cmd > 15:
            raise ValueError(f"cmd must be an MQTT_CMD_* value (1..15), got {cmd}")
        if flags < 0 or flags > 15:
            raise ValueError(f"flags must be in 0..15, got {flags}")
        if length > 268435455:
            raise ValueError(f"length {length} exceeds MQTT's 268435455")
        mg_mqtt_send_header(c, <uint8_t>cmd, <uint8_t>flags, <uint32_t>length)

    # --- SNTP / TLS -------------------------------------------------------------

    def sntp_request(self) -> None:
        """Send an SNTP request (``mg_sntp_request``); MG_EV_SNTP_TIME carries the answer."""
        mg_sntp_request(self._get())

    def tls_init(self, TlsOpts opts not None) -> None:
        """Start TLS on this connection with ``opts`` (see ``TLS_LIBRARY`` for the library).

        Server side: call on MG_EV_ACCEPT with ``cert``/``key``; client side: on
        MG_EV_CONNECT. A client verifies the server's certificate (against ``ca``, else
        the system's CA certificates) and its name (``name``, else the host of the URL
        given to ``connect``/``ws_connect``/``mqtt_connect``), unless
        ``skip_verification``. A failed handshake is an MG_EV_ERROR whose message says
        why (``"TLS handshake: certificate verify failed"``), then the connection closes.
        Raises RuntimeError if TLS is already set up.
        """
        cdef mg_connection *c = self._get()
        cdef mg_tls_opts o
        if c.tls != NULL:  # mg_tls_init would drop (leak) the state mongoose may be using
            raise RuntimeError(f"connection {self._id}: TLS is already set up")
        self._tls = opts
        if CYM_TLS_OPENSSL:
            opts._attach(c, self._peer_host)
        else:
            opts._fill(&o)
            mg_tls_init(c, &o)

    def tls_info(self):
        """What this connection's TLS session negotiated, or None before its handshake
        is done, without TLS, or in a build on mongoose's built-in stack.

        A dict: ``version`` (int, the protocol number: 0x0303 TLS 1.2, 0x0304 TLS 1.3),
        ``cipher_suite`` (int, the IANA number, 0x1301 for TLS_AES_128_GCM_SHA256),
        ``local_cert`` (str, our certificate as PEM, or None), ``peer_cert_chain``
        (list of PEM str: the peer's certificate first, then the chain it sent; empty
        when it sent none), ``peer_cert_name`` (str, the subject of the peer's
        certificate as RFC 4514 says, or None), ``peer_cert_error`` (str, why the
        peer's certificate failed its check, or None). The fields of the ASGI TLS
        extension (asgiref specs/tls.rst, version 0.2).
        """
        cdef mg_connection *c = self._c
        cdef int version = 0, cipher = 0, which = 1
        cdef long verify = 0
        cdef size_t n = 0
        cdef char *text
        if c == NULL or not c.is_tls or not cym_tls_conn_info(c, &version, &cipher, &verify):
            return None
        chain = []
        while True:
            text = cym_tls_conn_cert(c, which, &n)
            if text == NULL:
                break
            chain.append(_tls_text(text, n))
            which += 1
        text = cym_tls_conn_cert(c, 0, &n)
        local = _tls_text(text, n)
        text = cym_tls_peer_subject(c, &n)
        name = _tls_text(text, n)
        return {
            "version": version,
            "cipher_suite": cipher if cipher >= 0 else None,
            "local_cert": local,
            "peer_cert_chain": chain,
            "peer_cert_name": name,
            "peer_cert_error": None if verify == 0 or not chain
                               else cym_tls_verify_error(verify).decode(),
        }

    def tls_free(self) -> None:
        """Release this connection's TLS state by closing it (like `close`).

        A connection cannot go on without its TLS state, and mongoose's TLS code may
        still be using it in this very event: the state is freed as the connection
        closes at the end of this poll iteration. A no-op without TLS state.
        """
        cdef mg_connection *c = self._get()
        if c.tls != NULL:
            c.is_closing = 1

    def error(self, message) -> None:
        """Close with an error: fires MG_EV_ERROR with ``message`` (``mg_error``)."""
        cdef bytes b = _as_bytes(message, "message")
        mg_error(self._get(), "%s", <char *>b)

    def close(self) -> None:
        """Close at the next poll, discarding unsent data; nothing once closed."""
        if self._alive():
            self._get().is_closing = 1

    def drain(self) -> None:
        """Stop reading, flush the send buffer, then close; nothing once closed."""
        if self._alive():
            self._get().is_draining = 1

    def __repr__(self):
        return f"<Connection id={self._id}{' closed' if self._c == NULL else ''}>"
