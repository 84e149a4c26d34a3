# Manager: owns one ``struct mg_mgr`` and routes C events to Python handlers.

cdef extern from "Python.h":
    int PyErr_CheckSignals() except -1
    ctypedef struct PyThreadState:
        pass
    PyThreadState *PyEval_SaveThread() nogil
    void PyEval_RestoreThread(PyThreadState *) nogil


# Manager.poll holds the GIL through an iteration; mongoose calls these around its
# wait for I/O (patch 0002), the only place other threads get it during a poll.
cdef void *_wait_begin(mg_mgr *mgr) noexcept nogil:
    return <void *>PyEval_SaveThread()


cdef void _wait_end(mg_mgr *mgr, void *ts) noexcept nogil:
    PyEval_RestoreThread(<PyThreadState *>ts)


cdef inline void _wake_poll(Manager mgr) noexcept:
    # Called with the GIL held by a thread that wrote into a connection's send buffer
    # while poll() waits (patch 0002): end the wait so that the data is sent. One nudge
    # per poll() call; if poll() is not waiting, it sends the data when its handler
    # returns or when the next poll() begins (none at all between two polls).
    if mgr._wake_sent or not mgr._wakeup_enabled or not mgr._open or mgr._freeing:
        return
    mgr._wake_sent = True
    mg_wakeup(&mgr._mgr, mgr._wakeup_id, NULL, 0)


cdef inline void _touch(mg_connection *c) noexcept nogil:
    # Python (or a timer) is about to change a connection outside its own visit: a
    # quiet one must be visited on the next poll to act on the change.
    if cym_is_quiet(c):
        mg_attend(c)


cdef inline bint _can_be_quiet(mg_connection *c, ConnState *st) noexcept nogil:
    # Accepted connections whose Python handler does not see loop-iteration events
    # (io_events False) and whose protocol handler does nothing on MG_EV_POLL while
    # idle: ours (_srv_pfn) and mongoose's http_cb while no pipelined request waits in
    # recv, and mongoose's WebSocket one. serve_file/serve_dir's static handler, clients,
    # MQTT and everything else keep MG_EV_POLL on every iteration.
    if st.want_io or not c.is_accepted or c.pfn == NULL:
        return False
    if c.pfn == _srv_pfn:  # not while a file is sent or a pipelined request waits
        return st.srv != NULL and not st.file_left and not (st.need_parse and c.recv.len)
    if c.pfn == _ws_pfn:
        return st.srv != NULL
    if c.pfn == _mg_ws_cb:
        return c.is_websocket
    return c.pfn == _mg_http_cb and c.recv.len == 0


cdef void _on_event(mg_connection *c, int ev, void *ev_data) noexcept nogil:
    cdef ConnState *st = <ConnState *>c.fn_data
    if st == NULL:
        return
    if st.srv != NULL and st.c == c and (ev == MG_EV_POLL or ev == MG_EV_WRITE):
        if c.pfn == _mg_http_cb and c.is_accepted and c.pfn != NULL:
            c.pfn = _srv_pfn  # serve_file/serve_dir restored mongoose's http_cb
            st.need_parse = 1  # and cleared is_resp: a pipelined request may wait
    if st.c == c:
        cym_set_quiet(c, _can_be_quiet(c, st))
    if st.srv != NULL and st.c == c and (ev == MG_EV_POLL or ev == MG_EV_WRITE):
        if st.want_writable and c.send.len <= st.low_water:
            st.want_writable = 0
            with gil:
                (<Manager>st.mgr)._calls += 1
                _dispatch(c, _EV_WRITABLE, NULL)
    # Loop-iteration events cost no Python call unless the connection asked for them.
    if st.c == c and not st.want_io and (
            ev == MG_EV_POLL or ev == MG_EV_READ or ev == MG_EV_WRITE):
        return
    with gil:
        if ev != MG_EV_POLL:
            (<Manager>st.mgr)._calls += 1
        _dispatch(c, ev, ev_data)


cdef ConnState *_new_state(Manager mgr, Connection conn, int want_io) except NULL:
    cdef ConnState *st = <ConnState *>malloc(sizeof(ConnState))
    if st == NULL:
        raise MemoryError()
    memset(st, 0, sizeof(ConnState))
    st.c = NULL
    st.conn = <PyObject *>conn
    st.mgr = <PyObject *>mgr
    st.want_io = want_io
    Py_INCREF(conn)
    return st


cdef inline void _claim(ConnState *st, mg_connection *c):
    cdef Connection conn = <Connection>st.conn
    st.c = c
    conn._c = c
    conn._id = c.id
    (<Manager>st.mgr)._conns[c.id] = conn


cdef inline void _fix_mqtt5_publish(mg_mqtt_message *mm) noexcept:
    # mongoose 7.23's mg_mqtt_parse reads an MQTT 5 PUBLISH's property length only when
    # more than 2 bytes follow the topic (and packet id): with no properties and a payload
    # of 0 or 1 byte, the length byte (0: nothing else fits) was left in the payload.
    if mm.cmd != MQTT_CMD_PUBLISH or mm.props_start != 0 or mm.data.len == 0:
        return
    if (<unsigned char *>mm.data.buf)[0] != 0 or mm.data.len > 2:
        return
    mm.props_start = <size_t>(mm.data.buf + 1 - mm.dgram.buf)
    mm.data.buf += 1
    mm.data.len -= 1


cdef void _dispatch(mg_connection *c, int ev, void *ev_data) noexcept:
    cdef ConnState *st = <ConnState *>c.fn_data
    cdef Manager mgr = <Manager>st.mgr
    cdef Connection parent, conn
    cdef HttpMessage hmsg = None
    cdef WsMessage wmsg = None
    cdef MqttMessage mmsg = None
    cdef ServerOpts *srv
    cdef int is_unix
    try:
        if st.c == NULL:
            _claim(st, c)
        elif st.c != c:
            # An accepted connection arrives with its listener's fn_data.
            parent = <Connection>st.conn
            conn = Connection.__new__(Connection)
            conn._mgr = mgr
            conn._handler = parent._handler
            conn._want_io = st.want_io
            conn._consume_reads = parent._consume_reads
            srv = st.srv
            is_unix = st.is_unix
            st = _new_state(mgr, conn, st.want_io)
            c.fn_data = st
            _claim(st, c)
            if is_unix:
                st.is_unix = 1
                memset(&c.rem, 0, sizeof(c.rem))
                memset(&c.loc, 0, sizeof(c.loc))
            if srv != NULL:
                st.srv = srv
                _srv_accepted(c, st)
        conn = <Connection>st.conn
        handler = conn._handler if conn._handler is not None else mgr._handler
        if isinstance(handler, HttpFastHandler):
            if ev == MG_EV_HTTP_MSG and (<HttpFastHandler>handler)._http_message(
                    conn, c, <mg_http_message *>ev_data, st):
                handler = None
            else:
                handler = (<HttpFastHandler>handler).fallback
        if ev == MG_EV_WS_OPEN and st.ws_deflate == 2 and not _ws_deflate_answer(
                conn, c, st, <mg_http_message *>ev_data):
            handler = None  # the server's answer to our offer failed the connection
        if handler is not None:
            if ev == MG_EV_HTTP_MSG or ev == MG_EV_HTTP_HDRS or ev == MG_EV_WS_OPEN:
                data = hmsg = _http_message(<mg_http_message *>ev_data)
                hmsg._more_body = st.more_body
            elif ev == _EV_HTTP_BODY:
                data = _bytes((<mg_str *>ev_data)[0])
            elif ev == _EV_HTTP_PIECE:
                ev = _EV_HTTP_BODY
                data = <object>ev_data
            elif ev == _EV_WRITABLE or ev == _EV_REQUEST_LIMIT:
                data = None
            elif ev == MG_EV_WS_MSG or ev == MG_EV_WS_CTL:
                data = wmsg = _ws_message(<mg_ws_message *>ev_data)
                if st.ws_deflate == 1 and not _ws_inflate(conn, c, st, ev, wmsg):
                    handler = None  # refused (close sent) or after such a refusal
            elif ev == MG_EV_MQTT_MSG or ev == MG_EV_MQTT_CMD:
                if c.is_mqtt5:
                    _fix_mqtt5_publish(<mg_mqtt_message *>ev_data)
                data = mmsg = _mqtt_message(<mg_mqtt_message *>ev_data)
            elif ev == MG_EV_ERROR:
                data = (<char *>ev_data).decode("utf-8", "replace")
            elif ev == MG_EV_POLL:
                data = (<uint64_t *>ev_data)[0]
            elif ev == MG_EV_READ:
                data = _read_bytes(c, (<long *>ev_data)[0], conn._consume_reads)
            elif ev == MG_EV_MQTT_OPEN:
                data = (<int *>ev_data)[0]
            elif ev == MG_EV_SNTP_TIME:
                data = (<int64_t *>ev_data)[0]
            elif ev == MG_EV_WAKEUP:
                data = _bytes((<mg_str *>ev_data)[0])
            else:
                data = None
            # Handlers also run outside poll(), nested in connect(), listen() or a
            # Connection method: poll() and close() must refuse there too.
            if handler is not None:  # None: a refused compressed message (_ws_inflate)
                mgr._dispatching += 1
                try:
                    handler(conn, ev, data)
                finally:
                    mgr._dispatching -= 1
    except BaseException as exc:
        if ev == MG_EV_HTTP_MSG and st.srv != NULL and st.c == c and not st.resp_written \
                and not c.is_closing and not c.is_websocket:
            # The request's handler failed before it answered: the client gets a 500 and
            # the connection closes, instead of waiting for an answer that never comes.
            _srv_reject(c, 500)
        mgr._report(exc)
    finally:
        if hmsg is not None:
            hmsg._hm = NULL
        if wmsg is not None:
            wmsg._wm = NULL
            wmsg._inflated = None
        if mmsg is not None:
            mmsg._mm = NULL
    if ev == MG_EV_CLOSE:
        _forget(c, st)


cdef bint _ws_inflate(Connection conn, mg_connection *c, ConnState *st, int ev,
                      WsMessage wmsg) except -1:
    # permessage-deflate agreed: inflate a message sent with RSV1 (RFC 7692 section 6.2)
    # for its handler. False: do not deliver (this message failed the connection, or an
    # earlier one did and the rest of what was read is dropped).
    cdef mg_ws_message *wm = wmsg._wm
    cdef size_t limit = _WS_INFLATE_LIMIT
    if st.ws_failed:
        return False
    if ev != MG_EV_WS_MSG:
        return True
    if st.srv != NULL:
        limit = st.srv.ws_max_size
    if not wm.flags & 0x40:
        # Sent uncompressed: _ws_pfn let it through with a compressed message's slack.
        if limit and wm.data.len > limit:
            _ws_refuse(c, st, 1009)
            return False
        return True
    try:
        wmsg._inflated = (<_WsDeflate>conn._ws_deflate).inflate(wm.data.buf, wm.data.len,
                                                               limit)
    except _DeflateTooBig:
        _ws_refuse(c, st, 1009)   # RFC 6455 section 7.4.1: too big to process
        return False
    except _zlib.error:
        _ws_refuse(c, st, 1002)   # not deflate data: a protocol error (as websockets)
        return False
    wm.flags &= ~0x40             # the handler sees the message as it was meant
    return True


cdef void _ws_refuse(mg_connection *c, ConnState *st, int code) noexcept:
    # Fail the WebSocket connection from inside mongoose's frame loop (which still walks
    # recv, so recv is left alone): a close frame with ``code``, the handler told with
    # MG_EV_WS_CTL carrying it, later frames dropped (ws_failed), then close.
    cdef char payload[2]
    cdef mg_ws_message m
    payload[0] = <char>(code >> 8)
    payload[1] = <char>(code & 255)
    mg_ws_send(c, payload, 2, WEBSOCKET_OP_CLOSE)
    c.is_draining = 1
    m.data.buf = payload
    m.data.len = 2
    m.flags = 128 | WEBSOCKET_OP_CLOSE
    mg_call(c, MG_EV_WS_CTL, &m)
    st.ws_failed = 1


cdef bint _ws_deflate_answer(Connection conn, mg_connection *c, ConnState *st,
                             mg_http_message *hm) except -1:
    # A client that offered permessage-deflate reads the server's 101 (RFC 7692 section
    # 5.1): agree to what it chose, or fail the connection on an answer we never offered.
    cdef mg_str *value = mg_http_get_header(hm, "Sec-WebSocket-Extensions")
    cdef _WsDeflate deflate = None
    st.ws_deflate = 0
    if value == NULL:
        return True
    try:
        deflate = _deflate_accepted(_bytes(value[0]))
    except ValueError as exc:
        reason = str(exc).encode()
        st.ws_deflate = st.ws_failed = 1  # frames that came with the 101 are dropped
        mg_error(c, "%s", <char *>reason)
        return False
    if deflate is not None:
        _deflate_on(conn, c, deflate)
    return True


cdef object _read_bytes(mg_connection *c, long n, bint consume):
    # The n bytes just read (spec: MG_EV_READ's data). They stay in recv, where 0.2.x
    # programs read them with recv_data(), unless Connection.consume_reads takes them out.
    # Only raw TCP/UDP: a protocol handler (c.pfn) has parsed (and consumed) them already.
    cdef bytes out
    if c.pfn != NULL:
        return None
    if n <= 0 or <size_t>n > c.recv.len:
        return b""
    out = PyBytes_FromStringAndSize(<char *>c.recv.buf + c.recv.len - n, n)
    if consume:
        mg_iobuf_del(&c.recv, c.recv.len - n, n)
    return out


cdef void _forget(mg_connection *c, ConnState *st) noexcept:
    cdef Connection conn = <Connection>st.conn
    cdef Manager mgr = <Manager>st.mgr
    _srv_piece_drop(c)  # before mongoose frees c.recv
    c.fn_data = NULL
    conn._c = NULL
    mgr._conns.pop(c.id, None)
    if st.flush_queued:
        _flush_forget(c.mgr, st)
    _srv_release(st)
    free(st)
    Py_DECREF(conn)


# RuntimeError when mongoose refuses a URL, by _open_conn kind (0.2.5's wording).
cdef tuple _OPEN_FAILED = (
    "Failed to listen on %r", "Failed to connect to %r",
    "Failed to create WebSocket connection to %r", "Failed to connect to MQTT broker %r",
    "Failed to listen for MQTT on %r", "Failed to connect to SNTP server %r",
)


cdef class Manager:
    """Owner of one mongoose event manager (``struct mg_mgr``).

    ``handler(conn, ev, data)`` is the default event handler; ``enable_wakeup``
    turns on ``wakeup()``; ``error_handler(exc)`` receives exceptions raised by
    handlers (default: traceback to stderr). Context manager: ``__exit__`` closes.
    """

    # Fields and C methods are declared in manager.pxd.

    def __cinit__(self):
        self._open = False

    def __init__(self, handler=None, enable_wakeup=False, error_handler=None):
        if handler is not None and not callable(handler):
            raise TypeError(f"handler must be callable or None, not {type(handler).__name__}")
        if error_handler is not None and not callable(error_handler):
            raise TypeError("error_handler must be callable or None, "
                            f"not {type(error_handler).__name__}")
        self._handler = handler
        self._error_handler = error_handler
        self._conns = {}
        self._timers = set()
        self._cancelled = []
        self._wakeups = deque()
        mg_mgr_init(&self._mgr)
        self._open = True
        self._wakeup_enabled = False
        if enable_wakeup:
            if not mg_wakeup_init(&self._mgr):
                raise RuntimeError("mg_wakeup_init failed: cannot create the wakeup socketpair")
            self._wakeup_enabled = True
            # mg_wakeup_init adds the pipe connection at the head of the list.
            self._wakeup_id = self._mgr.conns.id

    cdef int _check(self) except -1:
        if not self._open:
            raise RuntimeError("Manager has been freed")  # 0.2.5's wording
        if self._freeing:  # a CLOSE handler during close(): nothing new may outlive it
            raise RuntimeError("Manager is closing")
        return 0

    cdef void _report(self, exc) noexcept:
        # SystemExit and KeyboardInterrupt stop the program, as they do outside a
        # callback (and as in cymongoose 0.2.5, whose process exited): poll() raises it
        # once mongoose's iteration is over, instead of the error handler seeing it.
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            if self._exit is None:
                self._exit = exc
            return
        try:
            if self._error_handler is not None:
                self._error_handler(exc)
            else:
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        except BaseException:
            traceback.print_exc()

    @property
    def handler(self):
        return self._handler

    @property
    def connections(self):
        """Tuple of the live connections."""
        return tuple(self._conns.values())

    @property
    def wakeup_id(self) -> int:
        """Id of the wakeup pipe's connection, or 0 when wakeup is disabled."""
        return self._wakeup_id if self._wakeup_enabled else 0

    @property
    def epoll_fd(self) -> int:
        """mongoose's epoll descriptor (Linux), or -1; readable when any socket has events.

        Lets another event loop (asyncio ``add_reader``) drive ``poll(0)`` instead of
        a thread blocking in ``poll()``.
        """
        self._check()
        return self._mgr.epoll_fd

    @property
    def closed(self) -> bool:
        return not self._open

    def poll(self, int timeout_ms=0) -> int:
        """Run one event-loop iteration (``mg_mgr_poll``), waiting up to ``timeout_ms`` ms.

        Releases the GIL while waiting. Returns how many Python callbacks (handlers
        for events other than MG_EV_POLL, timer callbacks, wakeup deliveries) it made:
        non-zero means Python code ran and may have queued data that only the next
        poll sends. Raises RuntimeError if the manager is closed or when called
        re-entrantly (from a handler or a second thread). A SystemExit or
        KeyboardInterrupt raised by a handler or timer callback is raised here once the
        iteration is over (other exceptions go to ``error_handler``).
        """
        self._check()
        cdef unsigned long long start = self._calls
        if self._polling or self._dispatching:  # 0.2.5's wording
            raise RuntimeError("poll() is not reentrant and must not be called concurrently. "
                               "Use AsyncManager for multi-threaded access.")
        if timeout_ms < 0:
            raise ValueError(f"timeout_ms must be >= 0, got {timeout_ms}")
        self._polling = True
        try:
            if self._cancelled:
                self._release_cancelled()
            if self._wakeups:
                self._deliver_wakeups()
            if CYM_WAIT_HOOK:
                # The GIL stays with this thread except while mongoose waits for I/O:
                # events that run Python do not each take it back from the app's
                # threads (a hand-off, two context switches, per event on one CPU).
                self._mgr.wait_begin = _wait_begin
                self._mgr.wait_end = _wait_end
                self._wake_sent = False
                _flush_queued(&self._mgr)  # written outside poll (asyncio tasks, threads)
                mg_mgr_poll(&self._mgr, timeout_ms)
                _flush_queued(&self._mgr)
                self._mgr.wait_begin = NULL
                self._mgr.wait_end = NULL
                # Until the next poll() no nudge is needed: it sends what was written
                # meanwhile before it waits (the pooled WSGI server's poll thread runs
                # apps between polls; their writes must not each cost a pipe write).
                self._wake_sent = True
            else:
                with nogil:
                    _flush_queued(&self._mgr)
                    mg_mgr_poll(&self._mgr, timeout_ms)
                    _flush_queued(&self._mgr)
            if self._wakeups:
                self._deliver_wakeups()
        finally:
            self._polling = False
        if self._exit is not None:
            exc, self._exit = self._exit, None
            raise exc
        return self._calls - start

    cdef void _start_sweep(self, uint64_t timeout_ms):
        # One C timer per manager closes idle keep-alive connections (httpserver.pyx);
        # its period bounds how late a timeout fires.
        cdef uint64_t period = timeout_ms // 4
        if period > 1000:
            period = 1000
        if period < 20:
            period = 20
        if self._sweep != NULL:
            if period >= self._sweep_ms:
                return
            mg_timer_free(&self._mgr.timers, self._sweep)
            mg_free(self._sweep)
            self._sweep = NULL
        self._sweep = mg_timer_add(&self._mgr, period, MG_TIMER_REPEAT, _srv_sweep,
                                   <void *>&self._mgr)
        if self._sweep == NULL:
            raise MemoryError("mg_timer_add failed")
        self._sweep_ms = period

    cdef void _release_cancelled(self):
        cdef Timer t
        while self._cancelled:
            t = self._cancelled.pop()
            t._release()

    cdef void _deliver_wakeups(self):
        cdef Connection conn
        self._wake_pending = False
        for _ in range(len(self._wakeups)):
            conn_id, data = self._wakeups.popleft()
            self._calls += 1
            conn = self._conns.get(conn_id)
            if conn is None or conn._c == NULL:
                continue
            handler = conn._handler if conn._handler is not None else self._handler
            if handler is None:
                continue
            try:
                handler(conn, MG_EV_WAKEUP, data)
            except BaseException as exc:
                self._report(exc)

    cdef void _interrupt(self):
        cdef unsigned long wid = self._wakeup_id
        mg_wakeup(&self._mgr, wid, NULL, 0)

    def wakeup(self, unsigned long connection_id, data=b"") -> bool:
        """Deliver MG_EV_WAKEUP with ``data`` (bytes) to a connection, on the poll thread.

        Thread-safe; payloads of any size arrive intact and in order (only a
        connection-id nudge goes through mongoose's socketpair). ``wakeup_id`` as the
        target only interrupts ``poll()``. Returns False when no such connection is
        open. Raises RuntimeError without ``enable_wakeup=True``.
        """
        self._check()
        if not self._wakeup_enabled:
            raise RuntimeError("wakeup() needs Manager(enable_wakeup=True)")
        if connection_id == self._wakeup_id:
            self._interrupt()  # the pipe itself: just end the current poll() early
            return True
        if connection_id not in self._conns:
            return False
        self._wakeups.append((connection_id, _as_bytes(data, "data")))
        if not self._wake_pending:
            self._wake_pending = True
            self._interrupt()
        return True

    def run(self, int poll_ms=100) -> None:
        """Poll until SIGINT or SIGTERM, restore the previous signal handlers, then close.

        Raises RuntimeError if the manager is closed.
        """
        self._check()
        import signal
        stop = []
        def on_signal(signum, frame):
            stop.append(signum)
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
        try:
            while not stop and self._open:
                self.poll(poll_ms)
                # Python runs signal handlers between bytecodes; this loop and poll()
                # are C, so with no Python handler called on_signal would never run.
                PyErr_CheckSignals()
        finally:
            for sig, h in previous.items():
                signal.signal(sig, h)
            self.close()

    cdef Connection _open_conn(self, url, handler, int kind, http,
                               const mg_mqtt_opts *mopts=NULL, bytes extra=b""):
        # kind: 0 listen, 1 connect, 2 ws_connect, 3 mqtt_connect, 4 mqtt_listen, 5 sntp
        self._check()
        if handler is not None and not callable(handler):
            raise TypeError(f"handler must be callable or None, not {type(handler).__name__}")
        cdef bytes u = _as_bytes(url, "url")
        if http is None:
            http = u.startswith((b"http://", b"https://", b"ws://", b"wss://"))
        cdef Connection conn = Connection.__new__(Connection)
        conn._mgr = self
        conn._handler = handler
        cdef ConnState *st = _new_state(self, conn, 1)
        cdef mg_connection *c
        if kind == 0:
            c = mg_http_listen(&self._mgr, u, _on_event, st) if http else \
                mg_listen(&self._mgr, u, _on_event, st)
            if http and c != NULL:
                _mg_http_cb_set(c.pfn)  # lets _can_be_quiet recognise mongoose's http_cb
        elif kind == 1:
            c = mg_http_connect(&self._mgr, u, _on_event, st) if http else \
                mg_connect(&self._mgr, u, _on_event, st)
        elif kind == 2:
            c = mg_ws_connect(&self._mgr, u, _on_event, st, "%s", <char *>extra)
        elif kind == 3:
            c = mg_mqtt_connect(&self._mgr, u, mopts, _on_event, st)
        elif kind == 4:
            c = mg_mqtt_listen(&self._mgr, u, _on_event, st)
        else:
            c = mg_sntp_connect(&self._mgr, u, _on_event, st)
        if c == NULL:
            if st.c == NULL:  # mongoose never adopted the state
                free(st)
                Py_DECREF(conn)
            raise RuntimeError(_OPEN_FAILED[kind] % (url,))  # 0.2.5's wording
        if st.c == NULL:
            _claim(st, c)
        if kind in (1, 2, 3):  # a client: its TLS checks the server's name by default
            conn._peer_host = _str(mg_url_host(u)).strip("[]").encode()
        return conn

    def listen(self, url, handler=None, *, http=None, fd=None) -> Connection:
        """Listen on ``url`` (http, https, ws, wss, tcp, udp); port 0 picks a free port.

        ``http`` defaults to True for http/https/ws/wss URLs. ``fd``: serve on this
        already bound and listening stream socket (int descriptor, e.g. from gunicorn):
        TCP over IPv4/IPv6, or a Unix socket (AF_UNIX; its connections then have
        ``local_addr``/``remote_addr`` of ``("", 0, False)``: mongoose keeps IP addresses
        only), instead of binding ``url``'s address; the scheme of ``url`` still selects
        the protocol and a duplicate of ``fd`` is used, so the caller keeps its own.
        Raises RuntimeError naming the URL when it cannot listen, ValueError for an
        ``fd`` that is not a listening stream socket of those families.
        """
        if fd is None:
            return self._open_conn(url, handler, 0, http)
        import socket
        import os
        if not isinstance(fd, int) or isinstance(fd, bool):
            raise TypeError(f"fd must be an int, not {type(fd).__name__}")
        unix = getattr(socket, "AF_UNIX", None)
        probe = socket.socket(fileno=os.dup(fd))
        try:
            if probe.family not in (socket.AF_INET, socket.AF_INET6, unix) or \
                    probe.type != socket.SOCK_STREAM or \
                    not probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                raise ValueError(f"fd {fd} is not a listening TCP (IPv4/IPv6) or Unix "
                                 f"stream socket")
            probe.setblocking(False)
            local = probe.getsockname()
            family = probe.family
        finally:
            probe.close()
        cdef bytes u = _as_bytes(url, "url")
        scheme, sep, _ = u.partition(b"://")
        dummy = (scheme if sep else b"http") + b"://127.0.0.1:0"
        if http is None:
            http = dummy.startswith((b"http://", b"https://", b"ws://", b"wss://"))
        cdef Connection conn = self._open_conn(dummy, handler, 0, http)
        cdef mg_connection *c = conn._c
        cdef int newfd = os.dup(fd)
        cdef int oldfd = <int><size_t>c.fd
        cdef epoll_event ev
        if self._mgr.epoll_fd >= 0:
            epoll_ctl(self._mgr.epoll_fd, EPOLL_CTL_DEL, oldfd, NULL)
        os.close(oldfd)
        c.fd = <void *><size_t>newfd
        if self._mgr.epoll_fd >= 0:
            ev.events = EPOLLIN | EPOLLERR | EPOLLHUP
            ev.data.ptr = <void *>c
            epoll_ctl(self._mgr.epoll_fd, EPOLL_CTL_ADD, newfd, &ev)
        memset(&c.loc, 0, sizeof(c.loc))
        if family == unix:
            (<ConnState *>c.fn_data).is_unix = 1
            return conn
        cdef bytes ip = socket.inet_pton(family, local[0])
        c.loc.is_ip6 = family == socket.AF_INET6
        memcpy(c.loc.addr.ip, <char *>ip, len(ip))
        c.loc.port = htons(local[1])
        return conn

    def connect(self, url, handler=None, *, http=None) -> Connection:
        """Open an outbound connection to ``url``; returns at once (MG_EV_CONNECT follows)."""
        return self._open_conn(url, handler, 1, http)

    def ws_connect(self, url, handler=None, *, bint per_message_deflate=False) -> Connection:
        """Open a client WebSocket to ``url`` (ws:// or wss://) (``mg_ws_connect``).

        MG_EV_WS_OPEN (data: the HTTP 101 response) when the handshake completes,
        then MG_EV_WS_MSG per frame. ``per_message_deflate`` (off by default, as in
        0.2.x): offer permessage-deflate (RFC 7692); if the server agrees, messages
        are inflated before the handler sees them (16 MiB at most, else close 1009)
        and `Connection.ws_send` compresses; `Connection.ws_extensions` tells. An
        answer we did not offer fails the connection (MG_EV_ERROR naming it, RFC 6455
        section 4.1). Raises RuntimeError naming the URL on failure.
        """
        cdef Connection conn = self._open_conn(url, handler, 2, None, NULL,
                               b"Sec-WebSocket-Extensions: " + _DEFLATE_OFFER + b"\r\n"
                               if per_message_deflate else b"")
        if per_message_deflate and conn._c != NULL and conn._c.fn_data != NULL:
            (<ConnState *>conn._c.fn_data).ws_deflate = 2  # offered: WS_OPEN reads the answer
        return conn

    def mqtt_connect(self, url, handler=None, client_id="", username="", password="",
                     bint clean_session=True, int keepalive=60, *,
                     int version=4, properties=None) -> Connection:
        """Open an MQTT client connection and send CONNECT (``mg_mqtt_connect``).

        MG_EV_MQTT_OPEN (data: CONNACK code, or MQTT 5 reason code; 0 = accepted)
        follows, then MG_EV_MQTT_MSG per PUBLISH and MG_EV_MQTT_CMD per packet.
        ``keepalive`` is in seconds (0..65535, ValueError otherwise); an empty
        ``client_id`` lets mongoose generate one. ``version`` (keyword-only): the
        protocol level, 4 for MQTT 3.1.1 (default) or 5 for MQTT 5.0 (then PUBLISH
        carries properties, see ``MqttMessage.properties`` and ``Connection.mqtt_pub``);
        ValueError otherwise. ``properties`` (keyword-only, MQTT 5 only): CONNECT
        properties as ``(id, value)`` pairs, as for ``Connection.mqtt_pub``, e.g.
        ``[(0x11, 3600)]`` (session expiry interval, seconds: MQTT 5 ends a session at
        disconnect unless it is set).
        """
        if keepalive < 0 or keepalive > 65535:
            raise ValueError(f"keepalive must be in 0..65535 seconds, got {keepalive}")
        if version != 4 and version != 5:
            raise ValueError(f"version must be 4 (MQTT 3.1.1) or 5 (MQTT 5.0), got {version}")
        cdef bytes cid = _as_bytes(client_id, "client_id")
        cdef bytes user = _as_bytes(username, "username")
        cdef bytes pw = _as_bytes(password, "password")
        cdef mg_mqtt_opts opts
        memset(&opts, 0, sizeof(opts))
        opts.client_id = _mgs(cid)
        opts.user = _mgs(user)
        opts.passwd = _mgs(pw)
        opts.clean = clean_session
        opts.keepalive = <uint16_t>keepalive
        opts.version = <uint8_t>version
        cdef list items = _prop_items(properties) if properties else []
        if items:
            opts.props = _prop_array(items)
            opts.num_props = len(items)
        try:
            return self._open_conn(url, handler, 3, None, &opts)
        finally:
            free(opts.props)

    def mqtt_listen(self, url, handler=None) -> Connection:
        """Listen for MQTT clients on ``url`` (``mg_mqtt_listen``).

        Each received packet fires MG_EV_MQTT_CMD with an ``MqttMessage``; the
        handler answers (CONNACK, SUBACK, forwarding PUBLISH) like mongoose's
        mqtt-server example.
        """
        return self._open_conn(url, handler, 4, None)

    def sntp_connect(self, url, handler=None) -> Connection:
        """Open an SNTP (RFC 4330) client to ``url`` (e.g. ``udp://time.google.com:123``).

        Call ``sntp_request()`` on the connection; MG_EV_SNTP_TIME delivers the
        server time in epoch milliseconds (``mg_sntp_connect``).
        """
        return self._open_conn(url, handler, 5, None)

    def timer_add(self, unsigned long milliseconds, callback, *, repeat=False,
                  run_now=False) -> Timer:
        """Call ``callback()`` after ``milliseconds`` ms (every period when ``repeat``)."""
        self._check()
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        cdef Timer t = Timer.__new__(Timer)
        t._mgr = self
        t._callback = callback
        t._repeat = bool(repeat)
        t.active = True
        cdef unsigned flags = (MG_TIMER_REPEAT if repeat else MG_TIMER_ONCE) | \
            (MG_TIMER_RUN_NOW if run_now else 0)
        t._t = mg_timer_add(&self._mgr, milliseconds, flags, _timer_fn, <void *>t)
        if t._t == NULL:
            raise MemoryError("mg_timer_add failed")
        self._timers.add(t)
        return t

    def close(self) -> None:
        """Close every connection and free the manager; idempotent."""
        cdef Timer t
        if not self._open:
            return
        if self._polling or self._dispatching:  # 0.2.5's wording
            raise RuntimeError("Cannot close Manager while poll() is active. "
                               "Stop all polling threads before calling close().")
        for t in list(self._timers):
            t.active = False
            t._t = NULL  # mg_mgr_free releases every timer
        self._timers.clear()
        self._cancelled.clear()
        self._sweep = NULL  # mg_mgr_free releases it
        self._polling = True
        self._freeing = True
        try:
            mg_mgr_free(&self._mgr)
        finally:
            self._polling = False
            self._freeing = False
            self._open = False
            self._wakeups.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __dealloc__(self):
        cdef mg_connection *c
        if self._open:
            self._open = False
            # Python objects may already be gone: free the C side without callbacks.
            c = self._mgr.conns
            while c != NULL:
                c.fn_data = NULL
                c = c.next
            mg_mgr_free(&self._mgr)
