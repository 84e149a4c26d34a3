# The common case of a WSGI request in C: environ, app call, start_response, and a
# response of bytes blocks with a clean head and a matching length, written straight into
# the send buffer. It is a primitive, not a server: anything else is handed to the
# server's Python request cycle (cymongoose.wsgi.cycle) through one call, take_over().
# Inline servers run it on the poll thread; pooled ones build the environ there and run
# the app on an app thread, which writes into the send buffer itself (the GIL is the
# manager's lock: poll() holds it except while it waits, patch 0002).

from io import BytesIO as _BytesIO
from time import perf_counter as _perf_counter

cdef dict _STATUS_OK = {}       # status string -> code, as check_status() found them
cdef set _HEADER_NAMES_OK = set()
cdef Py_ssize_t _CHECK_CACHE_MAX = 1024
cdef tuple _NO_ARGS = ()
cdef type _BYTES_IO = _BytesIO

# In front of _STATUS_OK and _HEADER_NAMES_OK, by identity: an app passes the same status
# and header name objects (its literals) response after response, and a pointer compare
# is cheaper than a hash lookup. Each slot holds a reference to its object, so the
# address cannot become another object's while the slot has it.
cdef enum:
    _OK_NAME_SLOTS = 64
cdef PyObject *_ok_names[_OK_NAME_SLOTS]
cdef PyObject *_ok_status = NULL   # the last status found in _STATUS_OK, and its code
cdef int _ok_code = 0


cdef inline void _hold(PyObject **slot, object value) noexcept:
    # Put ``value`` in ``slot`` (a reference), dropping what was there.
    cdef PyObject *old = slot[0]
    Py_INCREF(value)
    slot[0] = <PyObject *>value
    Py_XDECREF(old)


cdef class WsgiConnState:
    """Per-connection data the fast path reads from ``Connection.userdata``.

    ``base``: the per-connection environ keys (dict), copied for each request (keys the
    request sets, REQUEST_METHOD, PATH_INFO, QUERY_STRING, SERVER_PROTOCOL and
    wsgi.input, may be there with any value: the copy's are then replaced, which is
    cheaper than inserting them);
    ``fast``: False sends every request of the connection to the Python path;
    ``proxied``: True sends those with ``Forwarded`` or ``X-Forwarded-For/-Proto/-Host``
    there (a trusted proxy's headers); ``busy``: a pooled fast path has queued or is
    running a request of this connection. Subclassed by the WSGI server's protocol.
    """
    # Fields are declared in wsgi_fastpath.pxd.


cdef bint _named(mg_str name, tuple names, unsigned long long lengths) noexcept:
    # ``name`` is one of ``names`` (lower-case bytes), compared without case; ``lengths``
    # (bit n: a name of n characters) turns most headers away without a comparison.
    cdef bytes candidate
    if name.len >= 64 or not (lengths >> name.len) & 1:
        return False
    for candidate in names:
        if <size_t>len(candidate) == name.len and \
                strncasecmp(name.buf, <char *>candidate, name.len) == 0:
            return True
    return False


cdef class WsgiStartResponse:
    """The C part of one PEP 3333 request cycle: its ``start_response`` and the state
    the fast path shares with the server's Python cycle, which subclasses this class and
    supplies ``check_status(status) -> int``, ``check_headers(headers)``,
    ``write(data)``, ``take_over(result, failed)`` and ``log()``.

    Calling the object is ``start_response(status, response_headers, exc_info=None) ->
    write``: it records ``status``, ``headers`` and ``code``. With ``exc_info`` once
    ``started`` (a non-empty body block was produced: PEP 3333 counts the headers as
    sent) it re-raises that exception; a second call without ``exc_info`` raises
    AssertionError; ``check_status``/``check_headers`` raise TypeError/ValueError for
    what PEP 3333 refuses (called once per status string and header name: the results
    are cached).

    Fields (read and written by the Python cycle): ``conn``, ``environ``, ``uri`` and
    ``query`` (for the access log), ``taken`` (the Python cycle runs the request),
    ``head_sent`` and ``sent`` (the head, and this many body bytes, are in the send
    buffer), ``send_s`` (seconds the fast path spent sending a large body from its
    object: kernel time, not the app's), ``prefix``/``iterator`` (a lazy response handed over mid-iteration: the
    blocks taken but not written, and the rest).
    """
    # Fields are declared in wsgi_fastpath.pxd.

    def __cinit__(self):
        self.keep_alive = True
        self.http11 = True

    def __call__(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.started:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        global _ok_code
        if <PyObject *>status == _ok_status:
            code = _ok_code
        else:
            code = _STATUS_OK.get(status) if type(status) is str else None
            if code is None:
                code = self.check_status(status)
                if len(_STATUS_OK) < _CHECK_CACHE_MAX:
                    _STATUS_OK[status] = code
            if type(status) is str and type(code) is int:
                _ok_code = code
                _hold(&_ok_status, status)
        if not _known_headers(headers):
            self.check_headers(headers)
            if len(_HEADER_NAMES_OK) < _CHECK_CACHE_MAX:
                _HEADER_NAMES_OK.update([item[0] for item in headers])
        self.status = status
        self.headers = headers
        self.code = code
        return self.write


cdef bint _known_headers(object headers):
    # A list of (str, str) pairs with names checked before and values without CR/LF.
    cdef const char *p
    cdef Py_ssize_t n
    cdef PyObject **slot
    if type(headers) is not list:
        return False
    for item in <list>headers:
        if type(item) is not tuple or len(<tuple>item) != 2:
            return False
        name = (<tuple>item)[0]
        value = (<tuple>item)[1]
        if type(name) is not str:
            return False
        slot = &_ok_names[(<size_t><PyObject *>name >> 4) % _OK_NAME_SLOTS]
        if slot[0] != <PyObject *>name:
            if name not in _HEADER_NAMES_OK:
                return False
            _hold(slot, name)
        if not _latin1_view(value, &p, &n):
            return type(value) is str and "\r" not in value and "\n" not in value
        if not _clean_value(p, n):  # (NUL too: the full check then decides)
            return False
    return True


cdef inline bint _is(mg_str s, const char *lit, size_t n) noexcept nogil:
    return s.len == n and memcmp(s.buf, lit, n) == 0


cdef inline bint _is_content_length(object name) noexcept:
    # A str header name that is Content-Length, in any case, with no new string made.
    cdef const char *p
    cdef Py_ssize_t n
    return _latin1_view(name, &p, &n) and n == 14 and \
        strncasecmp(p, "content-length", 14) == 0


cdef Py_ssize_t _digits_value(object value) noexcept:
    # A str of 1 to 18 ASCII digits as a number, else -1 (no int or str made).
    cdef const char *p
    cdef Py_ssize_t n, i, number = 0
    if not _latin1_view(value, &p, &n) or n == 0 or n > 18:
        return -1
    for i in range(n):
        if p[i] < c'0' or p[i] > c'9':
            return -1
        number = number * 10 + (p[i] - c'0')
    return number


cdef Py_ssize_t _app_length(list headers, Py_ssize_t limit):
    # The app's Content-Length when it is plain digits up to ``limit``, else -1 (also
    # when the header list is not the str pairs start_response checked).
    cdef Py_ssize_t length = -1
    for pair in headers:
        if type(pair) is not tuple or len(<tuple>pair) != 2:
            return -1
        name = (<tuple>pair)[0]
        if type(name) is not str or type((<tuple>pair)[1]) is not str:
            return -1
        if _is_content_length(name):
            length = _digits_value((<tuple>pair)[1])
            if length < 0:
                return -1
    return length if length <= limit else -1


cdef inline int _hand_back(WsgiStartResponse cycle, list prefix, object iterator):
    # A lazy answer the Python cycle goes on with: the blocks taken, not written, and the
    # rest of the iteration.
    cycle.prefix = prefix
    cycle.iterator = iterator
    return 0


cdef inline double _seconds() noexcept nogil:
    # CLOCK_MONOTONIC (vDSO: no system call), as time.monotonic() gives it.
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef inline bint _slow_call(WsgiPollRole role, double begun, WsgiStartResponse cycle) noexcept:
    # The rule for both counts: the app's call took role.slow_s or more since ``begun``
    # (_seconds()), leaving out the kernel's send of a large body, which is not the app's.
    return _seconds() - begun - cycle.send_s >= role.slow_s


cdef class WsgiPollRole:
    """Who polls a pooled WSGI server (leader/followers), kept in C: taking the role and
    the leader's check that it still has it are each one C call, atomic under the GIL.

    ``WsgiPollRole(ready, handoff_s)``: ``ready``, a ``collections.deque`` of the cycles
    the leader queued to run itself after ``poll()``; ``handoff_s``, how long requests go
    to the pool after a takeover (seconds). Fields (thread idents from
    ``threading.get_ident()``, 0 for none): ``leader`` (the thread allowed to poll),
    ``standby``, ``main`` (the only thread that may take the role once ``final``),
    ``seq`` and ``in_app`` (the leader is in its ``seq``-th app call), ``takeovers``,
    ``inline`` (it may run what it queues), ``final``, ``closing``, ``handoff_until``
    (``time.monotonic()``); ``calls`` and ``slow_calls``: the app calls ``run_ready``
    made, and those that were slow: took ``slow_s`` seconds or more (wall clock; default
    0.0005), the socket send of a large body (the cycle's ``send_s``) left out;
    ``pool_calls`` and ``pool_slow``: the same for the calls of :meth:`run_pooled`.
    """
    # Fields are declared in wsgi_fastpath.pxd.

    def __init__(self, ready, double handoff_s):
        self.ready = ready
        self.handoff_s = handoff_s
        self.slow_s = 0.0005

    def take(self, unsigned long me, long long last, double now) -> bool:
        """Make thread ``me`` the leader if the role is free, or if the leader has been
        in the same app call since a look that saw ``seq == last`` (a takeover: requests
        go to the pool until ``now + handoff_s``). False if it may not lead."""
        if self.closing or (self.final and me != self.main):
            return False
        if self.leader != 0:
            if not (self.in_app and self.seq == last):
                return False
            self.in_app = False  # the old leader's call, not ours
            self.takeovers += 1
            self.handoff_until = now + self.handoff_s
            self.inline = False  # what it queued goes to the pool
        self.leader = me
        return True

    def run_pooled(self, run, WsgiStartResponse cycle not None) -> None:
        """``run(cycle)`` on a pool thread (``run``: the fast path's :meth:`WsgiFastPath.run`
        or another callable taking the cycle), counted in ``pool_calls`` and, if slow (as
        for ``slow_calls``), in ``pool_slow``. Exceptions of ``run`` propagate, uncounted."""
        cdef double begun = _seconds()
        run(cycle)
        self.pool_calls += 1
        if _slow_call(self, begun, cycle):
            self.pool_slow += 1

    def resign(self, unsigned long me) -> bool:
        """Thread ``me`` gives up the role if it has it (True)."""
        if self.leader != me:
            return False
        self.leader = 0
        self.in_app = False
        return True


cdef inline void _parse_pipelined(object conn) noexcept:
    # The leader answered a request outside poll(): parse the connection's next pipelined
    # request now (it queues on role.ready, which run_ready is emptying), as the inline
    # mode does within one read, instead of at the next poll, one poll round each. The
    # answers then leave together at the next poll. Only once this response is complete
    # (is_resp clear), and not past _PIPELINE_SEND_MAX (_srv_input checks).
    cdef mg_connection *c
    cdef ConnState *st
    if type(conn) is not Connection:
        return
    c = (<Connection>conn)._c
    if c == NULL or c.is_resp or c.recv.len == 0 or c.is_closing or c.is_draining:
        return
    st = <ConnState *>c.fn_data
    if st != NULL and st.c == c and st.srv != NULL and st.need_parse and \
            st.body_mode == 0 and st.paused == 0 and c.pfn == _srv_pfn:
        _srv_input(c, st)


cdef class WsgiFastPath(HttpFastHandler):
    """An `HttpFastHandler` that answers the common WSGI request in C.

    ``WsgiFastPath(app, cycle_type, fallback, *, submit=None, access_log=False,
    log_arrival=False, file_wrapper=None, buffer_limit=1 << 20)``:

    * ``app``: the WSGI callable;
    * ``cycle_type``: the server's request cycle, a subclass of `WsgiStartResponse`; the
      fast path makes one per request (without calling ``__init__``), passes it to the
      app as ``start_response``, and calls its ``take_over(result, failed)`` for every
      answer it does not write itself (``failed``: the app or its iteration raised;
      called inside the ``except`` block), or after the app's ``write()`` made the
      cycle ``taken``;
    * ``fallback(conn, ev, data)``: the Python handler of every other event and of the
      requests the fast path leaves alone: a body that streams, HEAD, a protocol other
      than HTTP/1.1, a ``Connection`` header, ``proxy_headers`` on a ``proxied``
      connection, a connection whose ``userdata`` is not a `WsgiConnState` with
      ``fast`` set, and all of them while ``enabled`` is False (graceful shutdown);
    * ``submit(cycle)``: given, the server is pooled: the environ is built on the poll
      thread and ``submit`` queues the cycle for an app thread, which passes it to
      :meth:`run`. Only where ``pool_supported`` (the epoll build, whose ``poll()``
      holds the GIL except while it waits); elsewhere requests go to ``fallback``;
    * ``access_log``: call the cycle's ``log()`` after each answer written here;
    * ``log_arrival``: set the cycle's ``arrived`` to ``time.perf_counter()`` when the
      request arrives (for access-log formats that show the request time);
    * ``file_wrapper``: the type of ``wsgi.file_wrapper`` objects, always taken over;
    * ``buffer_limit``: lazy iterables announcing a Content-Length up to this many
      bytes are iterated here, each block written to the send buffer as it comes (PEP
      3333 "Buffering and Streaming": none is held back for the next);
    * ``proxy_headers``: header names (bytes) a trusted proxy sets: on a ``proxied``
      connection, requests carrying one are left to ``fallback``;
    * ``role``: a `WsgiPollRole` (pooled): while its ``inline`` is set, requests are
      queued on its ``ready`` deque instead of ``submit``, for :meth:`run_ready`.

    What is written here: a list of bytes blocks (joined) or such a lazy iterable, with a
    status other than 204/304, whose Content-Length, if any, matches the body; the head
    and body go into the send buffer with one append (``Content-Length`` added when the
    app sent none).
    """
    # Fields and C methods are declared in wsgi_fastpath.pxd.

    pool_supported = bool(CYM_WAIT_HOOK)

    def __init__(self, app, cycle_type, fallback, *, submit=None, bint access_log=False,
                 bint log_arrival=False, file_wrapper=None, Py_ssize_t buffer_limit=1 << 20,
                 proxy_headers=(), WsgiPollRole role=None):
        for name, f in (("app", app), ("fallback", fallback)):
            if not callable(f):
                raise TypeError(f"{name} must be callable, not {type(f).__name__}")
        if not isinstance(cycle_type, type) or not issubclass(cycle_type, WsgiStartResponse):
            raise TypeError(f"cycle_type must be a subclass of WsgiStartResponse, "
                            f"not {cycle_type!r}")
        if submit is not None and not callable(submit):
            raise TypeError(f"submit must be callable or None, not {type(submit).__name__}")
        self.app, self.cycle_type, self.fallback, self.submit = app, cycle_type, fallback, submit
        self.access_log, self.file_wrapper = access_log, file_wrapper
        self.log_arrival = log_arrival
        self.buffer_limit = buffer_limit
        self.proxy_headers = tuple(bytes(name).lower() for name in proxy_headers)
        self.proxy_lengths = 0
        for name in self.proxy_headers:
            if len(name) >= 64:
                raise ValueError(f"proxy header name {name!r} is too long (64 bytes or more)")
            self.proxy_lengths |= 1ULL << len(name)
        self.enabled = True
        if role is not None and submit is None:
            raise ValueError("role needs submit (a pooled fast path)")
        self.role = role
        self.ready_append = role.ready.append if role is not None else None

    cdef bint _http_message(self, Connection conn, mg_connection *c, mg_http_message *hm,
                            ConnState *st) except -1:
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
            if proxied and _named(hm.headers[i].name, self.proxy_headers,
                                  self.proxy_lengths):
                return False
        cdef dict environ = _wsgi_environ(hm, (<WsgiConnState>state).base)
        # A body comes only with a Content-Length here (chunked ones stream: more_body).
        # An empty wsgi.input is BytesIO.__new__ alone: what BytesIO() gives, without the
        # argument parsing of its __init__.
        environ["wsgi.input"] = _BYTES_IO(_bytes(hm.body)) if hm.body.len else \
            (<PyTypeObject *>_BYTES_IO).tp_new(_BYTES_IO, <PyObject *>_NO_ARGS, NULL)
        # tp_new straight: cycle_type.__new__(cycle_type) costs a lookup and a call.
        cdef WsgiStartResponse cycle = (<PyTypeObject *>self.cycle_type).tp_new(
            <type>self.cycle_type, <PyObject *>_NO_ARGS, NULL)
        cycle.conn = conn
        cycle.environ = environ
        if self.access_log:
            cycle.uri = _str(hm.uri)
            cycle.query = _str(hm.query)
            if self.log_arrival:
                cycle.arrived = _perf_counter()
        if self.submit is not None:
            (<WsgiConnState>state).busy = True
            if self.role is not None and self.role.inline:
                self.ready_append(cycle)
            else:
                self.submit(cycle)
        else:
            self._respond(conn, cycle)
        return True

    def run(self, WsgiStartResponse cycle not None):
        """Answer a request queued by a pooled fast path (``submit``); call it on an app
        thread. Nothing is done (the app is not called) for a connection closed or
        closing meanwhile. What is written here goes into the send buffer and the waiting
        ``poll()`` is woken. A cycle already ``taken`` (queued by the server's Python
        path to the same pool) is run by its own ``run()``."""
        self._run(cycle)

    def run_ready(self, unsigned long me) -> bool:
        """Run the cycles on ``role.ready`` on the leader's thread ``me`` (after its
        ``poll()``), each as :meth:`run` does, while ``role.inline`` is set and a
        standby is there; the others go to ``submit``. Once a request's answer is
        complete, the connection's next pipelined request is parsed at once (queued
        here, answered in this call), as inline servers do within one read; the answers
        leave together at the next ``poll()``. False when ``me`` lost the role during an
        app call (the standby took over): the rest is the new leader's."""
        cdef WsgiPollRole role = self.role
        cdef double begun
        if role is None:
            raise TypeError("run_ready() needs a WsgiFastPath made with role=")
        ready = role.ready
        popleft = ready.popleft
        while len(ready):
            cycle = popleft()
            if not role.inline or role.standby == 0:
                self.submit(cycle)
                continue
            role.seq += 1
            role.in_app = True
            begun = _seconds()
            try:
                self._run(<WsgiStartResponse?>cycle)
            except BaseException:
                if role.leader == me:
                    role.in_app = False
                raise
            role.calls += 1
            if _slow_call(role, begun, <WsgiStartResponse>cycle):
                role.slow_calls += 1
            # One C step under the GIL: a takeover happens wholly before or after it.
            if role.leader != me:
                return False
            role.in_app = False
            _parse_pipelined(cycle.conn)
        return True

    cdef int _run(self, WsgiStartResponse cycle) except -1:
        cdef mg_connection *c
        if cycle.taken:
            cycle.run()
            return 0
        conn = cycle.conn
        if not isinstance(conn, Connection):
            raise TypeError("run() takes a cycle queued by this fast path")
        state = (<Connection>conn).userdata
        try:
            c = (<Connection>conn)._c
            # is_closing: mongoose has read the client's FIN (or the server closed it) and
            # is handling MG_EV_CLOSE, which may let this thread in before _c is cleared.
            if c != NULL and not c.is_closing:
                self._respond(<Connection>conn, cycle)
        finally:
            if isinstance(state, WsgiConnState):
                (<WsgiConnState>state).busy = False

    cdef int _respond(self, Connection conn, WsgiStartResponse cycle) except -1:
        cdef int done
        try:
            result = self.app(cycle.environ, cycle)
        except Exception:
            cycle.take_over(None, True)
            return 0
        if cycle.taken:
            done = 0
        elif type(result) is list:
            done = self._answer(conn, cycle, <list>result)
        elif self.file_wrapper is not None and type(result) is self.file_wrapper:
            done = 0
        else:
            done = self._stream(conn, cycle, result)
            if done < 0:
                return 0  # the iteration raised: take_over() was told
        if not done:
            cycle.take_over(result, False)
        elif self.access_log:
            cycle.log()
        return 0

    cdef inline bint _writable(self, Connection conn, mg_connection *c) noexcept:
        # stopping (pooled: the app ran meanwhile): the server says "Connection: close"
        return c != NULL and not c.is_closing and not c.is_draining and \
            not conn._mgr._freeing and self.enabled

    cdef inline void _written(self, Connection conn, mg_connection *c, bint more) noexcept:
        # Data is in the send buffer: it must leave before the app is asked for more
        # (``more``). Pooled: the poll thread sends it (woken if it waits). Inline: the
        # loop sends complete responses together after this poll iteration's handlers.
        if self.submit is not None:  # an app thread, outside the connection's visit
            _touch(c)
            _wake_poll(conn._mgr)
        elif more and c.fn_data != NULL:
            _srv_flush_now(c, <ConnState *>c.fn_data)

    cdef bint _answer(self, Connection conn, WsgiStartResponse cycle,
                      list result) except -1:
        # A list of bytes: the whole response in one append, or False (nothing written).
        cdef bytes body
        cdef mg_connection *c = conn._c
        cdef ConnState *st
        cdef double begun
        cdef const char *p
        cdef Py_ssize_t n
        if cycle.status is None or cycle.code == 204 or cycle.code == 304 or not result:
            return False
        if len(result) == 1:
            item = result[0]
            if type(item) is not bytes:
                return False
            body = <bytes>item
        else:
            for item in result:
                if type(item) is not bytes:
                    return False
            body = b"".join(result)
        for pair in <list>cycle.headers:
            if type(pair) is not tuple or len(<tuple>pair) != 2 or \
                    type((<tuple>pair)[0]) is not str:
                return False
            # (_name_kind: the check _emit makes next, cached; Content-Length is a token)
            if _name_kind((<tuple>pair)[0], &p, &n) & _NAME_LENGTH and \
                    _digits_value((<tuple>pair)[1]) != len(body):
                return False  # the Python cycle truncates, or closes after a short body
        if not self._writable(conn, c):
            return False
        st = _by_ref(c, body)
        if st != NULL:
            # A large body goes out from its bytes object (_srv_body_by_ref), not copied.
            if _wsgi_emit(c, cycle.status, cycle.headers, NULL, 0, len(body), False) != 0:
                return False
            _response_written(c, False)
            begun = _seconds()
            _srv_body_by_ref(c, st, body)
            # The kernel's copy of a large body (0.1 ms a MiB, more on a busy CPU) is not
            # the app's time: run_ready and the pool leave it out of their slow-call count.
            cycle.send_s = _seconds() - begun
        elif _wsgi_emit(c, cycle.status, cycle.headers, <char *>body, len(body), len(body),
                        False) != 0:
            return False
        else:
            _response_written(c, True)
        self._written(conn, c, False)
        cycle.sent = len(body)  # for the access log
        return True

    cdef bint _put_block(self, Connection conn, mg_connection *c, WsgiStartResponse cycle,
                         bytes block) except -1:
        # One block of a streamed answer into the send buffer, with the head before the
        # first; False (nothing written) when the connection cannot take it or the core
        # refuses the head.
        if not self._writable(conn, c):
            return False
        if cycle.head_sent:
            mg_send(c, <char *>block, len(block))
        else:
            if _wsgi_emit(c, cycle.status, cycle.headers, <char *>block, len(block), -1,
                          False) != 0:
                return False
            cycle.head_sent = True
            _response_written(c, False)
        cycle.sent += len(block)
        return True

    cdef int _stream(self, Connection conn, WsgiStartResponse cycle, object result) except -2:
        # A lazy iterable announcing a small Content-Length: each block goes into the send
        # buffer as it comes, the head with the first non-empty one. 1: the response is
        # complete (close() called); 0: handed back (cycle.prefix and .iterator say where;
        # head_sent and sent what is out); -1: the iteration or close() raised, after
        # take_over(None, True) was called.
        cdef Py_ssize_t length
        cdef mg_connection *c
        cdef bytes block
        if cycle.status is None or cycle.code == 204 or cycle.code == 304:
            return 0
        length = _app_length(<list>cycle.headers, self.buffer_limit) \
            if type(cycle.headers) is list else -1
        if length < 0:
            return 0
        try:
            iterator = iter(result)
            for item in iterator:
                if type(item) is not bytes or \
                        len(<bytes>item) > length - cycle.sent:
                    return _hand_back(cycle, [item], iterator)
                block = <bytes>item
                if not len(block):
                    continue
                cycle.started = True
                c = conn._c
                if not self._put_block(conn, c, cycle, block):
                    return _hand_back(cycle, [item], iterator)
                self._written(conn, c, cycle.sent < length)
            if cycle.sent != length or (  # short, or Content-Length: 0 and no block
                    not cycle.head_sent and not self._put_block(conn, conn._c, cycle, b"")):
                return _hand_back(cycle, [], iterator)
            close = getattr(result, "close", None)
            if close is not None:
                close()
        except Exception:
            cycle.take_over(None, True)
            return -1
        c = conn._c
        if c != NULL:  # else the client left while close() ran (pooled)
            _response_written(c, True)
            self._written(conn, c, False)
        return 1
