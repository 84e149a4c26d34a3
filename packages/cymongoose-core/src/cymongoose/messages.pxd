cdef class HttpMessage:
    cdef mg_http_message *_hm     # NULL once the event handler has returned
    cdef bint _more_body

    cdef inline mg_http_message *_get(self) except NULL


cdef class WsMessage:
    cdef mg_ws_message *_wm       # NULL once the event handler has returned
    cdef bytes _inflated          # the payload of a compressed message, inflated
