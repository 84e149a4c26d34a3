# cython: language_level=3
"""The compiled binding of mongoose 7.23 (see includes/mongoose.pxd)."""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8, PyUnicode_DecodeLatin1
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from libc.stdlib cimport malloc, free
from libc.string cimport memset
from libc.stdint cimport uint64_t

from cymongoose.includes.mongoose cimport *

import sys
import threading
import traceback
from collections import deque
from http import HTTPStatus
from json import dumps as _json_dumps, loads as _json_loads
from socket import inet_ntop, ntohs, AF_INET, AF_INET6


cdef bytes json_dumps(obj):
    return _json_dumps(obj, separators=(",", ":")).encode("utf-8")


ctypedef struct ConnState:
    mg_connection *c     # NULL until MG_EV_OPEN claims this state
    PyObject *conn       # owned reference to the Connection
    PyObject *mgr        # borrowed: the Manager outlives its connections
    int want_io


cdef class Manager


include "constants.pxi"
include "messages.pyx"
include "mqtt.pyx"
include "tls.pyx"
include "connection.pyx"
include "timers.pyx"
include "manager.pyx"
include "utils.pyx"
include "rpc.pyx"
