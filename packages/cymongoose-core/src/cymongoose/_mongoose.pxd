# Declarations of the _mongoose extension module, apart from its logic (uvloop's
# layout): mongoose's C API in includes/mongoose.pxd, the shared C state in state.pxd,
# each type's fields and C methods in a .pxd next to the .pyx that implements it.
#
# Cython reads this file before _mongoose.pyx, so every type is known before any .pyx
# is included and the .pyx files may be included in any order. Module-level cdef
# functions need no declaration here: Cython resolves calls to them after reading the
# whole module (declaring them in a .pxd would export them through __pyx_capi__).

from cpython.ref cimport PyObject
from libc.stdint cimport uint64_t

from cymongoose.includes.mongoose cimport *


include "state.pxd"
include "messages.pxd"
include "mqtt.pxd"
include "tls.pxd"
include "connection.pxd"
include "fasthandler.pxd"
include "wsgi_fastpath.pxd"
include "timers.pxd"
include "manager.pxd"
include "rpc.pxd"
