cdef class Manager:
    cdef mg_mgr _mgr
    cdef readonly bint _open
    cdef bint _polling
    cdef bint _wakeup_enabled
    cdef bint _wake_pending
    cdef bint _wake_sent   # a thread has nudged the wakeup pipe since this poll began
    cdef bint _freeing     # close(): mg_mgr_free is running
    cdef int _dispatching  # event handlers running (nested calls count each)
    cdef unsigned long _wakeup_id
    cdef unsigned long long _calls  # Python callbacks made by poll(), MG_EV_POLL excluded
    cdef object _handler
    cdef object _error_handler
    cdef object _exit  # a SystemExit/KeyboardInterrupt from a callback, raised by poll()
    cdef dict _conns
    cdef set _timers
    cdef list _cancelled
    cdef object _wakeups
    cdef mg_timer *_sweep
    cdef uint64_t _sweep_ms

    cdef int _check(self) except -1
    cdef void _report(self, exc) noexcept
    cdef void _start_sweep(self, uint64_t timeout_ms)
    cdef void _release_cancelled(self)
    cdef void _deliver_wakeups(self)
    cdef void _interrupt(self)
    cdef Connection _open_conn(self, url, handler, int kind, http,
                               const mg_mqtt_opts *mopts=*, bytes extra=*)
