cdef class HttpFastHandler:
    cdef public object fallback

    cdef bint _http_message(self, Connection conn, mg_connection *c, mg_http_message *hm,
                            ConnState *st) except -1
