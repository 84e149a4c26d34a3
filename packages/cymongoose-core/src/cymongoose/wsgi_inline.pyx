# The request cycle of a WSGI server in C for the common case: environ, app call,
# start_response and a one-block response, with no Python frame of the server's own.
# Inline servers run it on the poll thread; pooled ones build the environ there and run
# the rest on an app thread, which writes the response into the send buffer itself (the
# GIL is the manager's lock: poll() holds it except while it waits, patch 0002).
# Everything else (streamed bodies and responses, HEAD, HTTP/1.0, Connection headers,
# proxies, errors) is handed to the Python server, which keeps the policy; see
# cymongoose.wsgi.inline and cymongoose.wsgi.server.

from io import BytesIO as _BytesIO

cdef class WsgiFastPath


cdef dict _STATUS_OK = {}       # status string -> code, as check_status() found them
cdef set _HEADER_NAMES_OK = set()
cdef Py_ssize_t _CHECK_CACHE_MAX = 1024


cdef class WsgiConnState:
    """Per-connection data the inline fast path reads from ``Connection.userdata``.

    ``base``: the per-connection environ keys (dict), copied for each request;
    ``fast``: False sends every request of the connection to the Python path;
    ``proxied``: True sends those with ``Forwarded`` or ``X-Forwarded-For/-Proto/-Host``
    there (a trusted proxy's headers); ``busy``: a pooled fast path has queued or is
    running a request of this connection. Subclassed by the WSGI server's connection
    state.
    """
    cdef public dict base
    cdef public bint fast
    cdef public bint proxied
    cdef public bint busy


cdef bint _proxy_header(mg_str name) noexcept nogil:
    if name.len == 9:
        return strncasecmp(name.buf, "forwarded", 9) == 0
    if name.len < 15 or strncasecmp(name.buf, "x-forwarded-", 12) != 0:
        return False
    return (name.len == 15 and strncasecmp(name.buf + 12, "for", 3) == 0) or \
        (name.len == 16 and strncasecmp(name.buf + 12, "host", 4) == 0) or \
        (name.len == 17 and strncasecmp(name.buf + 12, "proto", 5) == 0)


cdef class WsgiStartResponse:
    """PEP 3333 ``start_response(status, response_headers, exc_info=None)`` of a request
    begun by `WsgiFastPath`.

    Until ``delegate`` is set it records ``status``, ``headers``, ``code`` and what the
    ``write()`` callable was given (``written``: list of bytes, or None); after, every
    call goes to ``delegate.start_response`` / ``delegate.write`` (the Python server
    took the request over). Raises AssertionError for a second call without
    ``exc_info`` and for body data before start_response; TypeError/ValueError from
    the server's checks of status and headers.
    """
    cdef readonly object status
    cdef readonly object headers
    cdef readonly int code
    cdef readonly list written
    cdef public object delegate
    cdef readonly object uri     # the request target and query (str), for the access log
    cdef readonly object query
    cdef readonly object conn    # pooled: the request's Connection and environ, for run()
    cdef readonly dict environ
    # A lazy response taken over mid-iteration: the blocks taken so far and the iterator.
    cdef readonly list prefix
    cdef readonly object iterator
    cdef WsgiFastPath _fp

    def __call__(self, status, headers, exc_info=None):
        if self.delegate is not None:
            return self.delegate.start_response(status, headers, exc_info)
        if exc_info is not None:
            try:
                if self.written:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        code = _STATUS_OK.get(status) if type(status) is str else None
        if code is None:
            code = self._fp._check_status(status)
            if len(_STATUS_OK) < _CHECK_CACHE_MAX:
                _STATUS_OK[status] = code
        if not _known_headers(headers):
            self._fp._check_headers(headers)
            if len(_HEADER_NAMES_OK) < _CHECK_CACHE_MAX:
                _HEADER_NAMES_OK.update([item[0] for item in headers])
        self.status = status
        self.headers = headers
        self.code = code
        return self.write

    def write(self, data):
        """The legacy ``write(data)`` callable (PEP 3333)."""
        if self.delegate is not None:
            return self.delegate.write(data)
        if self.status is None:
            raise AssertionError("the WSGI app produced body data before start_response()")
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"WSGI body blocks must be bytes, got {type(data).__name__}")
            data = bytes(data)
        if self.written is None:
            self.written = [data]
        else:
            self.written.append(data)


cdef bint _known_headers(object headers):
    # A list of (str, str) pairs with names checked before and values without CR/LF.
    cdef const char *p
    cdef Py_ssize_t n
    if type(headers) is not list:
        return False
    for item in <list>headers:
        if type(item) is not tuple or len(<tuple>item) != 2:
            return False
        name = (<tuple>item)[0]
        value = (<tuple>item)[1]
        if type(name) is not str or name not in _HEADER_NAMES_OK:
            return False
        if not _latin1_view(value, &p, &n):
            return type(value) is str and "\r" not in value and "\n" not in value
        if memchr(p, 13, n) != NULL or memchr(p, 10, n) != NULL:
            return False
    return True


cdef inline bint _is(mg_str s, const char *lit, size_t n) noexcept nogil:
    return s.len == n and memcmp(s.buf, lit, n) == 0


cdef class WsgiFastPath:
    """Event handler of an inline WSGI server that answers the common request in C.

    ``WsgiFastPath(app, fallback, resume, check_status, check_headers, log=None)``:

    * ``app``: the WSGI callable, called on the poll thread;
    * ``fallback(conn, ev, data)``: the Python handler for every other event, and for
      requests the fast path leaves alone: a body that streams, HEAD, a protocol other
      than HTTP/1.1, a ``Connection`` header, proxy headers on a ``proxied``
      connection, a connection whose ``userdata`` is not a `WsgiConnState` with
      ``fast`` set;
    * ``resume(conn, environ, start_response, result, failed)``: the Python server
      finishes a request the fast path began — ``result`` is what the app returned
      (None and ``failed`` True when it raised; called inside the ``except`` block, so
      ``sys.exc_info()`` is the app's exception) — whenever the answer is not one block
      of bytes: iterables, ``write()``, 204/304, a Content-Length that does not match,
      a header the core refuses;
    * ``check_status(status) -> int`` and ``check_headers(headers)``: the server's
      PEP 3333 checks, called for statuses and header names not seen before (raising
      TypeError/ValueError);
    * ``log(state, environ, uri, query, code)``: the access log, if any;
    * ``file_wrapper``: the type of ``wsgi.file_wrapper`` objects, always resumed;
    * ``buffer_limit``: a lazy iterable announcing a ``Content-Length`` up to this many
      bytes is iterated here, its ``close()`` called, and answered in one block (PEP
      3333 "Buffering and Streaming"); one that produces something else is resumed
      mid-iteration with ``start_response.prefix`` (blocks taken) and ``.iterator``.

    ``submit(start_response)``: given, the server is pooled: the request's environ is
    built on the poll thread and ``submit`` queues its `WsgiStartResponse` (``conn``,
    ``environ``) for an app thread, which passes it to :meth:`run`; ``resume`` is then
    called on that thread. Only where ``pool_supported`` (the epoll build, whose
    ``poll()`` holds the GIL except while it waits); elsewhere requests go to
    ``fallback``.

    ``enabled`` (True) turns the fast path off and on (graceful shutdown turns it off).
    The fast answer: ``environ`` = a copy of the connection's ``base`` plus the
    request's keys (`HttpMessage.wsgi_environ`) and ``wsgi.input``; the response head
    and body are written with one append to the send buffer (no ``Content-Length``
    added when the app sent one).
    """
    cdef object app
    cdef public object fallback
    cdef object resume
    cdef object _check_status
    cdef object _check_headers
    cdef object log
    cdef object file_wrapper
    cdef Py_ssize_t buffer_limit
    cdef object submit
    cdef public bint enabled

    pool_supported = bool(CYM_WAIT_HOOK)

    def __init__(self, app, fallback, resume, check_status, check_headers, log=None, *,
                 file_wrapper=None, Py_ssize_t buffer_limit=1 << 20, submit=None):
        for name, f in (("app", app), ("fallback", fallback), ("resume", resume),
                        ("check_status", check_status), ("check_headers", check_headers)):
            if not callable(f):
                raise TypeError(f"{name} must be callable, not {type(f).__name__}")
        if log is not None and not callable(log):
            raise TypeError(f"log must be callable or None, not {type(log).__name__}")
        if submit is not None and not callable(submit):
            raise TypeError(f"submit must be callable or None, not {type(submit).__name__}")
        self.submit = submit
        self.app = app
        self.fallback = fallback
        self.resume = resume
        self._check_status = check_status
        self._check_headers = check_headers
        self.log = log
        self.file_wrapper = file_wrapper
        self.buffer_limit = buffer_limit
        self.enabled = True

    def __call__(self, conn, ev, data):
        # Reached only when called from Python; the Manager routes events in C.
        return self.fallback(conn, ev, data)

    cdef bint _serve(self, Connection conn, mg_connection *c, mg_http_message *hm,
                     ConnState *st) except -1:
        """Answer ``hm`` or leave it (False) to ``fallback``; True once the app ran."""
        cdef int i
        cdef bint proxied
        cdef object state = conn.userdata
        if not self.enabled or not isinstance(state, WsgiConnState) or \
                not (<WsgiConnState>state).fast:
            return False
        if self.submit is not None and not CYM_WAIT_HOOK:
            return False
        if st.more_body or not _is(hm.proto, "HTTP/1.1", 8) or _is(hm.method, "HEAD", 4):
            return False
        proxied = (<WsgiConnState>state).proxied
        for i in range(MG_MAX_HTTP_HEADERS):
            if hm.headers[i].name.len == 0:
                break
            if hm.headers[i].name.len == 10 and \
                    strncasecmp(hm.headers[i].name.buf, "connection", 10) == 0:
                return False
            if proxied and _proxy_header(hm.headers[i].name):
                return False
        cdef dict environ = _wsgi_environ(hm, (<WsgiConnState>state).base)
        environ["wsgi.input"] = (_BytesIO(_bytes(hm.body)) if "CONTENT_LENGTH" in environ
                                 else _BytesIO())
        cdef WsgiStartResponse start = WsgiStartResponse.__new__(WsgiStartResponse)
        start._fp = self
        if self.log is not None:
            start.uri = _str(hm.uri)
            start.query = _str(hm.query)
        if self.submit is not None:
            start.conn = conn
            start.environ = environ
            (<WsgiConnState>state).busy = True
            self.submit(start)
        else:
            self._respond(conn, state, environ, start)
        return True

    def run(self, WsgiStartResponse start not None):
        """Answer a request queued by a pooled fast path (``submit``); call it on an app
        thread. Nothing is done (the app is not called) for a connection closed or
        closing meanwhile. The response is written into the send buffer and the waiting
        ``poll()`` woken; ``resume`` is called for what the fast path leaves to the
        server, as inline."""
        cdef mg_connection *c
        conn = start.conn
        if not isinstance(conn, Connection):
            raise TypeError("run() takes a start_response queued by this fast path")
        state = (<Connection>conn).userdata
        try:
            c = (<Connection>conn)._c
            # is_closing: mongoose has read the client's FIN (or the server closed it) and
            # is handling MG_EV_CLOSE, which may let this thread in before _c is cleared.
            if c != NULL and not c.is_closing:
                self._respond(<Connection>conn, state, start.environ, start)
        finally:
            if isinstance(state, WsgiConnState):
                (<WsgiConnState>state).busy = False

    cdef int _respond(self, Connection conn, object state, dict environ,
                      WsgiStartResponse start) except -1:
        try:
            result = self.app(environ, start)
        except Exception:
            self.resume(conn, environ, start, None, True)
            return 0
        if type(result) is not list and (
                self.file_wrapper is None or type(result) is not self.file_wrapper):
            result = self._drain(conn, environ, start, result)
            if result is None:
                return 0
        if start.iterator is not None or not self._answer(conn, start, result):
            self.resume(conn, environ, start, result, False)
            return 0
        if self.log is not None:
            self.log(state, environ, start.uri, start.query, start.code)
        return 0

    cdef object _drain(self, Connection conn, dict environ, WsgiStartResponse start,
                       object result):
        # A lazy iterable with a small Content-Length, as the list of its blocks (its
        # close() called); ``result`` itself when it is not one. None when iterating or
        # close() raised: then close() was called and resume() told, with the exception.
        cdef Py_ssize_t length = -1, total = 0
        cdef list parts = []
        cdef bint closed = False
        if start.status is None or start.written is not None:
            return result
        for pair in <list>start.headers:
            # Checked again: the app may have changed its list since start_response.
            if type(pair) is not tuple or len(<tuple>pair) != 2:
                return result
            name = (<tuple>pair)[0]
            value = (<tuple>pair)[1]
            if type(name) is not str or type(value) is not str:
                return result
            if len(<str>name) == 14 and (<str>name).lower() == "content-length":
                if not (<str>value).isascii() or not (<str>value).isdigit() or \
                        len(<str>value) > 18:
                    return result
                length = int(value)
        if length < 0 or length > self.buffer_limit:
            return result
        try:
            iterator = iter(result)
            for item in iterator:
                parts.append(item)
                if type(item) is not bytes:
                    break
                total += len(<bytes>item)
                if total > length:
                    break
            else:
                closed = True
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                return parts
        except Exception:
            if not closed:
                try:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
                except Exception:
                    pass  # the iteration's exception is the one reported
            self.resume(conn, environ, start, None, True)
            return None
        start.prefix = parts  # not the announced blocks: the Python path goes on
        start.iterator = iterator
        return result

    cdef bint _answer(self, Connection conn, WsgiStartResponse start,
                      object result) except -1:
        # The one-block answer, or False (nothing written) for resume() to do.
        cdef bytes body
        cdef mg_connection *c
        if start.status is None or start.written is not None or start.code == 204 or \
                start.code == 304 or type(result) is not list or not result:
            return False
        if len(<list>result) == 1:
            item = (<list>result)[0]
            if type(item) is not bytes:
                return False
            body = <bytes>item
        else:
            for item in <list>result:
                if type(item) is not bytes:
                    return False
            body = b"".join(<list>result)
        for pair in <list>start.headers:
            if type(pair) is not tuple or len(<tuple>pair) != 2 or \
                    type((<tuple>pair)[0]) is not str:
                return False
            name = (<tuple>pair)[0]
            if len(<str>name) == 14 and (<str>name).lower() == "content-length":
                if (<tuple>pair)[1] != str(len(body)):
                    return False  # resume() truncates, or closes after a short body
        c = conn._c
        if c == NULL or c.is_closing or c.is_draining or conn._mgr._freeing or \
                not self.enabled:  # stopping (pooled: the app ran meanwhile): the server says
            return False           # "Connection: close"
        if _wsgi_emit(c, start.status, start.headers, <char *>body, len(body), len(body),
                      False) != 0:
            return False
        _response_written(c, True)
        if self.submit is not None:  # an app thread, outside the connection's visit
            _touch(c)
            _wake_poll(conn._mgr)
        return True
