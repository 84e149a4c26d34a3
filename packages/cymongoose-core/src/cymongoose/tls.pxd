cdef class TlsOpts:
    cdef readonly bytes ca
    cdef readonly bytes cert
    cdef readonly bytes key
    cdef readonly bytes name
    cdef readonly bint skip_verification
    cdef readonly str ciphers
    cdef readonly str min_version
    cdef readonly int cert_reqs
    cdef readonly tuple alpn
    cdef bytes _password
    cdef bytes _alpn        # alpn in wire format
    cdef int _version       # min_version as a protocol number (0x0303, 0x0304)
    cdef void *_ctx         # the shared SSL_CTX (OpenSSL builds); NULL otherwise
    cdef bint _default_ca   # the system's CA certificates are loaded into _ctx

    cdef _check_builtin(self)
    cdef _make_ctx(self)
    cdef int _attach(self, mg_connection *c, bytes host) except -1
    cdef void _fill(self, mg_tls_opts *o)
