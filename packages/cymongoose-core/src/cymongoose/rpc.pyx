# JSON-RPC 2.0 dispatch with mongoose's semantics (mg_rpc_add / mg_rpc_process):
# method names are mg_match glob patterns, the first match wins, frames without
# "id" are notifications (no response), unknown methods answer -32601.


cdef class RpcReq:
    """One JSON-RPC request being handled; call ``ok()`` or ``err()`` once.

    ``frame``: the whole request (str); ``method``: its method name; ``params``:
    the raw JSON token of ``params`` or None; ``id``: raw JSON token of ``id`` or
    None (a notification, whose answer is dropped).
    """

    # Fields are declared in rpc.pxd.

    def ok(self, result_json) -> None:
        """Answer with ``result_json``, a JSON text (str/bytes) inserted verbatim."""
        cdef bytes r = _as_bytes(result_json, "result_json")
        if self.id is not None:
            self._out.append('{"id":%s,"result":%s}' % (self.id, r.decode("utf-8")))

    def err(self, int code, message) -> None:
        """Answer with a JSON-RPC error object ``{"code": code, "message": message}``."""
        if not isinstance(message, str):
            raise TypeError(f"message must be str, not {type(message).__name__}")
        if self.id is not None:
            self._out.append('{"id":%s,"error":{"code":%d,"message":%s}}'
                             % (self.id, code, _json_dumps(message)))

    def __repr__(self):
        return f"<RpcReq method={self.method!r} id={self.id}>"


cdef class Rpc:
    """A JSON-RPC 2.0 method table (like mongoose's ``struct mg_rpc`` list)."""

    # Fields are declared in rpc.pxd.

    def __init__(self):
        self._methods = []

    def add(self, method, handler) -> None:
        """Register ``handler(req: RpcReq)`` for ``method`` (an ``mg_match`` glob pattern)."""
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        cdef bytes p = _as_bytes(method, "method")
        if not p:
            raise ValueError("method must not be empty")
        self._methods.append((p, p.decode("utf-8", "surrogateescape"), handler))

    @property
    def methods(self):
        """Registered method patterns, in registration order."""
        return [name for _, name, _ in self._methods]

    def process(self, frame) -> str:
        """Dispatch one request ``frame`` (JSON text); return the response JSON, or ""
        for a notification or a handler that did not answer.

        A frame without a string ``method`` answers -32600; no match answers
        -32601 (``"<method> not found"``). Exceptions raised by the handler propagate.
        """
        cdef bytes f = _as_bytes(frame, "frame")
        cdef RpcReq req = RpcReq.__new__(RpcReq)
        req.frame = f.decode("utf-8", "surrogateescape")
        req.id = json_get(f, "$.id")
        req.params = json_get(f, "$.params")
        req._out = []
        method = json_get_str(f, "$.method")
        if method is None:
            req.method = ""
            req.err(-32600, "invalid request: no method")
            return req._out[0] if req._out else ""
        req.method = method
        cdef bytes mb = method.encode("utf-8", "surrogateescape")
        for p, _, handler in self._methods:
            if mg_match(_mgs(mb), _mgs(p), NULL):
                handler(req)
                break
        else:
            req.err(-32601, f"{method} not found")
        return req._out[0] if req._out else ""
