# cython: language_level=3
"""The compiled binding of mongoose 7.23 (see includes/mongoose.pxd)."""

# One extension module stitched from the .pyx files below; their types and shared C
# state are declared in _mongoose.pxd. No file depends on the include order: each
# one's module-level code uses only its own names and the imports here.

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8, PyUnicode_DecodeLatin1
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from cpython.object cimport PyTypeObject
from libc.stdlib cimport malloc, free, calloc
from libc.string cimport memset, memchr, memmove, memcpy, memcmp, strlen
from libc.stdio cimport snprintf
from libc.stdint cimport uint64_t
from posix.unistd cimport close as posix_close, dup as posix_dup, pread as posix_pread
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from cymongoose.includes.mongoose cimport *

import sys
import threading
import traceback
from collections import deque
from http import HTTPStatus
from json import dumps as _json_dumps, loads as _json_loads
from socket import inet_ntop, ntohs, htons, AF_INET, AF_INET6


include "constants.pxi"
include "messages.pyx"
include "wsgi.pyx"
include "emit.pyx"
include "mqtt.pyx"
include "tls.pyx"
include "wsdeflate.pyx"
include "connection.pyx"
include "fasthandler.pyx"
include "wsgi_fastpath.pyx"
include "timers.pyx"
include "manager.pyx"
include "httpparse.pyx"
include "httpserver.pyx"
include "utils.pyx"
include "rpc.pyx"
