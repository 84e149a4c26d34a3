# cython: language_level=3
"""The compiled binding of mongoose 7.23 (see includes/mongoose.pxd)."""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8, PyUnicode_DecodeLatin1
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from libc.stdlib cimport malloc, free
from libc.string cimport memset, memchr, memmove, memcpy, memcmp, strlen
from libc.stdio cimport snprintf
from libc.stdint cimport uint64_t
from posix.unistd cimport close as posix_close, dup as posix_dup, pread as posix_pread

from cymongoose.includes.mongoose cimport *

import sys
import threading
import traceback
from collections import deque
from http import HTTPStatus
from json import dumps as _json_dumps, loads as _json_loads
from socket import inet_ntop, ntohs, htons, AF_INET, AF_INET6


cdef bytes json_dumps(obj):
    return _json_dumps(obj, separators=(",", ":")).encode("utf-8")


ctypedef struct ServerOpts:
    # Limits of Connection.configure_http_server, shared by a listener and the
    # connections it accepted; freed when the last of them goes.
    size_t max_header_count
    size_t max_header_bytes
    size_t max_body_size          # 0: unlimited
    size_t stream_threshold
    uint64_t keep_alive_timeout_ms
    uint64_t header_timeout_ms
    size_t max_connections        # 0: unlimited
    size_t ws_max_size            # 0: unlimited
    size_t connections            # accepted connections alive
    int refs


ctypedef struct ConnState:
    mg_connection *c     # NULL until MG_EV_OPEN claims this state
    PyObject *conn       # owned reference to the Connection
    PyObject *mgr        # borrowed: the Manager outlives its connections
    int want_io
    # The core's HTTP/1.1 server protocol (httpserver.pyx); srv is NULL elsewhere.
    ServerOpts *srv
    uint64_t last_io_ms
    uint64_t request_start_ms     # first byte of an incomplete request head, or 0
    int need_parse                # recv may hold a request not yet parsed
    int more_body                 # the HTTP_MSG being dispatched streams its body
    int body_mode                 # 0: none, 1: Content-Length, 2: chunked
    int chunk_state
    size_t body_left
    size_t body_total
    size_t decoded                # chunked: decoded bytes at the front of recv
    int paused
    int want_writable
    size_t low_water
    int resp_written              # the current request's response has begun
    int file_fd                   # Connection.send_file: read in C as the socket drains
    uint64_t file_left            # bytes still to queue; the fd is open while > 0
    uint64_t file_offset
    # Complete responses waiting for the end of the poll iteration (httpserver.pyx
    # _flush_later): a list through the manager's mg_mgr.userdata.
    ConnState *flush_next
    int flush_queued


cdef class Manager


include "constants.pxi"
include "messages.pyx"
include "wsgi.pyx"
include "emit.pyx"
include "mqtt.pyx"
include "tls.pyx"
include "connection.pyx"
include "fasthandler.pyx"
include "wsgi_fastpath.pyx"
include "timers.pyx"
include "manager.pyx"
include "httpserver.pyx"
include "utils.pyx"
include "rpc.pyx"
