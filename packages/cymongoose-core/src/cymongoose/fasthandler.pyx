# A generic hook for servers built on the core's HTTP/1.1 protocol: a handler that can
# answer a complete request in C, before any Python object is made for the event. The
# Manager's dispatcher knows only this type (see _dispatch in manager.pyx).

cdef class HttpFastHandler:
    """An event handler with a C-level shortcut for ``MG_EV_HTTP_MSG``.

    Installed like any handler (``Manager(handler)``, ``listen(url, handler)``,
    ``Connection.set_handler``). A complete request first goes to the subclass's C method
    ``_http_message``; what it does not answer, and every other event, goes to
    ``fallback(conn, ev, data)``. Subclassed in C only (`WsgiFastPath`): from Python,
    calling it forwards to ``fallback``.
    """
    # Fields and C methods are declared in fasthandler.pxd.

    cdef bint _http_message(self, Connection conn, mg_connection *c, mg_http_message *hm,
                            ConnState *st) except -1:
        """Answer ``hm`` (True) or leave it to ``fallback`` (False)."""
        return False

    def __call__(self, conn, ev, data):
        # Reached only when called from Python; the Manager routes events in C.
        return self.fallback(conn, ev, data)
