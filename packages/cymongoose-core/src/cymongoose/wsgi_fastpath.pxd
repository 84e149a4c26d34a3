cdef class WsgiConnState:
    cdef public dict base
    cdef public bint fast
    cdef public bint proxied
    cdef public bint busy


cdef class WsgiStartResponse:
    # What the fast path and the server's Python cycle share.
    cdef public object status
    cdef public object headers
    cdef public int code
    cdef public object conn
    cdef public object environ
    cdef public object uri               # the request target and query, for the access log
    cdef public object query
    cdef public double arrived           # time.perf_counter() at arrival (timed access logs)
    cdef public bint started             # a non-empty body block was produced
    cdef public bint taken               # the Python cycle runs the request
    cdef public bint head_sent
    cdef public Py_ssize_t sent          # body bytes handed to the writer
    cdef public double send_s            # seconds in the socket send of a body by reference
    cdef public list prefix              # handed over mid-iteration: blocks taken, not sent
    cdef public object iterator
    # The Python cycle's own state (cymongoose.wsgi.cycle), kept here so that a cycle is
    # one C struct: no instance dict to make, fill and free per request.
    cdef public object protocol          # the connection's protocol object
    cdef public object writer            # how the response reaches the client
    cdef public bint keep_alive          # True by default
    cdef public bint http11              # True by default
    cdef public bint is_head
    cdef public object client            # (host, port) from trusted proxy headers
    cdef public object body              # a request body still arriving
    cdef public bint deferred            # waits for its body before the app is called
    cdef public bint cancelled           # the connection has closed
    cdef public Py_ssize_t size          # body bytes the app produced
    cdef public object parts             # blocks produced, not yet handed to the writer
    cdef public object result            # the response iterable while it is open
    cdef public bint eager               # stream each block as it comes
    cdef public bint chunked
    cdef public object length            # the app's Content-Length once streaming, or None
    cdef public bint logged
    cdef public object cond              # pooled writer: flow control of a stream
    cdef public Py_ssize_t queued_bytes
    cdef public Py_ssize_t uncredited
    cdef public double deadline          # inline writer: a suspended stream's time limit


cdef class WsgiPollRole:
    cdef public unsigned long leader     # thread ident of the poller; 0: free
    cdef public unsigned long standby    # 0: none
    cdef public unsigned long main       # the thread that gets the role back at the stop
    cdef public long long seq            # app calls the leader began
    cdef public long long takeovers      # times a leader stuck in an app lost the role
    cdef public long long calls          # app calls run_ready made, and how many of them
    cdef public long long slow_calls     # took slow_s or more
    cdef public long long pool_calls     # app calls run_pooled made, and how many of them
    cdef public long long pool_slow      # took slow_s or more
    cdef public double slow_s
    cdef public bint in_app              # the leader is in its seq-th app call
    cdef public bint inline              # the leader runs what it queues
    cdef public bint final               # stopping: only main may lead
    cdef public bint closing
    cdef public double handoff_until     # time.monotonic(): hand everything off until then
    cdef public double handoff_s
    cdef public object ready             # collections.deque of cycles the leader runs


cdef class WsgiFastPath(HttpFastHandler):
    cdef object app
    cdef object cycle_type
    cdef object file_wrapper
    cdef Py_ssize_t buffer_limit
    cdef object submit
    cdef bint access_log
    cdef bint log_arrival
    cdef tuple proxy_headers
    cdef unsigned long long proxy_lengths  # bit n: a proxy header name has n characters
    cdef public bint enabled
    cdef WsgiPollRole role
    cdef object ready_append

    cdef int _run(self, WsgiStartResponse cycle) except -1

    cdef int _respond(self, Connection conn, WsgiStartResponse cycle) except -1
    cdef inline bint _writable(self, Connection conn, mg_connection *c) noexcept
    cdef inline void _written(self, Connection conn, mg_connection *c, bint more) noexcept
    cdef bint _answer(self, Connection conn, WsgiStartResponse cycle, list result) except -1
    cdef bint _put_block(self, Connection conn, mg_connection *c, WsgiStartResponse cycle,
                         bytes block) except -1
    cdef int _stream(self, Connection conn, WsgiStartResponse cycle, object result) except -2
