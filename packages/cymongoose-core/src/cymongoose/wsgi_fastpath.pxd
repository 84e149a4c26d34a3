cdef class WsgiConnState:
    cdef public dict base
    cdef public bint fast
    cdef public bint proxied
    cdef public bint busy


cdef class WsgiStartResponse:
    cdef public object status
    cdef public object headers
    cdef public int code
    cdef public object conn
    cdef public object environ
    cdef public object uri
    cdef public object query
    cdef public bint started
    cdef public bint taken
    cdef public bint head_sent
    cdef public Py_ssize_t sent
    cdef public list prefix
    cdef public object iterator


cdef class WsgiFastPath(HttpFastHandler):
    cdef object app
    cdef object cycle_type
    cdef object file_wrapper
    cdef Py_ssize_t buffer_limit
    cdef object submit
    cdef bint access_log
    cdef tuple proxy_headers
    cdef public bint enabled

    cdef int _respond(self, Connection conn, WsgiStartResponse cycle) except -1
    cdef inline bint _writable(self, Connection conn, mg_connection *c) noexcept
    cdef inline void _written(self, Connection conn, mg_connection *c, bint more) noexcept
    cdef bint _answer(self, Connection conn, WsgiStartResponse cycle, list result) except -1
    cdef int _stream(self, Connection conn, WsgiStartResponse cycle, object result) except -2
