# Message views: Python objects over mongoose's C structs, valid only during a handler call.

cdef inline str _str(mg_str s):
    return PyUnicode_DecodeUTF8(s.buf, s.len, "surrogateescape")


cdef inline bytes _bytes(mg_str s):
    return PyBytes_FromStringAndSize(s.buf, s.len)


cdef inline bytes _as_bytes(object v, str what):
    if isinstance(v, bytes):
        return <bytes>v
    if isinstance(v, str):
        return (<str>v).encode("utf-8")
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    raise TypeError(f"{what} must be bytes or str, not {type(v).__name__}")


cdef inline mg_str _mgs(bytes b):
    cdef mg_str s
    s.buf = <char *>b
    s.len = len(b)
    return s


cdef inline bytes _cstr_arg(object v, str what):
    """bytes for a NUL-terminated C string argument; NUL inside raises ValueError."""
    cdef bytes b = _as_bytes(v, what)
    if b"\0" in b:
        raise ValueError(f"{what} must not contain NUL")
    return b


cdef class HttpMessage:
    """View over ``struct mg_http_message`` (an HTTP request or response).

    Valid only while the event handler that received it runs. Afterwards (as in
    cymongoose 0.2.5) ``bool(msg)`` is False and the accessors return empty values:
    "" for the str properties, b"" for ``body_bytes``, ``[]`` for ``headers()``,
    ``default`` for ``header()``, None for ``query_var()``/``header_var()``/``status()``;
    the extensions ``more_body``, ``parts()`` and ``wsgi_environ()`` raise RuntimeError.
    """

    # Fields and C methods are declared in messages.pxd.

    def __cinit__(self):
        self._hm = NULL

    cdef inline mg_http_message *_get(self) except NULL:
        if self._hm == NULL:
            raise RuntimeError("HttpMessage used after its event handler returned")
        return self._hm

    def __bool__(self):
        return self._hm != NULL

    @property
    def method(self) -> str:
        return _str(self._hm.method) if self._hm != NULL else ""

    @property
    def uri(self) -> str:
        return _str(self._hm.uri) if self._hm != NULL else ""

    @property
    def query(self) -> str:
        return _str(self._hm.query) if self._hm != NULL else ""

    @property
    def proto(self) -> str:
        return _str(self._hm.proto) if self._hm != NULL else ""

    @property
    def more_body(self) -> bool:
        """True when the body is streamed: it follows as EV_HTTP_BODY events (bytes, the
        last one empty) on a connection of `Connection.configure_http_server`."""
        self._get()
        return self._more_body

    @property
    def body_bytes(self) -> bytes:
        return _bytes(self._hm.body) if self._hm != NULL else b""

    @property
    def body_text(self) -> str:
        return _str(self._hm.body) if self._hm != NULL else ""

    def header(self, str name, default=None):
        """Return the first header named ``name`` (case-insensitive) as str, else ``default``."""
        cdef mg_http_message *hm = self._hm
        if hm == NULL:
            return default
        cdef bytes key = name.encode("utf-8")
        cdef mg_str *v = mg_http_get_header(hm, key)
        return default if v == NULL else _str(v[0])

    def headers(self):
        """Return all headers as a list of ``(name, value)`` str pairs, in wire order."""
        cdef mg_http_message *hm = self._hm
        cdef list out = []
        if hm == NULL:
            return out
        cdef int i
        for i in range(MG_MAX_HTTP_HEADERS):
            if hm.headers[i].name.len == 0:
                break
            out.append((_str(hm.headers[i].name), _str(hm.headers[i].value)))
        return out

    def query_var(self, name):
        """URL-decoded value of query variable ``name`` (``mg_http_get_var``), or None."""
        cdef mg_http_message *hm = self._hm
        cdef bytes key = _cstr_arg(name, "name")
        if hm == NULL:
            return None
        cdef size_t cap = hm.query.len + 1
        cdef char *buf = <char *>malloc(cap)
        cdef int n
        if buf == NULL:
            raise MemoryError()
        try:
            n = mg_http_get_var(&hm.query, key, buf, cap)
            if n < 0:
                return None
            return PyUnicode_DecodeUTF8(buf, n, "surrogateescape")
        finally:
            free(buf)

    def header_var(self, header_name, var_name):
        """Parameter ``var_name`` of header ``header_name`` or None (``mg_http_get_header_var``).

        E.g. ``header_var("Content-Type", "boundary")`` for a multipart request.
        """
        cdef mg_http_message *hm = self._hm
        cdef bytes h = _cstr_arg(header_name, "header_name")
        cdef bytes v = _as_bytes(var_name, "var_name")
        cdef mg_str *hv
        cdef mg_str r
        if hm == NULL:
            return None
        hv = mg_http_get_header(hm, h)
        if hv == NULL:
            return None
        r = mg_http_get_header_var(hv[0], _mgs(v))
        if r.buf == NULL:
            return None
        return _str(r)

    def status(self):
        """Status code of an HTTP response, or None for a request."""
        if self._hm == NULL:
            return None
        cdef int code = mg_http_status(self._hm)
        return None if code <= 0 else code

    def wsgi_environ(self, dict base not None):
        """A new PEP 3333 environ for this request: a copy of ``base`` (the per-connection
        keys: SERVER_NAME, wsgi.*, SCRIPT_NAME ...) plus REQUEST_METHOD, PATH_INFO
        (percent-decoded, latin-1 code points, SCRIPT_NAME prefix removed), QUERY_STRING,
        SERVER_PROTOCOL, CONTENT_TYPE, CONTENT_LENGTH and HTTP_* (repeated headers joined
        with ", ", Cookie with "; "; names containing "_" dropped), replacing those
        ``base`` has. ``wsgi.input`` is left to the caller. Built in one call (PEP 3333
        "environ Variables")."""
        return _wsgi_environ(self._get(), base)

    def parts(self):
        """Everything a server adapter needs, built in one call.

        Returns ``(method: str, path: bytes, query: bytes, proto: str,
        headers: list[tuple[bytes, bytes]], body: bytes)``; header names are
        lower-cased (ASGI 3.0 scope ``headers``), order and duplicates kept.
        """
        cdef mg_http_message *hm = self._get()
        cdef list headers = []
        cdef int i
        for i in range(MG_MAX_HTTP_HEADERS):
            if hm.headers[i].name.len == 0:
                break
            headers.append((_bytes(hm.headers[i].name).lower(), _bytes(hm.headers[i].value)))
        return (
            PyUnicode_DecodeLatin1(hm.method.buf, hm.method.len, NULL),
            _bytes(hm.uri),
            _bytes(hm.query),
            PyUnicode_DecodeLatin1(hm.proto.buf, hm.proto.len, NULL),
            headers,
            _bytes(hm.body),
        )

    def __repr__(self):
        if self._hm == NULL:
            return "<HttpMessage (invalidated)>"
        return f"<HttpMessage {self.method} {self.uri}>"


cdef HttpMessage _http_message(mg_http_message *hm):
    cdef HttpMessage m = HttpMessage.__new__(HttpMessage)
    m._hm = hm
    return m


cdef class WsMessage:
    """View over ``struct mg_ws_message`` (one WebSocket frame, RFC 6455 section 5).

    ``flags`` is the first frame byte: FIN in bit 7, the opcode in bits 0-3.
    Valid only while the event handler runs; afterwards (as in cymongoose 0.2.5)
    ``data`` is b"", ``text`` "" and ``flags`` 0.
    """

    # Fields are declared in messages.pxd.

    def __cinit__(self):
        self._wm = NULL

    @property
    def data(self) -> bytes:
        if self._wm == NULL:
            return b""
        if self._inflated is not None:  # a compressed message (permessage-deflate)
            return self._inflated
        return _bytes(self._wm.data)

    @property
    def text(self) -> str:
        if self._wm != NULL and self._inflated is not None:
            return self._inflated.decode("utf-8", "surrogateescape")
        return _str(self._wm.data) if self._wm != NULL else ""

    @property
    def flags(self) -> int:
        return self._wm.flags if self._wm != NULL else 0

    def __repr__(self):
        if self._wm == NULL:
            return "<WsMessage (invalidated)>"
        return f"<WsMessage flags={self.flags} len={self._wm.data.len}>"


cdef WsMessage _ws_message(mg_ws_message *wm):
    cdef WsMessage m = WsMessage.__new__(WsMessage)
    m._wm = wm
    return m
