cdef class Timer:
    cdef Manager _mgr
    cdef mg_timer *_t             # NULL once mongoose or _release freed it
    cdef object _callback
    cdef bint _repeat
    cdef readonly bint active

    cdef void _release(self)
