# PEP 3333 helpers in C: the per-request environ in one call and a response written with
# one buffer append, for the WSGI server's hot path (mechanism here, policy in
# cymongoose.wsgi).

from cpython.dict cimport PyDict_SetDefault
from cpython.ref cimport Py_XDECREF
from cpython.unicode cimport PyUnicode_1BYTE_DATA, PyUnicode_GET_LENGTH
from libc.stdint cimport uint64_t

from urllib.parse import unquote_to_bytes as _unquote_to_bytes

cdef dict _ENVIRON_KEYS = {}      # header name as sent -> environ key, or None (dropped)
cdef Py_ssize_t _ENVIRON_KEYS_MAX = 2048


# A direct-mapped cache in front of _ENVIRON_KEYS, by the name's bytes as sent: a hit
# costs a memcmp, no bytes object and no hashing (two to ten headers per request). The
# keys it points to are _ENVIRON_KEYS values, which are never removed.
cdef enum:
    _KEY_SLOTS = 64
    _KEY_NAME_MAX = 40
cdef struct _KeySlot:
    size_t len
    char name[_KEY_NAME_MAX]
    PyObject *key
cdef _KeySlot _key_slots[_KEY_SLOTS]


cdef inline size_t _key_slot(mg_str name) noexcept nogil:
    return (name.len * 7 + <unsigned char>name.buf[0] * 3 +
            <unsigned char>name.buf[name.len - 1] +
            <unsigned char>name.buf[name.len >> 1]) % _KEY_SLOTS


cdef object _environ_key(mg_str name):
    """``Content-Type`` -> CONTENT_TYPE, ``X-Foo`` -> HTTP_X_FOO; names with ``_`` are
    dropped (None): once converted they could pass for a proxy's ``-`` header."""
    cdef _KeySlot *slot = NULL
    if 0 < name.len < _KEY_NAME_MAX:
        slot = &_key_slots[_key_slot(name)]
        if slot.len == name.len and slot.key != NULL and \
                memcmp(slot.name, name.buf, name.len) == 0:
            return <object>slot.key
    cdef bytes raw = PyBytes_FromStringAndSize(name.buf, name.len)
    key = _ENVIRON_KEYS.get(raw, False)
    if key is not False:
        if slot != NULL:
            memcpy(slot.name, name.buf, name.len)
            slot.len = name.len
            slot.key = <PyObject *>key
        return key
    cdef bytes lower = raw.lower()
    if b"_" in raw:
        key = None
    elif lower == b"content-type":
        key = "CONTENT_TYPE"
    elif lower == b"content-length":
        key = "CONTENT_LENGTH"
    else:
        key = "HTTP_" + raw.decode("latin-1").upper().replace("-", "_")
    if len(_ENVIRON_KEYS) < _ENVIRON_KEYS_MAX:
        _ENVIRON_KEYS[raw] = key
    return key


# Request strings that come back request after request (the method, the protocol, Host,
# a path, most header values) are taken from a small direct-mapped cache of latin-1
# decodes instead of being made anew: a hit costs a hash of at most 16 bytes and an exact
# compare with the cached str's own bytes (a 1-byte-kind str holds its latin-1 encoding),
# no allocation and no free. A miss replaces the slot. Each slot holds a reference, so
# memory stays bounded (_STR_SLOTS strings of up to _STR_MAX characters).
cdef extern from *:
    """
    static inline size_t cym_str_slot(const char *p, size_t n) {
        uint64_t a, b;
        if (n >= 8) {
            memcpy(&a, p, 8); memcpy(&b, p + n - 8, 8);
        } else if (n >= 4) {
            uint32_t x, y;
            memcpy(&x, p, 4); memcpy(&y, p + n - 4, 4);
            a = x; b = y;
        } else {
            a = (uint64_t)(unsigned char)p[0] | (uint64_t)(unsigned char)p[n >> 1] << 8 |
                (uint64_t)(unsigned char)p[n - 1] << 16;
            b = 0;
        }
        uint64_t h = a * 0x9E3779B97F4A7C15ULL ^ (b + n) * 0xC2B2AE3D27D4EB4FULL;
        return (size_t)(h >> 56);
    }
    """
    size_t cym_str_slot(const char *p, size_t n) noexcept nogil

cdef enum:
    _STR_SLOTS = 256  # cym_str_slot's range
    _STR_MAX = 64
cdef PyObject *_str_slots[_STR_SLOTS]


cdef str _latin1(mg_str s):
    cdef PyObject **slot
    cdef PyObject *old
    if s.len <= 1 or s.len > _STR_MAX:  # (one character: CPython's own cached str)
        return PyUnicode_DecodeLatin1(s.buf, s.len, NULL)
    slot = &_str_slots[cym_str_slot(s.buf, s.len)]
    old = slot[0]
    if old != NULL and <size_t>PyUnicode_GET_LENGTH(<str>old) == s.len and \
            memcmp(PyUnicode_1BYTE_DATA(<str>old), s.buf, s.len) == 0:
        return <str>old
    value = PyUnicode_DecodeLatin1(s.buf, s.len, NULL)
    Py_INCREF(value)
    slot[0] = <PyObject *>value
    Py_XDECREF(old)
    return value


cdef str _path_info(mg_str uri):
    # Absolute-form target (RFC 9112 section 3.2.2): only the path counts.
    cdef size_t i, start = 0
    cdef char *slash
    if uri.len and uri.buf[0] != c'/':
        if (uri.len > 7 and strncasecmp(uri.buf, "http://", 7) == 0) or \
                (uri.len > 8 and strncasecmp(uri.buf, "https://", 8) == 0):
            i = 7 if uri.buf[4] == c':' else 8
            slash = <char *>memchr(uri.buf + i, c'/', uri.len - i)
            if slash == NULL:
                return "/"
            start = <size_t>(slash - uri.buf)
    uri.buf += start
    uri.len -= start
    if memchr(uri.buf, c'%', uri.len) == NULL:
        return _latin1(uri)
    # PEP 3333 "Unicode Issues": percent-decoded bytes as latin-1 code points.
    cdef bytes out = PyBytes_FromStringAndSize(NULL, uri.len)
    cdef int n = mg_url_decode(uri.buf, uri.len, <char *>out, uri.len + 1, 0)
    if n < 0:  # an invalid escape: keep it, decode the valid ones (as unquote_to_bytes)
        return _unquote_to_bytes(PyBytes_FromStringAndSize(uri.buf, uri.len)).decode("latin-1")
    return PyUnicode_DecodeLatin1(<char *>out, n, NULL)


cdef dict _wsgi_environ(mg_http_message *hm, dict base):
    cdef dict environ = base.copy()
    cdef int i
    cdef Py_ssize_t size
    cdef str value, script_name, path_info
    environ["REQUEST_METHOD"] = "GET" if _is(hm.method, "GET", 3) else _latin1(hm.method)
    path_info = _path_info(hm.uri)
    script_name = environ.get("SCRIPT_NAME", "")
    if script_name and path_info.startswith(script_name):
        rest = path_info[len(script_name):]
        if not rest or rest[0] == "/":
            path_info = rest
    environ["PATH_INFO"] = path_info
    environ["QUERY_STRING"] = _latin1(hm.query)
    environ["SERVER_PROTOCOL"] = "HTTP/1.1" if _is(hm.proto, "HTTP/1.1", 8) else \
        _latin1(hm.proto) if hm.proto.len else "HTTP/1.0"
    for i in range(MG_MAX_HTTP_HEADERS):
        if hm.headers[i].name.len == 0:
            break
        key = _environ_key(hm.headers[i].name)
        if key is None:
            continue
        value = _latin1(hm.headers[i].value)
        # One lookup for the common case, a key not there yet. (The size tells whether it
        # was: the cache may give the very object already stored for an equal field.)
        size = len(environ)
        PyDict_SetDefault(environ, key, value)
        if len(environ) != size:
            continue
        if (<str>key).startswith("HTTP_"):
            # RFC 9110 section 5.3: repeated fields join with ", " (Cookie: "; ").
            environ[key] = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            environ[key] = value
    return environ


cdef bytes _native(object v, str what):
    # PEP 3333 "Unicode Issues": native strings go on the wire as latin-1.
    if isinstance(v, str):
        try:
            v = (<str>v).encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"{what} {v!r} is not latin-1 (PEP 3333)") from None
    return _header_bytes(v, what)
