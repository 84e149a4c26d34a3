cdef class TlsOpts:
    cdef readonly bytes ca
    cdef readonly bytes cert
    cdef readonly bytes key
    cdef readonly bytes name
    cdef readonly bint skip_verification

    cdef void _fill(self, mg_tls_opts *o)
