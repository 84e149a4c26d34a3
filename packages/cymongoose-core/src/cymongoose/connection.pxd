cdef class Connection:
    cdef mg_connection *_c        # NULL once closed
    cdef unsigned long _id
    cdef object _handler
    cdef Manager _mgr
    cdef public object userdata
    cdef int _want_io
    cdef bint _consume_reads
    cdef object _tls  # TlsOpts kept alive while mongoose may point into it
    cdef bytes _peer_host  # a client's URL host: the name its TLS verifies by default
    cdef object _ws_deflate  # _WsDeflate: permessage-deflate agreed (or a client's offer)

    cdef inline mg_connection *_get(self) except NULL
    cdef inline bint _alive(self) noexcept
