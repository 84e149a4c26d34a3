cdef class RpcReq:
    cdef readonly str frame
    cdef readonly str method
    cdef readonly object params
    cdef readonly object id
    cdef list _out


cdef class Rpc:
    cdef list _methods  # [(pattern: bytes, name: str, handler)]
